"""BatchSizeController and the out-of-memory retry helpers on a simulated memory model."""

import pytest

import memscope

GiB = 1024 ** 3
MiB = 1024 ** 2


class SimulatedGpu:
    """Memory of a training step: a fixed part plus a part per sample, against a limit."""

    def __init__(self, base=1 * GiB, per_sample=50 * MiB, limit=8 * GiB):
        self.base, self.per_sample, self.limit = base, per_sample, limit
        self.steps = []

    def used(self, batch_size):
        return self.base + self.per_sample * batch_size

    def fits(self, batch_size):
        return self.used(batch_size) <= self.limit


def test_controller_shrinks_on_risk_then_grows_back_within_the_limit():
    gpu = SimulatedGpu()
    controller = memscope.BatchSizeController(initial=256, min=1, max=512)
    usages = []
    for _ in range(80):
        used = gpu.used(controller.current)
        usages.append(used / gpu.limit)
        controller.recommend(used_bytes=used, limit_bytes=gpu.limit)
    assert usages[0] > 1  # 256 samples do not fit
    # One shrink got below the critical usage; every later step stayed below "high".
    assert max(usages[1:]) < 0.85
    # ... and the controller grew back to use the headroom (batch 64 would be 51 %).
    assert usages[-1] >= 0.6
    assert controller.current <= 512
    # Converged: the last steps keep one batch size.
    final = controller.current
    assert gpu.used(final) / gpu.limit == pytest.approx(usages[-1])


def test_controller_never_exceeds_the_user_maximum():
    controller = memscope.BatchSizeController(initial=8, min=2, max=12, cooldown=0, grow_after=1)
    sizes = [controller.recommend(headroom_fraction=0.9).batch_size for _ in range(30)]
    assert max(sizes) == 12
    assert sizes == sorted(sizes)


def test_risk_words_drive_the_recommendation():
    controller = memscope.BatchSizeController(initial=64)
    recommendation = controller.recommend(risk="critical")
    assert recommendation.action == "shrink"
    assert recommendation.risk == "critical"
    assert recommendation.batch_size < 64
    assert controller.current == recommendation.batch_size
    assert controller.recommend(risk="medium").action == "hold"
    with pytest.raises(ValueError, match="risk"):
        controller.recommend(risk="dire")


@pytest.mark.parametrize("arguments", [{"min": 0}, {"initial": 2000}, {"max": 0},
                                       {"shrink_factor_high": 1.5}, {"grow_factor": 0.5}])
def test_invalid_controller_options_raise_value_error(arguments):
    with pytest.raises(ValueError):
        memscope.BatchSizeController(**arguments)


def make_step(gpu, torch=None, error="torch"):
    """A training step that raises PyTorch's out-of-memory error when the batch does not fit."""

    def step(batch_size):
        gpu.steps.append(batch_size)
        if gpu.fits(batch_size):
            return
        message = f"CUDA out of memory. Tried to allocate {gpu.used(batch_size)} bytes"
        if error == "torch":
            raise torch.cuda.OutOfMemoryError(message)
        if error == "runtime":
            raise RuntimeError(message)
        raise MemoryError()

    return step


@pytest.mark.parametrize("error", ["torch", "runtime", "memory"])
def test_run_with_oom_retry_shrinks_until_the_step_fits(torch, error):
    gpu = SimulatedGpu()
    report = memscope.run_with_oom_retry(make_step(gpu, torch, error), 256)
    assert gpu.steps == [256, 128]
    assert report.batch_size == 128
    assert report.attempts == 2
    assert report.out_of_memory == 1


def test_other_exceptions_of_the_step_propagate_unchanged():
    def step(batch_size):
        raise KeyError("a bug in the step")

    with pytest.raises(KeyError, match="a bug in the step"):
        memscope.run_with_oom_retry(step, 16)


def test_out_of_memory_at_the_minimum_is_a_runtime_error(torch):
    gpu = SimulatedGpu(base=9 * GiB)  # nothing fits
    with pytest.raises(RuntimeError, match="out of memory"):
        memscope.run_with_oom_retry(make_step(gpu, torch), 8, min=2)
    assert gpu.steps[-1] == 2


def test_controller_run_step_keeps_the_batch_that_worked(torch):
    gpu = SimulatedGpu()
    controller = memscope.BatchSizeController(initial=512, max=512)
    report = controller.run_step(make_step(gpu, torch))
    assert gpu.fits(report.batch_size)
    assert report.out_of_memory >= 1
    assert controller.current == report.batch_size
    # The next step starts from there: no out-of-memory error this time.
    again = controller.run_step(make_step(gpu, torch))
    assert again.attempts == 1


def test_is_out_of_memory(torch):
    assert memscope.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert memscope.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert memscope.is_out_of_memory(MemoryError())
    assert memscope.is_out_of_memory(RuntimeError(
        "[enforce fail at alloc_cpu.cpp:75] DefaultCPUAllocator: can't allocate memory"))
    assert not memscope.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not memscope.is_out_of_memory(ValueError("out of memory"))


def test_observe_prediction_uses_the_forecast():
    from types import SimpleNamespace

    controller = memscope.BatchSizeController(initial=64)
    warning = SimpleNamespace(used_bytes=7 * GiB, limit_bytes=8 * GiB, risk_level="high")
    recommendation = controller.observe_prediction(warning)
    assert recommendation.action == "shrink"
    assert recommendation.batch_size == 32  # shrink_factor_high 0.5


def test_a_real_pytorch_out_of_memory_error_is_retried(torch):
    """PyTorch's CPU allocator refuses 16 TiB per sample (128 TiB and more: beyond the address
    space, so even with overcommit_memory=1): a real out-of-memory RuntimeError."""
    tried = []

    def step(batch_size):
        tried.append(batch_size)
        per_sample = (1 << 44) if batch_size > 4 else 1024
        torch.empty(batch_size * per_sample, dtype=torch.uint8)

    report = memscope.run_with_oom_retry(step, 32)
    assert tried == [32, 16, 8, 4]
    assert report.batch_size == 4 and report.out_of_memory == 3
