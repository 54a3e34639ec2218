#!/usr/bin/python3
"""The psutil side of bench/sample_cost: reads the fields memscope reads for every process of
the tree rooted at --root, --samples + 1 times (back to back unless --sleep), and prints one JSON line per sample
with the CPU time (user + sys of this process) that sample cost. The first sample is the cold
one. Run by sample_cost with Debian's python3-psutil under /usr/bin/python3.

Modes:
  all     what a straightforward psutil monitor does every sample: find the tree with
          Process(root).children(recursive=True), then for each process, inside oneshot():
          memory_full_info() (rss, pss, uss, swap), ppid, name, status, create_time, cmdline,
          environ.
  memory  psutil's floor: the Process objects of the tree are made once, before the first
          sample; each sample calls only memory_full_info() on them.
"""
import argparse
import json
import os
import sys
import time

import psutil


def read_all(root_pid):
    root = psutil.Process(root_pid)
    processes = [root] + root.children(recursive=True)
    rows = []
    for process in processes:
        try:
            with process.oneshot():
                memory = process.memory_full_info()
                rows.append((process.pid, process.ppid(), process.name(), process.status(),
                             process.create_time(), process.cmdline(), process.environ(),
                             memory.rss, memory.pss, memory.uss, memory.swap))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rows


def read_memory(processes):
    rows = []
    for process in processes:
        try:
            memory = process.memory_full_info()
            rows.append((process.pid, memory.rss, memory.pss, memory.uss, memory.swap))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=int, required=True)
    parser.add_argument("--samples", type=int, default=30, help="steady samples after the cold one")
    parser.add_argument("--mode", choices=("all", "memory"), default="all")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds slept between samples")
    args = parser.parse_args()

    if args.mode == "memory":
        root = psutil.Process(args.root)
        processes = [root] + root.children(recursive=True)
        sample = lambda: read_memory(processes)
    else:
        sample = lambda: read_all(args.root)

    for index in range(args.samples + 1):
        if index > 0 and args.sleep > 0:
            time.sleep(args.sleep)
        times_before = os.times()
        cpu_before = time.process_time()
        wall_before = time.perf_counter()
        rows = sample()
        wall = time.perf_counter() - wall_before
        cpu = time.process_time() - cpu_before
        times_after = os.times()
        print(json.dumps({
            "sample": index,
            "processes": len(rows),
            "cpu_seconds": cpu,
            "user_seconds": times_after.user - times_before.user,
            "sys_seconds": times_after.system - times_before.system,
            "wall_seconds": wall,
        }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
