"""OOMDetector from Python: a leaking PyTorch training loop gets a warning from the monitor thread,
a stable one does not; bad arguments raise ValueError; a raising callback is counted."""

import sys
import threading
import time

import pytest

import memscope
from conftest import rss_bytes, wait_until

MiB = 1024 * 1024


def make_model(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return model, optimizer


def train_step(torch, model, optimizer, batch_size=32):
    inputs = torch.randn(batch_size, 64)
    targets = torch.randint(0, 10, (batch_size,))
    loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)


class Recorder:
    """A warning callback that remembers what it got, and on which thread."""

    def __init__(self):
        self.calls = []
        self.tree_warned = threading.Event()

    def __call__(self, device_id, prediction):
        self.calls.append((device_id, prediction, threading.get_ident()))
        if prediction.resource == "tree":
            self.tree_warned.set()

    def tree_calls(self):
        return [call for call in self.calls if call[1].resource == "tree"]


def warmed_up_model(torch):
    torch.set_num_threads(1)
    model, optimizer = make_model(torch)
    for _ in range(20):  # the allocator and autograd reach their steady state
        train_step(torch, model, optimizer)
    return model, optimizer


def test_leaking_training_loop_triggers_the_warning_callback(torch):
    model, optimizer = warmed_up_model(torch)
    limit = rss_bytes() + 300 * MiB
    recorder = Recorder()
    detector = memscope.OOMDetector(interval=0.1, limit_bytes=limit, gpus=False)
    detector.add_warning_callback(recorder)
    kept = []  # the leak: every step keeps 2 MiB alive (about 40 MiB/s)
    started = time.monotonic()
    with detector:
        while not recorder.tree_warned.is_set() and len(kept) < 400:
            train_step(torch, model, optimizer)
            kept.append(torch.ones(2 * MiB // 4))
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert not detector.monitoring
    calls = recorder.tree_calls()
    assert calls, f"no warning for the process tree after {elapsed:.1f} s and {len(kept) * 2} MiB"
    device_id, prediction, thread = calls[0]
    assert device_id == -1
    assert prediction.device_id == -1
    assert prediction.risk_level in ("high", "critical")
    assert prediction.limit_bytes == limit
    assert prediction.limit_source == "--limit"
    assert prediction.used_bytes > 0
    assert prediction["risk_level"] == prediction.risk_level
    assert set(prediction.to_dict()) >= {"device_id", "resource", "risk_level", "confidence",
                                         "current_usage_percent", "growth_rate_mb_per_sec",
                                         "predicted_oom_time_seconds"}
    # Called from the monitor's thread, never the training loop's.
    assert thread != threading.get_ident()
    assert detector.callback_errors == 0
    # Warned well before the leak reached the limit (300 MiB = 150 steps).
    assert len(kept) < 150


def test_stable_training_loop_gets_no_warning(torch):
    model, optimizer = warmed_up_model(torch)
    limit = rss_bytes() + 300 * MiB
    recorder = Recorder()
    with memscope.OOMDetector(interval=0.1, limit_bytes=limit, gpus=False) as detector:
        detector.add_warning_callback(recorder)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            train_step(torch, model, optimizer)
            time.sleep(0.01)
        samples = detector.samples_taken
        predictions = {p.resource: p for p in detector.predictions()}
    assert samples >= 20
    assert recorder.tree_calls() == []
    assert predictions["tree"].risk_level == "low"


@pytest.mark.parametrize("arguments", [
    {"interval": -1.0},
    {"interval": 0.0},
    {"threshold": 0.0},
    {"threshold": 150.0},
    {"limit_bytes": 0},
    {"limit_bytes": -5},
    {"pid": -3},
    {"warn_at": "low"},
    {"warn_at": "sometimes"},
])
def test_invalid_arguments_raise_value_error(arguments):
    with pytest.raises(ValueError):
        memscope.OOMDetector(gpus=False, **arguments)


def test_value_error_names_the_bad_argument():
    with pytest.raises(ValueError, match="interval"):
        memscope.OOMDetector(interval=-0.5, gpus=False)


def test_starting_twice_is_a_runtime_error():
    detector = memscope.OOMDetector(interval=0.1, gpus=False)
    detector.start_monitoring()
    try:
        with pytest.raises(RuntimeError, match="already"):
            detector.start_monitoring()
    finally:
        detector.stop_monitoring()


def test_a_raising_callback_is_counted_and_monitoring_continues(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    # A limit below what the process already uses: the tree is critical at the first sample.
    detector = memscope.OOMDetector(interval=0.05, limit_bytes=rss_bytes() // 2, gpus=False)

    def broken(device_id, prediction):
        if prediction.resource == "tree":  # the host may warn too on a machine that is full
            raise ZeroDivisionError("a bug in the user's callback")

    healthy = Recorder()
    detector.add_warning_callback(broken)
    detector.add_warning_callback(healthy)
    with detector:
        assert healthy.tree_warned.wait(10), "the callback after the raising one was not called"
        samples_then = detector.samples_taken
        assert wait_until(lambda: detector.samples_taken >= samples_then + 3, 10)
        assert detector.monitoring
    assert detector.callback_errors == 1
    assert healthy.tree_calls()[0][1].risk_level == "critical"
    assert len(reported) == 1
    assert isinstance(reported[0].exc_value, ZeroDivisionError)


def test_callback_may_stop_the_detector():
    detector = memscope.OOMDetector(interval=0.05, limit_bytes=rss_bytes() // 2, gpus=False)
    detector.add_warning_callback(lambda device_id, prediction: detector.stop_monitoring())
    detector.start_monitoring()
    assert wait_until(lambda: not detector.monitoring, 10)
    detector.stop_monitoring()
    assert detector.callback_errors == 0


def test_gpu_warning_names_the_device(fake_gpu):
    library = fake_gpu(used_gib=15.6)  # 97.5 % of 16 GiB: critical at the first sample
    recorder = Recorder()
    gpu_warned = threading.Event()

    def on_warning(device_id, prediction):
        recorder(device_id, prediction)
        if prediction.resource == "gpu0":
            gpu_warned.set()

    with memscope.OOMDetector(interval=0.05, nvml_library=library) as detector:
        detector.add_warning_callback(on_warning)
        assert gpu_warned.wait(10)
    device_id, prediction, _ = next(c for c in recorder.calls if c[1].resource == "gpu0")
    assert device_id == 0 and prediction.device_id == 0
    assert prediction.risk_level == "critical"
    assert prediction.limit_bytes == 16 * 1024 ** 3
    assert prediction.current_usage_percent == pytest.approx(97.5, abs=0.1)


def test_a_forked_child_does_not_hang_on_the_parents_monitor():
    import os
    import signal

    detector = memscope.OOMDetector(interval=0.05, gpus=False)
    detector.start_monitoring()
    child = os.fork()
    if child == 0:  # the child: its copy of the detector has no thread to join
        try:
            memscope._memscope._stop_all_background_threads()  # what atexit runs
            del detector  # the destructor
            code = 0
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    statuses = []

    def reaped():
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:
            statuses.append(status)
        return bool(statuses)

    try:
        if not wait_until(reaped, 10):
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            pytest.fail("the forked child hung stopping a monitor it does not run")
    finally:
        detector.stop_monitoring()
    assert os.waitstatus_to_exitcode(statuses[0]) == 0
    assert detector.samples_taken > 0


# Run in a child interpreter: a deadlock there fails the test instead of hanging the suite.
_DESTROY_DURING_CALLBACK = r"""
import threading, time, memscope
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
for ending in ("del", "exit"):
    entered = threading.Event()
    def slow(device_id, prediction):
        entered.set()
        time.sleep(0.2)  # lets the GIL go; needs it back to return into Python
    detector = memscope.OOMDetector(interval=0.05, limit_bytes=rss // 2, gpus=False)
    detector.add_warning_callback(slow)
    detector.start_monitoring()
    assert entered.wait(10)
    if ending == "del":
        del detector  # with the GIL held: the destructor must let the callback finish
print("ok")  # the second detector is still in its callback: stopped by the atexit handler
"""


def test_destroying_a_detector_during_a_callback_does_not_deadlock():
    import subprocess

    result = subprocess.run([sys.executable, "-c", _DESTROY_DURING_CALLBACK], timeout=60,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
