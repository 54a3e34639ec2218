#!/usr/bin/env bash
# A distributed master following 1,000 fake workers (bench/fake_agents) at 1 Hz on loopback for
# ~60 s: the master's CPU use (% of one core, from /proc/PID/stat utime+stime) over the steady
# part, and how staleness is handled when a batch of fake agents stops answering at 40 s.
#   bench/master_load.sh [BUILD_DIR] [COUNT] [SECONDS]
set -euo pipefail
build=${1:-build/release}
count=${2:-1000}
seconds=${3:-60}
silence_count=$((count / 10))
silence_at=$((seconds * 2 / 3))
bin=$build/memscope
fake=$build/bench/fake_agents
[ -x "$bin" ] && [ -x "$fake" ] || { echo "build memscope and fake_agents in $build first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'kill $master $agents 2>/dev/null || true; rm -rf "$tmp"' EXIT
ticks=$(getconf CLK_TCK)

"$bin" distributed --role master --port 0 --interval 1 --stale-after 3 \
  --duration $((seconds + 5)) --output "$tmp/cluster.json" 2>"$tmp/master.err" &
master=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$tmp/master.err" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
"$fake" --count "$count" --master-port "$port" --duration $((seconds + 5)) \
  --silence-after "$silence_at" --silence-count "$silence_count" 2>"$tmp/fake.err" &
agents=$!

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sleep 10  # registrations and the first pulls
t0=$(date +%s.%N); c0=$(cpu_ticks "$master")
sleep $((silence_at - 10))
t1=$(date +%s.%N); c1=$(cpu_ticks "$master")
sleep $((seconds - silence_at))
t2=$(date +%s.%N); c2=$(cpu_ticks "$master")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$master/status")
wait "$master"
wait "$agents" || true

pct() { awk -v c="$1" -v t="$2" -v hz="$ticks" 'BEGIN { printf "%.1f", 100 * c / hz / t }'; }
steady=$(pct $((c1 - c0)) "$(echo "$t1 - $t0" | bc)")
after=$(pct $((c2 - c1)) "$(echo "$t2 - $t1" | bc)")
echo "master following $count fake workers at 1 Hz:"
echo "  CPU, all answering (t=10..${silence_at}s):   $steady % of one core"
echo "  CPU, $silence_count silent (t=${silence_at}..${seconds}s): $after % of one core"
echo "  peak RSS: $((rss / 1024)) MiB"
# When the silenced batch turned stale, from the master's per-interval lines.
first_stale=$(grep -m1 -o "t=[0-9]*s workers [0-9]* up [1-9][0-9]* stale" "$tmp/master.err" || true)
full_stale=$(grep -m1 -o "t=[0-9]*s workers [0-9]* up $silence_count stale" "$tmp/master.err" || true)
echo "  silenced at t=${silence_at}s; first stale: ${first_stale:-none}; all: ${full_stale:-none}"
/usr/bin/python3 - "$tmp/cluster.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
states = {}
for w in r["workers"]:
    states[w["state"]] = states.get(w["state"], 0) + 1
print(f"  final JSON: {len(r['workers'])} workers {states}, {len(r['ranks'])} ranks, "
      f"divergent {[d['rank'] for d in r['divergent_ranks']]}, "
      f"bottleneck {(r['bottleneck'] or {}).get('endpoint')}")
PY
