// Small, allocation-free helpers for the line-and-field text of procfs and cgroupfs files.
// Everything takes std::string_view and tolerates any input, including binary garbage.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace memscope::procfs {

// Removes leading and trailing ASCII whitespace (space, tab, newline, CR, VT, FF).
std::string_view trim(std::string_view text);

// Returns the next line of `rest` (without its '\n') and advances `rest` past it.
std::string_view next_line(std::string_view& rest);

// Returns the next run of non-whitespace characters of `rest` and advances past it; empty at end.
std::string_view next_field(std::string_view& rest);

// A whole token as an unsigned decimal number; nullopt on anything else, including overflow.
std::optional<uint64_t> to_u64(std::string_view token);

// A whole token as a signed decimal int; nullopt on anything else, including overflow.
std::optional<int> to_int(std::string_view token);

// "   1234 kB" (the value part of a /proc/meminfo or smaps line) in bytes; nullopt when the
// number is missing, malformed, or the byte count would overflow. A bare number is taken as kB.
std::optional<uint64_t> kb_value_to_bytes(std::string_view value);

// Splits "Key: value" at the first ':'; false when there is no ':'.
bool split_key_value(std::string_view line, std::string_view& key, std::string_view& value);

}  // namespace memscope::procfs
