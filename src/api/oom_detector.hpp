// The internal side of the public OOMDetector (memscope/oom_detector.hpp): conversions between
// the public types and analyze/oom.hpp's, shared with the other api classes and the tests.
#pragma once

#include "analyze/oom.hpp"
#include "memscope/oom_detector.hpp"  // IWYU pragma: export

namespace memscope {

OomPrediction to_prediction(const analyze::Assessment& assessment);
analyze::RiskLevel to_analyze(RiskLevel level);

}  // namespace memscope
