#!/usr/bin/env bash
# `memscope leak --enable-tracking` on a real PyTorch CPU training loop: with --leak (each step's
# output and its autograd graph kept alive) the tracker names the call site that holds the
# tensors — PyTorch's CPU allocator, c10::alloc_cpu — as growing, with native stacks whose
# interpreter frames are marked; the same loop without the leak has no such site.
set -euo pipefail
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "SKIP: Debian's python3-torch is not installed"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)

track() {
  local report=$1
  shift
  mkdir -p "$tmp/traces"
  "$MEMSCOPE_BIN" leak --enable-tracking --no-gpu --trace-dir "$tmp/traces" --output "$report" \
    --flamegraph "$tmp/fg" -- /usr/bin/python3 "$here/leaky_train.py" --seconds 12 "$@"
}

check() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
path, expect = sys.argv[1], sys.argv[2]
report = json.load(open(path))
assert report["traces"], "no trace"
main = report["traces"][0]
assert main["complete"] and main["end_reason"] == "exit", main
sites = report["sites"]
torch_sites = [s for s in sites if s["function"].startswith("c10::alloc_cpu")]
growing = [s for s in torch_sites if s["growing"]]
held = sum(s["max_live_bytes"] for s in growing)
print(f"  {len(sites)} sites, {len(torch_sites)} from c10::alloc_cpu, growing ones held "
      f"{held / 2**20:.1f} MiB")
if expect == "leak":
    # Paced at 8 steps/s for 12 s: ~96 outputs with the activations of their graphs.
    assert held > 16 * 2**20, growing
    frames = growing[0]["frames"]
    assert any(f["python_interpreter"] for f in frames), "no interpreter frame marked"
    assert any(f["function"] == "_PyEval_EvalFrameDefault" for f in frames), frames
else:
    assert held < 4 * 2**20, growing
PY
}

track "$tmp/leak.json" --leak
check "$tmp/leak.json" leak
grep -q "c10::alloc_cpu" "$tmp/fg.peak.folded"
grep -q "\[python\] _PyEval_EvalFrameDefault" "$tmp/fg.peak.folded"
track "$tmp/stable.json"
check "$tmp/stable.json" stable
echo "PASS"
