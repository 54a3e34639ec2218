#include "collect/linux/text_scan.hpp"

#include <charconv>
#include <limits>

namespace memscope::procfs {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::string_view next_line(std::string_view& rest) {
  const size_t end = rest.find('\n');
  std::string_view line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return line;
}

std::string_view next_field(std::string_view& rest) {
  size_t begin = 0;
  while (begin < rest.size() && is_space(rest[begin])) ++begin;
  size_t end = begin;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  std::string_view field = rest.substr(begin, end - begin);
  rest.remove_prefix(end);
  return field;
}

std::optional<uint64_t> to_u64(std::string_view token) {
  uint64_t value = 0;
  if (token.empty()) return std::nullopt;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (error != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return value;
}

std::optional<int> to_int(std::string_view token) {
  int value = 0;
  if (token.empty()) return std::nullopt;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (error != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return value;
}

std::optional<uint64_t> kb_value_to_bytes(std::string_view value) {
  std::string_view rest = value;
  const auto number = to_u64(next_field(rest));
  if (!number) return std::nullopt;
  const std::string_view unit = next_field(rest);
  if (!(unit.empty() || unit == "kB") || !next_field(rest).empty()) return std::nullopt;
  if (*number > std::numeric_limits<uint64_t>::max() / 1024) return std::nullopt;
  return *number * 1024;
}

bool split_key_value(std::string_view line, std::string_view& key, std::string_view& value) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  key = trim(line.substr(0, colon));
  value = line.substr(colon + 1);
  return true;
}

}  // namespace memscope::procfs
