// Outputs of `memscope leak --enable-tracking`: the top leak sites as a terminal table, the
// JSON "sites" list, and folded stacks (flamegraph.pl / speedscope / inferno read them) of live
// bytes at the end and at the peak.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analyze/alloc_sites.hpp"
#include "core/alloc_trace.hpp"

namespace memscope::alloc {

// A site with its frames symbolized (innermost first) and the frame it is named after.
struct ResolvedSite {
  Site site;
  std::vector<Frame> frames;
  std::string function;  // frames[naming_frame(frames)].function, "??" when unknown
  std::string location;  // "file:line" of that frame, or "module+0xOFFSET"
};

// Where a frame is: "file.cpp:42" with line information, else "module+0xOFFSET", else its
// address.
std::string frame_location(const Frame& frame);

// Sites with leaked bytes (or growing), largest first, at most `top` rows; a header line with
// the process, duration and totals; a growth column for growing sites.
std::string sites_table(const SiteReport& report, const std::vector<ResolvedSite>& sites,
                        size_t top);

// {"pid", "exe", "cmdline", "complete", "truncated", "duration_seconds", "peak_seconds",
//  "peak_host_bytes", ..., "sites": [{"function", "location", "memory", "space",
//  "leaked_bytes", "leaked_count", "peak_bytes", "max_live_bytes", "allocated_bytes",
//  "allocated_count", "first_seen_seconds", "last_seen_seconds", "growing",
//  "growth": [{"t_seconds", "live_bytes"}...], "frames": [{"function", "file", "line",
//  "module", "offset", "python_interpreter"}...]}]}
nlohmann::json trace_json(const SiteReport& report, const std::vector<ResolvedSite>& sites);

// Which set of folded lines: live bytes at the end, or at the peak.
enum class FoldedAt { end, peak };
// Every site of `report` folded, one line per stack: "outermost;...;innermost BYTES" (live
// bytes at the end, and at the peak), Python interpreter frames named "[python] FUNCTION";
// each address symbolized by `frame_of` once: a flamegraph of every site without holding every
// site's frames (deep Python stacks times hundreds of thousands of sites would be gigabytes).
struct FoldedLines {
  std::string end;
  std::string peak;
};
FoldedLines folded_stacks(const SiteReport& report,
                          const std::function<const Frame&(uint64_t)>& frame_of);

}  // namespace memscope::alloc
