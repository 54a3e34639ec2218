#include "collect/glibc_heap.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace memscope::glibc_heap {

namespace {

std::optional<uint64_t> parse_u64(std::string_view digits) {
  if (digits.empty() || digits.size() > 20) return std::nullopt;
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

// ---- a reader for malloc_info's fixed shape: elements with attributes, nothing else ----

struct Attribute {
  std::string_view name;
  std::string_view value;
};

constexpr size_t kMaxAttributes = 8;
constexpr size_t kMaxValueBytes = 64;

struct Element {
  size_t offset = 0;
  std::string_view name;
  bool closing = false;       // </name>
  bool self_closing = false;  // <name .../>
  std::array<Attribute, kMaxAttributes> attributes{};
  size_t attribute_count = 0;

  std::optional<std::string_view> attribute(std::string_view wanted) const {
    for (size_t i = 0; i < attribute_count; ++i) {
      if (attributes[i].name == wanted) return attributes[i].value;
    }
    return std::nullopt;
  }
  bool is(std::string_view wanted_name, bool wanted_self_closing) const {
    return !closing && name == wanted_name && self_closing == wanted_self_closing;
  }
  bool closes(std::string_view wanted_name) const { return closing && name == wanted_name; }
};

class XmlReader {
 public:
  XmlReader(std::string_view text, size_t base) : text_(text), base_(base) {}

  size_t offset() const { return base_ + pos_; }
  bool at_end() {
    skip_space();
    return pos_ >= text_.size();
  }

  Result<Element> next() {
    skip_space();
    Element element;
    element.offset = offset();
    if (pos_ >= text_.size()) return fail("unexpected end of the report");
    if (text_[pos_] != '<') return fail("expected '<'");
    ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '/') {
      element.closing = true;
      ++pos_;
    }
    element.name = name();
    if (element.name.empty()) return fail("expected an element name");
    for (;;) {
      skip_space();
      if (pos_ >= text_.size()) return fail("unexpected end inside an element");
      const char c = text_[pos_];
      if (c == '>') {
        ++pos_;
        return element;
      }
      if (c == '/' && !element.closing) {
        ++pos_;
        if (pos_ >= text_.size() || text_[pos_] != '>') return fail("expected '>' after '/'");
        ++pos_;
        element.self_closing = true;
        return element;
      }
      if (element.closing) return fail("expected '>'");
      if (element.attribute_count == kMaxAttributes) return fail("too many attributes");
      Attribute& attribute = element.attributes[element.attribute_count++];
      const size_t attribute_offset = offset();
      attribute.name = name();
      if (attribute.name.empty()) return fail("expected an attribute name");
      if (pos_ + 1 >= text_.size() || text_[pos_] != '=' || text_[pos_ + 1] != '"') {
        return fail("expected '=\"' after an attribute name");
      }
      pos_ += 2;
      const size_t end = text_.find('"', pos_);
      if (end == std::string_view::npos || end - pos_ > kMaxValueBytes) {
        return make_error(fmt::format("offset {}: attribute {} has no closing quote (or a value "
                                      "over {} bytes)", attribute_offset, attribute.name,
                                      kMaxValueBytes));
      }
      attribute.value = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
    }
  }

  Error fail(std::string_view what) const { return make_error(fmt::format("offset {}: {}", offset(), what)); }

 private:
  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }
  std::string_view name() {
    const size_t start = pos_;
    while (pos_ < text_.size() && pos_ - start < 32 && is_name_char(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  std::string_view text_;
  size_t base_;
  size_t pos_ = 0;
};

Error element_error(const Element& element, std::string_view what) {
  return make_error(fmt::format("offset {}: <{}{}>: {}", element.offset,
                                element.closing ? "/" : "", element.name, what));
}

// A numeric attribute that must be there.
Result<uint64_t> number(const Element& element, std::string_view name) {
  const auto value = element.attribute(name);
  if (!value) return element_error(element, fmt::format("no {}= attribute", name));
  const auto parsed = parse_u64(*value);
  if (!parsed) return element_error(element, fmt::format("{}=\"{}\" is not a number", name, *value));
  return *parsed;
}

// <total type=T count=N size=N/>, <system type=T size=N/>, <aspace type=T size=N/>: the
// counters of a heap or of the whole <malloc>. Unknown types are skipped (a later glibc may
// add some); `seen` collects which required ones were there.
struct Counters {
  uint64_t fast_count = 0, fast_bytes = 0, rest_count = 0, rest_bytes = 0;
  uint64_t mmap_count = 0, mmap_bytes = 0, system_bytes = 0, system_max_bytes = 0, subheaps = 0;
  bool fast = false, rest = false, mmap = false, system = false;
};

Status read_counter(const Element& element, Counters& counters) {
  const auto type = element.attribute("type");
  if (!type) return element_error(element, "no type= attribute");
  if (element.name == "total") {
    auto count = number(element, "count");
    if (!count) return count.error();
    auto size = number(element, "size");
    if (!size) return size.error();
    if (*type == "fast") {
      counters.fast_count = *count;
      counters.fast_bytes = *size;
      counters.fast = true;
    } else if (*type == "rest") {
      counters.rest_count = *count;
      counters.rest_bytes = *size;
      counters.rest = true;
    } else if (*type == "mmap") {
      counters.mmap_count = *count;
      counters.mmap_bytes = *size;
      counters.mmap = true;
    }
    return {};
  }
  auto size = number(element, "size");
  if (!size) return size.error();
  if (element.name == "system") {
    if (*type == "current") {
      counters.system_bytes = *size;
      counters.system = true;
    } else if (*type == "max") {
      counters.system_max_bytes = *size;
    }
  } else if (element.name == "aspace") {
    if (*type == "subheaps") counters.subheaps = *size;
  } else {
    return element_error(element, "unexpected element");
  }
  return {};
}

bool is_counter(const Element& element) {
  return element.is("total", true) || element.is("system", true) || element.is("aspace", true);
}

Result<Arena> read_heap(XmlReader& reader, const Element& open) {
  Arena arena;
  auto nr = number(open, "nr");
  if (!nr) return nr.error();
  arena.number = *nr;
  auto sizes = reader.next();
  if (!sizes) return sizes.error();
  if (!sizes->is("sizes", false)) return element_error(*sizes, "expected <sizes>");
  for (;;) {
    auto element = reader.next();
    if (!element) return element.error();
    if (element->closes("sizes")) break;
    if (!element->is("size", true) && !element->is("unsorted", true)) {
      return element_error(*element, "expected <size/>, <unsorted/> or </sizes>");
    }
    if (arena.sizes.size() == kMaxBucketsPerArena) {
      return element_error(*element, fmt::format("more than {} size buckets", kMaxBucketsPerArena));
    }
    SizeBucket bucket;
    bucket.unsorted = element->name == "unsorted";
    for (auto [name, field] : {std::pair{"from", &bucket.from_bytes}, std::pair{"to", &bucket.to_bytes},
                               std::pair{"total", &bucket.total_bytes}, std::pair{"count", &bucket.count}}) {
      auto value = number(*element, name);
      if (!value) return value.error();
      *field = *value;
    }
    arena.sizes.push_back(bucket);
  }
  Counters counters;
  for (;;) {
    auto element = reader.next();
    if (!element) return element.error();
    if (element->closes("heap")) {
      if (!counters.fast || !counters.rest || !counters.system) {
        return element_error(*element, fmt::format("heap nr {} lacks its fast, rest or current "
                                                   "system total", arena.number));
      }
      break;
    }
    if (!is_counter(*element)) return element_error(*element, "expected <total/>, <system/>, <aspace/> or </heap>");
    if (Status read = read_counter(*element, counters); !read) return read.error();
  }
  arena.fast_count = counters.fast_count;
  arena.fast_bytes = counters.fast_bytes;
  arena.rest_count = counters.rest_count;
  arena.rest_bytes = counters.rest_bytes;
  arena.system_bytes = counters.system_bytes;
  arena.system_max_bytes = counters.system_max_bytes;
  arena.subheaps = counters.subheaps;
  return arena;
}

Status read_malloc_info(std::string_view xml, size_t base, HeapReport& report) {
  XmlReader reader(xml, base);
  auto open = reader.next();
  if (!open) return open.error();
  if (!open->is("malloc", false)) return element_error(*open, "expected <malloc version=\"1\">");
  const auto version = open->attribute("version");
  if (!version || *version != "1") {
    return element_error(*open, fmt::format("malloc_info version {} (this memscope reads 1)",
                                            version ? *version : "missing"));
  }
  Counters counters;
  for (;;) {
    auto element = reader.next();
    if (!element) return element.error();
    if (element->closes("malloc")) break;
    if (element->is("heap", false)) {
      if (report.arenas.size() == kMaxArenas) {
        return element_error(*element, fmt::format("more than {} arenas", kMaxArenas));
      }
      auto arena = read_heap(reader, *element);
      if (!arena) return arena.error();
      report.arenas.push_back(std::move(*arena));
      continue;
    }
    if (!is_counter(*element)) return element_error(*element, "expected <heap>, a total or </malloc>");
    if (Status read = read_counter(*element, counters); !read) return read.error();
  }
  if (!reader.at_end()) return reader.fail("text after </malloc>");
  if (report.arenas.empty()) return make_error(fmt::format("offset {}: no <heap> in malloc_info", base));
  if (!counters.fast || !counters.rest || !counters.mmap || !counters.system) {
    return make_error(fmt::format("offset {}: </malloc> without its fast, rest, mmap or current "
                                  "system total", reader.offset()));
  }
  report.totals = Totals{counters.fast_count, counters.fast_bytes, counters.rest_count,
                         counters.rest_bytes, counters.mmap_count, counters.mmap_bytes,
                         counters.system_bytes, counters.system_max_bytes};
  return {};
}

uint64_t saturating_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

uint64_t Arena::free_chunks() const {
  // malloc_info counts the top chunk in "rest" (glibc: "Top always exists").
  return fast_count + saturating_sub(rest_count, 1);
}

uint64_t Arena::top_chunk_bytes() const {
  uint64_t in_buckets = 0;
  for (const SizeBucket& bucket : sizes) in_buckets += bucket.total_bytes;
  return saturating_sub(free_bytes(), in_buckets);
}

uint64_t Arena::trim_estimate_bytes() const {
  uint64_t bytes = 0;
  for (const SizeBucket& bucket : sizes) bytes += bucket_trim_estimate(bucket);
  return bytes;
}

uint64_t bucket_trim_estimate(const SizeBucket& bucket) {
  const uint64_t lost = bucket.count > UINT64_MAX / (2 * kPageBytes) ? UINT64_MAX
                                                                       : bucket.count * 2 * kPageBytes;
  return saturating_sub(bucket.total_bytes, lost);
}

uint64_t trim_estimate_bytes(const HeapReport& report) {
  uint64_t bytes = report.mallinfo.keepcost;
  for (const Arena& arena : report.arenas) bytes += arena.trim_estimate_bytes();
  return bytes;
}

Result<MallInfo2> parse_mallinfo2_line(std::string_view line) {
  constexpr std::string_view kHead = "mallinfo2";
  if (line.substr(0, kHead.size()) != kHead) {
    return make_error("offset 0: the report does not start with \"mallinfo2\"");
  }
  MallInfo2 info;
  const std::array<std::pair<std::string_view, uint64_t*>, 9> fields{{
      {"arena", &info.arena}, {"ordblks", &info.ordblks}, {"smblks", &info.smblks},
      {"hblks", &info.hblks}, {"hblkhd", &info.hblkhd}, {"fsmblks", &info.fsmblks},
      {"uordblks", &info.uordblks}, {"fordblks", &info.fordblks}, {"keepcost", &info.keepcost}}};
  std::array<bool, 9> seen{};
  size_t pos = kHead.size();
  while (pos < line.size()) {
    if (line[pos] != ' ') return make_error(fmt::format("offset {}: expected a space", pos));
    ++pos;
    const size_t end = std::min(line.find(' ', pos), line.size());
    const std::string_view pair = line.substr(pos, end - pos);
    const size_t equals = pair.find('=');
    if (equals == std::string_view::npos) {
      return make_error(fmt::format("offset {}: expected name=number in the mallinfo2 line", pos));
    }
    const auto value = parse_u64(pair.substr(equals + 1));
    if (!value) {
      return make_error(fmt::format("offset {}: {} is not a number", pos + equals + 1, pair.substr(0, equals)));
    }
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].first == pair.substr(0, equals)) {
        *fields[i].second = *value;
        seen[i] = true;
      }
    }
    pos = end;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!seen[i]) return make_error(fmt::format("offset 0: the mallinfo2 line lacks {}=", fields[i].first));
  }
  return info;
}

Result<HeapReport> parse_heap_report(std::string_view text) {
  if (text.size() > kMaxAnswerBytes) {
    return make_error(fmt::format("offset {}: the report is over {} bytes", kMaxAnswerBytes, kMaxAnswerBytes));
  }
  const size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return make_error("offset 0: the report has no first line");
  HeapReport report;
  auto info = parse_mallinfo2_line(text.substr(0, newline));
  if (!info) return info.error();
  report.mallinfo = *info;
  if (Status read = read_malloc_info(text.substr(newline + 1), newline + 1, report); !read) {
    return read.error();
  }
  return report;
}

// ---- asking a process ----

std::optional<std::string> environ_value(std::string_view environ, std::string_view name) {
  size_t pos = 0;
  while (pos < environ.size()) {
    const size_t end = std::min(environ.find('\0', pos), environ.size());
    const std::string_view entry = environ.substr(pos, end - pos);
    if (entry.size() > name.size() && entry.substr(0, name.size()) == name && entry[name.size()] == '=') {
      return std::string(entry.substr(name.size() + 1));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::string request_path(const std::string& prefix, int pid) {
  return fmt::format("{}.{}.heap-request", prefix, pid);
}

std::string answer_path(const std::string& prefix, int pid) {
  return fmt::format("{}.{}.heap", prefix, pid);
}

namespace {

Answer refuse(Outcome outcome, std::string message) {
  Answer answer;
  answer.outcome = outcome;
  answer.message = std::move(message);
  return answer;
}

// The whole file, at most `limit` bytes; errno when it cannot be read. With `owner` ≥ 0 the
// file must be a regular file of that user, reached without following a link (the answer
// sits where the tracked program's owner can put anything: a FIFO would block, a link would
// read someone else's file).
std::optional<std::string> read_bounded(const std::string& path, size_t limit, int* error,
                                        int64_t owner = -1) {
  const int flags = O_RDONLY | O_CLOEXEC | (owner >= 0 ? O_NOFOLLOW | O_NONBLOCK : 0);
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    *error = errno;
    return std::nullopt;
  }
  struct stat info {};
  if (owner >= 0 && (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) ||
                     static_cast<int64_t>(info.st_uid) != owner)) {
    ::close(fd);
    *error = EPERM;
    return std::nullopt;
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = errno;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > limit) break;
  }
  ::close(fd);
  return text;
}

}  // namespace

Answer ask_tracked_process(const std::string& proc_root, int pid, double wait_seconds) {
  int error = 0;
  const std::string environ_file = fmt::format("{}/{}/environ", proc_root, pid);
  const auto environ = read_bounded(environ_file, size_t{4} << 20, &error);
  if (!environ) {
    if (error == ENOENT || error == ESRCH) {
      return refuse(Outcome::no_process, fmt::format("no process {}", pid));
    }
    if (error == EACCES || error == EPERM) {
      return refuse(Outcome::no_permission,
                    fmt::format("cannot read {}: permission denied (the process belongs to "
                                "another user)", environ_file));
    }
    return refuse(Outcome::failed, fmt::format("cannot read {}: {}", environ_file, std::strerror(error)));
  }
  const auto prefix = environ_value(*environ, "MEMSCOPE_TRACK_OUTPUT");
  if (!prefix || prefix->empty()) {
    return refuse(Outcome::not_tracked,
                  fmt::format("process {} is not running under the allocation tracker (start it "
                              "with memscope leak --enable-tracking)", pid));
  }
  // Only a process with a trace of its own answers: a forked child keeps the environment but
  // stops tracking.
  bool traced = false;
  for (int n = 0; n < 10 && !traced; ++n) {
    const std::string trace = n == 0 ? fmt::format("{}.{}.mst", *prefix, pid)
                                     : fmt::format("{}.{}.{}.mst", *prefix, pid, n);
    struct stat info {};
    traced = ::stat(trace.c_str(), &info) == 0;
  }
  if (!traced) {
    return refuse(Outcome::not_tracked,
                  fmt::format("process {} has the tracker's environment but no trace of its own "
                              "({}.{}.mst): a child made by fork stops tracking",
                              pid, *prefix, pid));
  }
  struct stat process_info {};
  if (::stat(fmt::format("{}/{}", proc_root, pid).c_str(), &process_info) != 0) {
    return refuse(Outcome::no_process, fmt::format("no process {}", pid));
  }
  const auto owner = static_cast<int64_t>(process_info.st_uid);
  const std::string request = request_path(*prefix, pid);
  const std::string answer = answer_path(*prefix, pid);
  ::unlink(answer.c_str());  // a late answer to an earlier request
  ::unlink(request.c_str());  // never through whatever sits at the name (a link, say)
  const int fd = ::open(request.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int create_error = errno;
    return refuse(create_error == EACCES || create_error == EPERM ? Outcome::no_permission : Outcome::failed,
                  fmt::format("cannot create {}: {}", request, std::strerror(create_error)));
  }
  ::close(fd);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  for (;;) {
    auto text = read_bounded(answer, kMaxAnswerBytes, &error, owner);
    if (text) {
      ::unlink(answer.c_str());
      Answer answered;
      answered.outcome = Outcome::answered;
      answered.text = std::move(*text);
      return answered;
    }
    if (error != ENOENT) {
      ::unlink(request.c_str());
      return refuse(Outcome::failed, fmt::format("cannot read {}: {}", answer, std::strerror(error)));
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::unlink(request.c_str());
  return refuse(Outcome::no_answer,
                fmt::format("process {} did not answer within {:g} s (the tracker answers when the "
                            "program allocates or frees, at most once a second, or from its "
                            "compressor thread)", pid, wait_seconds));
}

}  // namespace memscope::glibc_heap
