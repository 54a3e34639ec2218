#!/usr/bin/env python3
"""Writes the p_*.pickle snapshot fixtures of collect/torch_snapshot_test.cpp and, beside each,
p_*.json: the same data as JSON (tuples as {"__tuple__": [...]}), which the test compares the
decoded snapshot with. Layouts follow ../shared/specs/pytorch-memory.md section 1; the data is
made up (deterministic), not captured from a GPU. Standard library only:
    python3 tests/data/snapshots/p_generate.py tests/data/snapshots
"""
import json
import os
import pickle
import random
import sys

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
rnd = random.Random(5)
FILES = ["train.py", "model.py", "/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py"]
NAMES = ["forward", "backward", "_call_impl", "<module>", "make_weight"]
# Shared frame dicts, as PyTorch's symbolizer hands out one dict per distinct frame.
POOL = [{"filename": rnd.choice(FILES), "line": rnd.randrange(1, 900), "name": rnd.choice(NAMES)}
        for _ in range(12)]


def frames(shared=True, extra=None):
    picked = [rnd.choice(POOL) for _ in range(rnd.randrange(1, 5))]
    if shared and extra is None:
        return picked
    out = [dict(f) for f in picked]
    for f in out:
        f.update(extra or {})
    return out


def segment(address, blocks, kind="large", v21=True, stream=0, device=0, expandable=False):
    total = sum(b["size"] for b in blocks)
    active = sum(b["size"] for b in blocks if b["state"] != "inactive")
    allocated = sum(b["size"] for b in blocks if b["state"] == "active_allocated")
    seg = {"device": device, "address": address, "total_size": total, "allocated_size": allocated,
           "active_size": active,
           "requested_size": sum(b.get("requested_size", 0) for b in blocks if b["state"] != "inactive"),
           "stream": stream, "segment_type": kind, "segment_pool_id": (0, 0), "blocks": blocks}
    if v21:
        seg["is_expandable"] = expandable
        seg["frames"] = frames()
    return seg


def blocks_v21(address, sizes, states):
    out = []
    for size, state in zip(sizes, states):
        active = state != "inactive"
        out.append({"address": address, "size": size, "requested_size": size - 100 if active else 0,
                    "state": state, "frames": frames() if active else []})
        address += size
    return out


def blocks_v20(sizes, states):
    out = []
    for i, (size, state) in enumerate(zip(sizes, states)):
        block = {"size": size, "state": state}
        if state != "inactive" and i % 2 == 0:
            block["history"] = [{"addr": 0x7f0000000000 + 512 * j, "real_size": size - 64 * (j + 1),
                                 "frames": frames()} for j in range(2)]
        out.append(block)
    return out


def trace(device_addr, count, times=True, actions=("alloc", "free_requested", "free_completed")):
    entries = [{"action": "segment_alloc", "addr": device_addr, "size": 20971520, "stream": 0,
                "frames": frames()}]
    for i in range(count):
        entry = {"action": actions[i % len(actions)], "addr": device_addr + 512 * i,
                 "size": 1000 + i, "stream": 0, "frames": frames()}
        entries.append(entry)
    entries.append({"action": "oom", "device_free": 56623104, "size": 73400320, "stream": 0,
                    "frames": frames()})
    entries.append({"action": "snapshot", "addr": 0, "size": 23069696, "stream": 0})
    if times:
        for i, entry in enumerate(entries):
            entry["time_us"] = 1700000000000000 + 7 * i
    return entries


SETTINGS = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True,roundup_power2_divisions:4",
            "max_split_size": -1, "garbage_collection_threshold": 0.6, "expandable_segments": True,
            "roundup_power2_divisions": {str(1 << i): (4 if i < 4 else 0) for i in range(16)},
            "release_lock_on_cudamalloc": False, "pinned_use_cuda_host_register": False,
            "pinned_num_register_threads": 1}
BASE = 0x7f5a00000000
MB = 1 << 20

layouts = {}
layouts["p_v20_history_proto2"] = (2, {
    "segments": [segment(BASE, blocks_v20([MB, 3 * MB, 16 * MB], ["active_allocated", "inactive", "active_pending_free"]), v21=False),
                 segment(BASE + 64 * MB, blocks_v20([512, 1024, 2 * MB - 1536], ["active_allocated", "active_allocated", "inactive"]), kind="small", v21=False)],
    "device_traces": [trace(BASE, 6, times=False)]})
layouts["p_v21_proto3"] = (3, {
    "segments": [segment(BASE, blocks_v21(BASE, [4 * MB, 16 * MB], ["active_allocated", "inactive"])),
                 segment(BASE + 32 * MB, blocks_v21(BASE + 32 * MB, [2 * MB], ["active_allocated"]), kind="small", stream=7)],
    "device_traces": [trace(BASE, 10, times=False)]})
layouts["p_v23_settings_proto4"] = (4, {
    "segments": [segment(BASE, blocks_v21(BASE, [2 * MB, 2 * MB, 16 * MB], ["active_allocated", "active_pending_free", "inactive"]))],
    "device_traces": [trace(BASE, 12)], "allocator_settings": SETTINGS})
layouts["p_v25_annotations_proto5"] = (5, {
    "segments": [segment(BASE, blocks_v21(BASE, [20 * MB], ["active_allocated"]), expandable=True),
                 segment(BASE + (1 << 40), blocks_v21(BASE + (1 << 40), [2 * MB, 18 * MB], ["inactive", "active_allocated"]), device=1)],
    "device_traces": [trace(BASE, 8, actions=("segment_map", "alloc", "free_completed", "segment_unmap")),
                      trace(BASE + (1 << 40), 5)],
    "allocator_settings": dict(SETTINGS, roundup_power2_divisions={"1": 0, "2": 2, "64": 8}),
    "external_annotations": [{"stage": "START", "name": "## forward ##", "device": 0, "time_us": 1700000000000003},
                             {"stage": "END", "name": "## forward ##", "device": 0, "time_us": 1700000000000040}]})
layouts["p_bare_list_proto4"] = (4, [
    segment(BASE, blocks_v20([MB, MB], ["active_allocated", "inactive"]), v21=False),
    segment(BASE + 8 * MB, blocks_v20([2 * MB], ["active_allocated"]), kind="small", v21=False)])
newest = {
    "segments": [segment(BASE, blocks_v21(BASE, [8 * MB, 12 * MB], ["active_allocated", "inactive"]))],
    "device_traces": [trace(BASE, 6)],
    "allocator_settings": dict(SETTINGS, roundup_power2_divisions=[1, 2, 4, 8] + [0] * 12, new_knob=3),
    "external_annotations": [],
    "user_metadata": "run 17"}
newest["segments"][0]["pool_id"] = (1, 2)  # unknown segment field
newest["device_traces"][0][1]["compile_context"] = "graph 3"  # unknown entry fields
newest["device_traces"][0][1]["user_metadata"] = ""
newest["device_traces"][0][2]["action"] = "mystery_action"  # an action from the future
newest["device_traces"][0][3]["frames"] = frames(extra={"fx_node_op": "call_function", "fx_node_name": "add"})
layouts["p_newest_unknown_proto4"] = (4, newest)


def to_json(value):
    if isinstance(value, tuple):
        return {"__tuple__": [to_json(v) for v in value]}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


for name, (protocol, data) in layouts.items():
    with open(os.path.join(out_dir, name + ".pickle"), "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(to_json(data), f, indent=1)
        f.write("\n")
