// JSON renderings of the model types, shared by the session export and the profile report.
// Memory figures are integer bytes (keys ending _bytes), times seconds (keys ending _seconds).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "analyze/peaks.hpp"
#include "core/recording.hpp"
#include "core/sample.hpp"

namespace memscope::report {

// The recorded command and how it ended.
nlohmann::json recording_json(const RecordingInfo& info);
nlohmann::json events_json(const std::vector<RecordingEvent>& events);
// Every peak of the summary: processes, tree, devices, host.
nlohmann::json summary_json(const analyze::PeakSummary& summary);
// One sample, compact: host figures, devices, and per process its memory.
nlohmann::json sample_json(const Sample& sample);
nlohmann::json device_json(const DeviceSample& device);
nlohmann::json pressure_json(const Pressure& pressure);
nlohmann::json cgroup_json(const std::optional<CgroupMemory>& cgroup);

// Seconds rounded to milliseconds: what the clocks resolve, and short in the JSON.
double seconds_json(double seconds);

// The command as one line, arguments with spaces or quotes shell-quoted.
std::string command_line(const std::vector<std::string>& command);

}  // namespace memscope::report
