#!/usr/bin/env python3
"""Self-check of the snapshot generator, its allocator model and the committed fixtures.

    python3 tests/fragment/test_gen_snapshots.py        # or /usr/bin/python3; -v for names

Standard library only. Fixtures are read from tests/data/snapshots/ (their own files only:
another generator owns p_*.pickle there).
"""

import json
import os
import pickle
import pickletools
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import alloc_model as am  # noqa: E402
import gen_snapshots as gen  # noqa: E402
from alloc_model import KIB, MIB  # noqa: E402

SNAPSHOTS = os.path.join(HERE, "..", "data", "snapshots")

DATA_OPCODES = {
    "PROTO", "FRAME", "MEMOIZE", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "BININT",
    "BININT1", "BININT2", "LONG1", "BINFLOAT", "SHORT_BINUNICODE", "BINUNICODE",
    "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "MARK",
    "SETITEM", "SETITEMS", "APPEND", "APPENDS", "DICT", "LIST", "TUPLE", "NEWTRUE",
    "NEWFALSE", "NONE", "STOP",
}
CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ",
                "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID", "BINPERSID"}


def allocator(conf="", capacity=None):
    return am.DeviceAllocator(0, am.AllocatorConfig.parse(conf), am.Clock(), capacity)


def alloc(a, size, stream=0):
    return a.malloc(size, stream, None)


def actions(a):
    return [e[0] for e in a.trace]


def layout(a):
    """[(segment size, [(block size, state)...])] by address."""
    return [(s.total_size, [(b.size, b.state) for b in s.blocks]) for s in a.segments()]


def load(name):
    with open(os.path.join(SNAPSHOTS, name + ".pickle"), "rb") as f:
        data = f.read()
    with open(os.path.join(SNAPSHOTS, name + ".expected.json"), encoding="utf-8") as f:
        return data, pickle.loads(data), json.load(f)


def segments_of(obj):
    return obj if isinstance(obj, list) else obj["segments"]


# --------------------------------------------------------------------------- rules of §3
class Rounding(unittest.TestCase):
    def test_below_min_block_and_512_multiples(self):
        c = am.AllocatorConfig()
        self.assertEqual([c.round_size(n) for n in (1, 511, 512, 513, 1000, 1_000_000)],
                         [512, 512, 512, 1024, 1024, 1_000_448])

    def test_power2_divisions(self):
        c = am.AllocatorConfig.parse("roundup_power2_divisions:4")
        self.assertEqual(c.round_size(1200 * MIB), 1280 * MIB)
        self.assertEqual(c.round_size(1024 * MIB), 1024 * MIB)  # powers of two stay
        self.assertEqual(c.round_size(2048), 2048)  # not above 512 * divisions
        self.assertEqual(c.round_size(2049), 2560)  # floor_pow2 2048 / 4 = 512-byte steps
        self.assertEqual(c.round_size(1), 512)

    def test_divisions_per_bucket(self):
        c = am.AllocatorConfig.parse(gen.GOLDEN_CONF)
        self.assertEqual(c.round_size(1_000_000), 1_000_448)        # bucket '1': 0 = off
        self.assertEqual(c.round_size(3_000_000), 3 * MIB)          # bucket '2': 4
        self.assertEqual(c.round_size(5 * MIB + 123), 5 * MIB + 512 * KIB)  # bucket '4': 8
        self.assertEqual(c.round_size(150 * MIB), 160 * MIB)        # bucket '128': 8

    def test_parse_bucket_lists(self):
        c = am.AllocatorConfig.parse("roundup_power2_divisions:[1:0,2:4,>:8]")
        self.assertEqual(c.roundup_power2_divisions, [0, 4] + [8] * 14)
        c = am.AllocatorConfig.parse("roundup_power2_divisions:[256:1,512:2,>:4]")
        self.assertEqual(c.roundup_power2_divisions, [1] * 9 + [2] + [4] * 6)
        self.assertEqual(c.settings_dict()["roundup_power2_divisions"]["512"], 2)

    def test_parse_errors(self):
        for conf in ("max_split_size_mb:20", "garbage_collection_threshold:1.0",
                     "roundup_power2_divisions:3", "no_such_option:1",
                     "roundup_power2_divisions:[3:2]", "expandable_segments:yes"):
            with self.assertRaises(ValueError, msg=conf):
                am.AllocatorConfig.parse(conf)


class Segments(unittest.TestCase):
    def test_allocation_sizes(self):
        self.assertEqual([am.allocation_size(n) for n in
                          (512, MIB, MIB + 512, 10 * MIB - 512, 10 * MIB, 11 * MIB + 512)],
                         [2 * MIB, 2 * MIB, 20 * MIB, 20 * MIB, 10 * MIB, 12 * MIB])

    def test_small_and_large_pools(self):
        a = allocator()
        alloc(a, MIB)
        alloc(a, MIB + 1)
        self.assertEqual([(s.total_size, s.is_large) for s in a.segments()],
                         [(2 * MIB, False), (20 * MIB, True)])
        self.assertEqual(actions(a), ["segment_alloc", "alloc", "segment_alloc", "alloc"])
        self.assertEqual(a.trace[1][2], MIB)  # alloc carries the unrounded size
        self.assertEqual(a.trace[3][2], MIB + 1)

    def test_streams_do_not_share_blocks(self):
        a = allocator()
        a.free(alloc(a, 12 * MIB, stream=0), None)
        alloc(a, 12 * MIB, stream=7)
        self.assertEqual(len(a.segments()), 2)
        alloc(a, 12 * MIB, stream=0)
        self.assertEqual(len(a.segments()), 2)


class Splitting(unittest.TestCase):
    def test_small_pool_splits_down_to_512(self):
        a = allocator()
        alloc(a, MIB)
        alloc(a, MIB - 512)
        self.assertEqual(layout(a), [(2 * MIB, [(MIB, "active_allocated"),
                                                (MIB - 512, "active_allocated"),
                                                (512, "inactive")])])

    def test_large_pool_splits_only_above_1_mib(self):
        a = allocator()
        a.free(alloc(a, 20 * MIB), None)
        alloc(a, 19 * MIB)  # remainder exactly 1 MiB: handed out whole
        self.assertEqual(layout(a), [(20 * MIB, [(20 * MIB, "active_allocated")])])
        b = allocator()
        b.free(alloc(b, 20 * MIB), None)
        alloc(b, 18 * MIB + 512 * KIB)  # remainder 1.5 MiB: split
        self.assertEqual(layout(b), [(20 * MIB, [(18 * MIB + 512 * KIB, "active_allocated"),
                                                 (1536 * KIB, "inactive")])])

    def test_no_split_at_or_above_max_split(self):
        a = allocator("max_split_size_mb:64")
        a.free(alloc(a, 100 * MIB), None)
        alloc(a, 90 * MIB)  # 100 MiB < 90 + 20: reused whole, 10 MiB slack
        self.assertEqual(layout(a), [(100 * MIB, [(100 * MIB, "active_allocated")])])

    def test_expandable_splits_down_to_512(self):
        a = allocator("expandable_segments:True")
        alloc(a, 30 * MIB)
        self.assertEqual(layout(a), [(40 * MIB, [(30 * MIB, "active_allocated"),
                                                 (10 * MIB, "inactive")])])


class BestFit(unittest.TestCase):
    def test_smallest_fitting_block(self):
        a = allocator()
        blocks = [alloc(a, n * MIB) for n in (30, 24, 40)]
        addresses = [b.ptr for b in blocks]
        for b in blocks:
            a.free(b, None)
        chosen = alloc(a, 22 * MIB)
        self.assertEqual(chosen.ptr, addresses[1])  # the 24 MiB segment
        self.assertEqual(len(a.segments()), 3)

    def test_equal_sizes_take_the_lowest_address(self):
        a = allocator()
        blocks = [alloc(a, 24 * MIB) for _ in range(3)]
        lowest = min(b.ptr for b in blocks)
        for b in reversed(blocks):
            a.free(b, None)
        self.assertEqual(alloc(a, 24 * MIB).ptr, lowest)

    def test_oversize_block_rejected_for_small_request(self):
        a = allocator("max_split_size_mb:64")
        a.free(alloc(a, 100 * MIB), None)
        alloc(a, 30 * MIB)  # < max_split: the 100 MiB block is not used
        self.assertEqual([s.total_size for s in a.segments()], [100 * MIB, 30 * MIB])

    def test_block_of_exactly_max_split_is_oversize(self):
        a = allocator("max_split_size_mb:64")
        a.free(alloc(a, 64 * MIB), None)
        alloc(a, 30 * MIB)
        self.assertEqual([s.total_size for s in a.segments()], [64 * MIB, 30 * MIB])
        alloc(a, 64 * MIB)  # a request of max_split itself may take it
        self.assertEqual(len(a.segments()), 2)

    def test_oversize_block_rejected_beyond_max_non_split_rounding(self):
        a = allocator("max_split_size_mb:64")
        a.free(alloc(a, 100 * MIB), None)
        alloc(a, 80 * MIB)  # 100 >= 80 + 20: rejected
        self.assertEqual(len(a.segments()), 2)
        b = allocator("max_split_size_mb:64,max_non_split_rounding_mb:40")
        b.free(alloc(b, 100 * MIB), None)
        alloc(b, 80 * MIB)  # 100 < 80 + 40: reused
        self.assertEqual(len(b.segments()), 1)


class Freeing(unittest.TestCase):
    def test_merge_with_free_neighbours(self):
        a = allocator()
        x, y, z = alloc(a, 3 * MIB), alloc(a, 4 * MIB), alloc(a, 5 * MIB)
        y_address = y.ptr
        a.free(x, None)
        a.free(z, None)
        self.assertEqual(len(a.segments()[0].blocks), 3)  # x, y, z + rest merged
        a.free(y, None)
        self.assertEqual(layout(a), [(20 * MIB, [(20 * MIB, "inactive")])])
        self.assertEqual(actions(a)[-2:], ["free_requested", "free_completed"])
        self.assertEqual(a.trace[-1][1:3], (y_address, 4 * MIB))

    def test_pending_free_until_its_event(self):
        a = allocator()
        x = alloc(a, 3 * MIB)
        a.free(x, None, ready_at=3)  # completes at the start of the 3rd malloc
        self.assertEqual(layout(a)[0][1][0], (3 * MIB, "active_pending_free"))
        self.assertEqual(a.stats.allocated, 0)
        y = alloc(a, 3 * MIB)  # malloc 2: x still pending, not reused
        self.assertNotEqual(y.ptr, x.ptr)
        alloc(a, 512)  # malloc 3: x's free completes first
        i = actions(a).index("free_completed")
        self.assertEqual(a.trace[i][1], x.ptr)
        self.assertEqual(actions(a)[i + 1:], ["segment_alloc", "alloc"])

    def test_empty_cache_releases_unsplit_only(self):
        a = allocator()
        keep = alloc(a, 3 * MIB)
        alloc(a, 4 * MIB)
        a.free(alloc(a, 24 * MIB), None)
        a.empty_cache(None)
        self.assertEqual([s.total_size for s in a.segments()], [20 * MIB])
        self.assertEqual(actions(a)[-1], "segment_free")
        del keep


class Retry(unittest.TestCase):
    def test_release_cached_and_retry(self):
        a = allocator(capacity=60 * MIB)
        a.free(alloc(a, 24 * MIB), None)
        alloc(a, 40 * MIB)  # 24 + 40 > 60: cudaMalloc fails, cache released, retried
        self.assertEqual(actions(a)[-3:], ["segment_free", "segment_alloc", "alloc"])
        self.assertEqual((a.stats.num_alloc_retries, a.stats.num_ooms), (1, 0))
        self.assertEqual([s.total_size for s in a.segments()], [40 * MIB])

    def test_oom_after_retry(self):
        a = allocator(capacity=50 * MIB)
        alloc(a, 40 * MIB)
        with self.assertRaises(am.OutOfMemory):
            alloc(a, 20 * MIB)
        self.assertEqual(a.trace[-1][:3], ("oom", 10 * MIB, 20 * MIB))  # device_free, size
        self.assertEqual((a.stats.num_alloc_retries, a.stats.num_ooms), (1, 1))

    def test_oversize_blocks_released_before_a_full_retry(self):
        a = allocator("max_split_size_mb:64", capacity=150 * MIB)
        a.free(alloc(a, 100 * MIB), None)
        alloc(a, 30 * MIB)
        alloc(a, 40 * MIB)  # 170 > 150: the cached oversize block goes, no retry counted
        self.assertEqual(actions(a)[-3:], ["segment_free", "segment_alloc", "alloc"])
        self.assertEqual(a.stats.num_alloc_retries, 0)
        self.assertEqual([s.total_size for s in a.segments()], [30 * MIB, 40 * MIB])

    def test_garbage_collection_frees_old_unsplit_blocks(self):
        a = allocator("garbage_collection_threshold:0.5", capacity=100 * MIB)
        for n in (24, 26):
            a.free(alloc(a, n * MIB), None)
        a.free(alloc(a, 28 * MIB), None)  # 50 MiB reserved: not above the 50 MiB threshold
        self.assertEqual(a.stats.num_gc_releases, 0)
        alloc(a, 30 * MIB)  # 78 MiB > 50: blocks at least as old as the average go
        freed = [e[2] // MIB for e in a.trace if e[0] == "segment_free"]
        self.assertEqual(freed, [24, 26])
        self.assertEqual(sorted(s.total_size // MIB for s in a.segments()), [28, 30])
        self.assertEqual(a.stats.num_alloc_retries, 0)


class Expandable(unittest.TestCase):
    def test_maps_pages_and_grows_in_place(self):
        a = allocator("expandable_segments:True", capacity=200 * MIB)
        alloc(a, 30 * MIB)
        alloc(a, 50 * MIB)  # 10 MiB free tail + 2 more 20 MiB pages
        self.assertEqual([(e[0], e[2] // MIB) for e in a.trace if e[0] == "segment_map"],
                         [("segment_map", 40), ("segment_map", 40)])
        self.assertEqual(layout(a), [(80 * MIB, [(30 * MIB, "active_allocated"),
                                                 (50 * MIB, "active_allocated")])])
        self.assertTrue(a.segments()[0].is_expandable)

    def test_unmaps_free_pages_and_maps_at_the_lowest_address(self):
        a = allocator("expandable_segments:True", capacity=200 * MIB)
        x = alloc(a, 30 * MIB)
        alloc(a, 50 * MIB)
        base = x.ptr
        a.free(x, None)
        a.empty_cache(None)  # page 0 is wholly free: unmapped; page 1 still holds y
        self.assertEqual(a.trace[-1][:3], ("segment_unmap", base, 20 * MIB))
        self.assertEqual([(s.address - base, s.total_size) for s in a.segments()],
                         [(20 * MIB, 60 * MIB)])
        alloc(a, 15 * MIB)  # maps page 0 again: the lowest fitting address
        self.assertEqual(a.trace[-2][:3], ("segment_map", base, 20 * MIB))
        self.assertEqual([(s.address - base, s.total_size) for s in a.segments()],
                         [(0, 80 * MIB)])

    def test_one_segment_per_contiguous_mapped_range(self):
        a = allocator("expandable_segments:True", capacity=400 * MIB)
        x, y, z = (alloc(a, 40 * MIB) for _ in range(3))
        a.free(y, None)
        a.empty_cache(None)
        self.assertEqual([(s.address - x.ptr, s.total_size) for s in a.segments()],
                         [(0, 40 * MIB), (80 * MIB, 40 * MIB)])
        del z


# --------------------------------------------------------------------------- fixtures
class Fixtures(unittest.TestCase):
    def test_regenerating_gives_identical_bytes(self):
        self.assertEqual(gen.check(SNAPSHOTS), 0)

    def test_only_data_opcodes(self):
        for name in gen.FIXTURES:
            data, obj, exp = load(name)
            ops = [op.name for op, _, _ in pickletools.genops(data)]
            self.assertFalse(set(ops) & CODE_OPCODES, name)
            self.assertFalse(set(ops) - DATA_OPCODES, name)
            self.assertEqual(data[1], exp["protocol"], name)
            self.assertEqual(pickle.loads(data), obj)

    def test_sizes(self):
        total = 0
        for name in gen.FIXTURES:
            size = os.path.getsize(os.path.join(SNAPSHOTS, name + ".pickle"))
            self.assertLess(size, 300_000, name)
            total += size + os.path.getsize(os.path.join(SNAPSHOTS, name + ".expected.json"))
        self.assertLess(total, 1_200_000)

    def test_segments_are_consistent(self):
        for name in gen.FIXTURES:
            _, obj, _ = load(name)
            last = {}
            for s in segments_of(obj):
                blocks = s["blocks"]
                self.assertEqual(sum(b["size"] for b in blocks), s["total_size"], name)
                self.assertGreaterEqual(s["address"], last.get(s["device"], 0), name)
                last[s["device"]] = s["address"] + s["total_size"]
                addr = s["address"]
                for b in blocks:
                    self.assertEqual(b.get("address", addr), addr, name)
                    addr += b["size"]
                self.assertEqual(s["allocated_size"], sum(
                    b["size"] for b in blocks if b["state"] == "active_allocated"), name)
                self.assertEqual(s["active_size"], sum(
                    b["size"] for b in blocks if b["state"] != "inactive"), name)
                if "requested_size" in s:
                    self.assertEqual(s["requested_size"], sum(
                        b["requested_size"] for b in blocks if b["state"] != "inactive"))

    def test_expected_metrics_from_the_pickles(self):
        """The figures in expected.json, recomputed from the pickle alone."""
        for name in gen.FIXTURES:
            _, obj, exp = load(name)
            for dev, want in exp["devices"].items():
                segs = [s for s in segments_of(obj) if s["device"] == int(dev)]
                got = metrics_from_dicts(segs, exp["settings"]["max_split_size"])
                for key, value in got.items():
                    if want[key] is None:
                        continue
                    self.assertAlmostEqual(want[key], value, msg=f"{name} {dev} {key}")

    def test_traces_replay_to_the_segments(self):
        """Replaying a complete trace under the fixture's settings reproduces its segments."""
        for name in gen.FIXTURES:
            _, obj, exp = load(name)
            if isinstance(obj, list) or not all(t["complete"] for t in exp["trace"].values()):
                continue
            settings = exp["settings"]
            config = am.AllocatorConfig.parse(settings["PYTORCH_CUDA_ALLOC_CONF"])
            for dev, trace in enumerate(obj["device_traces"]):
                replayed = am.replay(trace, config, settings["device_capacity_bytes"], dev)
                want = [(s["address"], [(b["size"], b["state"]) for b in s["blocks"]])
                        for s in obj["segments"] if s["device"] == dev]
                got = [(s.address, [(b.size, b.state) for b in s.blocks])
                       for s in replayed.segments()]
                self.assertEqual(got, want, f"{name} device {dev}")
                stats = exp["trace"][str(dev)]
                self.assertEqual(replayed.stats.peak_reserved, stats["peak_reserved_bytes"])
                self.assertEqual(replayed.stats.num_alloc_retries, stats["retries"])

    def test_model_invariants_of_every_fixture_run(self):
        for name, make in gen.FIXTURES.items():
            run = make()[0]
            for dev in run.devices:
                am.check_invariants(dev)
                am.metrics(dev.segments(), run.config.max_split_size)

    def test_golden_figures(self):
        """v2_3_settings, worked out by hand in tests/data/snapshots/README.md."""
        _, obj, exp = load("v2_3_settings")
        d = exp["devices"]["0"]
        self.assertEqual([n // MIB for n in d["segment_sizes"]], [160, 44, 2, 20, 104, 20])
        self.assertEqual(d["reserved_bytes"], 350 * MIB)
        self.assertEqual(d["allocated_bytes"], (160 + 3 + 7 + 2.5 + 104) * MIB + 4608)
        self.assertEqual(d["pending_free_bytes"], 9 * MIB)
        self.assertEqual(d["external_free_bytes"],
                         (44 + 5.5 + 2 + 11) * MIB + 2 * MIB - 4608)
        self.assertEqual(d["largest_free_block_bytes"], 44 * MIB)
        self.assertEqual(d["inactive_split_bytes"], (5.5 + 2 + 11) * MIB + 2 * MIB - 4608)
        self.assertEqual((d["oversize_count"], d["oversize_bytes"]), (1, 160 * MIB))
        self.assertEqual(d["requested_bytes"],
                         140 * MIB + 3_000_000 + 7 * MIB + 2 * MIB + 1 + 100 * MIB + 4004)
        self.assertEqual(obj["allocator_settings"]["roundup_power2_divisions"]["2"], 4)
        self.assertEqual(obj["allocator_settings"]["max_split_size"], 128 * MIB)

    def test_oom_fixture_ends_in_oom(self):
        _, obj, exp = load("oom")
        trace = obj["device_traces"][0]
        self.assertEqual(trace[-1]["action"], "oom")
        self.assertNotIn("addr", trace[-1])
        reserved = sum(s["total_size"] for s in obj["segments"])
        self.assertEqual(trace[-1]["device_free"] + reserved,
                         exp["settings"]["device_capacity_bytes"])
        self.assertIn("segment_free", [e["action"] for e in trace])
        self.assertEqual((exp["trace"]["0"]["ooms"], exp["trace"]["0"]["retries"]), (1, 3))

    def test_mid_ring_frees_blocks_it_never_allocated(self):
        _, obj, exp = load("mid_ring")
        for dev, trace in enumerate(obj["device_traces"]):
            allocated = {e["addr"] for e in trace if e["action"] == "alloc"}
            orphans = [e for e in trace if e["action"] == "free_requested"
                       and e["addr"] not in allocated]
            self.assertTrue(orphans)
            self.assertFalse(exp["trace"][str(dev)]["complete"])
            self.assertGreater(exp["trace"][str(dev)]["unknown_frees"], 0)

    def test_version_layouts(self):
        _, legacy, _ = load("v2_0_legacy")
        block = legacy["segments"][0]["blocks"][0]
        self.assertNotIn("address", block)
        self.assertTrue(any("history" in b for s in legacy["segments"] for b in s["blocks"]))
        self.assertNotIn("time_us", legacy["device_traces"][0][0])
        _, v21, _ = load("v2_1_frames")
        self.assertNotIn("allocator_settings", v21)
        self.assertIs(v21["segments"][0]["is_expandable"], False)
        _, v25, _ = load("v2_5_annotations")
        self.assertEqual({a["stage"] for a in v25["external_annotations"]}, {"START", "END"})
        self.assertIn("compile_context", v25["device_traces"][0][0])
        frames = [f for t in v25["device_traces"] for e in t for f in e.get("frames", [])]
        self.assertTrue(any("fx_node_op" in f for f in frames))
        _, bare, _ = load("bare_segments")
        self.assertIsInstance(bare, list)
        _, expandable, _ = load("expandable")
        self.assertTrue(all(s["is_expandable"] for s in expandable["segments"]))
        _, fragmented, _ = load("fragmented")
        states = {b["state"] for s in fragmented["segments"] for b in s["blocks"]}
        self.assertIn("active_pending_free", states)
        self.assertEqual({s["stream"] for s in fragmented["segments"]}, {0, gen.SIDE_STREAM})

    def test_time_us_increases(self):
        _, obj, _ = load("fragmented")
        times = sorted((e["time_us"], d) for d, t in enumerate(obj["device_traces"]) for e in t)
        for t in obj["device_traces"]:
            stamps = [e["time_us"] for e in t]
            self.assertEqual(stamps, sorted(set(stamps)))
        self.assertTrue(times)

    def test_big_file_close_to_target(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "big.pickle")
            gen.write_big(path, 3)
            self.assertLess(abs(os.path.getsize(path) / 3e6 - 1), 0.2)
            with open(path, "rb") as f:
                obj = pickle.load(f)
        self.assertEqual(len(obj["device_traces"]), 2)


def metrics_from_dicts(segments, max_split_size):
    """metrics.md from snapshot dicts; 2.0 blocks take requested sizes from history[0]."""
    m = dict.fromkeys(("reserved_bytes", "allocated_bytes", "active_bytes", "requested_bytes",
                       "pending_free_bytes", "external_free_bytes", "inactive_split_bytes",
                       "largest_free_block_bytes", "oversize_count", "oversize_bytes"), 0)
    for s in segments:
        m["reserved_bytes"] += s["total_size"]
        for b in s["blocks"]:
            size, state = b["size"], b["state"]
            if state == "active_allocated":
                m["allocated_bytes"] += size
                if "requested_size" in b:
                    m["requested_bytes"] += b["requested_size"]
                elif b.get("history"):
                    m["requested_bytes"] += b["history"][0]["real_size"]
            if state != "inactive":
                m["active_bytes"] += size
            if state == "active_pending_free":
                m["pending_free_bytes"] += size
            if state == "inactive":
                m["external_free_bytes"] += size
                m["inactive_split_bytes"] += size if len(s["blocks"]) > 1 else 0
                m["largest_free_block_bytes"] = max(m["largest_free_block_bytes"], size)
            if max_split_size is not None and size >= max_split_size:
                m["oversize_count"] += 1
                m["oversize_bytes"] += size
    m["internal_free_bytes"] = m["allocated_bytes"] - m["requested_bytes"]
    ext = m["external_free_bytes"]
    m["external_fragmentation"] = 1 - m["largest_free_block_bytes"] / ext if ext else 0.0
    m["segment_count"] = len(segments)
    return m


if __name__ == "__main__":
    unittest.main()
