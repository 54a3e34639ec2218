"""BufferPool from Python: round trips of bytes-like objects, eviction within the budget,
spilling to disk, and refusals."""

import os

import pytest

import memscope

KiB = 1024
MiB = 1024 * 1024


def payload(index, size=100 * KiB):
    """Distinct, incompressible-enough bytes (so sizes stay near their raw size)."""
    return os.urandom(size - 8) + index.to_bytes(8, "little")


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_round_trips_of_bytes_like_objects(compression, torch):
    pool = memscope.BufferPool(8 * MiB, compression=compression)
    observations = torch.randn(256, 84).numpy()  # float32, like a replay buffer's frames
    pool.put("bytes", b"hello")
    pool["bytearray"] = bytearray(b"\x00" * 5000)
    pool.put("memoryview", memoryview(b"abcdef")[1:4])
    pool.put("numpy", observations)
    pool.put("empty", b"")
    assert pool.get("bytes") == b"hello"
    assert pool["bytearray"] == b"\x00" * 5000
    assert pool.get("memoryview") == b"bcd"
    assert pool.get("numpy") == observations.tobytes()
    assert pool.get("empty") == b""
    assert len(pool) == 5
    assert "numpy" in pool and "missing" not in pool
    assert pool.get("missing") is None
    assert pool.get("missing", b"default") == b"default"
    with pytest.raises(KeyError):
        pool["missing"]
    stats = pool.stats()
    assert stats["hits"] == 5 and stats["misses"] == 3
    if compression != "none":
        assert stats["compression_ratio"] > 1  # 5000 zero bytes compress


def test_replacing_and_erasing():
    pool = memscope.BufferPool(1 * MiB)
    pool["key"] = b"first"
    pool["key"] = b"second"
    assert pool["key"] == b"second" and len(pool) == 1
    del pool["key"]
    assert len(pool) == 0
    with pytest.raises(KeyError):
        del pool["key"]
    assert not pool.erase("key")
    pool["a"] = b"1"
    pool.clear()
    assert len(pool) == 0


def test_eviction_keeps_memory_within_the_budget_and_favours_hot_buffers():
    pool = memscope.BufferPool(1 * MiB, compression="none", frequency_half_life=1000)
    pool.put("hot", payload(0))
    for _ in range(5):
        assert pool.get("hot") is not None
    for index in range(1, 30):
        pool.put(f"cold{index}", payload(index))
        assert pool.stats()["bytes_in_memory"] <= 1 * MiB
    stats = pool.stats()
    assert stats["evictions"] >= 19
    assert len(pool) == stats["buffers"] <= 10
    assert "hot" in pool  # used six times: outlives buffers used once
    assert "cold29" in pool  # the newest
    assert pool.get("cold1") is None  # the oldest, used once, went first


def test_spill_to_disk_and_read_back(tmp_path):
    pool = memscope.BufferPool(512 * KiB, compression="none", spill_dir=str(tmp_path))
    originals = {f"k{index}": payload(index) for index in range(12)}
    for key, data in originals.items():
        pool.put(key, data)
    stats = pool.stats()
    assert stats["buffers_on_disk"] > 0 and stats["spills"] > 0
    assert stats["evictions"] == 0
    for key, data in originals.items():
        assert pool.get(key) == data
    assert pool.stats()["promotions"] > 0


def test_unwritable_spill_dir_degrades_to_eviction(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    pool = memscope.BufferPool(512 * KiB, compression="none", spill_dir=str(not_a_dir))
    for index in range(12):
        pool.put(f"k{index}", payload(index))  # never raises: acknowledged puts are kept
        assert f"k{index}" in pool
    stats = pool.stats()
    assert stats["spill_errors"] > 0
    assert stats["evictions"] == stats["spill_errors"]
    assert stats["bytes_in_memory"] <= 512 * KiB


def test_a_buffer_larger_than_the_budget_is_refused():
    pool = memscope.BufferPool(64 * KiB, compression="none")
    pool.put("small", b"x" * 10)
    with pytest.raises(ValueError, match="budget"):
        pool.put("big", os.urandom(100 * KiB))
    assert "big" not in pool and pool["small"] == b"x" * 10


@pytest.mark.parametrize("arguments", [
    {"memory_budget_bytes": 0},
    {"memory_budget_bytes": -1},
    {"memory_budget_bytes": MiB, "compression": "brotli"},
    {"memory_budget_bytes": MiB, "disk_budget_bytes": -1},
    {"memory_budget_bytes": MiB, "frequency_half_life": 0.0},
])
def test_invalid_pool_arguments_raise_value_error(arguments):
    with pytest.raises(ValueError):
        memscope.BufferPool(**arguments)


def test_str_is_not_bytes():
    pool = memscope.BufferPool(MiB)
    with pytest.raises(TypeError):
        pool.put("key", "text")
