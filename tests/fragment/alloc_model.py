"""A model of PyTorch's CUDA caching allocator, for generating consistent test snapshots.

It follows ../../../shared/specs/pytorch-memory.md section 3 and, where the spec is terse, the
structure of c10/cuda/CUDACachingAllocator.cpp (DeviceCachingAllocator): malloc, free,
free_block, try_merge_blocks, get_free_block, alloc_block, release_available_cached_blocks,
release_cached_blocks, garbage_collect_cached_blocks and the expandable-segment functions
(find_expandable_block, map_block, unmap_block). Every rule decision the spec leaves open is
listed in tests/data/snapshots/README.md ("Model decisions").

Standard library only; runs under python3 (3.11) and /usr/bin/python3. One DeviceAllocator per
device; they share a Clock so trace time stamps increase across devices.
"""

import bisect

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

K_MIN_BLOCK_SIZE = 512
K_SMALL_SIZE = 1 * MIB
K_SMALL_BUFFER = 2 * MIB
K_MIN_LARGE_ALLOC = 10 * MIB
K_LARGE_BUFFER = 20 * MIB
K_ROUND_LARGE = 2 * MIB
K_ROUNDUP_INTERVALS = 16  # roundup_power2_divisions buckets: 1 MiB .. 32768 MiB and up
SIZE_MAX = (1 << 64) - 1  # max_split_size when unset
# The device memory an expandable segment's address range is sized from when the model runs
# without a capacity (PyTorch reserves 1 1/8 of cudaDeviceProp::totalGlobalMem).
DEFAULT_DEVICE_MEMORY = 80 * GIB
# Where each device's cudaMalloc / cuMemAddressReserve addresses start (bump allocation).
DEVICE_ADDRESS_BASE = 0x7F1200000000
DEVICE_ADDRESS_STRIDE = 1 << 42

# Trace actions (the strings PyTorch writes).
ALLOC = "alloc"
FREE_REQUESTED = "free_requested"
FREE_COMPLETED = "free_completed"
SEGMENT_ALLOC = "segment_alloc"
SEGMENT_FREE = "segment_free"
SEGMENT_MAP = "segment_map"
SEGMENT_UNMAP = "segment_unmap"
SNAPSHOT = "snapshot"
OOM = "oom"


class ModelError(Exception):
    """The model reached a state the real allocator asserts against (a workload bug)."""


class OutOfMemory(Exception):
    """malloc could not be satisfied even after releasing cached blocks."""

    def __init__(self, device, size, device_free):
        super().__init__(f"device {device}: out of memory allocating {size} bytes "
                         f"({device_free} bytes free)")
        self.device = device
        self.size = size
        self.device_free = device_free


def floor_pow2(n):
    return 1 << (n.bit_length() - 1)


class AllocatorConfig:
    """The PYTORCH_CUDA_ALLOC_CONF options the native allocator reads."""

    def __init__(self, max_split_size=SIZE_MAX, max_non_split_rounding=K_LARGE_BUFFER,
                 roundup_power2_divisions=None, garbage_collection_threshold=0.0,
                 expandable_segments=False, conf=""):
        self.max_split_size = max_split_size
        self.max_non_split_rounding = max_non_split_rounding
        self.roundup_power2_divisions = list(roundup_power2_divisions or
                                             [0] * K_ROUNDUP_INTERVALS)
        if len(self.roundup_power2_divisions) != K_ROUNDUP_INTERVALS:
            raise ValueError("roundup_power2_divisions needs 16 buckets")
        self.garbage_collection_threshold = garbage_collection_threshold
        self.expandable_segments = expandable_segments
        self.conf = conf  # the raw PYTORCH_CUDA_ALLOC_CONF string, as recorded in snapshots

    @classmethod
    def parse(cls, conf):
        """Parses PYTORCH_CUDA_ALLOC_CONF the way CUDAAllocatorConfig::parseArgs does for the
        options modelled here (unknown keys are an error rather than skipped)."""
        config = cls(conf=conf)
        tokens = _lex(conf)
        i = 0
        while i < len(tokens):
            key = tokens[i]
            if i + 2 >= len(tokens) or tokens[i + 1] != ":":
                raise ValueError(f"{conf!r}: expected key:value at {key!r}")
            i += 2
            if key == "max_split_size_mb":
                mb = int(tokens[i])
                if mb <= K_LARGE_BUFFER // MIB:
                    raise ValueError(f"{conf!r}: max_split_size_mb must be > 20")
                config.max_split_size = mb * MIB
            elif key == "max_non_split_rounding_mb":
                mb = int(tokens[i])
                if mb < K_LARGE_BUFFER // MIB:
                    raise ValueError(f"{conf!r}: max_non_split_rounding_mb must be >= 20")
                config.max_non_split_rounding = mb * MIB
            elif key == "garbage_collection_threshold":
                value = float(tokens[i])
                if not 0.0 < value < 1.0:
                    raise ValueError(f"{conf!r}: garbage_collection_threshold not in (0, 1)")
                config.garbage_collection_threshold = value
            elif key == "expandable_segments":
                if tokens[i] not in ("True", "False"):
                    raise ValueError(f"{conf!r}: expandable_segments takes True or False")
                config.expandable_segments = tokens[i] == "True"
            elif key == "roundup_power2_divisions":
                i = _parse_divisions(conf, tokens, i, config.roundup_power2_divisions)
            else:
                raise ValueError(f"{conf!r}: option {key!r} is not modelled")
            i += 1
            if i < len(tokens):
                if tokens[i] != ",":
                    raise ValueError(f"{conf!r}: expected ',' after {key}")
                i += 1
        return config

    def divisions_for(self, size):
        """roundup_power2_divisions(size): bucket index = log2(size) - 20, clamped to [0, 15]."""
        index = size.bit_length() - 1 - 20
        index = max(0, min(index, K_ROUNDUP_INTERVALS - 1))
        return self.roundup_power2_divisions[index]

    def round_size(self, size):
        """Rule 1 (round_size + roundup_power2_next_division)."""
        if size < K_MIN_BLOCK_SIZE:
            return K_MIN_BLOCK_SIZE
        divisions = self.divisions_for(size)
        if divisions > 1 and size > K_MIN_BLOCK_SIZE * divisions:
            if size & (size - 1) == 0:
                return size
            power2_floor = floor_pow2(size)
            step = power2_floor >> (divisions.bit_length() - 1)
            if step == 0:
                return power2_floor << 1
            floor = size & ~(step - 1)
            return size if floor == size else floor + step
        return K_MIN_BLOCK_SIZE * ((size + K_MIN_BLOCK_SIZE - 1) // K_MIN_BLOCK_SIZE)

    def settings_dict(self):
        """`allocator_settings` as a 2.3+ snapshot carries it (key order as PyTorch writes)."""
        return {
            "PYTORCH_CUDA_ALLOC_CONF": self.conf,
            "max_split_size": -1 if self.max_split_size == SIZE_MAX else self.max_split_size,
            "garbage_collection_threshold": float(self.garbage_collection_threshold),
            "expandable_segments": self.expandable_segments,
            "pinned_num_register_threads": 1,
            "release_lock_on_cudamalloc": False,
            "pinned_use_cuda_host_register": False,
            "roundup_power2_divisions": {str(1 << i): d for i, d in
                                         enumerate(self.roundup_power2_divisions)},
        }


def _lex(conf):
    tokens, buf = [], []
    for ch in conf:
        if ch in ",:[]":
            if buf:
                tokens.append("".join(buf))
                buf = []
            tokens.append(ch)
        elif ch != " ":
            buf.append(ch)
    if buf:
        tokens.append("".join(buf))
    return tokens


def _parse_divisions(conf, tokens, i, divisions):
    """roundup_power2_divisions:N or :[MiB:N,...,>:N] (first entry also fills the buckets
    below it; '>' fills every bucket after the last named one)."""
    def power_of_two_or_zero(text):
        value = int(text)
        if value != 0 and value & (value - 1):
            raise ValueError(f"{conf!r}: divisions must be a power of 2 or 0")
        return value

    if tokens[i] != "[":
        value = power_of_two_or_zero(tokens[i])
        divisions[:] = [value] * K_ROUNDUP_INTERVALS
        return i
    first, last_index = True, 0
    i += 1
    while i < len(tokens) and tokens[i] != "]":
        bound = tokens[i]
        if tokens[i + 1] != ":":
            raise ValueError(f"{conf!r}: expected ':' after {bound}")
        value = power_of_two_or_zero(tokens[i + 2])
        if bound == ">":
            for j in range(last_index + 1, K_ROUNDUP_INTERVALS):
                divisions[j] = value
        else:
            mib = int(bound)
            if mib <= 0 or mib & (mib - 1):
                raise ValueError(f"{conf!r}: interval {bound} is not a power of 2")
            index = min(mib.bit_length() - 1, K_ROUNDUP_INTERVALS - 1)
            if first:
                for j in range(index):
                    divisions[j] = value
                first = False
            divisions[index] = value
            last_index = index
        i += 3
        if i < len(tokens) and tokens[i] == ",":
            i += 1
    if i >= len(tokens):
        raise ValueError(f"{conf!r}: missing ']'")
    return i


def allocation_size(size):
    """Rule 3 (get_allocation_size): the cudaMalloc size for a rounded request."""
    if size <= K_SMALL_SIZE:
        return K_SMALL_BUFFER
    if size < K_MIN_LARGE_ALLOC:
        return K_LARGE_BUFFER
    return K_ROUND_LARGE * ((size + K_ROUND_LARGE - 1) // K_ROUND_LARGE)


class Clock:
    """Epoch microseconds for time_us; strictly increasing, deterministic."""

    def __init__(self, start_us=1_700_000_000_000_000):
        self.now = start_us
        self._state = 12345

    def tick(self):
        # A small linear congruential step: 1..32 µs between consecutive trace entries.
        self._state = (self._state * 1103515245 + 12345) & 0x7FFFFFFF
        self.now += 1 + (self._state >> 16) % 32
        return self.now

    def advance(self, us):
        self.now += us


class Context:
    """A captured call stack (PyTorch's GatheredContext): frames innermost first. Trace entries
    and blocks that share a Context share one frames list in the snapshot."""

    __slots__ = ("frames", "written")

    def __init__(self, frames):
        self.frames = frames  # tuple of frame keys (see gen_snapshots.FRAMES)
        self.written = None   # (writer, frames list) once a snapshot writer has built it


class HistoryEntry:
    """PyTorch 2.0 block history (History: addr, real_size, context)."""

    __slots__ = ("addr", "real_size", "ctx")

    def __init__(self, addr, real_size, ctx):
        self.addr, self.real_size, self.ctx = addr, real_size, ctx


class ExpandableSegment:
    """A reserved virtual range mapped in pages of `page` bytes."""

    def __init__(self, ptr, page, pages):
        self.ptr, self.page, self.max_pages = ptr, page, pages
        self.mapped = set()  # page indices with physical memory

    @property
    def size(self):
        return self.page * self.max_pages

    def left(self, addr):
        return (addr - self.ptr) // self.page

    def right(self, addr):
        return (addr - self.ptr + self.page - 1) // self.page


class Block:
    __slots__ = ("device", "stream", "size", "requested_size", "pool", "ptr", "allocated",
                 "mapped", "prev", "next", "event_count", "gc_count_base", "ctx_alloc",
                 "ctx_segment", "expandable", "history", "key")

    def __init__(self, device, stream, size, pool, ptr):
        self.device, self.stream, self.size, self.pool, self.ptr = device, stream, size, pool, ptr
        self.requested_size = 0
        self.allocated = False
        self.mapped = True
        self.prev = None
        self.next = None
        self.event_count = 0
        self.gc_count_base = 0
        self.ctx_alloc = None    # context_when_allocated
        self.ctx_segment = None  # context_when_segment_allocated (head blocks)
        self.expandable = None   # ExpandableSegment or None
        self.history = []        # 2.0 only: newest first
        self.key = None          # the key it is filed under in a SortedBlocks

    def is_split(self):
        return self.prev is not None or self.next is not None

    def splice(self, before, after):
        if before is not None:
            before.next = self
        self.prev = before
        if after is not None:
            after.prev = self
        self.next = after

    def gc_count(self):
        return self.pool.get_free_blocks_call_count - self.gc_count_base


class SortedBlocks:
    """std::set<Block*> with a comparator: keys are tuples computed when a block is filed."""

    def __init__(self, key_of):
        self.key_of = key_of
        self.keys = []
        self.blocks = []

    def __len__(self):
        return len(self.keys)

    def __iter__(self):
        return iter(list(self.blocks))

    def insert(self, block):
        key = self.key_of(block)
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            raise ModelError(f"block {block.ptr:#x} filed twice")
        self.keys.insert(i, key)
        self.blocks.insert(i, block)
        block.key = key

    def erase(self, block):
        i = bisect.bisect_left(self.keys, block.key)
        if i == len(self.keys) or self.blocks[i] is not block:
            raise ModelError(f"block {block.ptr:#x} not in the pool")
        del self.keys[i]
        del self.blocks[i]
        block.key = None

    def lower_bound(self, key):
        return bisect.bisect_left(self.keys, key)


class BlockPool:
    def __init__(self, is_small):
        self.is_small = is_small
        self.blocks = SortedBlocks(lambda b: (b.stream, b.size, b.ptr))  # BlockComparatorSize
        self.unmapped = SortedBlocks(lambda b: (b.stream, b.ptr))  # BlockComparatorAddress
        self.get_free_blocks_call_count = 0

    def insert_into_blocks(self, block):
        block.gc_count_base = self.get_free_blocks_call_count
        self.blocks.insert(block)


class Stats:
    def __init__(self):
        self.reserved = 0           # total_allocated_memory
        self.allocated = 0          # Σ size of allocated blocks
        self.peak_reserved = 0
        self.peak_allocated = 0
        self.num_alloc_retries = 0
        self.num_ooms = 0
        self.num_device_alloc = 0
        self.num_device_free = 0
        self.num_gc_releases = 0


class DeviceAllocator:
    """DeviceCachingAllocator for one device.

    capacity: device memory in bytes (cudaMalloc / cuMemCreate fail beyond it); None =
      unlimited. With garbage_collection_threshold set, the model also behaves as if
      torch.cuda.set_per_process_memory_fraction(1.0) was called (GC needs set_fraction), so
      allowed_memory_maximum = capacity.
    legacy_2_0: trace and block history as PyTorch 2.0 records them (frames of free entries
      are the allocation's; blocks carry `history`; segment_free only for blocks with history).
    """

    def __init__(self, device, config, clock, capacity=None, legacy_2_0=False):
        self.device = device
        self.config = config
        self.clock = clock
        self.capacity = capacity
        self.legacy_2_0 = legacy_2_0
        self.set_fraction = capacity is not None and config.garbage_collection_threshold > 0
        self.allowed_memory_maximum = capacity or 0
        self.small_blocks = BlockPool(True)
        self.large_blocks = BlockPool(False)
        self.active_blocks = {}  # id(block) -> block, in insertion order
        self.events = []  # [block, ready_at_malloc] FIFO (cuda_events of one side stream)
        self.expandable_segments = []
        self.next_address = DEVICE_ADDRESS_BASE + device * DEVICE_ADDRESS_STRIDE
        self.malloc_count = 0
        self.stats = Stats()
        self.trace = []  # (action, addr, size, stream, time_us, ctx)

    # ---------------------------------------------------------------- trace and stats
    def record(self, action, addr, size, stream, ctx):
        self.trace.append((action, addr, size, stream, self.clock.tick(), ctx))

    def _reserve(self, nbytes):
        self.stats.reserved += nbytes
        self.stats.peak_reserved = max(self.stats.peak_reserved, self.stats.reserved)

    def _virtual_range(self, nbytes):
        ptr = self.next_address
        self.next_address += nbytes
        if self.next_address > DEVICE_ADDRESS_BASE + (self.device + 1) * DEVICE_ADDRESS_STRIDE:
            raise ModelError(f"device {self.device}: address range exhausted")
        return ptr

    def device_free(self):
        return (self.capacity - self.stats.reserved) if self.capacity is not None else 0

    def record_snapshot_entry(self):
        """The `snapshot` entry torch.cuda.memory_snapshot() leaves in the trace."""
        total_active = sum(b.size for b in self.active_blocks.values())
        self.record(SNAPSHOT, 0, total_active, 0, None)

    # ---------------------------------------------------------------- public API
    def malloc(self, orig_size, stream, ctx):
        self.malloc_count += 1
        self.process_events(ctx)
        size = self.config.round_size(orig_size)
        pool = self.small_blocks if size <= K_SMALL_SIZE else self.large_blocks
        alloc_size = allocation_size(size)
        block = self.get_free_block(pool, size, stream)
        if block is None:
            if self.set_fraction:
                self.garbage_collect_cached_blocks(ctx)
            block = self.alloc_block(pool, size, alloc_size, stream, False, ctx)
            if block is None and self.release_available_cached_blocks(pool, size, stream, ctx):
                block = self.alloc_block(pool, size, alloc_size, stream, False, ctx)
            if block is None:
                self.release_cached_blocks(ctx)
                block = self.alloc_block(pool, size, alloc_size, stream, True, ctx)
        if block is None:
            device_free = self.device_free()
            self.trace.append((OOM, device_free, size, stream, self.clock.tick(), ctx))
            self.stats.num_ooms += 1
            raise OutOfMemory(self.device, size, device_free)
        return self.alloc_found_block(block, pool, size, orig_size, stream, ctx)

    def free(self, block, ctx, ready_at=None):
        """Frees an allocated block. ready_at: the block was used on another stream
        (record_stream); its memory comes back at the start of the first malloc whose ordinal
        is >= ready_at (process_events), or at the next release of cached blocks."""
        if not block.allocated:
            raise ModelError(f"double free of {block.ptr:#x}")
        block.allocated = False
        self.stats.allocated -= block.size
        if self.legacy_2_0:
            if block.history:
                self.record(FREE_REQUESTED, block.ptr, block.history[0].real_size,
                            block.stream, block.history[0].ctx)
        else:
            self.record(FREE_REQUESTED, block.ptr, block.requested_size, block.stream,
                        ctx or block.ctx_alloc)
        if ready_at is not None:
            block.event_count += 1
            self.events.append([block, ready_at])
        else:
            self.free_block(block, ctx)

    def empty_cache(self, ctx):
        self.release_cached_blocks(ctx)

    # ---------------------------------------------------------------- internals
    def process_events(self, ctx):
        while self.events and self.events[0][1] <= self.malloc_count:
            block, _ = self.events.pop(0)
            block.event_count -= 1
            if block.event_count == 0:
                self.free_block(block, ctx)

    def synchronize_and_free_events(self, ctx):
        events, self.events = self.events, []
        for block, _ in events:
            block.event_count -= 1
            if block.event_count == 0:
                self.free_block(block, ctx)

    def alloc_found_block(self, block, pool, size, orig_size, stream, ctx):
        if self.should_split(block, size):
            remaining = block
            block = Block(self.device, stream, size, pool, remaining.ptr)
            block.expandable = remaining.expandable
            block.prev = remaining.prev
            if block.prev is not None:
                block.prev.next = block
            block.next = remaining
            remaining.prev = block
            remaining.ptr += size
            remaining.size -= size
            pool.insert_into_blocks(remaining)
            if self.legacy_2_0:
                _trim_history_before(remaining, block.ptr + size)
        block.allocated = True
        block.requested_size = orig_size
        block.ctx_alloc = ctx
        if self.legacy_2_0:
            _trim_history_before(block, block.ptr + size)
            block.history.insert(0, HistoryEntry(block.ptr, orig_size, ctx))
        self.record(ALLOC, block.ptr, orig_size, block.stream, ctx)
        self.active_blocks[id(block)] = block
        self.stats.allocated += block.size
        self.stats.peak_allocated = max(self.stats.peak_allocated, self.stats.allocated)
        return block

    def free_block(self, block, ctx):
        if block.allocated or block.event_count:
            raise ModelError(f"free_block of a live block {block.ptr:#x}")
        if self.legacy_2_0:
            if block.history:
                self.record(FREE_COMPLETED, block.ptr, block.history[0].real_size,
                            block.stream, block.history[0].ctx)
        else:
            self.record(FREE_COMPLETED, block.ptr, block.requested_size, block.stream,
                        ctx or block.ctx_alloc)
            block.ctx_alloc = None
        pool = block.pool
        for candidate in (block.prev, block.next):
            self.try_merge_blocks(block, candidate, pool)
        del self.active_blocks[id(block)]
        pool.insert_into_blocks(block)

    def try_merge_blocks(self, dst, src, pool):
        if (src is None or src.allocated or src.event_count > 0 or dst.mapped != src.mapped):
            return 0
        if dst.prev is src:  # [src dst]
            dst.ptr = src.ptr
            dst.prev = src.prev
            if dst.prev is not None:
                dst.prev.next = dst
            dst.ctx_segment = src.ctx_segment
            if self.legacy_2_0 and src.history:
                dst.history = src.history + dst.history
        else:  # [dst src]
            dst.next = src.next
            if dst.next is not None:
                dst.next.prev = dst
            if self.legacy_2_0 and src.history:
                dst.history = dst.history + src.history
        dst.size += src.size
        if src.mapped:
            pool.blocks.erase(src)
        else:
            pool.unmapped.erase(src)
        return src.size

    def should_split(self, block, size):
        remaining = block.size - size
        if block.pool.is_small or self.config.expandable_segments:
            return remaining >= K_MIN_BLOCK_SIZE
        return size < self.config.max_split_size and remaining > K_SMALL_SIZE

    def get_free_block(self, pool, size, stream):
        if self.set_fraction:
            pool.get_free_blocks_call_count += 1
        blocks = pool.blocks
        i = blocks.lower_bound((stream, size, 0))
        if i == len(blocks) or blocks.blocks[i].stream != stream:
            return None
        if blocks.blocks[i].expandable is not None:
            if self.config.expandable_segments:
                def expandable_size(b):
                    return b.size + (b.next.size if b.next is not None and not b.next.mapped
                                     else 0)
                nxt = i + 1
                while (blocks.blocks[i].expandable is not None and nxt < len(blocks)
                       and blocks.blocks[nxt].stream == stream
                       and expandable_size(blocks.blocks[nxt])
                       < expandable_size(blocks.blocks[i])):
                    i = nxt
                    nxt += 1
            else:
                i += 1
                while (i < len(blocks) and blocks.blocks[i].expandable is not None
                       and blocks.blocks[i].stream == stream):
                    i += 1
                if i == len(blocks) or blocks.blocks[i].stream != stream:
                    return None
        block = blocks.blocks[i]
        max_split = self.config.max_split_size
        if size < max_split and block.size >= max_split:
            return None
        if size >= max_split and block.size >= size + self.config.max_non_split_rounding:
            return None
        blocks.erase(block)
        return block

    def garbage_collect_cached_blocks(self, ctx):
        threshold = int(self.config.garbage_collection_threshold * self.allowed_memory_maximum)
        if self.stats.reserved <= threshold:
            return
        target = self.stats.reserved - threshold
        reclaimed = 0
        total_age, freeable = 0, 0
        for b in self.large_blocks.blocks:
            if not b.is_split():
                total_age += b.gc_count()
                freeable += 1
        if freeable == 0:
            return
        block_freed = True
        while reclaimed < target and block_freed and freeable > 0:
            age_threshold = total_age / freeable
            block_freed = False
            for b in self.large_blocks.blocks:  # iterates a copy; b is still filed
                if not b.is_split() and b.gc_count() >= age_threshold:
                    block_freed = True
                    reclaimed += b.size
                    total_age -= b.gc_count()
                    freeable -= 1
                    self.stats.num_gc_releases += 1
                    self.release_block(b, ctx)

    def alloc_block(self, pool, size, alloc_size, stream, is_retry, ctx):
        if is_retry:
            self.stats.num_alloc_retries += 1
        if self.set_fraction and self.stats.reserved + alloc_size > self.allowed_memory_maximum:
            return None
        if self.config.expandable_segments:
            return self.try_allocate_expandable_block(stream, pool, size, ctx)
        if self.capacity is not None and self.stats.reserved + alloc_size > self.capacity:
            return None  # cudaMalloc: cudaErrorMemoryAllocation
        ptr = self._virtual_range(alloc_size)
        self._reserve(alloc_size)
        block = Block(self.device, stream, alloc_size, pool, ptr)
        self.stats.num_device_alloc += 1
        self.record(SEGMENT_ALLOC, ptr, alloc_size, stream, ctx)
        block.ctx_segment = ctx
        return block

    def release_available_cached_blocks(self, pool, size, stream, ctx):
        max_split = self.config.max_split_size
        if max_split == SIZE_MAX:
            return False
        key_size = max(size, max_split)
        blocks = pool.blocks
        i = blocks.lower_bound((stream, key_size, 0))
        if i == len(blocks) or blocks.blocks[i].stream != stream:
            if i == 0:
                return False
            released = 0
            i -= 1
            while (released < key_size and blocks.blocks[i].size >= max_split
                   and blocks.blocks[i].stream == stream):
                current = blocks.blocks[i]
                released += current.size
                self.release_block(current, ctx)
                if i == 0:
                    break
                i -= 1
            if released < key_size:
                return False
        else:
            self.release_block(blocks.blocks[i], ctx)
        return True

    def release_cached_blocks(self, ctx):
        self.synchronize_and_free_events(ctx)
        self.release_blocks(self.large_blocks, ctx)
        self.release_blocks(self.small_blocks, ctx)
        return True

    def release_blocks(self, pool, ctx):
        to_unmap = []
        for block in pool.blocks:  # a copy, in (stream, size, address) order
            if block.expandable is not None:
                to_unmap.append(block)
            elif not block.is_split():
                self.release_block(block, ctx)
        for block in to_unmap:
            self.unmap_block(block, ctx)
            if block.prev is None and block.next is None:
                self.release_expandable_segment(block)

    def release_block(self, block, ctx):
        if block.expandable is not None:
            raise ModelError("release_block of an expandable block")
        if block.is_split():
            # PyTorch would cudaFree an address inside a segment; the workloads avoid this.
            raise ModelError(f"release of split block {block.ptr:#x}")
        self.stats.num_device_free += 1
        if self.legacy_2_0:
            if block.history:
                self.record(SEGMENT_FREE, block.ptr, block.size, block.stream,
                            block.history[0].ctx)
        else:
            self.record(SEGMENT_FREE, block.ptr, block.size, block.stream,
                        ctx or block.ctx_segment)
        self.stats.reserved -= block.size
        block.pool.blocks.erase(block)

    # ---------------------------------------------------------------- expandable segments
    def find_expandable_block(self, stream, pool, size):
        def allocatable(b):
            return b is not None and not b.allocated and b.event_count == 0

        def has_room(b):
            total = 0
            while total < size and allocatable(b):
                total += b.size
                b = b.next
            return total >= size

        unmapped = pool.unmapped
        i = unmapped.lower_bound((stream, 0))
        while i < len(unmapped) and unmapped.blocks[i].stream == stream:
            c = unmapped.blocks[i]
            if allocatable(c.prev):
                c = c.prev
            if has_room(c):
                return c
            i += 1
        page = K_SMALL_BUFFER if pool.is_small else K_LARGE_BUFFER
        memory = self.capacity if self.capacity is not None else DEFAULT_DEVICE_MEMORY
        address_space = memory + memory // 8
        pages = (address_space + page - 1) // page
        segment = ExpandableSegment(self._virtual_range(page * pages), page, pages)
        self.expandable_segments.append(segment)
        candidate = Block(self.device, stream, segment.size, pool, segment.ptr)
        candidate.mapped = False
        candidate.expandable = segment
        pool.unmapped.insert(candidate)
        return candidate

    def map_block(self, to_map, size, ctx):
        segment = to_map.expandable
        begin, end = segment.left(to_map.ptr), segment.right(to_map.ptr + size)
        if begin == end:
            return False
        for i in range(begin, end):
            if i in segment.mapped:
                raise ModelError("mapping a mapped page")
            if (self.capacity is not None
                    and self.stats.reserved + (i - begin + 1) * segment.page > self.capacity):
                return False  # cuMemCreate: CUDA_ERROR_OUT_OF_MEMORY (pages rolled back)
        segment.mapped.update(range(begin, end))
        mapped_ptr, mapped_size = segment.ptr + begin * segment.page, (end - begin) * segment.page
        pool = to_map.pool
        pool.unmapped.erase(to_map)
        to_map.mapped = True
        if mapped_size < to_map.size:
            remaining = Block(self.device, to_map.stream, to_map.size - mapped_size, pool,
                              to_map.ptr + mapped_size)
            remaining.mapped = False
            remaining.expandable = segment
            remaining.splice(to_map, to_map.next)
            pool.unmapped.insert(remaining)
            to_map.size = mapped_size
        self.try_merge_blocks(to_map, to_map.prev, pool)
        self.try_merge_blocks(to_map, to_map.next, pool)
        pool.insert_into_blocks(to_map)
        self._reserve(mapped_size)
        self.stats.num_device_alloc += 1
        self.record(SEGMENT_MAP, mapped_ptr, mapped_size, to_map.stream, ctx)
        if to_map.prev is None and to_map.ctx_segment is None:
            to_map.ctx_segment = ctx
        return True

    def try_allocate_expandable_block(self, stream, pool, size, ctx):
        candidate = self.find_expandable_block(stream, pool, size)
        if not candidate.mapped and not self.map_block(candidate, min(candidate.size, size), ctx):
            return None
        while candidate.size < size:
            remaining = size - candidate.size
            new_candidate = candidate.next
            if not self.map_block(new_candidate, min(remaining, new_candidate.size), ctx):
                return None
            candidate = new_candidate
        pool.blocks.erase(candidate)
        return candidate

    def unmap_block(self, block, ctx):
        segment = block.expandable
        begin, end = segment.right(block.ptr), segment.left(block.ptr + block.size)
        if begin >= end:
            return
        segment.mapped.difference_update(range(begin, end))
        unmapped_ptr = segment.ptr + begin * segment.page
        unmapped_size = (end - begin) * segment.page
        pool = block.pool
        pool.blocks.erase(block)
        before_size = unmapped_ptr - block.ptr
        if before_size > 0:
            before = Block(self.device, block.stream, before_size, pool, block.ptr)
            before.expandable = segment
            before.splice(block.prev, block)
            pool.insert_into_blocks(before)
        after_size = block.size - (before_size + unmapped_size)
        if after_size > 0:
            after = Block(self.device, block.stream, after_size, pool,
                          unmapped_ptr + unmapped_size)
            after.expandable = segment
            after.splice(block, block.next)
            pool.insert_into_blocks(after)
        block.ptr = unmapped_ptr
        block.size = unmapped_size
        block.mapped = False
        self.try_merge_blocks(block, block.prev, pool)
        self.try_merge_blocks(block, block.next, pool)
        pool.unmapped.insert(block)
        self.stats.reserved -= unmapped_size
        self.stats.num_device_free += 1
        self.record(SEGMENT_UNMAP, unmapped_ptr, unmapped_size, block.stream,
                    ctx or block.ctx_segment)

    def release_expandable_segment(self, block):
        if block.size != block.expandable.size or block.mapped:
            raise ModelError("releasing a partly mapped expandable segment")
        self.expandable_segments.remove(block.expandable)
        block.pool.unmapped.erase(block)

    # ---------------------------------------------------------------- snapshot
    def segments(self):
        """The allocator's snapshot(): one SegmentInfo per segment (per contiguous mapped range
        of an expandable segment), sorted by address."""
        all_blocks = (list(self.small_blocks.blocks.blocks) + list(self.large_blocks.blocks.blocks)
                      + list(self.active_blocks.values()))
        result = []
        for head in all_blocks:
            if head.prev is not None and head.prev.mapped:
                continue
            blocks = []
            b = head
            while b is not None and b.mapped:
                blocks.append(b)
                b = b.next
            result.append(SegmentInfo(self.device, head, blocks))
        result.sort(key=lambda s: s.address)
        return result


def replay(trace, config, capacity=None, device=0):
    """Replays one device's trace entries (dicts as in a snapshot, or the model's tuples)
    through a fresh allocator, the way a simulator consumes them: alloc -> malloc;
    free_requested -> the block stops being allocated (pending until its free_completed);
    free_completed -> merged back; oom -> a malloc of its (rounded) size that must fail;
    segment_*, snapshot -> ignored (the model derives them). Returns the allocator."""
    allocator = DeviceAllocator(device, config, Clock(), capacity)
    live, pending = {}, {}
    for e in trace:
        if isinstance(e, dict):
            action, addr, size, stream = (e["action"], e.get("addr", 0), e["size"],
                                          e["stream"])
        else:
            action, addr, size, stream = e[:4]
        if action == ALLOC:
            block = allocator.malloc(size, stream, None)
            if block.ptr != addr:
                raise ModelError(f"replay: alloc at {block.ptr:#x}, trace says {addr:#x}")
            live[addr] = block
        elif action == FREE_REQUESTED:
            block = live.pop(addr)
            allocator.free(block, None, ready_at=1 << 62)  # completed by its free_completed
            pending[addr] = block
        elif action == FREE_COMPLETED:
            block = pending.pop(addr)
            allocator.events = [ev for ev in allocator.events if ev[0] is not block]
            block.event_count = 0
            allocator.free_block(block, None)
        elif action == OOM:
            try:
                allocator.malloc(size, stream, None)
            except OutOfMemory:
                continue
            raise ModelError("replay: the oom entry's request succeeded")
    return allocator


def _trim_history_before(block, point):
    while block.history and block.history[0].addr < point:
        block.history.pop(0)


class SegmentInfo:
    def __init__(self, device, head, blocks):
        self.device = device
        self.address = head.ptr
        self.stream = head.stream
        self.is_large = not head.pool.is_small
        self.is_expandable = head.expandable is not None
        self.ctx = head.ctx_segment
        self.blocks = [BlockInfo(b) for b in blocks]
        self.total_size = sum(b.size for b in self.blocks)
        self.allocated_size = sum(b.size for b in self.blocks if b.allocated)
        self.active_size = sum(b.size for b in self.blocks if b.active)
        self.requested_size = sum(b.requested_size for b in self.blocks if b.active)


class BlockInfo:
    def __init__(self, block):
        self.address = block.ptr
        self.size = block.size
        self.requested_size = block.requested_size
        self.allocated = block.allocated
        self.active = block.allocated or block.event_count > 0
        self.ctx = block.ctx_alloc
        self.history = list(block.history)

    @property
    def state(self):
        if self.allocated:
            return "active_allocated"
        return "active_pending_free" if self.active else "inactive"


def metrics(segments, max_split_size=SIZE_MAX):
    """The figures of the fragmentation metrics (issue #5) for one device's segments."""
    m = dict.fromkeys(("reserved_bytes", "allocated_bytes", "active_bytes", "requested_bytes",
                       "pending_free_bytes", "external_free_bytes", "inactive_split_bytes",
                       "largest_free_block_bytes", "oversize_count", "oversize_bytes"), 0)
    occupancy = []
    for s in segments:
        if s.total_size != sum(b.size for b in s.blocks):
            raise ModelError(f"segment {s.address:#x}: total_size != sum of block sizes")
        m["reserved_bytes"] += s.total_size
        for b in s.blocks:
            state = b.state
            if state == "active_allocated":
                m["allocated_bytes"] += b.size
                m["requested_bytes"] += b.requested_size
            if state != "inactive":
                m["active_bytes"] += b.size
            if state == "active_pending_free":
                m["pending_free_bytes"] += b.size
            if state == "inactive":
                m["external_free_bytes"] += b.size
                if len(s.blocks) > 1:
                    m["inactive_split_bytes"] += b.size
                m["largest_free_block_bytes"] = max(m["largest_free_block_bytes"], b.size)
            if max_split_size != SIZE_MAX and b.size >= max_split_size:
                m["oversize_count"] += 1
                m["oversize_bytes"] += b.size
        occupancy.append(s.allocated_size / s.total_size)
    m["internal_free_bytes"] = m["allocated_bytes"] - m["requested_bytes"]
    ext = m["external_free_bytes"]
    m["external_fragmentation"] = (1 - m["largest_free_block_bytes"] / ext) if ext else 0.0
    m["oversize_share"] = (m["oversize_bytes"] / m["reserved_bytes"]
                           if m["reserved_bytes"] else 0.0)
    m["segment_count"] = len(segments)
    m["segment_sizes"] = [s.total_size for s in segments]
    m["segment_occupancy"] = occupancy
    identity = (m["requested_bytes"] + m["internal_free_bytes"] + m["external_free_bytes"]
                + m["pending_free_bytes"])
    if identity != m["reserved_bytes"]:
        raise ModelError(f"metrics identity broken: {identity} != {m['reserved_bytes']}")
    return m


def check_invariants(allocator):
    """Structure checks: blocks contiguous inside each segment, Σ sizes == total_size, no two
    segments overlap, reserved bytes == Σ segment sizes, pools hold exactly the free blocks."""
    segments = allocator.segments()
    last_end = None
    reserved = 0
    for s in segments:
        if last_end is not None and s.address < last_end:
            raise ModelError(f"segment {s.address:#x} overlaps the one before")
        addr = s.address
        for b in s.blocks:
            if b.address != addr:
                raise ModelError(f"segment {s.address:#x}: gap or overlap at {addr:#x}")
            if b.size <= 0:
                raise ModelError(f"empty block at {addr:#x}")
            addr += b.size
        if addr - s.address != s.total_size:
            raise ModelError(f"segment {s.address:#x}: blocks do not add up")
        last_end = addr
        reserved += s.total_size
    if reserved != allocator.stats.reserved:
        raise ModelError(f"reserved {allocator.stats.reserved} != segments {reserved}")
    for pool in (allocator.small_blocks, allocator.large_blocks):
        for b in pool.blocks:
            if b.allocated or b.event_count or not b.mapped:
                raise ModelError(f"pool holds a live or unmapped block {b.ptr:#x}")
    return segments
