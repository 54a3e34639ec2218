"""A real (small) PyTorch CPU training job with DataLoader worker processes, for end-to-end
tests of `memscope run`. Runs with Debian's python3-torch under /usr/bin/python3."""
import sys

import torch
from torch.utils.data import DataLoader, Dataset


class Items(Dataset):
    """Python-object items, as many real datasets are: workers touch them (copy-on-read)."""

    def __init__(self, count):
        self.items = [[float(i % 97)] * 64 for i in range(count)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        features = torch.tensor(self.items[index])
        return features, features.sum() % 10


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    optimizer = torch.optim.Adam(model.parameters())
    loader = DataLoader(Items(20000), batch_size=256, shuffle=True, num_workers=workers)
    for epoch in range(epochs):
        total = 0.0
        for features, labels in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(features), labels.long())
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch}: loss {total:.2f}", flush=True)


if __name__ == "__main__":
    main()
