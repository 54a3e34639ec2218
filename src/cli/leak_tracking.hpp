// `memscope leak --enable-tracking` / `--trace`: preparing the tracked command's environment,
// and turning the trace files it left into symbolized leak sites, JSON and flame graphs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analyze/alloc_sites.hpp"
#include "core/result.hpp"
#include "report/alloc_report.hpp"

namespace memscope::cli {

// libmemscope_track.so: $MEMSCOPE_TRACK_LIBRARY, else beside the memscope binary, else
// ../lib/memscope/ from it (an installed layout). An error names where it looked.
Result<std::string> find_tracker_library();

// The environment a tracked command gets: LD_PRELOAD (the tracker first, an existing
// LD_PRELOAD kept after it) and MEMSCOPE_TRACK_OUTPUT=prefix. Set in memscope's own environment
// just around the fork; the previous values come back when this goes away.
class TrackingEnvironment {
 public:
  TrackingEnvironment(const std::string& library, const std::string& prefix);
  ~TrackingEnvironment();
  TrackingEnvironment(const TrackingEnvironment&) = delete;
  TrackingEnvironment& operator=(const TrackingEnvironment&) = delete;

 private:
  struct Saved {
    std::string name;
    bool was_set = false;
    std::string value;
  };
  std::vector<Saved> saved_;
};

// Sites given all their frames, for the JSON: the ones holding the most (bytes leaked, or for a
// growing site the most it held); the others are named (function, location) only, unless every
// frame is wanted (flame graphs).
inline constexpr size_t kMaxJsonSitesPerTrace = 1000;

// One trace file, analysed and symbolized.
struct TracedProcess {
  std::string file;
  uint64_t file_bytes = 0;
  alloc::SiteReport report;
  std::vector<alloc::ResolvedSite> sites;  // every site, in the report's order
  std::vector<bool> detailed;              // per site: it carries its frames
  std::vector<size_t> json_sites;          // indices of the sites the JSON lists
  alloc::FoldedLines folded;               // every site's stack, when asked for (flamegraphs)
};

// Reads, analyses and symbolizes one trace. Errors: the reader's (not a trace, other version,
// corrupt); a truncated file is analysed (report.end.truncated). The kMaxJsonSitesPerTrace
// sites holding the most carry their frames; `folded`: every site's stack goes into
// TracedProcess::folded too.
Result<TracedProcess> analyse_trace(const std::string& path, bool folded);

// The "traces" and "sites" members of the memscope-leak JSON.
void add_tracking_json(nlohmann::json& document, const std::vector<TracedProcess>& traces);

// Terminal text: per trace its file and the top sites table.
std::string tracking_text(const std::vector<TracedProcess>& traces, size_t top);

// PREFIX.end.folded and PREFIX.peak.folded over all traces (each stack under a root frame
// naming the program and pid). An error names the file.
Status write_flamegraphs(const std::string& prefix, const std::vector<TracedProcess>& traces);

}  // namespace memscope::cli
