#!/usr/bin/env bash
# The HTML report really renders: record the demo workload, write the report, load it in
# headless Chromium and check that dygraphs drew every chart (canvases inside the chart divs)
# and that the summary table is there; take a screenshot.
#
# Environment (set by ctest): MEMSCOPE_BIN (memscope), MEMSCOPE_DEMO (the demo workload).
# MEMSCOPE_KEEP_SCREENSHOT=DIR keeps the page and its screenshot in DIR.
# Exit status 77: skipped (no Chromium, or the binaries are not built).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

chromium_bin=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    chromium_bin=$(command -v "$candidate")
    break
  fi
done
[[ -n "$chromium_bin" ]] || skip "Chromium is not installed (Debian package chromium)"
[[ -x "${MEMSCOPE_BIN:-}" ]] || skip "MEMSCOPE_BIN is not an executable: '${MEMSCOPE_BIN:-}'"
[[ -x "${MEMSCOPE_DEMO:-}" ]] || skip "MEMSCOPE_DEMO is not an executable: '${MEMSCOPE_DEMO:-}'"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memscope-html-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$MEMSCOPE_BIN" run --output "$tmp/s.db" --interval 0.1 -- "$MEMSCOPE_DEMO" 20 50 \
  >"$tmp/run.out" 2>"$tmp/run.err" || fail "memscope run failed: $(cat "$tmp/run.err")"
"$MEMSCOPE_BIN" report "$tmp/s.db" --html "$tmp/r.html" 2>"$tmp/report.err" \
  || fail "memscope report --html failed: $(cat "$tmp/report.err")"
[[ -s "$tmp/r.html" ]] || fail "no HTML written"

# Self-contained: nothing fetched from anywhere.
if grep -Eiq '<(script|link|img)[^>]*(src|href)=' "$tmp/r.html"; then
  fail "the page references external resources"
fi

chromium() {
  # A fresh profile each time; no network, no first-run work, no GPU.
  local profile
  profile=$(mktemp -d "$tmp/profile-XXXXXX")
  timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=5000 "$@" "file://$tmp/r.html" \
    2>>"$tmp/chromium.err"
}

chromium --dump-dom >"$tmp/dom.html" \
  || fail "chromium --dump-dom failed: $(tail -5 "$tmp/chromium.err")"
[[ -s "$tmp/dom.html" ]] || fail "chromium dumped an empty DOM: $(tail -5 "$tmp/chromium.err")"

charts=$(grep -o 'class="chart" id="chart-[a-z0-9]*"' "$tmp/dom.html" | wc -l)
rendered=$(grep -o 'data-rendered="true"' "$tmp/dom.html" | wc -l)
canvases=$(grep -o '<canvas' "$tmp/dom.html" | wc -l)
echo "charts: $charts, rendered by dygraphs: $rendered, canvases: $canvases"
# host, process tree, USS per process (no GPU without NVML).
(( charts >= 3 )) || fail "expected at least 3 chart divs, found $charts"
(( rendered == charts )) || fail "dygraphs rendered $rendered of $charts charts"
# dygraphs draws each chart on two canvases, and two more for its range selector.
(( canvases >= 2 * charts )) || fail "expected at least $((2 * charts)) canvases, found $canvases"
# Each chart div holds its canvases (the library drew into the right place).
if command -v python3 >/dev/null 2>&1; then
python3 - "$tmp/dom.html" <<'PY' || fail "a chart div holds no canvas"
import html.parser, sys

class Charts(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.counts = [], {}
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        chart = attrs.get("id", "") if attrs.get("class") == "chart" else None
        if tag in ("canvas", "img", "input", "br", "meta", "link"):
            for open_chart in self.stack:
                if open_chart and tag == "canvas":
                    self.counts[open_chart] += 1
            return
        if chart:
            self.counts[chart] = 0
        self.stack.append(chart)
    def handle_endtag(self, tag):
        if tag not in ("canvas", "img", "input", "br", "meta", "link") and self.stack:
            self.stack.pop()

parser = Charts()
parser.feed(open(sys.argv[1], encoding="utf-8").read())
print("canvases per chart:", parser.counts)
sys.exit(0 if parser.counts and all(n > 0 for n in parser.counts.values()) else 1)
PY
fi

for text in "Peaks" "memscope_demo" "all processes" "peak RSS" "exited with status 0" \
            "Host memory" "Process tree"; do
  grep -q "$text" "$tmp/dom.html" || fail "the page lacks '$text'"
done

chromium --screenshot="$tmp/r.png" --window-size=1400,2000 >/dev/null \
  || fail "chromium --screenshot failed: $(tail -5 "$tmp/chromium.err")"
[[ -s "$tmp/r.png" ]] || fail "no screenshot written"
if [[ -n "${MEMSCOPE_KEEP_SCREENSHOT:-}" ]]; then
  mkdir -p "$MEMSCOPE_KEEP_SCREENSHOT"
  cp "$tmp/r.png" "$tmp/r.html" "$MEMSCOPE_KEEP_SCREENSHOT/"
  echo "kept $MEMSCOPE_KEEP_SCREENSHOT/r.png and r.html"
fi
echo "PASS: $charts charts rendered"
