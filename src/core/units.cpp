#include "core/units.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>

namespace memscope {

std::string format_bytes(uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < kKiB) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string format_bytes_delta(int64_t bytes) {
  const uint64_t magnitude =
      bytes < 0 ? static_cast<uint64_t>(-(bytes + 1)) + 1 : static_cast<uint64_t>(bytes);
  return fmt::format("{}{}", bytes < 0 ? '-' : '+', format_bytes(magnitude));
}

Result<uint64_t> parse_size(std::string_view text) {
  const std::string original(text);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) return make_error(fmt::format("'{}' is not a size (expected e.g. 2GiB, 1536MiB)", original));
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec != std::errc() || end != text.data() + digits) {
    return make_error(fmt::format("'{}' is not a size (expected e.g. 2GiB, 1536MiB)", original));
  }
  std::string unit;
  for (char c : text.substr(digits)) {
    if (!std::isspace(static_cast<unsigned char>(c))) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  double multiplier = 0;
  if (unit.empty() || unit == "b") multiplier = 1;
  else if (unit == "k" || unit == "kib" || unit == "ki") multiplier = static_cast<double>(kKiB);
  else if (unit == "m" || unit == "mib" || unit == "mi") multiplier = static_cast<double>(kMiB);
  else if (unit == "g" || unit == "gib" || unit == "gi") multiplier = static_cast<double>(kGiB);
  else if (unit == "t" || unit == "tib" || unit == "ti") multiplier = static_cast<double>(kGiB) * 1024.0;
  else if (unit == "kb") multiplier = 1e3;
  else if (unit == "mb") multiplier = 1e6;
  else if (unit == "gb") multiplier = 1e9;
  else if (unit == "tb") multiplier = 1e12;
  else return make_error(fmt::format("'{}' has an unknown unit '{}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", original, unit));
  const double bytes = number * multiplier;
  if (!std::isfinite(bytes) || bytes >= 1.8e19) return make_error(fmt::format("'{}' is too large", original));
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string rfc3339_utc(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

std::string format_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto total = static_cast<long long>(seconds);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
}

}  // namespace memscope
