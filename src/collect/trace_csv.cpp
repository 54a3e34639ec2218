#include "collect/trace_csv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <streambuf>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace memscope::trace {
namespace {

// No real row comes close; the cap keeps one endless line from taking any amount of memory.
constexpr size_t kMaxLineBytes = 64 * 1024;
constexpr std::string_view kTracesHeader =
    "t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr size_t kAbsent = std::numeric_limits<size_t>::max();

// Untrusted text in an error message: cut short, control characters (terminal escapes) replaced.
std::string shown(std::string_view text, size_t max_bytes = 40) {
  std::string out;
  for (char c : text.substr(0, max_bytes)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7f ? '?' : c;
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

std::string_view trim(std::string_view text) {
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

enum class LineEnd { kLine, kEndOfInput, kTooLong, kNulByte, kReadError };

// One physical line without its '\n', read straight from the stream buffer so that it stops at
// kMaxLineBytes instead of holding the whole line first (std::getline would).
LineEnd read_line(std::streambuf& buffer, std::string& line, std::string& read_error) {
  using Traits = std::streambuf::traits_type;
  line.clear();
  try {
    for (;;) {
      const Traits::int_type c = buffer.sbumpc();
      if (Traits::eq_int_type(c, Traits::eof())) {
        return line.empty() ? LineEnd::kEndOfInput : LineEnd::kLine;
      }
      const char ch = Traits::to_char_type(c);
      if (ch == '\n') return LineEnd::kLine;
      if (ch == '\0') return LineEnd::kNulByte;
      if (line.size() == kMaxLineBytes) return LineEnd::kTooLong;
      line += ch;
    }
  } catch (const std::exception& e) {  // libstdc++'s filebuf throws on a failed read(2)
    read_error = e.what();
    return LineEnd::kReadError;
  }
}

// Splits a CSV record into fields per RFC 4180: a field in double quotes may hold commas and line
// breaks, and "" stands for one quote (report/escape.cpp's csv_field writes them so). Fed one
// physical line at a time, since a quoted line break continues the record on the next line. The
// field strings are kept between records to spare allocations.
class FieldSplitter {
 public:
  void reset() {
    count_ = 0;
    state_ = State::kFieldStart;
    start_field();
  }

  // `line` comes without its line ending. False when the quoting is malformed (see problem()).
  bool feed(std::string_view line) {
    if (state_ == State::kQuoted) current() += '\n';
    size_t at = 0;
    while (at < line.size()) {
      switch (state_) {
        case State::kFieldStart:
          if (line[at] == '"') {
            state_ = State::kQuoted;
            ++at;
            break;
          }
          state_ = State::kUnquoted;
          [[fallthrough]];
        case State::kUnquoted: {  // runs of plain text are copied whole
          size_t stop = at;       // find_first_of would call memchr once per character
          while (stop < line.size() && line[stop] != ',' && line[stop] != '"') ++stop;
          current().append(line.substr(at, stop - at));
          at = stop;
          if (at == line.size()) break;
          if (line[at] == '"') {
            return fail(
                "a quote inside an unquoted field (a field with quotes must be quoted whole)");
          }
          start_field();
          state_ = State::kFieldStart;
          ++at;
          break;
        }
        case State::kQuoted: {
          const size_t stop = std::min(line.find('"', at), line.size());
          current().append(line.substr(at, stop - at));
          at = stop;
          if (at < line.size()) {
            state_ = State::kQuoteInQuoted;
            ++at;
          }
          break;
        }
        case State::kQuoteInQuoted:
          if (line[at] == '"') {
            current() += '"';
            state_ = State::kQuoted;
          } else if (line[at] == ',') {
            start_field();
            state_ = State::kFieldStart;
          } else {
            return fail("text after the closing quote of a quoted field");
          }
          ++at;
          break;
      }
    }
    return true;
  }

  bool in_quotes() const { return state_ == State::kQuoted; }
  size_t size() const { return count_; }
  std::string_view operator[](size_t index) const { return fields_[index]; }
  std::string& mutable_field(size_t index) { return fields_[index]; }
  const std::string& problem() const { return problem_; }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };

  void start_field() {
    if (count_ == fields_.size()) fields_.emplace_back();
    fields_[count_].clear();
    ++count_;
  }
  std::string& current() { return fields_[count_ - 1]; }
  bool fail(std::string_view what) {
    problem_ = fmt::format("field {}: {}", count_, what);
    return false;
  }

  std::vector<std::string> fields_;
  size_t count_ = 0;
  State state_ = State::kFieldStart;
  std::string problem_;
};

// Where each known column is in the header (kAbsent when it is not there).
struct Columns {
  size_t count = 0;
  size_t t = kAbsent;
  size_t pid = kAbsent;
  size_t ppid = kAbsent;
  size_t comm = kAbsent;
  size_t rss = kAbsent;
  size_t pss = kAbsent;
  size_t uss = kAbsent;
  size_t swap = kAbsent;
  size_t gpu = kAbsent;
};

struct KnownColumn {
  std::string_view name;
  size_t Columns::*index;
  bool required;
};

constexpr KnownColumn kKnownColumns[] = {
    {"t", &Columns::t, true},
    {"pid", &Columns::pid, true},
    {"ppid", &Columns::ppid, false},
    {"comm", &Columns::comm, false},
    {"rss_bytes", &Columns::rss, false},
    {"pss_bytes", &Columns::pss, true},
    {"uss_bytes", &Columns::uss, false},
    {"swap_bytes", &Columns::swap, false},
    {"gpu_bytes", &Columns::gpu, false},
};

// A whole field as an unsigned integer no larger than `max`; otherwise says what is wrong.
bool parse_unsigned(std::string_view field, uint64_t max, uint64_t& value, std::string& why) {
  const std::string_view text = trim(field);
  const char* const last = text.data() + text.size();
  if (text.empty()) {
    why = "is empty";
    return false;
  }
  if (text.front() == '-') {
    uint64_t magnitude = 0;
    const auto [end, error] = std::from_chars(text.data() + 1, last, magnitude);
    why = error != std::errc::invalid_argument && end == last ? "is negative" : "is not a number";
    return false;
  }
  const auto [end, error] = std::from_chars(text.data(), last, value);
  if (end == last &&
      (error == std::errc::result_out_of_range || (error == std::errc() && value > max))) {
    why = fmt::format("is too large (the most is {})", max);
    return false;
  }
  if (error != std::errc() || end != last) {
    why = "is not a whole number";
    return false;
  }
  return true;
}

bool parse_seconds(std::string_view field, double& value, std::string& why) {
  const std::string_view text = trim(field);
  const char* const last = text.data() + text.size();
  if (text.empty()) {
    why = "is empty";
    return false;
  }
  const auto [end, error] = std::from_chars(text.data(), last, value);
  if (error == std::errc::result_out_of_range && end == last) {
    why = "is out of range";
    return false;
  }
  if (error != std::errc() || end != last) {
    why = "is not a number";
    return false;
  }
  if (!std::isfinite(value)) {
    why = "is not a finite number";
    return false;
  }
  if (value < 0) {
    why = "is negative";
    return false;
  }
  return true;
}

class CsvTraceReader {
 public:
  CsvTraceReader(std::streambuf& buffer, const std::string& name, const SampleVisitor& visit)
      : buffer_(buffer), name_(name), visit_(visit) {}

  Status run();

 private:
  enum class Record { kFields, kBlank, kEnd };

  Error line_error(size_t line, std::string_view what) const {
    return make_error(fmt::format("{} line {}: {}", name_, line, what));
  }
  Result<Record> next_record();
  Status read_header();
  Status add_row();
  Status parse_process(ProcessSample& process);
  bool deliver();

  std::streambuf& buffer_;
  const std::string& name_;
  const SampleVisitor& visit_;
  std::string line_;
  std::string read_error_;
  FieldSplitter fields_;
  size_t line_number_ = 0;  // of the last physical line read
  size_t record_line_ = 0;  // where the current record starts
  Columns columns_;

  // The instant being gathered: its rows, the text of its t, and where each pid was seen.
  Sample sample_;
  bool have_instant_ = false;
  std::string instant_t_text_;
  std::unordered_map<int, size_t> pid_lines_;
  bool stopped_ = false;
};

Result<CsvTraceReader::Record> CsvTraceReader::next_record() {
  fields_.reset();
  size_t record_bytes = 0;
  for (bool first_line = true;; first_line = false) {
    const LineEnd end = read_line(buffer_, line_, read_error_);
    if (end == LineEnd::kEndOfInput) {
      if (first_line) return Record::kEnd;
      return line_error(record_line_, "a quoted field is not closed before the end of the file");
    }
    ++line_number_;
    if (first_line) record_line_ = line_number_;
    switch (end) {
      case LineEnd::kTooLong:
        return line_error(line_number_,
                          fmt::format("line is longer than {} bytes: not a trace", kMaxLineBytes));
      case LineEnd::kNulByte:
        return line_error(line_number_, "contains a NUL byte: not a text file");
      case LineEnd::kReadError:
        return line_error(line_number_, "read error: " + read_error_);
      case LineEnd::kLine:
      case LineEnd::kEndOfInput:
        break;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_number_ == 1 && line_.starts_with(kUtf8Bom)) line_.erase(0, kUtf8Bom.size());
    if (first_line && line_.empty()) return Record::kBlank;
    record_bytes += line_.size() + (first_line ? 0 : 1);
    if (record_bytes > kMaxLineBytes) {
      return line_error(record_line_,
                        fmt::format("a quoted field runs on for more than {} bytes (a missing "
                                    "closing quote?)",
                                    kMaxLineBytes));
    }
    if (!fields_.feed(line_)) return line_error(line_number_, fields_.problem());
    if (!fields_.in_quotes()) return Record::kFields;
  }
}

Status CsvTraceReader::read_header() {
  auto header = next_record();
  if (!header) return header.error();
  if (*header == Record::kEnd) {
    return make_error(
        fmt::format("{}: empty file: expected a header line ({})", name_, kTracesHeader));
  }
  if (*header == Record::kBlank) {
    return line_error(1, fmt::format("empty line where the header ({}) should be", kTracesHeader));
  }
  columns_.count = fields_.size();
  for (size_t index = 0; index < fields_.size(); ++index) {
    const std::string_view name = trim(fields_[index]);
    for (const KnownColumn& known : kKnownColumns) {
      if (name != known.name) continue;
      if (columns_.*known.index != kAbsent) {
        return line_error(1, fmt::format("column {} appears twice in the header", known.name));
      }
      columns_.*known.index = index;
    }
  }
  std::vector<std::string_view> missing;
  for (const KnownColumn& known : kKnownColumns) {
    if (known.required && columns_.*known.index == kAbsent) missing.push_back(known.name);
  }
  if (!missing.empty()) {
    std::sort(missing.begin(), missing.end());
    std::string names;
    for (std::string_view name : missing) names += (names.empty() ? "" : ", ") + std::string(name);
    return make_error(
        fmt::format("{}: missing column(s) {} (header: {})", name_, names, shown(line_, 200)));
  }
  return Status::success();
}

Status CsvTraceReader::parse_process(ProcessSample& process) {
  constexpr auto kMaxPid = static_cast<uint64_t>(std::numeric_limits<int>::max());
  constexpr uint64_t kMaxBytes = std::numeric_limits<uint64_t>::max();
  uint64_t pid = 0;
  uint64_t ppid = 0;
  struct NumberColumn {
    size_t index;
    std::string_view name;
    uint64_t max;
    uint64_t* value;
  };
  const NumberColumn numbers[] = {
      {columns_.pid, "pid", kMaxPid, &pid},
      {columns_.ppid, "ppid", kMaxPid, &ppid},
      {columns_.rss, "rss_bytes", kMaxBytes, &process.rss_bytes},
      {columns_.pss, "pss_bytes", kMaxBytes, &process.pss_bytes},
      {columns_.uss, "uss_bytes", kMaxBytes, &process.uss_bytes},
      {columns_.swap, "swap_bytes", kMaxBytes, &process.swap_bytes},
      {columns_.gpu, "gpu_bytes", kMaxBytes, &process.gpu_bytes},
  };
  std::string why;
  for (const NumberColumn& number : numbers) {
    if (number.index == kAbsent) continue;
    if (!parse_unsigned(fields_[number.index], number.max, *number.value, why)) {
      return line_error(record_line_, fmt::format("{} {}: \"{}\"", number.name, why,
                                                  shown(fields_[number.index])));
    }
  }
  if (pid == 0) return line_error(record_line_, "pid 0 is not a process");
  process.pid = static_cast<int>(pid);
  process.ppid = static_cast<int>(ppid);
  if (columns_.rss == kAbsent) process.rss_bytes = process.pss_bytes;
  if (columns_.uss == kAbsent) process.uss_bytes = process.pss_bytes;
  if (columns_.comm != kAbsent) process.comm = std::move(fields_.mutable_field(columns_.comm));
  process.smaps_readable = true;
  return Status::success();
}

bool CsvTraceReader::deliver() {
  const bool go_on = visit_(sample_);
  sample_.processes.clear();
  pid_lines_.clear();
  return go_on;
}

Status CsvTraceReader::add_row() {
  if (fields_.size() != columns_.count) {
    return line_error(record_line_, fmt::format("{} field{}, but the header has {}", fields_.size(),
                                                fields_.size() == 1 ? "" : "s", columns_.count));
  }
  double t = 0;
  std::string why;
  const std::string_view t_text = fields_[columns_.t];
  if (!parse_seconds(t_text, t, why)) {
    return line_error(record_line_, fmt::format("t {}: \"{}\"", why, shown(t_text)));
  }
  ProcessSample process;
  if (Status parsed = parse_process(process); !parsed) return parsed;

  if (have_instant_ && t != sample_.t_seconds) {
    if (t < sample_.t_seconds) {
      return line_error(record_line_, fmt::format("t goes backwards ({} after {})", shown(t_text),
                                                  shown(instant_t_text_)));
    }
    if (!deliver()) {
      stopped_ = true;
      return Status::success();
    }
    have_instant_ = false;
  }
  if (!have_instant_) {
    have_instant_ = true;
    sample_.t_seconds = t;
    instant_t_text_ = t_text;
  }
  const auto [seen, inserted] = pid_lines_.try_emplace(process.pid, record_line_);
  if (!inserted) {
    return line_error(record_line_, fmt::format("pid {} appears twice at t={} (first on line {})",
                                                process.pid, shown(instant_t_text_), seen->second));
  }
  sample_.processes.push_back(std::move(process));
  return Status::success();
}

Status CsvTraceReader::run() {
  if (Status header = read_header(); !header) return header;
  size_t blank_line = 0;  // the first blank line, fine only if nothing but blank lines follow
  for (;;) {
    auto record = next_record();
    if (!record) return record.error();
    if (*record == Record::kEnd) break;
    if (*record == Record::kBlank) {
      if (blank_line == 0) blank_line = record_line_;
      continue;
    }
    if (blank_line != 0) {
      return line_error(blank_line, "empty line between rows (allowed only at the end)");
    }
    if (Status row = add_row(); !row) return row;
    if (stopped_) return Status::success();
  }
  if (have_instant_) deliver();
  return Status::success();
}

}  // namespace

Status for_each_csv_sample(std::istream& in, const std::string& name, const SampleVisitor& visit) {
  std::streambuf* buffer = in.rdbuf();
  if (buffer == nullptr) return make_error(name + ": no input stream");
  return CsvTraceReader(*buffer, name, visit).run();
}

Status for_each_csv_sample_file(const std::string& path, const SampleVisitor& visit) {
  // std::ifstream opens a directory and fails only on the first read: say so plainly instead.
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    return make_error(
        fmt::format("cannot read {}: {}", path, std::generic_category().message(EISDIR)));
  }
  errno = 0;
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    const int error = errno != 0 ? errno : EIO;
    return make_error(
        fmt::format("cannot open {}: {}", path, std::generic_category().message(error)));
  }
  return for_each_csv_sample(file, path, visit);
}

}  // namespace memscope::trace
