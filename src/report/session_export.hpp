// A recorded session rendered to files: JSON (everything, samples streamed), CSV (one row per
// process per sample, the traces' format), HTML (one self-contained page with charts). Each
// reads the samples through a stream function, twice where it needs the peaks first, so a
// session of any length is never held in memory.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/recording.hpp"
#include "core/result.hpp"

namespace memscope::report {

// Calls the visitor with each sample in time order (store::SessionReader::for_each_sample);
// may be called more than once.
using SampleStream = std::function<Status(const SampleVisitor&)>;

inline constexpr int kSessionSchemaVersion = 1;
// The traces' header (../shared/traces/README.md), then memscope's extra columns.
inline constexpr std::string_view kCsvHeader =
    "t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes,gpu_bytes";
// The per-process chart shows this many processes; the rest are summed as "others".
inline constexpr size_t kChartProcesses = 10;
// Points per chart series in HTML pages (min/max per bucket beyond that).
inline constexpr size_t kChartMaxPoints = 4000;

Status write_session_json(const std::string& path, const RecordingInfo& info,
                          const std::vector<RecordingEvent>& events, const SampleStream& stream);
Status write_session_csv(const std::string& path, const RecordingInfo& info,
                         const std::vector<RecordingEvent>& events, const SampleStream& stream);
Status write_session_html(const std::string& path, const RecordingInfo& info,
                          const std::vector<RecordingEvent>& events, const SampleStream& stream);

}  // namespace memscope::report
