#!/usr/bin/env bash
# `memscope run -- /usr/bin/python3 train.py` on a real PyTorch CPU training job: the DataLoader
# workers must show up as children of the launcher, each with its own USS.
set -euo pipefail
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "SKIP: Debian's python3-torch is not installed"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)

"$MEMSCOPE_BIN" --nvml-library /nonexistent run --interval 0.2 --output "$tmp/s.db" \
  --csv "$tmp/s.csv" -- /usr/bin/python3 "$here/train.py" 2 2 2> "$tmp/err"
cat "$tmp/err"
grep -q "exited with status 0" "$tmp/err"

/usr/bin/python3 - "$tmp/s.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows, "no rows"
pids = {}
for row in rows:
    pids.setdefault(int(row["pid"]), row)
root = min(pids, key=lambda pid: float(pids[pid]["t"]))
workers = {pid for pid, row in pids.items() if int(row["ppid"]) == root}
assert len(workers) >= 2, f"expected >= 2 DataLoader workers under {root}, got {workers}"
peak_uss = {pid: max(int(r["uss_bytes"]) for r in rows if int(r["pid"]) == pid) for pid in workers}
assert all(uss > 0 for uss in peak_uss.values()), peak_uss
print(f"launcher {root} with workers {sorted(workers)}; worker peak USS: "
      + ", ".join(f"{pid}={uss >> 20} MiB" for pid, uss in sorted(peak_uss.items())))
PY
echo "PASS"
