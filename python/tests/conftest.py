"""Shared helpers of the memscope Python tests (run by ctest as script.python_tests with
PYTHONPATH=<build>/python; by hand: PYTHONPATH=build/py/python /usr/bin/python3 -m pytest
python/tests)."""

import json
import os
import pathlib
import time

import pytest

SOURCE_DIR = pathlib.Path(__file__).resolve().parents[2]
TEST_DATA = SOURCE_DIR / "tests" / "data"


def rss_bytes():
    """This process's resident memory (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def wait_until(predicate, timeout_seconds, step_seconds=0.05):
    """Polls predicate until it is true or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step_seconds)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def fake_gpu(tmp_path, monkeypatch):
    """The fake NVML library (tests/fake_nvml) serving one 16 GiB GPU at `used_gib`.

    Returns a function used_gib -> the library path to pass as nvml_library. Skips without the
    library (ctest sets MEMSCOPE_FAKE_NVML)."""
    library = os.environ.get("MEMSCOPE_FAKE_NVML", "")
    if not library or not os.path.exists(library):
        pytest.skip("MEMSCOPE_FAKE_NVML is not set to the fake NVML library")

    def serve(used_gib):
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps({
            "description": "one 16 GiB GPU, steady",
            "devices": [{"total_gib": 16, "states": [{"used_gib": used_gib}]}],
        }))
        monkeypatch.setenv("MEMSCOPE_FAKE_NVML_SCENARIO", str(scenario))
        return library

    return serve
