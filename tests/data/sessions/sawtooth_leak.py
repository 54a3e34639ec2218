#!/usr/bin/python3
"""A leak under a big sawtooth, on the host (no torch): the workload of host_sawtooth_leak.db.

Every 2 s cycle: allocate and fill 4 x 50 MiB, one every 0.25 s (200 MiB at 0.75 s), free them
all at 1.0 s, idle until the next cycle; and keep 4 MiB per cycle for good (the leak), so the
peaks grow 4 MiB per 2 s = 2 MiB/s on top of a ~200 MiB tooth. 30 cycles = 60 s.

    build-rec/memscope run --no-gpu --interval 0.2 --output tests/data/sessions/host_sawtooth_leak.db \
        -- /usr/bin/python3 tests/data/sessions/sawtooth_leak.py
"""

import time

MIB = 1 << 20
CHUNK = 50 * MIB  # above glibc's largest mmap threshold (32 MiB): mmap'd, returned on free
STEPS = 4
STEP_SECONDS = 0.25
CYCLE_SECONDS = 2.0
LEAK = 4 * MIB
CYCLES = 30


def filled(size):
    # One allocation, every byte written (memset), so every page is resident and private.
    return bytearray(b"\xa5") * size


def sleep_until(deadline):
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def main():
    kept = []  # the leak
    start = time.monotonic()
    for cycle in range(CYCLES):
        t0 = start + cycle * CYCLE_SECONDS
        activations = []
        for step in range(STEPS):
            sleep_until(t0 + step * STEP_SECONDS)
            activations.append(filled(CHUNK))
        kept.append(filled(LEAK))
        sleep_until(t0 + STEPS * STEP_SECONDS)
        activations.clear()  # the tooth falls
    sleep_until(start + CYCLES * CYCLE_SECONDS)
    print(f"sawtooth_leak: {CYCLES} cycles, kept {len(kept) * LEAK // MIB} MiB", flush=True)


if __name__ == "__main__":
    main()
