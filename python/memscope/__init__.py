"""memscope: memory profiling, OOM forecasts and memory-aware training helpers.

The classes are the C++ library's (include/memscope/), with Pythonic names:

    import memscope

    with memscope.MemoryProfiler(interval=0.1) as profiler:
        train()
    profiler.generate_report("profile.json")

    detector = memscope.OOMDetector(interval=0.5, threshold=85)
    detector.add_warning_callback(lambda device_id, prediction: print(prediction.risk_level))
    detector.start_monitoring()

Callbacks and sample hooks run on the monitor's own thread, with the GIL held only while they
run; the training loop is never blocked by the sampling. Invalid arguments raise ValueError,
other failures RuntimeError. A callback that raises is reported through sys.unraisablehook
(a traceback on stderr) and counted in `callback_errors`; the monitor keeps running.

`memscope.torch` records PyTorch's CUDA allocator statistics into a profiler's timeline.
"""

import sys as _sys

from . import _memscope
from ._memscope import (  # noqa: F401  (re-exported)
    BatchRecommendation,
    BufferPool,
    ClusterSummary,
    DeviceFragmentationSummary,
    DistributedMemoryMonitor,
    FragmentationAnalyzer,
    LeakVerdict,
    MemoryLeakDetector,
    MemoryProfiler,
    NodeMemory,
    OOMDetector,
    OOMPrediction,
    OomRetryReport,
    ProfileDevicePeak,
    ProfileSummary,
    RankMemory,
    __version__,
)

__all__ = [
    "BatchRecommendation",
    "BatchSizeController",
    "BufferPool",
    "ClusterSummary",
    "DeviceFragmentationSummary",
    "DistributedMemoryMonitor",
    "FragmentationAnalyzer",
    "LeakVerdict",
    "MemoryLeakDetector",
    "MemoryProfiler",
    "NodeMemory",
    "OOMDetector",
    "OOMPrediction",
    "OomRetryReport",
    "ProfileDevicePeak",
    "ProfileSummary",
    "RankMemory",
    "is_out_of_memory",
    "run_with_oom_retry",
]

# What PyTorch's out-of-memory RuntimeErrors say (CUDA, and the CPU allocator's).
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(error):
    """True when `error` says the step ran out of memory.

    MemoryError, torch.cuda.OutOfMemoryError, and the RuntimeErrors PyTorch raised for it before
    that class existed ("CUDA out of memory", "CUDA error: out of memory", "DefaultCPUAllocator:
    can't allocate memory").
    """
    if isinstance(error, MemoryError):
        return True
    torch = _sys.modules.get("torch")
    if torch is not None:
        oom_class = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
        if isinstance(oom_class, type) and isinstance(error, oom_class):
            return True
    if isinstance(error, RuntimeError):
        message = str(error).lower()
        return any(text in message for text in _OOM_MESSAGES)
    return False


def _release_cached_memory():
    torch = _sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001  (best effort: the retry goes on either way)
        pass


def _native_step(step):
    """Wraps step(batch_size) for the C++ retry loop: None when it worked, a message on OOM."""

    def run(batch_size):
        try:
            step(batch_size)
        except BaseException as error:  # noqa: BLE001  (anything else is re-raised)
            if not is_out_of_memory(error):
                raise
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
        else:
            return None
        # Outside the except block: the traceback (and the tensors its frames hold) is gone.
        _release_cached_memory()
        return message

    return run


def run_with_oom_retry(step, batch_size, *, min=1, shrink_factor=0.5, max_attempts=0):  # noqa: A002
    """Runs step(batch_size); after an out-of-memory error retries with a smaller batch.

    Each retry uses max(min, batch_size * shrink_factor), at least one less. Returns an
    OomRetryReport (batch_size that worked, attempts, out_of_memory). Raises RuntimeError when
    the step still runs out of memory at `min` (or after max_attempts); any other exception of
    the step propagates unchanged.
    """
    return _memscope._run_with_oom_retry(
        batch_size, _native_step(step), min=min, shrink_factor=shrink_factor,
        max_attempts=max_attempts)


class BatchSizeController(_memscope.BatchSizeController):
    """Recommends the next batch size from memory headroom and OOM risk.

    Shrinks fast on high/critical risk, grows slowly with sustained headroom, stays within
    [min, max]. `recommend(used_bytes=, limit_bytes=, headroom_fraction=, risk=)` takes one
    observation per step (risk: "low".."critical", e.g. an OOMPrediction's risk_level).
    """

    def run_step(self, step):
        """Runs step(self.current); on out-of-memory shrinks and retries, down to `min`.

        The controller keeps the size that worked. Returns an OomRetryReport.
        """
        return self._run_step(_native_step(step))

    def observe_prediction(self, prediction, **observation):
        """recommend() from an OOMDetector prediction (its usage, limit and risk level)."""
        return self.recommend(used_bytes=prediction.used_bytes,
                              limit_bytes=prediction.limit_bytes,
                              risk=prediction.risk_level, **observation)
