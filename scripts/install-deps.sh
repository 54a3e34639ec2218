#!/usr/bin/env bash
# Installs the Debian packages memscope needs that are missing, and nothing else. Idempotent:
# with everything present it only checks (a second or so). Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ clang-14 clang-tidy-14 pkg-config
  libcli11-dev nlohmann-json3-dev libfmt-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libzstd-dev libdw-dev libunwind-dev   # allocation traces: compression, symbols, stacks
  liblz4-dev                # BufferPool's fast compression (zstd is the other)
  libncurses-dev            # memscope interactive / top
  pybind11-dev python3-dev  # the Python module, built for /usr/bin/python3
  libjs-dygraphs            # embedded into HTML reports
  # run time (optional): static charts for `profile --plot FILE.svg|png`
  gnuplot-nox
  # tests and benchmarks
  python3 python3-torch python3-psutil python3-pytest sqlite3 chromium
  tmux                      # memscope interactive is tested inside tmux
  heaptrack                 # the allocation tracker's benchmark compares against it
  librust-nvml-wrapper-sys-dev   # NVIDIA-header-generated layouts our NVML structs are checked against
  prometheus                # deploy/prometheus checks (promtool) and the agent's integration test
  wrk                       # bench/run_all.sh agent: scrape latency under load
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
