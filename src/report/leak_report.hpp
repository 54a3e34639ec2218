// The `memscope leak` JSON report ("memscope-leak", schema 1; docs/report-formats.md): shared by
// the CLI and the MemoryLeakDetector API.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analyze/leak.hpp"

namespace memscope::report {

// One entry of "processes".
nlohmann::json leak_verdict_json(const analyze::LeakVerdict& verdict);
// The document without the tracking members (those are added by `--enable-tracking`).
nlohmann::json leak_json(const std::string& source, double threshold_mb_per_min,
                         const std::vector<analyze::LeakVerdict>& verdicts);

}  // namespace memscope::report
