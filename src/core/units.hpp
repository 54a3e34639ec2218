// Byte sizes and times as people read and write them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace memscope {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// "1.5 GiB", "512.0 MiB", "12.0 KiB", "100 B".
std::string format_bytes(uint64_t bytes);
// As format_bytes, for signed deltas: "+3.2 MiB", "-1.0 GiB".
std::string format_bytes_delta(int64_t bytes);
// "2GiB", "1536MiB", "1.5G", "100M", "4096" (bytes), "2 GB" (decimal). Error on anything else.
Result<uint64_t> parse_size(std::string_view text);
// RFC 3339 in UTC with milliseconds: "2026-11-23T18:04:05.123Z".
std::string rfc3339_utc(int64_t unix_ms);
// "1h02m", "3m05s", "12.3s".
std::string format_duration(double seconds);

}  // namespace memscope
