// Reads memory traces in CSV: the format of ../shared/traces/README.md
// (`t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes`, one row per process per sample)
// and memscope's own `--csv` export, which adds columns (e.g. gpu_bytes). Columns are found by
// name in the header, in any order; extra columns are ignored.
//
// The rows of one instant (same `t`) become one Sample with those processes and no system or
// device data. Streaming: memory is bounded by the rows of one instant, whatever the file size.
// A trace is untrusted input: every malformed line is an error naming the file, the line number
// and what is wrong (missing column, not a number, a time that goes backwards, too many fields).
#pragma once

#include <functional>
#include <istream>
#include <string>

#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::trace {

// Called once per instant, in time order; returning false stops the reading early (not an error).
using SampleVisitor = std::function<bool(const Sample&)>;

// `name` is used in error messages (the path, or "<stdin>").
Status for_each_csv_sample(std::istream& in, const std::string& name, const SampleVisitor& visit);
// Opens the file; a missing or unreadable file is an error naming the path.
Status for_each_csv_sample_file(const std::string& path, const SampleVisitor& visit);

}  // namespace memscope::trace
