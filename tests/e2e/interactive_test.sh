#!/usr/bin/env bash
# `memscope interactive` in a real terminal: tmux runs it against the fake NVML and two fixture
# processes (memscope_grow under the names msfix_a_small and msfix_b_big, holding 40 and 200 MiB;
# the GPU scenario, written here, gives msfix_a_small 30000 MiB and msfix_b_big 1024 MiB), keys
# go in with send-keys and the screen comes back with capture-pane. Checks: GPU and host panes,
# sort keys reorder, the filter hides rows, Enter shows smaps and GPU lines, the kill prompt
# appears and `n` leaves the process alone while `y` sends SIGTERM, 80x24 still draws, `q` restores the shell's screen,
# and SIGTERM and SIGSEGV restore it too (exit 143, 139); NO_COLOR=1 draws no colours, without it there are.
#
# Environment (set by ctest): MEMSCOPE_BIN, MEMSCOPE_FAKE_NVML, MEMSCOPE_GROW.
# Exit status 77: skipped (no tmux, or the binaries are not built).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
command -v tmux >/dev/null 2>&1 || skip "tmux is not installed (Debian package tmux)"
for var in MEMSCOPE_BIN MEMSCOPE_FAKE_NVML MEMSCOPE_GROW; do
  [[ -e "${!var:-}" ]] || skip "$var is not set to a built file: '${!var:-}'"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memscope-top-XXXXXX")
socket="memscope-top-test-$$"
fixtures=()
cleanup() {
  tmux -L "$socket" kill-server >/dev/null 2>&1 || true
  for pid in "${fixtures[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true  # reaped here: an init that does not reap keeps zombies
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- screen ---" >&2
  screen >&2 || true
  exit 1
}

# Fixture processes; /proc/PID/comm is the name they were started under.
ln -s "$MEMSCOPE_GROW" "$tmp/msfix_a_small"
ln -s "$MEMSCOPE_GROW" "$tmp/msfix_b_big"
"$tmp/msfix_a_small" 400 40 "$tmp/a.marker" 600 >/dev/null 2>&1 &
small=$!
fixtures+=("$small")
"$tmp/msfix_b_big" 400 200 "$tmp/b.marker" 600 >/dev/null 2>&1 &
big=$!
fixtures+=("$big")

cat >"$tmp/scenario.json" <<EOF
{
  "description": "interactive_test.sh: one A100 whose two processes are the fixtures",
  "advance": "seconds",
  "devices": [
    {"name": "NVIDIA A100-SXM4-80GB", "total_mib": 81920,
     "states": [{"used_mib": 31500, "reserved_mib": 531, "utilization_percent": 77,
                 "temperature_celsius": 61,
                 "processes": [{"pid": $small, "used_mib": 30000}, {"pid": $big, "used_mib": 1024}]}]}
  ]
}
EOF

screen() { tmux -L "$socket" capture-pane -p -t top; }
# Polls the screen until a grep pattern shows (or, with wait_gone, disappears): at most 15 s.
wait_for() {
  local deadline=$((SECONDS + 15))
  until screen | grep -qE -- "$1"; do
    ((SECONDS < deadline)) || fail "waited 15 s for '$1'"
    sleep 0.1
  done
}
wait_gone() {
  local deadline=$((SECONDS + 15))
  while screen | grep -qE -- "$1"; do
    ((SECONDS < deadline)) || fail "waited 15 s for '$1' to go"
    sleep 0.1
  done
}
keys() { tmux -L "$socket" send-keys -t top "$@"; }
line_of() { screen | grep -n -- "$1" | head -1 | cut -d: -f1; }
# Waits until the row of $1 is drawn above the row of $2.
wait_above() {
  local deadline=$((SECONDS + 15)) a b
  while true; do
    a=$(line_of "$1")
    b=$(line_of "$2")
    if [[ -n "$a" && -n "$b" ]] && ((a < b)); then return 0; fi
    ((SECONDS < deadline)) || fail "waited 15 s for '$1' above '$2' ($3)"
    sleep 0.1
  done
}

# start SESSION_NAME NO_COLOR_VALUE: memscope in a shell that reports its exit status and stays.
start() {
  tmux -L "$socket" -f /dev/null new-session -d -x 100 -y 30 -s "$1" \
    "ulimit -c 0; env NO_COLOR='$2' LANG=C.UTF-8 MEMSCOPE_NVML_LIBRARY='$MEMSCOPE_FAKE_NVML' \
       MEMSCOPE_FAKE_NVML_SCENARIO='$tmp/scenario.json' \
       sh -c 'echo \$\$ > \"$tmp/$1.pid\"; exec \"$MEMSCOPE_BIN\" interactive --interval 0.2'; \
     echo EXITED:\$?; sleep 600"
}

# An SGR sequence that sets a foreground or background colour (capture-pane -e keeps them).
colour_sgr=$'\e''\[([0-9]+;)*[34][0-7](;[0-9]+)*m'

start top 1
wait_for "memscope top"
if tmux -L "$socket" capture-pane -e -p -t top | grep -qE -- "$colour_sgr"; then
  fail "colours drawn although NO_COLOR=1"
fi
echo "started; checking the panes"
wait_for "GPU0 +A100-SXM4-80GB"
wait_for "31G/80G"
wait_for "res +531M"
wait_for "util +77%"
wait_for "61C"
wait_for "oom "
wait_for "^Mem +\["
wait_for "^Swap +\["
wait_for "PID\*? +NAME"

echo "filter to the fixtures, then sort"
keys /
wait_for "filter: _"
keys -l msfix
keys Enter
wait_for "filter: msfix"
wait_for "msfix_a_small"
wait_for "msfix_b_big"
keys m
wait_above msfix_b_big msfix_a_small "sorted by memory"
keys n
wait_above msfix_a_small msfix_b_big "sorted by name"
keys m
wait_above msfix_b_big msfix_a_small "sorted by memory again"
keys g
wait_for "GPU\*"
wait_above msfix_a_small msfix_b_big "sorted by GPU"
keys p
if ((small < big)); then
  wait_above msfix_a_small msfix_b_big "sorted by pid"
else
  wait_above msfix_b_big msfix_a_small "sorted by pid"
fi
keys t
wait_for "\[tree\]"
keys t
wait_gone "\[tree\]"

echo "narrow the filter"
keys /
keys -l _a
keys Enter
wait_for "filter: msfix_a"
wait_gone "msfix_b_big"
wait_for "msfix_a_small"

echo "details of the selected process"
keys Enter
wait_for "pid $small msfix_a_small: details"
wait_for "smaps \(resident"
wait_for "^ +heap +[0-9]"
wait_for "^ +anon +[0-9]"
wait_for "^ +file +[0-9]"
wait_for "^ +shmem +[0-9]"
wait_for "GPU0 NVIDIA A100-SXM4-80GB +29.3 GiB"
keys Escape
wait_for "PID\*? +NAME"

echo "history graph: the selected process, then the GPU"
wait_for "^pid $small msfix_a_small rss\+gpu"
keys Tab
wait_for "^GPU0 used 31G"
keys Tab
wait_for "^pid $small msfix_a_small rss\+gpu"

echo "kill prompt, answered n"
keys k
wait_for "Send SIGTERM to pid $small \(msfix_a_small\)\? \[y/n\]"
keys n
wait_for "not sent: pid $small"
kill -0 "$small" || fail "pid $small is gone after answering n"

echo "resize to 80x24"
tmux -L "$socket" resize-window -t top -x 80 -y 24
wait_for "q quit"
[[ $(screen | wc -l) -eq 24 ]] || fail "capture is not 24 lines after the resize"
width=$(screen | LC_ALL=C.UTF-8 wc -L)  # display columns (the sparkline is UTF-8)
((width <= 80)) || fail "a line is $width columns wide after the resize to 80"
wait_for "GPU0"
wait_for "^Mem +\["
wait_for "msfix_a_small"
keys Escape  # clears the filter
wait_gone "filter: msfix"

echo "kill prompt, answered y: msfix_b_big gets SIGTERM"
keys /
keys -l msfix_b
keys Enter
wait_for "filter: msfix_b"
wait_for "msfix_b_big"
keys k
wait_for "Send SIGTERM to pid $big \(msfix_b_big\)\? \[y/n\]"
keys y
wait_for "sent SIGTERM to pid $big \(msfix_b_big\)"
deadline=$((SECONDS + 15))
until grep -q "SIGNAL TERM" "$tmp/b.marker" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "msfix_b_big did not report SIGTERM in its marker file"
  sleep 0.1
done
wait_gone "msfix_b_big"
keys Escape

echo "q quits and restores the screen"
keys q
wait_for "EXITED:0"
if screen | grep -q "memscope top"; then fail "the TUI is still on screen after q"; fi

echo "SIGTERM restores the screen too"
start term ""
screen() { tmux -L "$socket" capture-pane -p -t term; }
wait_for "memscope top"
tmux -L "$socket" capture-pane -e -p -t term | grep -qE -- "$colour_sgr" \
  || fail "no colours drawn without NO_COLOR"
kill -TERM "$(cat "$tmp/term.pid")"
wait_for "EXITED:143"
if screen | grep -q "memscope top"; then fail "the TUI is still on screen after SIGTERM"; fi

echo "a crash (SIGSEGV) restores the screen before the default action"
start segv 1
screen() { tmux -L "$socket" capture-pane -p -t segv; }
wait_for "memscope top"
kill -SEGV "$(cat "$tmp/segv.pid")"
wait_for "EXITED:139"
if screen | grep -q "memscope top"; then fail "the TUI is still on screen after SIGSEGV"; fi

echo "PASS"
