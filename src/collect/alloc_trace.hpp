// Reader of the allocation tracker's trace files (docs/tracker-format.md). Streams records to a
// TraceVisitor; memory is bounded by one chunk (4 MiB raw) whatever the file holds. Untrusted
// input: fuzzed (tests/fuzz/alloc_trace_fuzzer.cpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/alloc_trace.hpp"
#include "core/result.hpp"

namespace memscope::alloc {

// Reads `path`, delivering every record to `visitor` in file order. Errors (one line naming the
// file): cannot open; not a memscope trace (bad magic or shorter than the header); another
// format version ("... is trace format version N; this memscope reads version 1"); corrupt
// (names the chunk's byte offset; records before the bad chunk were already delivered).
// A file that ends inside a chunk is not an error: TraceEnd::truncated.
Result<TraceEnd> read_trace_file(const std::string& path, TraceVisitor& visitor);
// The same over bytes in memory; `name` stands for the file in messages.
Result<TraceEnd> read_trace_bytes(std::string_view bytes, TraceVisitor& visitor,
                                  std::string_view name);

// The trace files a tracked run left for MEMSCOPE_TRACK_OUTPUT=prefix: "prefix.<pid>.mst" and
// "prefix.<pid>.<n>.mst", sorted by pid then n.
std::vector<std::string> find_trace_files(const std::string& prefix);

}  // namespace memscope::alloc
