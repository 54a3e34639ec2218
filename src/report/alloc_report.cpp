#include "report/alloc_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/units.hpp"

namespace memscope::alloc {
namespace {

constexpr size_t kFunctionWidth = 60;

std::string fit(const std::string& text, size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

double milliseconds_rounded(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

std::string hex(uint64_t value) { return fmt::format("{:#x}", value); }

// "libfoo.so+0x1a2b", or the bare address without a module.
std::string in_module(const Frame& frame) {
  if (frame.module.empty()) return hex(frame.ip);
  return fmt::format("{}+{:#x}", file_name_of(frame.module), frame.module_offset);
}

bool shown(const Site& site) { return site.leaked_bytes > 0 || site.growing; }

std::string header(const SiteReport& report) {
  std::string line =
      fmt::format("pid {}  {}  ran {}  peak {} host + {} gpu at {}  end: {} host + {} gpu live",
                  report.process.pid, report.process.exe.empty() ? "?" : report.process.exe,
                  format_duration(report.duration_seconds), format_bytes(report.peak_host_bytes),
                  format_bytes(report.peak_gpu_bytes), format_duration(report.peak_seconds),
                  format_bytes(report.end_host_bytes), format_bytes(report.end_gpu_bytes));
  if (report.end.truncated) {
    line += " (truncated)";
  } else if (!report.end.complete) {
    line += " (incomplete: the process did not exit normally)";
  }
  return line + "\n";
}

// A frame as a folded-stack element: its function, else module+offset, else its address.
// ';' separates frames and a newline ends the line, so neither may appear inside one.
std::string folded_frame(const Frame& frame) {
  std::string name = frame.function.empty() ? in_module(frame) : frame.function;
  if (frame.python_interpreter) name = "[python] " + name;
  for (char& c : name) {
    if (c == ';' || c == '\n' || c == '\r') c = '_';
  }
  return name;
}

}  // namespace

std::string frame_location(const Frame& frame) {
  if (frame.file.empty()) return in_module(frame);
  const std::string_view file = file_name_of(frame.file);
  return frame.line ? fmt::format("{}:{}", file, frame.line) : std::string(file);
}

std::string sites_table(const SiteReport& report, const std::vector<ResolvedSite>& sites,
                        size_t top) {
  std::string out = header(report);
  // One row per function, location and memory kind (a function reached by several call paths
  // is one line, with the number of stacks); rows by what they hold: the bytes leaked, or for
  // a growing site the most it held (memory freed only as the program exited).
  struct Row {
    const ResolvedSite* first = nullptr;
    uint64_t leaked_bytes = 0;
    uint64_t leaked_count = 0;
    uint64_t growing_max_bytes = 0;
    size_t stacks = 0;
    uint64_t weight() const { return std::max(leaked_bytes, growing_max_bytes); }
  };
  std::vector<Row> rows;
  std::map<std::tuple<std::string_view, std::string_view, std::string_view>, size_t> row_of;
  for (const ResolvedSite& site : sites) {
    if (!shown(site.site)) continue;
    const auto key = std::make_tuple(std::string_view(site.function),
                                     std::string_view(site.location), memory_kind(site.site.space));
    auto [it, added] = row_of.emplace(key, rows.size());
    if (added) rows.push_back(Row{&site});
    Row& row = rows[it->second];
    row.leaked_bytes += site.site.leaked_bytes;
    row.leaked_count += site.site.leaked_count;
    if (site.site.growing) row.growing_max_bytes += site.site.max_live_bytes;
    ++row.stacks;
  }
  if (rows.empty()) return out + "no allocation was still live at the end\n";
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.weight() > b.weight(); });
  uint64_t hidden_count = 0;
  uint64_t hidden_bytes = 0;
  for (size_t i = top; i < rows.size(); ++i) {
    hidden_count += rows[i].stacks;
    hidden_bytes += rows[i].leaked_bytes;
  }
  if (rows.size() > top) rows.resize(top);
  size_t function_width = std::string_view("function").size();
  for (const Row& row : rows) {
    function_width = std::max(function_width, std::min(row.first->function.size(), kFunctionWidth));
  }
  out += fmt::format("{:>10} {:>8} {:<11} {:<{}} {}\n", "leaked", "count", "memory", "function",
                     function_width, "location");
  for (const Row& row : rows) {
    const ResolvedSite& site = *row.first;
    std::string line = fmt::format("{:>10} {:>8} {:<11} {:<{}} {}", format_bytes(row.leaked_bytes),
                                   row.leaked_count, memory_kind(site.site.space),
                                   fit(site.function, kFunctionWidth), function_width,
                                   site.location.empty() ? "?" : site.location);
    if (row.growing_max_bytes > 0) {
      line += fmt::format("  growing (held {})", format_bytes(row.growing_max_bytes));
    }
    if (row.stacks > 1) line += fmt::format("  {} stacks", row.stacks);
    out += line + "\n";
  }
  if (hidden_count > 0) {
    out += fmt::format("{} more {} {}\n", hidden_count,
                       hidden_count == 1 ? "site holds" : "sites hold", format_bytes(hidden_bytes));
  }
  return out;
}

nlohmann::json trace_json(const SiteReport& report, const std::vector<ResolvedSite>& sites) {
  nlohmann::json out = {
      {"pid", report.process.pid},
      {"ppid", report.process.ppid},
      {"exe", report.process.exe},
      {"cmdline", report.process.cmdline},
      {"complete", report.end.complete},
      {"truncated", report.end.truncated},
      {"end_reason", report.end.end_reason},
      {"duration_seconds", milliseconds_rounded(report.duration_seconds)},
      {"peak_seconds", milliseconds_rounded(report.peak_seconds)},
      {"peak_host_bytes", report.peak_host_bytes},
      {"peak_gpu_bytes", report.peak_gpu_bytes},
      {"end_host_bytes", report.end_host_bytes},
      {"end_gpu_bytes", report.end_gpu_bytes},
      {"events", report.events},
      {"unknown_frees", report.unknown_frees},
  };
  nlohmann::json list = nlohmann::json::array();
  for (const ResolvedSite& resolved : sites) {
    const Site& site = resolved.site;
    nlohmann::json growth = nlohmann::json::array();
    const size_t points =
        std::min(site.live_bytes_over_time.size(), report.growth_times_seconds.size());
    for (size_t i = 0; i < points; ++i) {
      growth.push_back({{"t_seconds", milliseconds_rounded(report.growth_times_seconds[i])},
                        {"live_bytes", site.live_bytes_over_time[i]}});
    }
    nlohmann::json frames = nlohmann::json::array();
    for (const Frame& frame : resolved.frames) {
      frames.push_back({{"function", frame.function},
                        {"file", frame.file},
                        {"line", frame.line},
                        {"module", frame.module},
                        {"offset", hex(frame.module_offset)},
                        {"ip", hex(frame.ip)},
                        {"python_interpreter", frame.python_interpreter}});
    }
    list.push_back({{"function", resolved.function},
                    {"location", resolved.location},
                    {"memory", memory_kind(site.space)},
                    {"space", space_name(site.space)},
                    {"stack", site.stack},
                    {"leaked_bytes", site.leaked_bytes},
                    {"leaked_count", site.leaked_count},
                    {"peak_bytes", site.peak_bytes},
                    {"max_live_bytes", site.max_live_bytes},
                    {"allocated_bytes", site.allocated_bytes},
                    {"allocated_count", site.allocated_count},
                    {"first_seen_seconds", milliseconds_rounded(site.first_seen_seconds)},
                    {"last_seen_seconds", milliseconds_rounded(site.last_seen_seconds)},
                    {"growing", site.growing},
                    {"growth", std::move(growth)},
                    {"frames", std::move(frames)}});
  }
  out["sites"] = std::move(list);
  return out;
}

namespace {

using FoldedMap = std::map<std::string, uint64_t>;

std::string folded_text(const FoldedMap& stacks) {
  std::string out;
  for (const auto& [stack, bytes] : stacks) out += fmt::format("{} {}\n", stack, bytes);
  return out;
}

}  // namespace

FoldedLines folded_stacks(const SiteReport& report,
                          const std::function<const Frame&(uint64_t)>& frame_of) {
  std::unordered_map<uint64_t, std::string> names;
  FoldedMap end;
  FoldedMap peak;
  for (const Site& site : report.sites) {
    if (site.leaked_bytes == 0 && site.peak_bytes == 0) continue;
    const std::vector<uint64_t> ips = report.stacks.frames(site.stack);  // innermost first
    std::string stack;
    for (auto ip = ips.rbegin(); ip != ips.rend(); ++ip) {
      auto [name, added] = names.try_emplace(*ip);
      if (added) name->second = folded_frame(frame_of(*ip));
      if (!stack.empty()) stack += ';';
      stack += name->second;
    }
    if (stack.empty()) stack = "[no stack]";
    if (site.leaked_bytes != 0) end[stack] += site.leaked_bytes;
    if (site.peak_bytes != 0) peak[stack] += site.peak_bytes;
  }
  return {folded_text(end), folded_text(peak)};
}

}  // namespace memscope::alloc
