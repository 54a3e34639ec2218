#!/usr/bin/env python3
"""Writes PyTorch CUDA memory snapshot fixtures from workloads run through alloc_model.

    python3 tests/fragment/gen_snapshots.py --out tests/data/snapshots     # every fixture
    python3 tests/fragment/gen_snapshots.py --check tests/data/snapshots   # regenerate, compare
    python3 tests/fragment/gen_snapshots.py --big /tmp/big.pickle --target-mb 500

Each fixture's device_traces and segments come from the same model run, so replaying a trace
under the fixture's settings reproduces its segments. <name>.expected.json holds the figures
the model computed (tests/data/snapshots/README.md describes every field and fixture).
Standard library only; deterministic (seeded): the same bytes on every run and interpreter.
"""

import argparse
import filecmp
import json
import os
import pickle
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import alloc_model as am  # noqa: E402  (after the path tweak)
from alloc_model import GIB, KIB, MIB  # noqa: E402

# A side stream's cudaStream_t as PyTorch writes it (an int64 of the pointer).
SIDE_STREAM = 94_613_350_457_344

# ------------------------------------------------------------------------- call sites
# Fake frames (filename, line, name); stacks are innermost first, as PyTorch lists them.
FRAMES = {
    "module": ("train.py", 214, "<module>"),
    "main": ("train.py", 197, "main"),
    "train_step": ("train.py", 151, "train_step"),
    "evaluate": ("train.py", 176, "evaluate"),
    "batch": ("data.py", 64, "__next__"),
    "collate": ("data.py", 41, "collate"),
    "model": ("model.py", 88, "forward"),
    "block": ("model.py", 57, "forward"),
    "attn": ("model.py", 31, "forward"),
    "mlp": ("model.py", 46, "forward"),
    "init": ("model.py", 112, "__init__"),
    "linear": ("torch/nn/modules/linear.py", 125, "forward"),
    "norm": ("torch/nn/modules/normalization.py", 217, "forward"),
    "softmax": ("torch/nn/functional.py", 2140, "softmax"),
    "loss": ("torch/nn/functional.py", 3494, "cross_entropy"),
    "call": ("torch/nn/modules/module.py", 1762, "_call_impl"),
    "tensor_backward": ("torch/_tensor.py", 648, "backward"),
    "autograd": ("torch/autograd/__init__.py", 353, "backward"),
    "engine": ("torch/autograd/graph.py", 824, "_engine_run_backward"),
    "adam": ("torch/optim/adam.py", 247, "step"),
    "adam_multi": ("torch/optim/adam.py", 741, "_multi_tensor_adam"),
    "to": ("torch/nn/modules/module.py", 1355, "to"),
    "empty_cache": ("torch/cuda/memory.py", 222, "empty_cache"),
}

_TOP = ("train_step", "main", "module")


def stack(*names, deep=0):
    """Frame keys innermost first; `deep` adds nested module calls (the big file's stacks)."""
    keys = [FRAMES[n] for n in names]
    for i in range(deep):
        keys.insert(len(keys) - 3, ("model.py", 57 + i % 7, "forward"))
        keys.insert(len(keys) - 3, FRAMES["call"])
    return tuple(keys)


def site_stacks(deep=0):
    """The ~20 call sites of the training workloads."""
    def s(*names):
        return stack(*names, deep=deep)
    return {
        "init_weight": stack("init", "main", "module", deep=deep),
        "to_device": stack("to", "main", "module", deep=deep),
        "batch": s("collate", "batch", *_TOP),
        "qkv": s("linear", "call", "attn", "call", "block", "call", "model", *_TOP),
        "scores": s("softmax", "attn", "call", "block", "call", "model", *_TOP),
        "attn_out": s("linear", "call", "attn", "call", "block", "call", "model", *_TOP),
        "norm": s("norm", "call", "block", "call", "model", *_TOP),
        "mlp_up": s("linear", "call", "mlp", "call", "block", "call", "model", *_TOP),
        "mlp_down": s("linear", "call", "mlp", "call", "block", "call", "model", *_TOP),
        "logits": s("linear", "call", "model", *_TOP),
        "loss": s("loss", *_TOP),
        "grad": s("engine", "autograd", "tensor_backward", *_TOP),
        "free_grad": s("engine", "autograd", "tensor_backward", *_TOP),
        "adam_state": s("adam_multi", "adam", *_TOP),
        "adam_tmp": s("adam_multi", "adam", *_TOP),
        "free_step": s(*_TOP),
        "eval": stack("linear", "call", "model", "evaluate", "main", "module", deep=deep),
        "free_eval": stack("evaluate", "main", "module", deep=deep),
        "empty_cache": stack("empty_cache", "main", "module", deep=deep),
    }


# ------------------------------------------------------------------------- a model run
class Run:
    """Allocators of all devices plus helpers that give every call its own captured stack."""

    def __init__(self, config, devices=1, capacity=None, legacy_2_0=False, deep=0):
        self.config = config
        self.capacity = capacity
        self.clock = am.Clock()
        self.devices = [am.DeviceAllocator(d, config, self.clock, capacity, legacy_2_0)
                        for d in range(devices)]
        self.sites = site_stacks(deep)
        self.annotations = []  # (stage, name, device, time_us)

    def ctx(self, site):
        return am.Context(self.sites[site])

    def alloc(self, dev, size, site, stream=0):
        return self.devices[dev].malloc(size, stream, self.ctx(site))

    def free(self, dev, block, site, ready_at=None):
        self.devices[dev].free(block, self.ctx(site), ready_at)

    def annotate(self, dev, stage, name):
        self.clock.advance(3)
        self.annotations.append((stage, name, dev, self.clock.tick()))


def training(run, dev, rng, steps, layers, hidden, batches, seq=128, stream=0,
             evaluate_every=0, keep_last_step=False):
    """A transformer-ish training loop: persistent weights, grads and Adam state; per-step
    activations whose sizes follow the batch size (so segments of one step do not fit the
    next); temporaries freed inside the step. Returns the blocks still live at the end."""
    weights = []
    for _ in range(layers):
        for shape in ((hidden, 3 * hidden), (hidden, hidden), (hidden, 4 * hidden),
                      (4 * hidden, hidden)):
            weights.append(run.alloc(dev, shape[0] * shape[1] * 2, "init_weight", stream))
        weights.append(run.alloc(dev, hidden * 2, "init_weight", stream))  # norm / bias
    grads, adam = [], []
    live = []
    for step in range(steps):
        batch = batches[step % len(batches)]
        tokens = batch * seq
        run.annotate(dev, "START", "## forward ##")
        inp = run.alloc(dev, tokens * 8, "batch", stream)
        acts = []
        for _ in range(layers):
            qkv = run.alloc(dev, tokens * hidden * 6, "qkv", stream)
            scores = run.alloc(dev, batch * 8 * seq * seq * 2, "scores", stream)
            out = run.alloc(dev, tokens * hidden * 2, "attn_out", stream)
            run.free(dev, scores, "free_step")
            norm = run.alloc(dev, tokens * hidden * 2 + rng.randrange(0, 4) * 256, "norm",
                             stream)
            up = run.alloc(dev, tokens * hidden * 8, "mlp_up", stream)
            down = run.alloc(dev, tokens * hidden * 2, "mlp_down", stream)
            acts += [qkv, out, norm, up, down]
        logits = run.alloc(dev, tokens * 512 * 2, "logits", stream)
        loss = run.alloc(dev, 4, "loss", stream)
        run.annotate(dev, "END", "## forward ##")
        run.annotate(dev, "START", "## backward ##")
        run.free(dev, logits, "free_grad")
        for i, w in enumerate(reversed(weights)):
            if step == 0:
                grads.append(run.alloc(dev, w.requested_size, "grad", stream))
            if acts and i % 5 == 4:
                for _ in range(5):
                    run.free(dev, acts.pop(), "free_grad")
        while acts:
            run.free(dev, acts.pop(), "free_grad")
        run.free(dev, inp, "free_grad")
        run.annotate(dev, "END", "## backward ##")
        run.annotate(dev, "START", "## optimizer ##")
        if step == 0:
            for w in weights:
                adam.append(run.alloc(dev, w.requested_size, "adam_state", stream))
                adam.append(run.alloc(dev, w.requested_size, "adam_state", stream))
        tmp = run.alloc(dev, max(w.requested_size for w in weights), "adam_tmp", stream)
        run.free(dev, tmp, "free_step")
        run.annotate(dev, "END", "## optimizer ##")
        if keep_last_step and step == steps - 1:
            live.append(loss)
        else:
            run.free(dev, loss, "free_step")
        if evaluate_every and step % evaluate_every == evaluate_every - 1:
            out = run.alloc(dev, batch * 512 * 2, "eval", stream)
            run.free(dev, out, "free_eval")
        run.clock.advance(20_000)
    return weights + grads + adam + live


def interleaved(run, dev, rng, ops, streams, sizes, pending_at_end=0, max_live=60):
    """Random interleaved sizes and lifetimes on several streams: the fragmented fixtures.
    A few frees are deferred (record_stream on the side stream) and complete a few mallocs
    later; the last `pending_at_end` deferred frees never complete."""
    live = []
    for i in range(ops):
        if live and (rng.random() < 0.45 or len(live) > max_live):
            block = live.pop(rng.randrange(len(live)))
            deferred = rng.random() < 0.08 and i < ops - 20
            ready_at = run.devices[dev].malloc_count + rng.randint(1, 6) if deferred else None
            run.free(dev, block, rng.choice(("free_grad", "free_step")), ready_at)
        else:
            lo, hi = rng.choice(sizes)
            size = rng.randrange(lo, hi)
            stream = rng.choice(streams)
            site = rng.choice(("qkv", "attn_out", "mlp_up", "norm", "scores", "batch"))
            live.append(run.alloc(dev, size, site, stream))
    for block in live[:pending_at_end]:
        run.free(dev, block, "free_step", ready_at=1 << 40)
    return live[pending_at_end:]


# ------------------------------------------------------------------------- snapshot writers
class Writer:
    """Turns model state into the dicts torch.cuda.memory._snapshot() returns, in the layout
    (keys, key order, which objects are shared) of one PyTorch release."""

    def __init__(self, version, unknown_fields=False):
        self.version = version  # "2.0", "2.1", "2.3", "2.5"
        self.unknown_fields = unknown_fields
        self.frame_dicts = {}   # 2.1+: py_symbolize makes one dict per distinct frame
        self.empty_frames = []  # one shared empty list for everything without a context

    @staticmethod
    def fresh(text):
        """A new str object (PyTorch builds one per frame from C++ strings)."""
        return "".join([text[:1], text[1:]])

    def frames(self, ctx):
        """One list per captured stack, shared by every entry and block that holds it."""
        if ctx.written is not None and ctx.written[0] is self:
            return ctx.written[1]
        frames = []
        for frame in ctx.frames:
            filename, line, name = frame
            if self.version == "2.0":
                frames.append({"filename": self.fresh(filename), "name": self.fresh(name),
                               "line": line})
                continue
            d = self.frame_dicts.get(frame)
            if d is None:
                d = {"name": self.fresh(name), "filename": self.fresh(filename), "line": line}
                if self.unknown_fields and filename.startswith("torch/nn/modules/linear"):
                    d["fx_node_op"] = "call_function"
                    d["fx_node_name"] = self.fresh(f"addmm_{line % 7}")
                    d["fx_node_target"] = "aten.addmm.default"
                self.frame_dicts[frame] = d
            frames.append(d)
        ctx.written = (self, frames)
        return frames

    def segment(self, s):
        if self.version == "2.0":
            d = {"device": s.device, "address": s.address, "total_size": s.total_size,
                 "allocated_size": s.allocated_size, "active_size": s.active_size,
                 "stream": s.stream, "segment_type": "large" if s.is_large else "small"}
            d["blocks"] = [self.block_2_0(b) for b in s.blocks]
            return d
        d = {"device": s.device, "address": s.address, "total_size": s.total_size,
             "allocated_size": s.allocated_size, "active_size": s.active_size,
             "requested_size": s.requested_size, "stream": s.stream,
             "segment_type": "large" if s.is_large else "small",
             "segment_pool_id": tuple([0, 0]), "is_expandable": s.is_expandable}
        if s.ctx is None:
            d["frames"] = self.empty_frames
        blocks = []
        for b in s.blocks:
            bd = {"address": b.address, "size": b.size, "requested_size": b.requested_size,
                  "state": b.state}
            bd["frames"] = self.frames(b.ctx) if b.ctx is not None else self.empty_frames
            blocks.append(bd)
        d["blocks"] = blocks
        if s.ctx is not None:
            d["frames"] = self.frames(s.ctx)  # PyTorch adds it after symbolizing: last key
        return d

    def block_2_0(self, b):
        d = {"size": b.size, "state": b.state}
        if b.history:
            history = []
            for h in b.history:
                entry = {"addr": h.addr, "real_size": h.real_size}
                if h.ctx is not None:
                    entry["frames"] = self.frames(h.ctx)
                history.append(entry)
            d["history"] = history
        return d

    def entry(self, e, n):
        action, addr, size, stream, time_us, ctx = e
        if self.version == "2.0":
            d = {}
            if ctx is not None:
                d["frames"] = self.frames(ctx)
            d["action"] = action
            d["device_free" if action == am.OOM else "addr"] = addr
            d["size"] = size
            d["stream"] = stream
            return d
        d = {"action": action, ("device_free" if action == am.OOM else "addr"): addr,
             "size": size, "stream": stream}
        if self.version != "2.1":
            d["time_us"] = time_us
        if self.unknown_fields:
            d["compile_context"] = "N/A" if n % 3 else "[0/0]"
            d["user_metadata"] = ""
        if ctx is not None:
            d["frames"] = self.frames(ctx)
        return d

    def snapshot(self, run, traces=None, bare=False, consume=False):
        """The snapshot dict (the segment list when bare). consume: convert the model's trace
        lists in place (the big file: tuples are dropped as their dicts are made)."""
        segments = []
        for dev in run.devices:
            segments += [self.segment(s) for s in am.check_invariants(dev)]
        if bare:
            return segments
        if traces is None:
            traces = [dev.trace for dev in run.devices]
        if consume:
            for t in traces:
                for n, e in enumerate(t):
                    t[n] = self.entry(e, n)
            device_traces = traces
        else:
            device_traces = [[self.entry(e, n) for n, e in enumerate(t)] for t in traces]
        result = {"segments": segments, "device_traces": device_traces}
        if self.version in ("2.3", "2.5"):
            result["allocator_settings"] = run.config.settings_dict()
        if self.version == "2.5":
            result["external_annotations"] = [
                {"stage": stage, "name": name, "device": dev, "time_us": t}
                for stage, name, dev, t in run.annotations]
        return result


# ------------------------------------------------------------------------- expected analysis
def settings_json(run, recorded):
    c = run.config
    return {
        "PYTORCH_CUDA_ALLOC_CONF": c.conf,
        "recorded_in_file": recorded,
        "max_split_size": None if c.max_split_size == am.SIZE_MAX else c.max_split_size,
        "max_non_split_rounding": c.max_non_split_rounding,
        "roundup_power2_divisions": list(c.roundup_power2_divisions),
        "garbage_collection_threshold": c.garbage_collection_threshold,
        "expandable_segments": c.expandable_segments,
        "device_capacity_bytes": run.capacity,
        "memory_fraction": 1.0 if run.devices[0].set_fraction else None,
    }


def trace_json(dev, written):
    counts = {}
    for e in written:
        counts[e[0]] = counts.get(e[0], 0) + 1
    live, freed, unknown_frees, orphan_completions = set(), set(), 0, 0
    for action, addr, *_ in written:
        if action == am.ALLOC:
            live.add(addr)
        elif action == am.FREE_REQUESTED:
            if addr in live:
                live.discard(addr)
                freed.add(addr)
            else:
                unknown_frees += 1
        elif action == am.FREE_COMPLETED:
            if addr in freed:
                freed.discard(addr)
            else:
                orphan_completions += 1
    s = dev.stats
    return {
        "entries": len(written),
        "complete": len(written) == len(dev.trace),
        "actions": dict(sorted(counts.items())),
        "peak_reserved_bytes": s.peak_reserved,
        "peak_allocated_bytes": s.peak_allocated,
        "final_reserved_bytes": s.reserved,
        "ooms": s.num_ooms,
        "retries": s.num_alloc_retries,
        "device_allocs": s.num_device_alloc,
        "device_frees": s.num_device_free,
        "gc_released_segments": s.num_gc_releases,
        "unknown_frees": unknown_frees,
        "completions_without_request": orphan_completions,
    }


def expected(name, version, protocol, run, traces, notes, requested_known=True):
    devices = {}
    for dev in run.devices:
        m = am.metrics(dev.segments(), run.config.max_split_size)
        if not requested_known:
            m["requested_bytes_model"] = m["requested_bytes"]
            m["internal_free_bytes_model"] = m["internal_free_bytes"]
            m["requested_bytes"] = None
            m["internal_free_bytes"] = None
        devices[str(dev.device)] = m
    return {
        "variant": name,
        "pytorch_layout": version,
        "protocol": protocol,
        "settings": settings_json(run, version in ("2.3", "2.5")),
        "devices": devices,
        "trace": {str(d.device): trace_json(d, t) for d, t in zip(run.devices, traces)},
        "notes": notes,
    }


# ------------------------------------------------------------------------- fixtures
def fx_v2_0_legacy():
    run = Run(am.AllocatorConfig(), legacy_2_0=True)
    rng = random.Random(20)
    training(run, 0, rng, steps=3, layers=2, hidden=512, batches=[6, 5, 7])
    return run, "2.0", 2, {}, (
        "PyTorch 2.0 layout: blocks have size/state and, when allocated while history was "
        "recorded, history [{addr, real_size, frames}] newest first; no addresses, "
        "requested_size, frames or is_expandable; trace entries without time_us, frames of "
        "free entries are the allocation's. requested_bytes = sum of history[0].real_size of "
        "the active blocks (every active block has history here).")


def fx_v2_1_frames():
    run = Run(am.AllocatorConfig())
    rng = random.Random(21)
    training(run, 0, rng, steps=3, layers=2, hidden=512, batches=[8, 6, 9],
             evaluate_every=2)
    return run, "2.1", 3, {}, (
        "PyTorch 2.1 layout: block addresses and frames, is_expandable False, segment_pool_id "
        "(0, 0); device_traces without time_us; no allocator_settings.")


GOLDEN_CONF = "max_split_size_mb:128,roundup_power2_divisions:[1:0,2:4,>:8]"


def fx_v2_3_settings():
    """The golden file: a short hand-written run whose every figure README.md explains."""
    run = Run(am.AllocatorConfig.parse(GOLDEN_CONF))
    a = lambda size, site, stream=0: run.alloc(0, size, site, stream)  # noqa: E731
    f = lambda block, site="free_step", ready_at=None: run.free(0, block, site, ready_at)  # noqa
    emb = a(150 * MIB, "init_weight")            # 160 MiB (8 divisions): oversize segment A
    w1 = a(40 * MIB + 1000, "init_weight")       # 44 MiB (8 divisions): segment B
    bias = a(3000, "init_weight")                # 3072 (512 B rounding): small segment C
    norm = a(1000, "norm")                       # 1024, in C
    x = a(3_000_000, "batch")                    # 3 MiB (4 divisions): 20 MiB segment D, split
    h1 = a(5 * MIB + 123, "qkv")                 # 5.5 MiB, in D
    h2 = a(7 * MIB, "mlp_up")                    # 7 MiB, in D; 4.5 MiB left at D's end
    f(h1, "free_grad")                           # a 5.5 MiB hole in D
    h3 = a(2 * MIB + 1, "attn_out")              # 2.5 MiB: best fit is D's 4.5 MiB tail
    run.devices[0].record_snapshot_entry()       # torch.cuda.memory_snapshot() mid-run
    f(emb, "free_grad")                          # A's 160 MiB block cached, unsplit
    mid = a(100 * MIB, "mlp_down")               # 104 MiB < max_split: A rejected, segment E
    big = a(140 * MIB, "logits")                 # 144 MiB: takes A whole (160 < 144 + 20)
    tmp = a(600 * KIB, "scores")                 # 614400, in C
    f(tmp)
    side = a(9 * MIB, "grad")                    # 9 MiB: 20 MiB segment F, split
    f(side, ready_at=1 << 40)                    # used on a side stream: pending free
    loss = a(4, "loss")                          # 512, in C where tmp was
    f(w1, "free_grad")                           # B cached, unsplit
    del big, mid, bias, norm, x, h2, h3, loss
    return run, "2.3", 4, {}, (
        "Golden file (README.md lists every figure): max_split_size_mb:128 and "
        "roundup_power2_divisions [1:0,2:4,>:8]; one oversize block reused whole with slack, "
        "a split 20 MiB segment with an inactive hole, a pending free, a snapshot entry.")


def fx_v2_5_annotations():
    conf = "garbage_collection_threshold:0.6"
    run = Run(am.AllocatorConfig.parse(conf), capacity=1 * GIB)
    rng = random.Random(25)
    training(run, 0, rng, steps=4, layers=3, hidden=1024, batches=[24, 32, 40, 48])
    if run.devices[0].stats.num_gc_releases == 0:
        raise am.ModelError("v2_5_annotations: the workload no longer triggers GC")
    return run, "2.5", 5, {"unknown_fields": True}, (
        "PyTorch 2.5+ layout: external_annotations (record_function START/END), entries with "
        "compile_context and user_metadata, some frames with fx_node_op/fx_node_name/"
        "fx_node_target: readers must ignore them. garbage_collection_threshold:0.6 with a "
        "1 GiB device and a memory fraction of 1.0: GC released cached segments "
        "(trace.gc_released_segments).")


def fx_bare_segments():
    run = Run(am.AllocatorConfig(), devices=2)
    rng = random.Random(5)
    for dev in (0, 1):
        interleaved(run, dev, rng, ops=90, streams=[0],
                    sizes=[(100, 4000), (600 * KIB, 900 * KIB), (2 * MIB, 9 * MIB)])
    return run, "2.0", 4, {"bare": True}, (
        "Pre-2.0 torch.cuda.memory_snapshot(): the top level is the segment list (2 devices), "
        "blocks are {size, state} without history, so requested sizes are unknown "
        "(requested_bytes/internal_free_bytes null; *_model give the model's values).")


def fx_oom():
    run = Run(am.AllocatorConfig(), capacity=1 * GIB)
    rng = random.Random(6)
    try:
        batches = [12, 16, 20, 26, 34, 44, 58, 76, 100, 130, 170]
        training(run, 0, rng, steps=len(batches), layers=2, hidden=1024, batches=batches)
    except am.OutOfMemory:
        pass
    stats = run.devices[0].stats
    if stats.num_ooms != 1 or stats.num_alloc_retries < 2:
        raise am.ModelError("oom: the workload no longer retries and then fails")
    return run, "2.3", 4, {}, (
        "A 1 GiB device: growing batches leave unsplit cached segments; cudaMalloc fails, "
        "release_cached_blocks frees them (segment_free entries) and the retry succeeds; the "
        "last request fails after its retry: the trace ends with the oom entry "
        "(device_free = capacity - reserved). Replay with device_capacity_bytes (or derive it "
        "from the oom entry: reserved at that point + device_free).")


def fx_expandable():
    conf = "expandable_segments:True"
    run = Run(am.AllocatorConfig.parse(conf), capacity=640 * MIB)
    dev = run.devices[0]
    rng = random.Random(7)
    blocks = [run.alloc(0, rng.randrange(30, 90) * MIB, "mlp_up") for _ in range(10)]
    small = [run.alloc(0, rng.randrange(512, 64 * KIB), "norm") for _ in range(12)]
    for i in (1, 2, 5, 6, 7):
        run.free(0, blocks[i], "free_grad")
    for i in (0, 3, 5, 7, 9):
        run.free(0, small[i], "free_step")
    big = run.alloc(0, 300 * MIB, "logits")  # no room without unmapping the free pages
    after = run.alloc(0, 45 * MIB, "attn_out")
    del big, after
    if dev.stats.num_alloc_retries == 0 or not any(e[0] == am.SEGMENT_UNMAP for e in dev.trace):
        raise am.ModelError("expandable: the workload no longer unmaps")
    if len(dev.segments()) < 3:
        raise am.ModelError("expandable: expected several mapped ranges")
    return run, "2.3", 4, {}, (
        "expandable_segments:True on a 640 MiB device: segment_map entries as pages are "
        "mapped (20 MiB large, 2 MiB small); a 300 MiB request that does not fit makes the "
        "allocator unmap the whole free pages (segment_unmap) and retry; no unmapped range "
        "of the first large virtual range has room, so a second one is reserved; the next "
        "request maps into the lowest hole. Segments are the contiguous mapped ranges "
        "(is_expandable True). Replay with device_capacity_bytes.")


FRAG_SIZES = [(512, 8 * KIB), (100 * KIB, 1000 * KIB), (1100 * KIB, 3 * MIB),
              (3 * MIB, 9 * MIB), (11 * MIB, 30 * MIB)]


def fragmented_run(seed, ops):
    run = Run(am.AllocatorConfig())
    run.devices.append(am.DeviceAllocator(1, run.config, run.clock))
    rng = random.Random(seed)
    for dev in (0, 1):
        interleaved(run, dev, rng, ops=ops, streams=[0, SIDE_STREAM], sizes=FRAG_SIZES,
                    pending_at_end=3)
    return run


def fx_fragmented():
    run = fragmented_run(8, 420)
    m = am.metrics(run.devices[0].segments())
    if m["pending_free_bytes"] == 0 or m["external_fragmentation"] < 0.5:
        raise am.ModelError("fragmented: not fragmented enough")
    return run, "2.3", 4, {}, (
        "Interleaved sizes and lifetimes on streams 0 and a side stream, 2 devices, default "
        "settings: high external fragmentation, inactive split bytes, 3 active_pending_free "
        "blocks per device (freed after record_stream, events never completed).")


def fx_mid_ring():
    run = fragmented_run(9, 420)
    keep = [len(d.trace) * 2 // 5 for d in run.devices]
    traces = [d.trace[-k:] for d, k in zip(run.devices, keep)]
    return run, "2.3", 4, {"traces": traces}, (
        "Same kind of run as fragmented, but each device trace keeps only its last 40 % "
        "(a ring buffer that wrapped): it frees blocks whose alloc is gone "
        "(trace.unknown_frees). trace.* peaks and counters are the whole run's, which the "
        "kept entries cannot reproduce (trace.complete false).")


FIXTURES = {
    "v2_0_legacy": fx_v2_0_legacy,
    "v2_1_frames": fx_v2_1_frames,
    "v2_3_settings": fx_v2_3_settings,
    "v2_5_annotations": fx_v2_5_annotations,
    "bare_segments": fx_bare_segments,
    "oom": fx_oom,
    "expandable": fx_expandable,
    "fragmented": fx_fragmented,
    "mid_ring": fx_mid_ring,
}


def build(name):
    """(pickle bytes, expected dict) of one fixture."""
    run, version, protocol, opts, notes = FIXTURES[name]()
    traces = opts.get("traces") or [d.trace for d in run.devices]
    writer = Writer(version, unknown_fields=opts.get("unknown_fields", False))
    obj = writer.snapshot(run, traces, bare=opts.get("bare", False))
    data = pickle.dumps(obj, protocol=protocol)
    if opts.get("bare"):
        traces = [[] for _ in run.devices]
    exp = expected(name, version, protocol, run, traces, notes,
                   requested_known=not opts.get("bare"))
    if opts.get("bare"):
        exp["trace"] = {}  # the file has no device_traces
    return data, exp


def write_fixtures(out):
    os.makedirs(out, exist_ok=True)
    for name in FIXTURES:
        data, exp = build(name)
        with open(os.path.join(out, name + ".pickle"), "wb") as f:
            f.write(data)
        with open(os.path.join(out, name + ".expected.json"), "w", encoding="utf-8") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")


def check(directory):
    """Regenerates into a temporary directory; 0 when every file matches byte for byte."""
    with tempfile.TemporaryDirectory() as tmp:
        write_fixtures(tmp)
        names = sorted(os.listdir(tmp))
        _, mismatch, errors = filecmp.cmpfiles(tmp, directory, names, shallow=False)
    for n in mismatch + errors:
        print(f"{os.path.join(directory, n)}: differs from a fresh generation", file=sys.stderr)
    return 1 if mismatch or errors else 0


# ------------------------------------------------------------------------- the big file
def big_run(steps):
    conf = "max_split_size_mb:256,roundup_power2_divisions:4"
    run = Run(am.AllocatorConfig.parse(conf), devices=2, deep=14)
    rng = random.Random(500)
    batches = [24, 32, 20, 28, 36, 16]
    # Data parallel: both devices run the same loop; device 1 sees other batch sizes.
    training(run, 0, rng, steps=steps, layers=12, hidden=1024, batches=batches,
             evaluate_every=10)
    training(run, 1, rng, steps=steps, layers=12, hidden=1024, batches=batches[::-1],
             evaluate_every=10)
    for dev in (0, 1):  # a fragmented tail: many live blocks of mixed sizes at the end
        interleaved(run, dev, rng, ops=3000, streams=[0, SIDE_STREAM], sizes=FRAG_SIZES,
                    pending_at_end=5, max_live=600)
    return run


def big_size(steps):
    obj = Writer("2.5").snapshot(big_run(steps))
    return len(pickle.dumps(obj, protocol=4))


def write_big(path, target_mb, protocol=4):
    """About target_mb MB: the bytes per training step are measured on two short runs, then
    one run long enough is written. Frame dicts are shared (one per distinct frame) and each
    captured stack is one list, as PyTorch 2.1+ builds them (py_symbolize), so the pickle
    memoizes frame dicts, never whole entries."""
    s1, s2 = 4, 12
    b1, b2 = big_size(s1), big_size(s2)
    per_step = (b2 - b1) / (s2 - s1)
    steps = max(1, round((target_mb * 1e6 - (b1 - s1 * per_step)) / per_step))
    run = big_run(steps)
    obj = Writer("2.5").snapshot(run, consume=True)
    del run
    with open(path, "wb") as f:
        pickle.Pickler(f, protocol=protocol).dump(obj)
    size = os.path.getsize(path)
    entries = sum(len(t) for t in obj["device_traces"])
    return (f"{path}: {size / 1e6:.1f} MB, {steps} steps, {entries} trace entries, "
            f"{len(obj['segments'])} segments")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write every fixture into this directory")
    parser.add_argument("--check", metavar="DIR", help="regenerate and compare with DIR")
    parser.add_argument("--big", metavar="OUT.pickle", help="write one large snapshot")
    parser.add_argument("--target-mb", type=float, default=100.0)
    parser.add_argument("--protocol", type=int, default=4)
    args = parser.parse_args(argv)
    if not (args.out or args.check or args.big):
        parser.error("give --out, --check or --big")
    if args.out:
        write_fixtures(args.out)
    if args.big:
        print(write_big(args.big, args.target_mb, args.protocol))
    if args.check:
        return check(args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
