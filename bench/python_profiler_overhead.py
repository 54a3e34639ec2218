#!/usr/bin/python3
"""Overhead of the Python MemoryProfiler on a training step (goal: < 1 %).

A small MLP is trained on the CPU in rounds of --round-seconds each, alternating rounds without
and with memscope.MemoryProfiler monitoring at --interval (default: the profiler's default, 1 s),
so drift of the machine (other jobs, frequency) hits both sides alike. Each round gives the
median wall time of one step and the process's CPU time per step (which includes the
profiler's sampling thread, and is far less disturbed by other jobs on a shared machine than
wall time). The result: the median over rounds of each side, and the median of the per-pair
ratios (each profiled round against the plain round next to it). Last, the direct cost: the
CPU time of one sample (sample_now(), hooks included) and what that is per second at the
interval, against the CPU one training step takes: an upper bound of the overhead that other
jobs on the machine cannot blur.

    PYTHONPATH=build/release/python /usr/bin/python3 bench/python_profiler_overhead.py
    ... --rounds 20 --round-seconds 3 --hook    # also a Python sample hook at every sample

Prints a markdown table on stdout; per-round lines go to stderr.
"""

import argparse
import statistics
import sys
import time

import torch

import memscope


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12, help="rounds of each side (12)")
    parser.add_argument("--round-seconds", type=float, default=3.0, help="length of a round (3)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="profiler sampling interval in seconds (1.0, its default)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (32)")
    parser.add_argument("--width", type=int, default=256, help="hidden layer width (256)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument("--hook", action="store_true",
                        help="add a Python sample hook (the GIL is taken at every sample)")
    return parser.parse_args()


def make_training_step(batch, width):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, width), torch.nn.ReLU(),
        torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs = torch.randn(batch, 256)
    targets = torch.randint(0, 10, (batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def timed_round(step, seconds):
    """(median wall time of one step, process CPU time per step, steps) over one round."""
    durations = []
    cpu_started = time.process_time()
    end = time.perf_counter() + seconds
    while True:
        started = time.perf_counter()
        step()
        finished = time.perf_counter()
        durations.append(finished - started)
        if finished >= end:
            cpu_per_step = (time.process_time() - cpu_started) / len(durations)
            return statistics.median(durations), cpu_per_step, len(durations)


def main():
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    step = make_training_step(args.batch, args.width)
    profiler = memscope.MemoryProfiler(interval=args.interval, gpus=False)
    if args.hook:
        profiler.add_sample_hook(lambda: {"bench.hook": 1.0})
    timed_round(step, 1.0)  # warm-up: allocator, autograd graph, caches

    rounds = {"plain": [], "profiled": []}  # (wall median, CPU per step) per round
    for index in range(args.rounds):
        # Alternate which side goes first, so neither always follows the other.
        order = ("plain", "profiled") if index % 2 == 0 else ("profiled", "plain")
        for side in order:
            if side == "profiled":
                profiler.start_monitoring()
            wall, cpu, steps = timed_round(step, args.round_seconds)
            if side == "profiled":
                profiler.stop_monitoring()
            rounds[side].append((wall, cpu))
            print(f"round {index + 1} {side}: {wall * 1e3:.4f} ms/step wall, "
                  f"{cpu * 1e3:.4f} ms/step CPU over {steps} steps", file=sys.stderr)

    def median_of(side, which):
        return statistics.median(entry[which] for entry in rounds[side])

    def pair_ratio(which):
        return statistics.median(profiled[which] / plain[which]
                                 for plain, profiled in zip(rounds["plain"], rounds["profiled"]))

    label = f"MemoryProfiler (interval {args.interval:g} s{', Python hook' if args.hook else ''})"
    print("| side | median wall ms/step | median CPU ms/step | rounds |")
    print("|---|---:|---:|---:|")
    for side, name in (("plain", "plain"), ("profiled", label)):
        print(f"| {name} | {median_of(side, 0) * 1e3:.4f} | {median_of(side, 1) * 1e3:.4f} "
              f"| {len(rounds[side])} |")
    wall_ratio, cpu_ratio = pair_ratio(0), pair_ratio(1)
    print(f"\nmedian per-pair ratio profiled/plain: wall {wall_ratio:.4f} "
          f"({100 * (wall_ratio - 1):+.2f} %), CPU {cpu_ratio:.4f} ({100 * (cpu_ratio - 1):+.2f} %); "
          f"{profiler.samples_taken} samples taken, hook errors {profiler.hook_errors}")
    samples = 50
    cpu_started = time.process_time()
    for _ in range(samples):
        profiler.sample_now()
    sample_cpu = (time.process_time() - cpu_started) / samples
    sampling_share = sample_cpu / args.interval
    print(f"one sample: {sample_cpu * 1e3:.3f} ms CPU (mean of {samples}); at {args.interval:g} s: "
          f"{100 * sampling_share:.3f} % of one core, i.e. {100 * sampling_share:.3f} % of a "
          f"training loop that keeps one core busy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
