"""A real (small) PyTorch CPU training loop for end-to-end tests of `memscope leak`: the MLP of
../shared/traces/ (256->512->512->10, batch 256, Adam). With --leak it keeps every step's output
tensor and its autograd graph (with the activations saved for backward) alive, as the A_leak trace
did; without it, nothing grows. Steps are paced so the leak grows at a known, modest rate. Runs
with Debian's python3-torch under /usr/bin/python3."""
import argparse
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--leak", action="store_true", help="keep each step's output and graph")
    parser.add_argument("--seconds", type=float, default=35, help="how long to train")
    parser.add_argument("--steps-per-second", type=float, default=8)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 10))
    optimizer = torch.optim.Adam(model.parameters())
    features = torch.randn(256, 256)
    labels = torch.randint(0, 10, (256,))
    kept = []  # the leak: grows by one output (and its graph) per step with --leak
    start = time.monotonic()
    steps = 0
    while time.monotonic() - start < args.seconds:
        optimizer.zero_grad()
        output = model(features)
        loss = torch.nn.functional.cross_entropy(output, labels)
        # retain_graph keeps the saved activations, so the kept output holds them all.
        loss.backward(retain_graph=args.leak)
        optimizer.step()
        if args.leak:
            kept.append(output)
        steps += 1
        pause = start + steps / args.steps_per_second - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print(f"{steps} steps in {time.monotonic() - start:.1f} s, kept {len(kept)} outputs",
          flush=True)


if __name__ == "__main__":
    main()
