// The `memscope profile` JSON report ("memscope-profile", schema_version 1). The keys users know
// from the original profiler (devices.N.current_memory.allocated/free/total/utilization,
// peak_memory, statistics.avg_utilization/max_utilization/num_snapshots) keep their names; the
// layout is documented in docs/report-formats.md.
#pragma once

#include <nlohmann/json.hpp>

#include "analyze/peaks.hpp"
#include "core/recording.hpp"
#include "core/sample.hpp"

namespace memscope::report {

inline constexpr int kProfileSchemaVersion = 1;
// How many processes host.top_processes lists.
inline constexpr size_t kTopProcesses = 10;

// summary: peaks over the whole profile; last: the last sample (the "current" figures).
nlohmann::json profile_json(const analyze::PeakSummary& summary, const Sample& last,
                            const RecordingInfo& info);

}  // namespace memscope::report
