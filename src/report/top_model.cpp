#include "report/top_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>

#include "core/units.hpp"

namespace memscope::report {

// --- HistoryRing ---

HistoryRing::HistoryRing(size_t capacity)
    : times_(std::max<size_t>(capacity, 1)), values_(std::max<size_t>(capacity, 1)) {}

void HistoryRing::push(double t_seconds, double value) {
  if (size_ < times_.size()) {
    times_[index(size_)] = t_seconds;
    values_[index(size_)] = value;
    ++size_;
    return;
  }
  times_[start_] = t_seconds;
  values_[start_] = value;
  start_ = (start_ + 1) % times_.size();
}

double HistoryRing::value(size_t i) const { return values_[index(i)]; }
double HistoryRing::time(size_t i) const { return times_[index(i)]; }

std::vector<double> HistoryRing::values() const {
  std::vector<double> out;
  out.reserve(size_);
  for (size_t i = 0; i < size_; ++i) out.push_back(value(i));
  return out;
}

std::optional<double> HistoryRing::slope(double window_seconds) const {
  if (size_ < 2) return std::nullopt;
  const double newest = time(size_ - 1);
  double n = 0;
  double sum_t = 0;
  double sum_v = 0;
  for (size_t i = 0; i < size_; ++i) {
    if (newest - time(i) > window_seconds) continue;
    n += 1;
    sum_t += time(i);
    sum_v += value(i);
  }
  if (n < 2) return std::nullopt;
  const double mean_t = sum_t / n;
  const double mean_v = sum_v / n;
  double covariance = 0;
  double variance = 0;
  for (size_t i = 0; i < size_; ++i) {
    if (newest - time(i) > window_seconds) continue;
    covariance += (time(i) - mean_t) * (value(i) - mean_v);
    variance += (time(i) - mean_t) * (time(i) - mean_t);
  }
  if (variance <= 0) return std::nullopt;
  return covariance / variance;
}

// --- Sort keys ---

std::optional<SortKey> sort_key_for(int key) {
  switch (key) {
    case 'm': return SortKey::kMemory;
    case 'g': return SortKey::kGpu;
    case 'r': return SortKey::kGrowth;
    case 'p': return SortKey::kPid;
    case 'n': return SortKey::kName;
    default: return std::nullopt;
  }
}

const char* to_string(SortKey key) {
  switch (key) {
    case SortKey::kMemory: return "memory";
    case SortKey::kGpu: return "gpu";
    case SortKey::kGrowth: return "growth";
    case SortKey::kPid: return "pid";
    case SortKey::kName: return "name";
  }
  return "memory";
}

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Whether a sorts before b under `key`.
bool sorts_before(const ProcessRow& a, const ProcessRow& b, SortKey key) {
  switch (key) {
    case SortKey::kMemory:
      if (a.rss_bytes != b.rss_bytes) return a.rss_bytes > b.rss_bytes;
      break;
    case SortKey::kGpu:
      if (a.gpu_bytes != b.gpu_bytes) return a.gpu_bytes > b.gpu_bytes;
      if (a.rss_bytes != b.rss_bytes) return a.rss_bytes > b.rss_bytes;
      break;
    case SortKey::kGrowth: {
      // Unknown growth sorts last.
      const double ga = a.growth_bytes_per_second.value_or(-HUGE_VAL);
      const double gb = b.growth_bytes_per_second.value_or(-HUGE_VAL);
      if (ga != gb) return ga > gb;
      break;
    }
    case SortKey::kPid: break;
    case SortKey::kName: {
      const std::string la = lower(a.name);
      const std::string lb = lower(b.name);
      if (la != lb) return la < lb;
      break;
    }
  }
  return a.pid < b.pid;
}

}  // namespace

// --- TopModel ---

TopModel::TopModel(TopOptions options) : options_(options) {}

void TopModel::update(const Sample& sample, const std::vector<analyze::Assessment>& assessments) {
  ++samples_;
  t_seconds_ = sample.t_seconds;
  std::map<std::string, const analyze::Assessment*> by_resource;
  for (const analyze::Assessment& a : assessments) by_resource[a.resource] = &a;

  host_.system = sample.system;
  host_.forecast.reset();
  if (const auto found = by_resource.find("host"); found != by_resource.end()) {
    host_.forecast = *found->second;
  }

  devices_.clear();
  std::set<int> device_indices;
  for (const DeviceSample& device : sample.devices) {
    DeviceRow row;
    row.device = device;
    if (const auto found = by_resource.find(fmt::format("gpu{}", device.index));
        found != by_resource.end()) {
      row.forecast = *found->second;
    }
    devices_.push_back(std::move(row));
    device_indices.insert(device.index);
    if (device.ok) {
      auto [it, added] = device_history_.try_emplace(device.index, options_.history_points);
      it->second.push(sample.t_seconds, static_cast<double>(device.used_bytes));
    }
  }
  std::erase_if(device_history_,
                [&](const auto& entry) { return device_indices.count(entry.first) == 0; });

  rows_.clear();
  rows_.reserve(sample.processes.size());
  std::set<std::pair<int, uint64_t>> alive;
  for (const ProcessSample& p : sample.processes) {
    ProcessRow row;
    row.pid = p.pid;
    row.ppid = p.ppid;
    row.start_time_ticks = p.start_time_ticks;
    row.name = p.comm;
    row.cmdline = p.cmdline;
    row.rss_bytes = p.rss_bytes;
    row.pss_bytes = p.pss_bytes;
    row.uss_bytes = p.uss_bytes;
    row.swap_bytes = p.swap_bytes;
    row.smaps_readable = p.smaps_readable;
    row.gpu_bytes = p.gpu_bytes;
    row.rank = p.rank;
    row.local_rank = p.local_rank;
    const std::pair<int, uint64_t> key{p.pid, p.start_time_ticks};
    alive.insert(key);
    auto [it, added] = process_history_.try_emplace(key, options_.history_points);
    it->second.push(sample.t_seconds, static_cast<double>(p.rss_bytes + p.gpu_bytes));
    row.growth_bytes_per_second = it->second.slope(options_.growth_window_seconds);
    rows_.push_back(std::move(row));
  }
  std::sort(rows_.begin(), rows_.end(),
            [](const ProcessRow& a, const ProcessRow& b) { return a.pid < b.pid; });
  std::erase_if(process_history_,
                [&](const auto& entry) { return alive.count(entry.first) == 0; });
}

const ProcessRow* TopModel::find(int pid) const {
  const auto found = std::lower_bound(rows_.begin(), rows_.end(), pid,
                                      [](const ProcessRow& row, int p) { return row.pid < p; });
  return found != rows_.end() && found->pid == pid ? &*found : nullptr;
}

std::vector<ProcessRow> TopModel::visible_rows() const {
  std::vector<const ProcessRow*> shown;
  const std::string needle = lower(filter_);
  for (const ProcessRow& row : rows_) {
    if (needle.empty() || lower(row.name).find(needle) != std::string::npos ||
        lower(row.cmdline).find(needle) != std::string::npos) {
      shown.push_back(&row);
    }
  }
  const auto before = [this](const ProcessRow* a, const ProcessRow* b) {
    return sorts_before(*a, *b, sort_);
  };
  std::vector<ProcessRow> out;
  out.reserve(shown.size());
  if (!tree_) {
    std::sort(shown.begin(), shown.end(), before);
    for (const ProcessRow* row : shown) out.push_back(*row);
    return out;
  }
  std::set<int> shown_pids;
  for (const ProcessRow* row : shown) shown_pids.insert(row->pid);
  std::map<int, std::vector<const ProcessRow*>> children;
  std::vector<const ProcessRow*> roots;
  for (const ProcessRow* row : shown) {
    if (row->ppid != row->pid && shown_pids.count(row->ppid) != 0) {
      children[row->ppid].push_back(row);
    } else {
      roots.push_back(row);
    }
  }
  std::sort(roots.begin(), roots.end(), before);
  for (auto& [ppid, list] : children) std::sort(list.begin(), list.end(), before);
  // Depth-first with an explicit stack (process trees can be deep); pids already placed are
  // skipped, so even a ppid cycle in a damaged /proc cannot loop.
  std::set<int> placed;
  std::vector<std::pair<const ProcessRow*, int>> stack;
  for (auto root = roots.rbegin(); root != roots.rend(); ++root) stack.emplace_back(*root, 0);
  while (!stack.empty()) {
    const auto [row, depth] = stack.back();
    stack.pop_back();
    if (!placed.insert(row->pid).second) continue;
    ProcessRow copy = *row;
    copy.depth = depth;
    out.push_back(std::move(copy));
    const auto found = children.find(row->pid);
    if (found == children.end()) continue;
    for (auto child = found->second.rbegin(); child != found->second.rend(); ++child) {
      stack.emplace_back(*child, depth + 1);
    }
  }
  // Members of a ppid cycle have no root: show them too, flat.
  for (const ProcessRow* row : shown) {
    if (placed.count(row->pid) == 0) out.push_back(*row);
  }
  return out;
}

const HistoryRing* TopModel::process_history(int pid) const {
  const ProcessRow* row = find(pid);
  if (!row) return nullptr;
  const auto found = process_history_.find({row->pid, row->start_time_ticks});
  return found == process_history_.end() ? nullptr : &found->second;
}

const HistoryRing* TopModel::device_history(int index) const {
  const auto found = device_history_.find(index);
  return found == device_history_.end() ? nullptr : &found->second;
}

// --- smaps ---

namespace {

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// "7f00-7f10 rw-p 00000000 00:00 0   [heap]": the mapping header; fills the pathname.
bool parse_mapping_header(std::string_view line, std::string_view& path, bool& shared) {
  size_t i = 0;
  while (i < line.size() && is_hex(line[i])) ++i;
  if (i == 0 || i >= line.size() || line[i] != '-') return false;
  size_t fields = 0;
  size_t pos = 0;
  // Five fields before the path: range, perms, offset, device, inode.
  std::string_view perms;
  while (fields < 5) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    const size_t start = pos;
    while (pos < line.size() && line[pos] != ' ') ++pos;
    if (start == pos) return false;
    if (fields == 1) perms = line.substr(start, pos - start);
    ++fields;
  }
  while (pos < line.size() && line[pos] == ' ') ++pos;
  path = line.substr(pos);
  shared = perms.size() == 4 && perms[3] == 's';
  return true;
}

enum class MappingKind { kHeap, kAnon, kFile, kShmem, kStack, kOther };

MappingKind classify(std::string_view path, bool shared) {
  if (path == "[heap]") return MappingKind::kHeap;
  if (path.starts_with("[stack")) return MappingKind::kStack;
  if (path.starts_with("/dev/shm/") || path.starts_with("/memfd:") ||
      path.starts_with("/SYSV") || path.starts_with("/dev/zero") || path == "[anon_shmem]") {
    return MappingKind::kShmem;
  }
  if (path.empty() || path.starts_with("[anon:")) {
    return shared ? MappingKind::kShmem : MappingKind::kAnon;
  }
  if (path.starts_with("/dev/")) return MappingKind::kOther;
  if (path.starts_with("/")) return MappingKind::kFile;
  return MappingKind::kOther;
}

// "Rss:   1234 kB" -> bytes.
std::optional<uint64_t> parse_kb_value(std::string_view rest) {
  size_t pos = 0;
  while (pos < rest.size() && rest[pos] == ' ') ++pos;
  uint64_t kb = 0;
  const auto [end, ec] = std::from_chars(rest.data() + pos, rest.data() + rest.size(), kb);
  if (ec != std::errc() || end == rest.data() + pos) return std::nullopt;
  return kb * 1024;
}

}  // namespace

Result<SmapsBreakdown> parse_smaps_breakdown(std::string_view text) {
  SmapsBreakdown out;
  MappingKind kind = MappingKind::kOther;
  bool in_mapping = false;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++line_number;
    if (line.empty()) continue;
    std::string_view path;
    bool shared = false;
    if (parse_mapping_header(line, path, shared)) {
      kind = classify(path, shared);
      in_mapping = true;
      ++out.mappings;
      continue;
    }
    if (!in_mapping) continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    if (name != "Rss" && name != "Pss" && name != "Swap") continue;
    const auto bytes = parse_kb_value(line.substr(colon + 1));
    if (!bytes) {
      return make_error(fmt::format("smaps line {}: '{}' is not a size in kB", line_number,
                                    std::string(line)));
    }
    if (name == "Pss") {
      out.pss_bytes += *bytes;
    } else if (name == "Swap") {
      out.swap_bytes += *bytes;
    } else {
      out.rss_bytes += *bytes;
      switch (kind) {
        case MappingKind::kHeap: out.heap_bytes += *bytes; break;
        case MappingKind::kAnon: out.anon_bytes += *bytes; break;
        case MappingKind::kFile: out.file_bytes += *bytes; break;
        case MappingKind::kShmem: out.shmem_bytes += *bytes; break;
        case MappingKind::kStack: out.stack_bytes += *bytes; break;
        case MappingKind::kOther: out.other_bytes += *bytes; break;
      }
    }
  }
  if (out.mappings == 0) return make_error("smaps: no mapping found");
  return out;
}

// --- Cells ---

std::string fit_left(std::string_view text, size_t width) {
  std::string out(text.substr(0, width));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  if (text.size() > width && width > 0) out.back() = '~';
  out.resize(width, ' ');
  return out;
}

std::string fit_right(std::string_view text, size_t width) {
  if (text.size() >= width) return fit_left(text, width);
  return std::string(width - text.size(), ' ') + fit_left(text, text.size());
}

std::string short_bytes(uint64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr const char* kUnits = "BKMGTP";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < 6) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0) return fmt::format("{}B", bytes);
  if (value < 10.0) return fmt::format("{:.1f}{}", value, kUnits[unit]);
  return fmt::format("{:.0f}{}", value, kUnits[unit]);
}

std::string short_rate(std::optional<double> bytes_per_second) {
  if (!bytes_per_second || !std::isfinite(*bytes_per_second)) return "-";
  const double rate = *bytes_per_second;
  const double magnitude = std::fabs(rate);
  if (magnitude < 1024.0) return "0/s";  // under 1 KiB/s is noise at these sample rates
  return fmt::format("{}{}/s", rate < 0 ? '-' : '+',
                     short_bytes(static_cast<uint64_t>(std::llround(magnitude))));
}

std::string bar(double fraction, size_t width) {
  if (width < 2) return std::string(width, '[');
  const size_t inside = width - 2;
  if (!std::isfinite(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto filled =
      static_cast<size_t>(std::llround(fraction * static_cast<double>(inside)));
  std::string out;
  out.reserve(width);
  out += '[';
  out.append(filled, '#');
  out.append(inside - filled, '.');
  out += ']';
  return out;
}

std::string time_to_oom_cell(const std::optional<analyze::Assessment>& forecast) {
  if (!forecast || forecast->limit_bytes == 0) return "-";
  if (forecast->predicted_oom_seconds) return format_duration(*forecast->predicted_oom_seconds);
  return "none";
}

std::vector<int> sparkline_levels(const std::vector<double>& values, size_t width) {
  const size_t first = values.size() > width ? values.size() - width : 0;
  double low = HUGE_VAL;
  double high = -HUGE_VAL;
  for (size_t i = first; i < values.size(); ++i) {
    low = std::min(low, values[i]);
    high = std::max(high, values[i]);
  }
  std::vector<int> levels;
  levels.reserve(values.size() - first);
  for (size_t i = first; i < values.size(); ++i) {
    if (!(high > low)) {
      levels.push_back(0);
      continue;
    }
    const double scaled = (values[i] - low) / (high - low) * 7.0;
    levels.push_back(std::clamp(static_cast<int>(std::lround(scaled)), 0, 7));
  }
  return levels;
}

namespace {

// Column widths of the process table, name last computed from what is left.
constexpr size_t kPidWidth = 7;
constexpr size_t kRankWidth = 4;
constexpr size_t kBytesWidth = 6;
constexpr size_t kRateWidth = 8;
constexpr size_t kFixedWidth = kPidWidth + 1 + (kRankWidth + 1) + 4 * (kBytesWidth + 1) +
                               (kRateWidth + 1);

size_t name_width(size_t width) { return width > kFixedWidth + 8 ? width - kFixedWidth : 8; }

std::string rank_cell(const ProcessRow& row) {
  if (row.rank) return std::to_string(*row.rank);
  if (row.local_rank) return fmt::format("l{}", *row.local_rank);
  return "-";
}

std::string percent(uint64_t used, uint64_t limit) {
  if (limit == 0) return "-";
  return fmt::format("{:.0f}%", 100.0 * static_cast<double>(used) / static_cast<double>(limit));
}

// Memory and swap bars share a width, so they line up.
size_t host_bar_width(size_t width) { return std::clamp<size_t>(width > 55 ? width - 55 : 0, 10, 50); }

}  // namespace

std::string process_header(size_t width, SortKey sort) {
  const auto title = [sort](const char* text, SortKey key) {
    return sort == key ? fmt::format("{}*", text) : std::string(text);
  };
  std::string line = fit_right(title("PID", SortKey::kPid), kPidWidth) + " " +
                     fit_left(title("NAME", SortKey::kName), name_width(width)) + " " +
                     fit_right("RANK", kRankWidth) + " " +
                     fit_right(title("RSS", SortKey::kMemory), kBytesWidth) + " " +
                     fit_right("PSS", kBytesWidth) + " " + fit_right("USS", kBytesWidth) + " " +
                     fit_right(title("GPU", SortKey::kGpu), kBytesWidth) + " " +
                     fit_right(title("GROWTH", SortKey::kGrowth), kRateWidth);
  return fit_left(line, width);
}

std::string process_line(const ProcessRow& row, size_t width, bool tree) {
  std::string name;
  if (tree && row.depth > 0) {
    name = std::string(static_cast<size_t>(std::min(row.depth - 1, 8)) * 2, ' ') + "`-";
  }
  name += row.name;
  const auto smaps_cell = [&row](uint64_t bytes) {
    return row.smaps_readable ? short_bytes(bytes) : std::string("?");
  };
  std::string line = fit_right(std::to_string(row.pid), kPidWidth) + " " +
                     fit_left(name, name_width(width)) + " " + fit_right(rank_cell(row), kRankWidth) +
                     " " + fit_right(short_bytes(row.rss_bytes), kBytesWidth) + " " +
                     fit_right(smaps_cell(row.pss_bytes), kBytesWidth) + " " +
                     fit_right(smaps_cell(row.uss_bytes), kBytesWidth) + " " +
                     fit_right(row.gpu_bytes ? short_bytes(row.gpu_bytes) : "-", kBytesWidth) +
                     " " + fit_right(short_rate(row.growth_bytes_per_second), kRateWidth);
  return fit_left(line, width);
}

std::string device_line(const DeviceRow& row, size_t width) {
  const DeviceSample& d = row.device;
  const std::string label = fmt::format("GPU{}", d.index);
  if (!d.ok) {
    return fit_left(fmt::format("{:<5}{} unreadable: {}", label, d.name,
                                d.errors.empty() ? std::string("lost") : d.errors.front()),
                    width);
  }
  const std::string used =
      fmt::format("{}/{}", short_bytes(d.used_bytes), short_bytes(d.total_bytes));
  std::string tail = fmt::format(
      " {:>11} {:>4} res {:>5} util {:>4} {:>4} oom {}", used, percent(d.used_bytes, d.total_bytes),
      d.reserved_bytes ? short_bytes(*d.reserved_bytes) : std::string("-"),
      d.utilization_percent ? fmt::format("{}%", *d.utilization_percent) : std::string("-"),
      d.temperature_celsius ? fmt::format("{}C", *d.temperature_celsius) : std::string("-"),
      time_to_oom_cell(row.forecast));
  // The bar takes what the label, a short name and the figures leave (10..40 columns).
  const size_t fixed = 5 + tail.size();
  const size_t room = width > fixed ? width - fixed : 0;
  const size_t bar_width = std::clamp<size_t>(room / 2, 10, 40);
  const size_t name_room = room > bar_width + 1 ? room - bar_width - 1 : 0;
  std::string name = d.name;
  if (name.starts_with("NVIDIA ")) name = name.substr(7);
  const double fraction =
      d.total_bytes ? static_cast<double>(d.used_bytes) / static_cast<double>(d.total_bytes) : 0;
  std::string line = fit_left(label, 5) + (name_room ? fit_left(name, name_room) + " " : "") +
                     bar(fraction, bar_width) + tail;
  return fit_left(line, width);
}

std::string host_memory_line(const HostRow& host, size_t width) {
  const SystemSample& s = host.system;
  std::string psi = "psi -";
  if (s.pressure.available) {
    psi = fmt::format("psi {:.2f}/{:.2f}", s.pressure.some.avg10, s.pressure.full.avg10);
  }
  const std::string source =
      s.limit_source.starts_with("cgroup") ? std::string(" cgroup") : std::string();
  const std::string tail =
      fmt::format(" {:>11} {:>4}{} {} oom {}",
                  fmt::format("{}/{}", short_bytes(s.used_bytes), short_bytes(s.limit_bytes)),
                  percent(s.used_bytes, s.limit_bytes), source, psi,
                  time_to_oom_cell(host.forecast));
  const size_t bar_width = host_bar_width(width);
  const double fraction =
      s.limit_bytes ? static_cast<double>(s.used_bytes) / static_cast<double>(s.limit_bytes) : 0;
  return fit_left(fmt::format("Mem  {}{}", bar(fraction, bar_width), tail), width);
}

std::string host_swap_line(const HostRow& host, size_t width) {
  const MemInfo& m = host.system.meminfo;
  const uint64_t used =
      m.swap_total_bytes > m.swap_free_bytes ? m.swap_total_bytes - m.swap_free_bytes : 0;
  const std::string tail =
      m.swap_total_bytes == 0
          ? std::string(" no swap")
          : fmt::format(" {:>11} {:>4}", fmt::format("{}/{}", short_bytes(used),
                                                      short_bytes(m.swap_total_bytes)),
                        percent(used, m.swap_total_bytes));
  const size_t bar_width = host_bar_width(width);
  const double fraction = m.swap_total_bytes ? static_cast<double>(used) /
                                                   static_cast<double>(m.swap_total_bytes)
                                             : 0;
  return fit_left(fmt::format("Swap {}{}", bar(fraction, bar_width), tail), width);
}

}  // namespace memscope::report
