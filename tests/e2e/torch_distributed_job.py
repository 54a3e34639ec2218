"""One rank of a small torch.distributed job (gloo, CPU) for torch_distributed_test.sh, and the
check of the master's report afterwards.

  job.py rank --dir D --big-rank N --big-mib M   one rank (RANK, WORLD_SIZE, MASTER_ADDR/PORT
                                                 from the environment, as torchrun sets them)
  job.py check REPORT.json --big-rank N --big-node H [--nodes a,b]
"""
import argparse
import json
import os
import sys
import time


def run_rank(args):
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    # Every rank holds its model; the big rank also keeps a large buffer alive (touched, so it
    # is resident): the imbalance the master must attribute to it.
    kept = [torch.ones(16 << 20, dtype=torch.uint8)]
    if rank == args.big_rank:
        kept.append(torch.ones(args.big_mib << 20, dtype=torch.uint8))
    with open(os.path.join(args.dir, f"ready-{rank}"), "w") as f:
        f.write(str(os.getpid()))
    step = torch.ones(1024)
    while not os.path.exists(os.path.join(args.dir, "stop")):
        dist.all_reduce(step)
        step /= dist.get_world_size()
        time.sleep(0.2)
    dist.barrier()
    dist.destroy_process_group()
    del kept


def check(args):
    report = json.load(open(args.report))
    problems = []
    ranks = {r["rank"]: r for r in report["ranks"]}
    if sorted(ranks) != list(range(args.world_size)):
        problems.append(f"ranks {sorted(ranks)} != 0..{args.world_size - 1}")
    for number, r in ranks.items():
        if not r["pids"] or r["comm"] == "":
            problems.append(f"rank {number} carries no process: {r}")
    if args.nodes:
        per_node = args.world_size // len(args.nodes)
        for number, r in ranks.items():
            expected = args.nodes[number // per_node]
            if r["hostname"] != expected:
                problems.append(f"rank {number} is on {r['hostname']}, expected {expected}")
    divergent = [d for d in report["divergent_ranks"] if d["kind"] == "level"]
    if [d["rank"] for d in divergent] != [args.big_rank]:
        problems.append(f"divergent ranks {divergent}, expected only rank {args.big_rank}")
    elif args.big_node and divergent[0]["hostname"] != args.big_node:
        problems.append(f"divergent rank named on {divergent[0]['hostname']}, not {args.big_node}")
    bottleneck = report["bottleneck"] or {}
    if args.big_node and bottleneck.get("hostname") != args.big_node:
        problems.append(f"bottleneck {bottleneck}, expected {args.big_node}")
    imbalance = report["imbalance"] or {}
    if not imbalance.get("max_over_mean", 0) > 1.5:
        problems.append(f"imbalance {imbalance} does not show the big rank")
    states = [w["state"] for w in report["workers"]]
    if len(states) != len(args.nodes or [0, 0]) or any(s != "up" for s in states):
        problems.append(f"workers {states}")
    for p in problems:
        print("FAIL:", p)
    if problems:
        print(json.dumps(report, indent=1)[:6000])
        return 1
    print(f"ok: rank {args.big_rank} on {divergent[0]['hostname']} diverges "
          f"({divergent[0]['reason']}); bottleneck {bottleneck.get('reason')}; "
          f"imbalance max/mean {imbalance['max_over_mean']:.2f}")
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("rank")
    r.add_argument("--dir", required=True)
    r.add_argument("--big-rank", type=int, default=3)
    r.add_argument("--big-mib", type=int, default=600)
    c = sub.add_parser("check")
    c.add_argument("report")
    c.add_argument("--big-rank", type=int, default=3)
    c.add_argument("--big-node", default="")
    c.add_argument("--world-size", type=int, default=4)
    c.add_argument("--nodes", type=lambda s: s.split(",") if s else [], default=[])
    args = parser.parse_args()
    if args.mode == "rank":
        run_rank(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
