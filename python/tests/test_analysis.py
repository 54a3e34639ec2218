"""FragmentationAnalyzer, MemoryLeakDetector and DistributedMemoryMonitor from Python."""

import json
import os

import pytest

import memscope
from conftest import TEST_DATA

SNAPSHOTS = TEST_DATA / "snapshots"


def test_fragmentation_of_a_snapshot_matches_the_expected_figures():
    devices = json.loads((SNAPSHOTS / "fragmented.expected.json").read_text())["devices"]
    expected = devices["0"]
    summaries = memscope.FragmentationAnalyzer().analyze(str(SNAPSHOTS / "fragmented.pickle"))
    assert [summary.device for summary in summaries] == sorted(int(key) for key in devices)
    summary = summaries[0]
    assert summary.reserved_bytes == expected["reserved_bytes"]
    assert summary.allocated_bytes == expected["allocated_bytes"]
    assert summary.external_free_bytes == expected["external_free_bytes"]
    assert summary.largest_free_block_bytes == expected["largest_free_block_bytes"]
    assert summary.segment_count == expected["segment_count"]
    assert 0 < summary.fragmentation_ratio < 1
    report = memscope.FragmentationAnalyzer(device=0).report(str(SNAPSHOTS / "fragmented.pickle"))
    assert isinstance(report, dict)


def test_fragmentation_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.pickle"):
        memscope.FragmentationAnalyzer().analyze(str(tmp_path / "missing.pickle"))
    garbage = tmp_path / "garbage.pickle"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ValueError):
        memscope.FragmentationAnalyzer().analyze(str(garbage))
    with pytest.raises(ValueError):
        memscope.FragmentationAnalyzer(device=7).analyze(str(SNAPSHOTS / "fragmented.pickle"))
    with pytest.raises(ValueError):
        memscope.FragmentationAnalyzer(device=-2)


def test_leak_detector_watches_this_process():
    detector = memscope.MemoryLeakDetector(interval=0.05, gpus=False)
    for _ in range(3):
        detector.sample_now()
    assert detector.samples_taken == 3
    verdicts = detector.verdicts()
    assert os.getpid() in [verdict.pid for verdict in verdicts]
    assert not detector.leak_suspected  # 3 samples are never enough for a verdict of leak
    assert detector.report()["report"] == "memscope-leak"


@pytest.mark.parametrize("arguments", [{"interval": -1.0}, {"threshold_mb_per_min": 0.0},
                                       {"window": 0.0}, {"pid": -1}])
def test_invalid_leak_detector_arguments_raise_value_error(arguments):
    with pytest.raises(ValueError):
        memscope.MemoryLeakDetector(gpus=False, **arguments)


@pytest.mark.parametrize("arguments", [
    {},
    {"agents": ["no-port"]},
    {"agents": ["127.0.0.1:1"], "master": "127.0.0.1:2"},
    {"agents": ["127.0.0.1:1"], "interval": -1.0},
])
def test_invalid_distributed_arguments_raise_value_error(arguments):
    with pytest.raises(ValueError):
        memscope.DistributedMemoryMonitor(**arguments)


def test_unreachable_agent_is_a_node_that_is_down():
    monitor = memscope.DistributedMemoryMonitor(agents=["127.0.0.1:1"], timeout=2.0)
    summary = monitor.poll()
    assert [node.endpoint for node in summary.nodes] == ["127.0.0.1:1"]
    # Not an error: the node carries the failure (it turns stale after missed rounds).
    assert summary.nodes[0].last_error
    assert summary.nodes[0].host_used_bytes == 0
    assert isinstance(summary.to_dict(), dict)
