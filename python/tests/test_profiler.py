"""MemoryProfiler from Python around a real PyTorch CPU training loop, its sample hooks and
counters, and memscope.torch on a machine without CUDA."""

import json
import math
import sys
import time

import pytest

import memscope
from test_oom_detector import train_step, warmed_up_model


def test_profiler_context_manager_records_a_training_loop(torch, tmp_path):
    model, optimizer = warmed_up_model(torch)
    steps = [0]
    with memscope.MemoryProfiler(interval=0.05, gpus=False) as profiler:
        assert profiler.monitoring
        profiler.add_sample_hook(lambda: {"train.steps": float(steps[0])})
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            train_step(torch, model, optimizer)
            steps[0] += 1
            profiler.record_counter("train.step_loss", 1.0)
    assert not profiler.monitoring
    path = tmp_path / "r.json"
    profiler.generate_report(str(path))
    report = json.loads(path.read_text())
    assert report["report"] == "memscope-profile"
    assert report["num_samples"] == profiler.samples_taken
    assert report["num_samples"] >= 10
    assert report["host"]["limit"]["peak_used_bytes"] > 0
    series = report["counters"]["train.steps"]
    assert series["count"] >= 10
    assert 0 < series["max"] <= steps[0]
    times = [point[0] for point in series["points"]]
    assert times == sorted(times)
    assert report["counters"]["train.step_loss"]["count"] == steps[0]
    assert profiler.hook_errors == 0
    summary = profiler.summary()
    assert summary.samples == profiler.samples_taken
    assert summary.host_peak_used_bytes > 0
    assert profiler.report()["report"] == "memscope-profile"


def test_sample_now_runs_the_hooks_without_monitoring():
    profiler = memscope.MemoryProfiler(interval=1.0, gpus=False)
    calls = []
    profiler.add_sample_hook(lambda: calls.append(1) or [("hook.calls", float(len(calls)))])
    for _ in range(3):
        profiler.sample_now()
    assert profiler.samples_taken == 3
    assert len(calls) == 3
    assert profiler.report()["counters"]["hook.calls"]["last"] == 3


def test_a_raising_or_malformed_hook_is_counted_and_sampling_continues(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    profiler = memscope.MemoryProfiler(interval=0.05, gpus=False)
    profiler.add_sample_hook(lambda: 1 / 0)
    profiler.add_sample_hook(lambda: {"not a number": "x"})
    profiler.add_sample_hook(lambda: {"fine": 1.0})
    for _ in range(2):
        profiler.sample_now()
    assert profiler.hook_errors == 4
    assert profiler.samples_taken == 2
    assert profiler.report()["counters"]["fine"]["count"] == 2
    assert any(isinstance(r.exc_value, ZeroDivisionError) for r in reported)


@pytest.mark.parametrize("arguments", [{"interval": -1.0}, {"interval": 0.0},
                                       {"interval": math.nan}, {"pid": -1}])
def test_invalid_profiler_arguments_raise_value_error(arguments):
    with pytest.raises(ValueError):
        memscope.MemoryProfiler(gpus=False, **arguments)


@pytest.mark.parametrize("name,value", [("", 1.0), ("x" * 129, 1.0), ("ok", math.inf),
                                        ("ok", math.nan)])
def test_invalid_counters_raise_value_error(name, value):
    profiler = memscope.MemoryProfiler(gpus=False)
    with pytest.raises(ValueError):
        profiler.record_counter(name, value)


def test_unwritable_report_path_is_a_runtime_error(tmp_path):
    profiler = memscope.MemoryProfiler(gpus=False)
    profiler.sample_now()
    with pytest.raises(RuntimeError, match="no_such_dir"):
        profiler.generate_report(str(tmp_path / "no_such_dir" / "r.json"))


def test_torch_recorder(torch):
    import memscope.torch as mtorch

    profiler = memscope.MemoryProfiler(interval=0.05, gpus=False)
    if not torch.cuda.is_available():
        with pytest.warns(RuntimeWarning, match="CUDA is not available"):
            recorder = mtorch.TorchMemoryRecorder(profiler)
        assert not recorder.enabled
        profiler.sample_now()
        assert profiler.report()["counters"] == {}
        assert profiler.hook_errors == 0
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            mtorch.dump_snapshot("/nonexistent/snap.pickle")
        return
    recorder = mtorch.TorchMemoryRecorder(profiler, devices=[0])
    kept = torch.ones(64 * 1024 * 1024 // 4, device="cuda:0")
    profiler.sample_now()
    counters = profiler.report()["counters"]
    allocated = counters[mtorch.counter_name(0, "allocated_bytes.all.current")]["last"]
    assert allocated >= kept.numel() * 4
    for key in mtorch.MEMORY_STAT_KEYS:
        assert mtorch.counter_name(0, key) in counters
    assert recorder.enabled


def test_profiler_samples_the_gpus(fake_gpu):
    library = fake_gpu(used_gib=4)
    profiler = memscope.MemoryProfiler(interval=0.05, nvml_library=library)
    profiler.sample_now()
    device = profiler.report()["devices"]["0"]
    assert device["current_memory"]["allocated"] == 4 * 1024 ** 3
    assert [peak.index for peak in profiler.summary().devices] == [0]


def test_unknown_gpu_is_a_value_error(fake_gpu):
    library = fake_gpu(used_gib=1)
    with pytest.raises(ValueError, match="3"):
        memscope.MemoryProfiler(devices=[3], nvml_library=library)
    with pytest.raises(ValueError):
        memscope.MemoryProfiler(devices=[3], nvml_library="/nonexistent/libnvidia-ml.so.1")
