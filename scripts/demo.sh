#!/usr/bin/env bash
# README command 1: install what is missing, build, and record the bundled demo workload
# (a small program that allocates in training-like steps, has two worker processes and leaks a
# little). Ends with the summary on the terminal and memscope-demo.html beside this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target memscope memscope_demo
build/release/memscope run --interval 0.1 --output memscope-demo.db --html memscope-demo.html \
  -- build/release/tests/memscope_demo 40 400 1024
echo "demo: report written to $(pwd)/memscope-demo.html (session: memscope-demo.db)"
