#!/usr/bin/env bash
# Builds the benchmark programs and runs the measurements reported in docs/BENCHMARKS.md,
# printing markdown (the machine, then one table per measurement) on stdout; progress and raw
# per-round lines go to stderr.
#
#   bench/run_all.sh                 # everything, 3 rounds each
#   ROUNDS=5 bench/run_all.sh sample_cost overhead   # some of them
#
# Measurements (arguments; default all six):
#   sample_cost  bench/sample_cost: per-sample CPU of memscope's process collector vs psutil
#                (bench/psutil_reader.py) and the bare /proc floor, trees of 1, 100, 1000.
#   overhead     bench/cpu_job timed plain and under `memscope run --interval 1`, interleaved,
#                on whichever core the scheduler picks and with everything pinned to core 0.
#   rss          memscope's own peak RSS recording `memscope_spawn_tree 1000 20`, and its CPU.
#   bigrss       bench/sample_cost on 2 processes of 1 GiB resident each: smaps_rollup's cost
#                follows resident pages, not the number of processes.
#   realtime     bench/sample_cost at 1000 processes, memscope and psutil only, with real 1 s
#                sleeps between samples (REALTIME_ROUNDS, default 1): a check that driving the
#                collector in simulated time does not flatter it.
#   oom          bench/oom_eval: the OOM forecast replayed over ../shared/traces and
#                tests/data/sessions, against the truth and an earlyoom-like threshold.
#   tracking     bench/malloc_bench (an allocation storm) timed plain, under
#                `memscope leak --enable-tracking` and under heaptrack, interleaved: slowdowns,
#                memscope's against heaptrack's, and trace sizes. Not in the default set (it needs
#                heaptrack); MALLOC_PAIRS (12000000, about 1 s plain here) sets its size.
#   fragment     a generated PyTorch snapshot (SNAPSHOT_MB, default 500) read and analysed by
#                `memscope fragment` against Python's pickle.load of the same file, interleaved:
#                wall time and peak RSS; then bench/alloc_sim_bench (the allocator replay).
#                SNAPSHOT_FILE reuses a file made earlier by gen_snapshots.py --big.
#   agent        bench/metrics_render (/metrics and the snapshot JSON for 8 GPUs x 200 processes,
#                rendered in-process), then a real `memscope agent` (fake NVML with 8 GPUs,
#                --pid of a 200-process tree with RANK set) scraped with wrk on loopback for
#                AGENT_SECONDS (10) per row, 1 and 8 connections, as found and while one busy
#                bench/cpu_job per core loads the machine: latency p50/p99 and requests/s. Not in
#                the default set (it needs wrk and the fake NVML library).
#   buffer_pool  bench/buffer_pool_bench: BufferPool's compression ratio and put/get throughput
#                (none, lz4, zstd; spilling with a quarter of the memory) on cart-pole replay chunks,
#                a sensor array and Zipf token ids, against a plain std::unordered_map.
#                POOL_MIB (32) MiB per data set, ROUNDS rounds, spill files under $TMPDIR or /tmp.
# Environment: BUILD (default build-bench), ROUNDS (3), SAMPLE_SECONDS (30), SIZES (1,100,1000),
# JOB_ITERATIONS (cpu_job's loop count; 7e9 is about 17 s here), JOBS (ninja -j, 2),
# TREE_SIZE (1000) and TREE_SECONDS (20) for rss, MALLOC_PAIRS for tracking.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
ROUNDS=${ROUNDS:-3}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-30}
SIZES=${SIZES:-1,100,1000}
JOB_ITERATIONS=${JOB_ITERATIONS:-7000000000}
TREE_SIZE=${TREE_SIZE:-1000}
TREE_SECONDS=${TREE_SECONDS:-20}
PYTHON=/usr/bin/python3
MEASUREMENTS=("$@")
[[ ${#MEASUREMENTS[@]} -eq 0 ]] && MEASUREMENTS=(sample_cost overhead rss bigrss realtime oom)

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMEMSCOPE_BUILD_TESTS=ON >&2
TARGETS=(sample_cost cpu_job oom_eval memscope memscope_spawn_tree)
[[ " ${MEASUREMENTS[*]} " == *" tracking "* ]] && TARGETS+=(malloc_bench memscope_track)
[[ " ${MEASUREMENTS[*]} " == *" fragment "* ]] && TARGETS+=(alloc_sim_bench)
[[ " ${MEASUREMENTS[*]} " == *" agent "* ]] && TARGETS+=(metrics_render fake_nvml)
[[ " ${MEASUREMENTS[*]} " == *" buffer_pool "* ]] && TARGETS+=(buffer_pool_bench)
ninja -C "$BUILD" -j"${JOBS:-2}" "${TARGETS[@]}" >&2

MEMSCOPE=$BUILD/memscope
CPU_JOB=$BUILD/bench/cpu_job
SPAWN_TREE=$BUILD/tests/memscope_spawn_tree
WORK=$(mktemp -d /tmp/memscope-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

log() { echo "$*" >&2; }
# bash's `time` (getrusage of the waited children, in ms): "wall user sys"
TIMEFORMAT='%3R %3U %3S'
# median of the numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# field=value from a "cpu_job: ..." line
field() { sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" | tail -n1; }
calc() { awk "BEGIN {printf \"$1\n\", $2}"; }

echo "## Machine"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "- kernel: $(uname -r); $(grep MemTotal /proc/meminfo | tr -s ' ')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- memscope $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (plus uncommitted changes: $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) files)"
echo "- psutil $($PYTHON -c 'import psutil; print(psutil.__version__)') under $($PYTHON --version 2>&1)"
echo

for measurement in "${MEASUREMENTS[@]}"; do
  case $measurement in
  sample_cost)
    echo "## 1. Per-sample CPU cost, process tree of ${SIZES//,/, } (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    echo "\`$BUILD/bench/sample_cost --sizes $SIZES --rounds $ROUNDS --seconds $SAMPLE_SECONDS\`"
    echo
    "$BUILD/bench/sample_cost" --sizes "$SIZES" --rounds "$ROUNDS" --seconds "$SAMPLE_SECONDS" \
      --python "$PYTHON" --psutil-reader "$ROOT/bench/psutil_reader.py"
    echo
    ;;

  overhead)
    echo "## 2. \`memscope run --interval 1\` on a CPU-bound job (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    # One run: $1 = label, rest = command prefix (empty, or taskset/memscope). Appends
    # "label wall_outer job_wall job_cpu total_cpu nivcsw samples" to $WORK/overhead.
    overhead_run() {
      local label=$1
      shift
      local out=$WORK/run.err
      { time "$@" "$CPU_JOB" "$JOB_ITERATIONS" 2>"$out" >/dev/null; } 2>"$WORK/time"
      local line outer
      line=$(grep '^cpu_job:' "$out")
      read -r outer user sys <"$WORK/time"
      local samples=-
      if [[ -f $WORK/x.db ]]; then
        samples=$(sqlite3 "$WORK/x.db" 'SELECT count(*) FROM samples' 2>/dev/null || echo '?')
        rm -f "$WORK"/x.db*
      fi
      echo "$label $outer $(field wall_seconds <<<"$line") $(field cpu_seconds <<<"$line") $(calc '%.4f' "$user + $sys") $(field involuntary_switches <<<"$line") $samples" >>"$WORK/overhead"
      log "overhead: $label outer ${outer}s, $line, memscope+job cpu $(calc '%.3f' "$user + $sys")s, samples $samples"
    }
    run_memscope=("$MEMSCOPE" run --interval 1 --output "$WORK/x.db" --)
    : >"$WORK/overhead"
    for ((round = 1; round <= ROUNDS; round++)); do
      if ((round % 2)); then
        overhead_run plain
        overhead_run memscope "${run_memscope[@]}"
        overhead_run plain-core0 taskset -c 0
        overhead_run memscope-core0 taskset -c 0 "${run_memscope[@]}"
      else
        overhead_run memscope "${run_memscope[@]}"
        overhead_run plain
        overhead_run memscope-core0 taskset -c 0 "${run_memscope[@]}"
        overhead_run plain-core0 taskset -c 0
      fi
    done
    col() { awk -v l="$1" -v c="$2" '$1 == l {print $c}' "$WORK/overhead" | median; }
    echo "Commands, interleaved, $ROUNDS rounds each, timed with bash's \`time\`: \`$CPU_JOB $JOB_ITERATIONS\` and"
    echo "\`$MEMSCOPE run --interval 1 --output /tmp/…/x.db -- $CPU_JOB $JOB_ITERATIONS\`;"
    echo "the same again under \`taskset -c 0\` (job and memscope forced onto one core)."
    echo "\"job wall\" is the job's own CLOCK_MONOTONIC span; \"end to end\" is bash's \`time\`, memscope's start-up and final report included."
    echo "memscope CPU = user+sys of \`memscope run\` as bash's \`time\` reports it (its waited child included) minus the job's own CPU time."
    echo
    echo "| cores | job wall plain s | job wall under memscope s | ratio | end to end plain s | end to end under memscope s | ratio | memscope CPU s | memscope CPU % of job wall | samples | job involuntary switches plain / under memscope |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for variant in "" -core0; do
      jp=$(col "plain$variant" 3)
      jm=$(col "memscope$variant" 3)
      op=$(col "plain$variant" 2)
      om=$(col "memscope$variant" 2)
      own=$(awk -v l="memscope$variant" '$1 == l {print $5 - $4}' "$WORK/overhead" | median)
      samples=$(col "memscope$variant" 7)
      cp=$(col "plain$variant" 6)
      cm=$(col "memscope$variant" 6)
      cores=$([[ -z $variant ]] && echo "any (2)" || echo "core 0 only")
      echo "| $cores | $jp | $jm | $(calc '%.4f' "$jm / $jp") | $op | $om | $(calc '%.4f' "$om / $op") | $(calc '%.3f' "$own") | $(calc '%.3f %%' "100 * $own / $jm") | $samples | $cp / $cm |"
    done
    echo
    echo "Raw runs (label, end-to-end wall, job wall, job CPU, memscope+job CPU, job involuntary switches, samples):"
    echo
    echo '```'
    cat "$WORK/overhead"
    echo '```'
    echo
    ;;

  rss)
    echo "## 3. memscope's own RSS recording $TREE_SIZE processes (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    : >"$WORK/rss"
    for ((round = 1; round <= ROUNDS; round++)); do
      { time "$SPAWN_TREE" "$TREE_SIZE" "$TREE_SECONDS" >/dev/null 2>&1; } 2>"$WORK/time"
      read -r tree_wall tree_user tree_sys <"$WORK/time"
      { time "$MEMSCOPE" run --interval 1 --output "$WORK/s.db" -- \
        "$SPAWN_TREE" "$TREE_SIZE" "$TREE_SECONDS" >/dev/null 2>"$WORK/run.err"; } 2>"$WORK/time"
      read -r run_wall run_user run_sys <"$WORK/time"
      rss=$(sqlite3 "$WORK/s.db" "SELECT message FROM events WHERE kind = 'memscope-rss'")
      samples=$(sqlite3 "$WORK/s.db" 'SELECT count(*) FROM samples')
      biggest=$(sqlite3 "$WORK/s.db" 'SELECT max(n) FROM (SELECT count(*) AS n FROM process_samples GROUP BY sample_id)' 2>/dev/null || echo '?')
      peak_line=$(grep 'memscope itself' "$WORK/run.err" || true)
      own_cpu=$(calc '%.4f' "($run_user + $run_sys) - ($tree_user + $tree_sys)")
      echo "$round $rss $samples $biggest $own_cpu $tree_wall $run_wall" >>"$WORK/rss"
      log "rss: round $round memscope-rss event $rss bytes ($peak_line); samples $samples, most processes in a sample $biggest; CPU memscope+tree $(calc '%.3f' "$run_user + $run_sys")s, tree alone $(calc '%.3f' "$tree_user + $tree_sys")s"
      rm -f "$WORK"/s.db*
    done
    rss_median=$(awk '{print $2}' "$WORK/rss" | median)
    own_median=$(awk '{print $5}' "$WORK/rss" | median)
    samples_median=$(awk '{print $3}' "$WORK/rss" | median)
    echo "Command: \`$MEMSCOPE run --interval 1 --output /tmp/…/s.db -- $SPAWN_TREE $TREE_SIZE $TREE_SECONDS\`, $ROUNDS rounds;"
    echo "peak RSS from the session's \"memscope-rss\" event. memscope's CPU = user+sys of that command minus that of"
    echo "\`$SPAWN_TREE $TREE_SIZE $TREE_SECONDS\` run alone just before (so a rough figure: the difference of two noisy totals)."
    echo
    echo "| round | memscope peak RSS MiB | samples | most processes in one sample | memscope CPU s (approx.) |"
    echo "|---:|---:|---:|---:|---:|"
    awk '{printf "| %s | %.1f | %s | %s | %.3f |\n", $1, $2 / 1048576, $3, $4, $5}' "$WORK/rss"
    echo "| median | $(calc '%.1f' "$rss_median / 1048576") | $samples_median | | $own_median |"
    echo
    echo "memscope CPU per sample, all in (median CPU / median samples: start-up, the whole-host sample \`memscope run\` takes before starting the command, the tree's cold samples while it forks, system collector, SQLite writes, final report): $(calc '%.1f ms' "1000 * $own_median / $samples_median")"
    echo
    ;;

  bigrss)
    echo "## 4. Per-sample CPU cost, 2 processes of 1 GiB resident each (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    echo "\`$BUILD/bench/sample_cost --sizes 2 --kib 1048576 --rounds $ROUNDS --seconds $SAMPLE_SECONDS\`"
    echo
    "$BUILD/bench/sample_cost" --sizes 2 --kib 1048576 --rounds "$ROUNDS" --seconds "$SAMPLE_SECONDS" \
      --python "$PYTHON" --psutil-reader "$ROOT/bench/psutil_reader.py"
    echo
    ;;

  realtime)
    echo "## 5. Per-sample CPU cost at 1000 processes with real 1 s sleeps between samples (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    echo "\`$BUILD/bench/sample_cost --sizes 1000 --rounds ${REALTIME_ROUNDS:-1} --seconds $SAMPLE_SECONDS --sleep-ms 1000 --readers memscope,psutil\`"
    echo
    "$BUILD/bench/sample_cost" --sizes 1000 --rounds "${REALTIME_ROUNDS:-1}" --seconds "$SAMPLE_SECONDS" \
      --sleep-ms 1000 --readers memscope,psutil --python "$PYTHON" \
      --psutil-reader "$ROOT/bench/psutil_reader.py"
    echo
    ;;

  oom)
    echo "## OOM forecast on recorded traces"
    echo
    echo "\`$BUILD/bench/oom_eval --markdown\`"
    echo
    "$BUILD/bench/oom_eval" --markdown
    echo
    ;;

  tracking)
    echo "## 6. Allocation tracking: \`memscope leak --enable-tracking\` against heaptrack (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    MALLOC_BENCH=$BUILD/bench/malloc_bench
    PAIRS=${MALLOC_PAIRS:-12000000}
    command -v heaptrack >/dev/null || { echo "run_all.sh: tracking needs heaptrack" >&2; exit 2; }
    # One run: $1 = label, rest = command prefix. Appends "label end_to_end_wall bench_wall
    # trace_bytes" to $WORK/tracking; the bench's own line (its storm's wall time) is in its
    # stdout, the trace is whatever the tracker left in $WORK/t.
    tracking_run() {
      local label=$1
      shift
      rm -rf "$WORK/t"
      mkdir -p "$WORK/t"
      { time "$@" "$MALLOC_BENCH" "$PAIRS" >"$WORK/run.out" 2>"$WORK/run.err"; } 2>"$WORK/time"
      local line outer bytes
      line=$(grep '^malloc_bench:' "$WORK/run.out" || true)
      [[ -n $line ]] || { cat "$WORK/run.err" >&2; echo "run_all.sh: $label: no malloc_bench line" >&2; exit 1; }
      read -r outer _ _ <"$WORK/time"
      bytes=$(find "$WORK/t" -type f \( -name '*.mst' -o -name '*.zst' -o -name '*.gz' \) -printf '%s\n' | awk '{s += $1} END {print s + 0}')
      echo "$label $outer $(field seconds <<<"$line") $bytes" >>"$WORK/tracking"
      log "tracking: $label end to end ${outer}s, $line, trace $bytes bytes"
      # A fast tracker must also be right: memscope's sites, added up per function, against the
      # program's own count of each call site's allocations.
      if [[ $label == memscope ]]; then
        "$PYTHON" - "$WORK/t/x.json" "$(grep '^malloc_bench sites:' "$WORK/run.out")" >>"$WORK/tracking-sites" <<'PY'
import collections, json, sys
counted = collections.Counter()
for site in json.load(open(sys.argv[1]))["sites"]:
    counted[site["function"].split("::")[-1].replace("()", "")] += site["allocated_count"]
wrong = []
for pair in sys.argv[2].split(":", 1)[1].split():
    name, count = pair.split("=")
    if counted[name] != int(count):
        wrong.append(f"{name} {counted[name]} (program: {count})")
print("; ".join(wrong) if wrong else "match")
PY
        log "tracking: memscope site counts: $(tail -n1 "$WORK/tracking-sites")"
      fi
    }
    run_memscope=("$MEMSCOPE" leak --enable-tracking --no-gpu --trace-dir "$WORK/t" --output "$WORK/t/x.json" --)
    run_heaptrack=(heaptrack -o "$WORK/t/h")
    : >"$WORK/tracking"
    : >"$WORK/tracking-sites"
    for ((round = 1; round <= ROUNDS; round++)); do
      case $((round % 3)) in
      1) tracking_run plain; tracking_run memscope "${run_memscope[@]}"; tracking_run heaptrack "${run_heaptrack[@]}" ;;
      2) tracking_run memscope "${run_memscope[@]}"; tracking_run heaptrack "${run_heaptrack[@]}"; tracking_run plain ;;
      0) tracking_run heaptrack "${run_heaptrack[@]}"; tracking_run plain; tracking_run memscope "${run_memscope[@]}" ;;
      esac
    done
    col() { awk -v l="$1" -v c="$2" '$1 == l {print $c}' "$WORK/tracking" | median; }
    pe=$(col plain 2)
    pb=$(col plain 3)
    me=$(col memscope 2)
    mb=$(col memscope 3)
    he=$(col heaptrack 2)
    hb=$(col heaptrack 3)
    mt=$(col memscope 4)
    ht=$(col heaptrack 4)
    echo "\`$MALLOC_BENCH $PAIRS\` ($(grep '^malloc_bench:' "$WORK/run.out" | sed 's/ seconds=.*//; s/^malloc_bench: //')), single-threaded,"
    echo "timed plain, under \`memscope leak --enable-tracking --no-gpu --trace-dir T --\` and under \`heaptrack -o T/h\`,"
    echo "interleaved, $ROUNDS rounds each, medians. \"storm\" is the program's own timing of its allocation loop"
    echo "(the recording cost alone); \"end to end\" is bash's \`time\`: start-up, and for memscope the analysis and"
    echo "symbolization of the trace and the report after the program exits (heaptrack only records; its"
    echo "analysis is a separate \`heaptrack_print\`)."
    echo
    echo "| tool | storm s | storm slowdown | end to end s | end to end slowdown | trace MiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| plain | $pb | 1 | $pe | 1 | |"
    echo "| memscope | $mb | $(calc '%.2f' "$mb / $pb") | $me | $(calc '%.2f' "$me / $pe") | $(calc '%.1f' "$mt / 1048576") |"
    echo "| heaptrack $(heaptrack --version 2>/dev/null | awk '{print $NF}') | $hb | $(calc '%.2f' "$hb / $pb") | $he | $(calc '%.2f' "$he / $pe") | $(calc '%.1f' "$ht / 1048576") |"
    echo
    echo "memscope's allocation counts per call site (its sites added up per function) against the program's own, per round: $(paste -sd'|' "$WORK/tracking-sites" | sed 's/|/, /g')"
    echo
    echo "memscope's slowdown / heaptrack's: storm $(calc '%.2f' "($mb / $pb) / ($hb / $pb)"), end to end $(calc '%.2f' "($me / $pe) / ($he / $pe)"); trace size memscope / heaptrack: $(calc '%.2f' "$mt / $ht")"
    echo
    echo "Raw runs (label, end-to-end wall s, storm wall s, trace bytes):"
    echo
    echo '```'
    cat "$WORK/tracking"
    echo '```'
    echo
    ;;

  fragment)
    echo "## 7. PyTorch snapshots: \`memscope fragment\` against Python's \`pickle.load\` (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    MB=${SNAPSHOT_MB:-500}
    BIG=${SNAPSHOT_FILE:-$WORK/big.pickle}  # SNAPSHOT_FILE: one generated earlier, reused
    [[ -f $BIG ]] || "$PYTHON" "$ROOT/tests/fragment/gen_snapshots.py" --big "$BIG" --target-mb "$MB" >&2
    SIZE=$(stat -c %s "$BIG")
    # One run: $1 = label, rest = the command. Appends "label wall_s peak_rss_kib".
    fragment_run() {
      local label=$1
      shift
      /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/run.out" 2>"$WORK/run.err" ||
        { cat "$WORK/run.err" >&2; echo "run_all.sh: $label failed" >&2; exit 1; }
      echo "$label $(cat "$WORK/time")" >>"$WORK/fragment"
      log "fragment: $label $(cat "$WORK/time")"
    }
    run_memscope=("$MEMSCOPE" fragment --snapshot "$BIG" --output "$WORK/f.json")
    run_python=("$PYTHON" -c "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))" "$BIG")
    : >"$WORK/fragment"
    for ((round = 1; round <= ROUNDS; round++)); do
      if ((round % 2)); then
        fragment_run memscope "${run_memscope[@]}"; fragment_run python "${run_python[@]}"
      else
        fragment_run python "${run_python[@]}"; fragment_run memscope "${run_memscope[@]}"
      fi
    done
    col() { awk -v l="$1" -v c="$2" '$1 == l {print $c}' "$WORK/fragment" | median; }
    mw=$(col memscope 2)
    mr=$(col memscope 3)
    pw=$(col python 2)
    pr=$(col python 3)
    facts=$("$PYTHON" -c 'import json, sys; l = json.load(open(sys.argv[1]))["layout"]; print("{} trace entries, {} segments, {} stacks".format(l["trace_entries"], l["segments"], l["stacks"]))' "$WORK/f.json")
    echo "A generated snapshot of $(calc '%.0f' "$SIZE / 1048576") MiB (\`tests/fragment/gen_snapshots.py --big F --target-mb $MB\`: $facts),"
    echo "read and fully analysed by \`memscope fragment --snapshot F --output J\` (all devices, JSON written) and loaded"
    echo "by \`/usr/bin/python3 -c 'pickle.load(...)'\` alone (Python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')), interleaved, $ROUNDS rounds, medians;"
    echo "wall seconds and peak RSS from GNU time."
    echo
    echo "| | wall s | peak RSS MiB | peak RSS / file |"
    echo "|---|---:|---:|---:|"
    echo "| memscope fragment (parse + analysis) | $mw | $(calc '%.0f' "$mr / 1024") | $(calc '%.2f' "$mr * 1024 / $SIZE") |"
    echo "| Python pickle.load (parse only) | $pw | $(calc '%.0f' "$pr / 1024") | $(calc '%.2f' "$pr * 1024 / $SIZE") |"
    echo
    echo "Python's time / memscope's: **$(calc '%.1f' "$pw / $mw")x**."
    echo
    if [[ -x $BUILD/bench/alloc_sim_bench ]]; then
      echo "Allocator replay (\`$BUILD/bench/alloc_sim_bench\`: a 1,000,000-event trace under the recorded settings and the sweep):"
      echo
      echo '```'
      "$BUILD/bench/alloc_sim_bench"
      echo '```'
      echo
    fi
    ;;
  agent)
    echo "## 8. \`memscope agent\`: rendering /metrics and scrape latency (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    command -v wrk >/dev/null || { echo "run_all.sh: agent needs wrk (Debian package wrk)" >&2; exit 2; }
    AGENT_SECONDS=${AGENT_SECONDS:-10}
    echo "Rendering alone, in-process (\`$BUILD/bench/metrics_render --gpus 8 --processes 200 --renders 2000\`):"
    echo
    "$BUILD/bench/metrics_render" --gpus 8 --processes 200 --renders 2000
    echo
    # The agent's view: 8 fake GPUs and a tree of 200 processes (root + 199 children, 256 KiB
    # each) with RANK set. One busy cpu_job per core is the "second process" loading the machine.
    RANK=0 LOCAL_RANK=0 WORLD_SIZE=8 "$SPAWN_TREE" 199 $((8 * AGENT_SECONDS + 120)) >/dev/null 2>&1 &
    tree=$!
    MEMSCOPE_NVML_LIBRARY=$BUILD/tests/libnvidia-ml-fake.so \
      MEMSCOPE_FAKE_NVML_SCENARIO=$ROOT/tests/data/nvml/eight_gpus.json \
      "$MEMSCOPE" agent --listen 127.0.0.1:0 --interval 1 --pid "$tree" 2>"$WORK/agent.err" &
    agent=$!
    load=()
    stop_agent() {
      kill "$agent" "$tree" "${load[@]}" 2>/dev/null || true
      wait "$agent" "$tree" "${load[@]}" 2>/dev/null || true
    }
    trap 'stop_agent; rm -rf "$WORK"' EXIT
    endpoint=
    for _ in $(seq 100); do
      endpoint=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$WORK/agent.err")
      [[ -n $endpoint ]] && break
      sleep 0.1
    done
    [[ -n $endpoint ]] || { cat "$WORK/agent.err" >&2; echo "run_all.sh: the agent did not start" >&2; exit 1; }
    processes=0
    for _ in $(seq 100); do  # the children fork and touch their memory
      processes=$(curl -fs "http://$endpoint/metrics" | sed -n 's/^memscope_agent_processes //p')
      ((${processes:-0} >= 200)) && break
      sleep 0.2
    done
    metrics_bytes=$(curl -fs "http://$endpoint/metrics" | wc -c)
    gpus=$(curl -fs "http://$endpoint/metrics" | grep -c '^memscope_gpu_memory_used_bytes{' || true)
    log "agent: $endpoint, $processes processes, $gpus GPUs, /metrics $metrics_bytes bytes"
    # One wrk run: $1 = load label, $2 = connections. Appends "load c loadavg p50_ms p99_ms max_ms rps".
    ms() { awk '{v = $1; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v); f = (u == "us") ? 0.001 : (u == "s") ? 1000 : 1; printf "%.3f", v * f}'; }
    scrape() {
      wrk -t1 -c"$2" -d"${AGENT_SECONDS}s" --latency "http://$endpoint/metrics" >"$WORK/wrk.out" 2>&1
      log "agent: wrk $1 c=$2: $(grep -E 'Requests/sec|50%|99%|Non-2xx|errors' "$WORK/wrk.out" | tr -s ' ' | paste -sd';')"
      ! grep -q 'Non-2xx' "$WORK/wrk.out" || { echo "run_all.sh: the agent answered errors" >&2; exit 1; }
      echo "$1 $2 $(cut -d' ' -f1 /proc/loadavg) $(awk '$1 == "50%" {print $2}' "$WORK/wrk.out" | ms) $(awk '$1 == "99%" {print $2}' "$WORK/wrk.out" | ms) $(awk '$1 == "Latency" {print $4; exit}' "$WORK/wrk.out" | ms) $(awk '$1 == "Requests/sec:" {print $2}' "$WORK/wrk.out")" >>"$WORK/agent"
    }
    : >"$WORK/agent"
    agent_cpu_before=$(awk '{print $14 + $15}' "/proc/$agent/stat")
    scrape as-found 1
    scrape as-found 8
    for ((core = 0; core < $(nproc); core++)); do
      "$CPU_JOB" 999999999999 >/dev/null 2>&1 &
      load+=($!)
    done
    scrape +cpu_job-per-core 1
    scrape +cpu_job-per-core 8
    kill "${load[@]}" 2>/dev/null || true
    wait "${load[@]}" 2>/dev/null || true
    load=()
    agent_cpu=$(( $(awk '{print $14 + $15}' "/proc/$agent/stat") - agent_cpu_before ))
    samples=$(curl -fs "http://$endpoint/metrics" | sed -n 's/^memscope_agent_samples_total //p')
    render=$(curl -fs "http://$endpoint/metrics" | sed -n 's/^memscope_agent_scrape_duration_seconds //p')
    sample_cost=$(curl -fs "http://$endpoint/metrics" | sed -n 's/^memscope_agent_sample_duration_seconds //p')
    stop_agent
    trap 'rm -rf "$WORK"' EXIT
    echo "Scraping a real agent: \`MEMSCOPE_NVML_LIBRARY=…/libnvidia-ml-fake.so MEMSCOPE_FAKE_NVML_SCENARIO=tests/data/nvml/eight_gpus.json"
    echo "$MEMSCOPE agent --listen 127.0.0.1:0 --interval 1 --pid TREE\` ($gpus GPUs, $processes processes of a"
    echo "\`RANK=0 $SPAWN_TREE 199 …\` tree; /metrics is $metrics_bytes bytes), with"
    echo "\`wrk -t1 -cC -d${AGENT_SECONDS}s --latency http://ADDR/metrics\` on loopback (wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}')), as found and while"
    echo "$(nproc) \`bench/cpu_job\` processes (one per core) keep every core busy (\"as found\" is whatever else the machine runs: see the load average). wrk runs closed-loop: each"
    echo "connection sends the next request when the answer is in. The agent is single-threaded and"
    echo "samples every second, so a request arriving during a sample waits for it (the p99)."
    echo
    echo "| machine | load avg (1 min) | connections | p50 ms | p99 ms | max ms | requests/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $3, $2, $4, $5, $6, $7}' "$WORK/agent"
    echo
    echo "The agent during the $((4 * AGENT_SECONDS)) s of scraping: $(calc '%.2f' "$agent_cpu / $(getconf CLK_TCK)") s of CPU; its own figures at the end: samples $samples, latest sample $(calc '%.1f' "1000 * $sample_cost") ms, latest /metrics render $(calc '%.3f' "1000 * $render") ms."
    echo
    ;;
  buffer_pool)
    echo "## BufferPool: compression and throughput against plain in-memory storage (load at start: $(cut -d' ' -f1 /proc/loadavg))"
    echo
    echo "\`$BUILD/bench/buffer_pool_bench --mib ${POOL_MIB:-32} --rounds $ROUNDS --spill-dir $WORK\`"
    echo
    "$BUILD/bench/buffer_pool_bench" --mib "${POOL_MIB:-32}" --rounds "$ROUNDS" --spill-dir "$WORK"
    echo
    ;;
  *)
    echo "run_all.sh: unknown measurement '$measurement' (sample_cost, overhead, rss, bigrss, realtime, oom, tracking, fragment, agent, buffer_pool)" >&2
    exit 2
    ;;
  esac
done
