#!/usr/bin/env bash
# memscope agents in a real Prometheus: promtool accepts deploy/prometheus (config, rules, and the
# rules' unit tests); then three agents on loopback ports (fake NVML: two GPUs that hold steady,
# one whose memory ramps to 99.6 %) and two processes with RANK set are scraped every second by
# a Prometheus evaluating deploy/prometheus/memscope_rules.yml (every `for:` cut to 2 s), and its
# HTTP API must show: all three targets up; each agent's GPU series with its gpu and uuid, the
# ranked processes with pid, comm, rank and all four kinds; MemscopeOomRiskCritical firing for
# the ramping GPU's node and not the steady ones; every query of the Grafana dashboard running;
# MemscopeAgentDown firing once an agent is killed. Everything started is stopped on exit.
#
# Environment (set by ctest): MEMSCOPE_BIN, MEMSCOPE_FAKE_NVML, MEMSCOPE_TEST_DATA,
# MEMSCOPE_SOURCE_DIR. PROMETHEUS_TEST_KEEP=DIR keeps the logs there.
# Exit status 77: skipped (prometheus/promtool not installed, binaries not built).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
source_dir=${MEMSCOPE_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
test_data=${MEMSCOPE_TEST_DATA:-$source_dir/tests/data}
deploy=$source_dir/deploy/prometheus
check="python3 $here/prometheus/check_prometheus.py"
command -v prometheus >/dev/null || skip "prometheus is not installed (Debian package prometheus)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian package prometheus)"
[[ -x "${MEMSCOPE_BIN:-}" ]] || skip "MEMSCOPE_BIN is not an executable: '${MEMSCOPE_BIN:-}'"
[[ -f "${MEMSCOPE_FAKE_NVML:-}" ]] || skip "MEMSCOPE_FAKE_NVML is not a file: '${MEMSCOPE_FAKE_NVML:-}'"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memscope-prometheus-XXXXXX")
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 ]]; then
    for log in "$tmp"/*.err; do [[ -f $log ]] && { echo "== $log"; tail -15 "$log"; } >&2; done
  fi
  [[ -n "${PROMETHEUS_TEST_KEEP:-}" ]] && cp -r "$tmp"/*.err "$tmp"/*.yml "$PROMETHEUS_TEST_KEEP"/ 2>/dev/null
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== promtool on deploy/prometheus"
promtool check rules "$deploy/memscope_rules.yml" || fail "promtool check rules"
promtool check config "$deploy/prometheus.yml" || fail "promtool check config"
(cd "$deploy" && promtool test rules memscope_rules_test.yml) || fail "promtool test rules"

# Two ranks of a "training job": every agent reports them (RANK in the environment, our user).
for rank in 0 1; do
  env RANK=$rank LOCAL_RANK=$rank WORLD_SIZE=2 sleep 600 &
  pids+=($!)
done
rank_pids=("--rank-pid" "0=${pids[0]}" "--rank-pid" "1=${pids[1]}")

# Three agents; node3's GPU fills up (1 -> 23.9 of 24 GiB in ~8 s, then holds).
scenarios=(gpu_stable_sawtooth gpu_stable_sawtooth gpu_startup_ramp)
for i in 1 2 3; do
  MEMSCOPE_NVML_LIBRARY=$MEMSCOPE_FAKE_NVML \
    MEMSCOPE_FAKE_NVML_SCENARIO=$test_data/nvml/${scenarios[$((i - 1))]}.json \
    "$MEMSCOPE_BIN" agent --listen 127.0.0.1:0 --interval 0.25 2>"$tmp/agent$i.err" &
  pids+=($!)
  agent_pid[i]=$!
done
for i in 1 2 3; do
  for _ in $(seq 300); do
    grep -q 'listening on' "$tmp/agent$i.err" && break
    kill -0 "${agent_pid[$i]}" 2>/dev/null || fail "agent $i exited: $(cat "$tmp/agent$i.err")"
    sleep 0.1
  done
  endpoint[i]=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$tmp/agent$i.err" | head -n1)
  [[ -n "${endpoint[$i]}" ]] || fail "agent $i did not say where it listens: $(cat "$tmp/agent$i.err")"
done
echo "agents: ${endpoint[*]}"
uuid() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["devices"][0]["uuid"])' "$1"; }

# The test's copy of the rules: the same expressions, every `for:` 2 s.
sed -E 's/^( +for: ).*/\12s/' "$deploy/memscope_rules.yml" >"$tmp/rules.yml"
grep -q 'for: 2s' "$tmp/rules.yml" || fail "the rules have no 'for:' to shorten"
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: memscope
    static_configs:
      - {targets: ["${endpoint[1]}"], labels: {node: node1}}
      - {targets: ["${endpoint[2]}"], labels: {node: node2}}
      - {targets: ["${endpoint[3]}"], labels: {node: node3}}
YML
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "the test's config: $(promtool check config "$tmp/prometheus.yml" 2>&1)"

# A free loopback port for Prometheus (it cannot report one it picked itself); retried if taken.
for attempt in 1 2 3; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb$attempt" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn 2>"$tmp/prometheus$attempt.err" &
  prometheus_pid=$!
  pids+=("$prometheus_pid")
  url=http://127.0.0.1:$port
  for _ in $(seq 150); do
    curl -fs "$url/-/ready" >/dev/null 2>&1 && break
    kill -0 "$prometheus_pid" 2>/dev/null || break
    sleep 0.2
  done
  curl -fs "$url/-/ready" >/dev/null 2>&1 && break
  kill "$prometheus_pid" 2>/dev/null || true
  [[ $attempt -eq 3 ]] && fail "Prometheus did not become ready: $(tail -5 "$tmp/prometheus$attempt.err")"
done
echo "prometheus: $url ($(prometheus --version 2>&1 | head -n1))"

echo "== targets up, series with their labels"
$check "$url" targets --deadline 30 "node1=${endpoint[1]}" "node2=${endpoint[2]}" "node3=${endpoint[3]}" \
  || fail "targets"
$check "$url" series --deadline 30 "${rank_pids[@]}" \
  "node1=$(uuid "$test_data/nvml/${scenarios[0]}.json")" \
  "node2=$(uuid "$test_data/nvml/${scenarios[1]}.json")" \
  "node3=$(uuid "$test_data/nvml/${scenarios[2]}.json")" || fail "series"

echo "== the GPU that fills up raises MemscopeOomRiskCritical (within 60 s)"
$check "$url" alert --deadline 60 MemscopeOomRiskCritical node3 resource=gpu0 severity=critical \
  || fail "no critical OOM alert for the filling GPU"
for node in node1 node2; do
  $check "$url" no-alert MemscopeOomRiskCritical "$node" 'resource=gpu.*' || fail "false alarm"
done

echo "== the Grafana dashboard's queries"
$check "$url" dashboard "$deploy/grafana/memscope-dashboard.json" || fail "dashboard"

echo "== an agent stops: MemscopeAgentDown (within 30 s)"
kill "${agent_pid[2]}"
$check "$url" alert --deadline 30 MemscopeAgentDown node2 severity=warning || fail "no agent-down alert"
$check "$url" no-alert MemscopeAgentDown node1 'instance=.*' || fail "agent-down alarm for a running agent"

echo "PASS"
