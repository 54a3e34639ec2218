"""PyTorch integration: the CUDA caching allocator's view of memory in memscope's timeline.

    import memscope, memscope.torch

    profiler = memscope.MemoryProfiler(interval=0.5)
    memscope.torch.TorchMemoryRecorder(profiler)   # at every sample: torch.cuda.memory_stats()
    with profiler:
        train()
    profiler.generate_report("profile.json")       # "counters": torch.cuda0.reserved_bytes...

On a machine without CUDA the recorder warns once and records nothing: the profile then has host
memory only. `dump_snapshot(path)` writes the allocator snapshot pickle that `memscope fragment
--snapshot` reads.
"""

import pickle
import warnings

import torch

from . import is_out_of_memory  # noqa: F401  (re-exported for torch users)

# torch.cuda.memory_stats() keys recorded at each sample (docs: PyTorch's memory_stats()).
MEMORY_STAT_KEYS = (
    "allocated_bytes.all.current",
    "reserved_bytes.all.current",
    "inactive_split_bytes.all.current",
    "num_alloc_retries",
    "num_ooms",
)

CPU_ONLY_MESSAGE = ("memscope.torch: CUDA is not available (torch.cuda.is_available() is False): "
                    "no allocator statistics are recorded, the profile has host memory only")


def cuda_available():
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001  (a broken driver counts as no CUDA)
        return False


def counter_name(device, key):
    """The profiler counter of one statistic of one device, e.g. torch.cuda0.num_ooms."""
    return f"torch.cuda{device}.{key}"


def memory_counters(devices):
    """{counter name: value} of MEMORY_STAT_KEYS for each device (empty before CUDA is used)."""
    counters = {}
    for device in devices:
        stats = torch.cuda.memory_stats(device)
        if not stats:  # CUDA not initialized yet: nothing allocated, nothing to record
            continue
        for key in MEMORY_STAT_KEYS:
            counters[counter_name(device, key)] = float(stats.get(key, 0))
    return counters


class TorchMemoryRecorder:
    """Records torch.cuda.memory_stats() into a MemoryProfiler at each of its samples.

    devices: CUDA device indices (default: all). On a CPU-only machine it warns once and
    records nothing (`enabled` is False); the profiler still records host memory.
    """

    def __init__(self, profiler, devices=None):
        self.profiler = profiler
        self.enabled = cuda_available()
        if not self.enabled:
            warnings.warn(CPU_ONLY_MESSAGE, RuntimeWarning, stacklevel=2)
            self.devices = []
            return
        if devices is None:
            devices = range(torch.cuda.device_count())
        self.devices = [int(device) for device in devices]
        count = torch.cuda.device_count()
        for device in self.devices:
            if not 0 <= device < count:
                raise ValueError(f"unknown CUDA device {device} (this machine has {count})")
        profiler.add_sample_hook(self._sample)

    def _sample(self):
        return memory_counters(self.devices)

    def record_now(self):
        """Records the statistics now (e.g. at the end of a step), between samples."""
        for name, value in self._sample().items():
            self.profiler.record_counter(name, value)


def attach(profiler, devices=None):
    """TorchMemoryRecorder(profiler, devices): allocator statistics at every profiler sample."""
    return TorchMemoryRecorder(profiler, devices)


def start_recording_history(max_entries=100000):
    """Starts recording the allocator's alloc/free history (for dump_snapshot's trace)."""
    _require_cuda("record the allocator history")
    record = torch.cuda.memory._record_memory_history
    try:  # PyTorch 2.1+
        record(enabled="all", max_entries=max_entries)
    except TypeError:
        try:  # 2.0
            record(True, trace_alloc_max_entries=max_entries, trace_alloc_record_context=True)
        except TypeError:  # 1.13: on/off only
            record(True)


def stop_recording_history():
    _require_cuda("record the allocator history")
    record = torch.cuda.memory._record_memory_history
    try:
        record(enabled=None)
    except TypeError:
        record(False)


def dump_snapshot(path):
    """Writes the CUDA allocator snapshot (segments, blocks, traces) to `path` as a pickle.

    The file is what `memscope fragment --snapshot PATH` and FragmentationAnalyzer read.
    Raises RuntimeError without CUDA.
    """
    _require_cuda("dump an allocator snapshot")
    dump = getattr(torch.cuda.memory, "_dump_snapshot", None)
    if dump is not None:
        dump(path)
        return
    # PyTorch before 2.0: the same dict, pickled here.
    with open(path, "wb") as file:
        pickle.dump(torch.cuda.memory._snapshot(), file)


def _require_cuda(what):
    if not cuda_available():
        raise RuntimeError(f"memscope.torch: cannot {what}: CUDA is not available on this machine")
