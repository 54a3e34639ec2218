#include "collect/linux/cgroup_reader.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <string_view>
#include <system_error>

#include "collect/linux/cgroup_files.hpp"

namespace memscope::procfs {
namespace {

constexpr size_t kMaxCgroupFileBytes = 64 * 1024;

// "/a/b" -> "/a" -> "/"; "/" has no parent.
std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string normalized(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// A path from another cgroup namespace is shown relative to ours: "/../../x".
bool leaves_namespace(std::string_view path) {
  for (size_t start = 0; start < path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

struct Layout {
  int version = 0;
  std::string base;  // the hierarchy's mount root
  const char* usage_file = nullptr;
  const char* limit_file = nullptr;
};

class Reader {
 public:
  Reader(FileAccess& files, CgroupReading& reading) : files_(files), reading_(reading) {}

  std::string dir(const Layout& layout, const std::string& path) const {
    return path == "/" ? layout.base : layout.base + path;
  }

  // The file's content, or nullopt with its errno in *error (0 when read).
  std::optional<std::string> read(const std::string& file, int* error = nullptr) {
    std::string text;
    const int failed = read_file(files_, file, text, kMaxCgroupFileBytes);
    if (error != nullptr) *error = failed;
    if (failed != 0) return std::nullopt;
    return text;
  }

  void note_unreadable(const std::string& file, int error) {
    reading_.notes.push_back(
        fmt::format("{} unreadable: {}", file, std::generic_category().message(error)));
  }
  void note_malformed(const std::string& file, const std::string& why) {
    reading_.notes.push_back(fmt::format("{}: {}", file, why));
  }

  std::optional<uint64_t> counter(const std::string& file, bool note_missing) {
    int error = 0;
    const auto text = read(file, &error);
    if (!text) {
      if (note_missing || error != ENOENT) note_unreadable(file, error);
      return std::nullopt;
    }
    auto value = parse_cgroup_counter(*text);
    if (!value) {
      note_malformed(file, value.message());
      return std::nullopt;
    }
    return *value;
  }

  // The limit set on one cgroup; nullopt for none, unreadable or malformed.
  std::optional<uint64_t> limit(const Layout& layout, const std::string& path) {
    const std::string file = dir(layout, path) + "/" + layout.limit_file;
    int error = 0;
    const auto text = read(file, &error);
    if (!text) {
      // The root cgroup of a v2 hierarchy has no memory.max: not worth a note.
      if (error != ENOENT) note_unreadable(file, error);
      return std::nullopt;
    }
    auto parsed = layout.version == 2 ? parse_memory_max(*text) : parse_v1_limit(*text);
    if (!parsed) {
      note_malformed(file, parsed.message());
      return std::nullopt;
    }
    return *parsed;
  }

  void read_events(const Layout& layout, const std::string& leaf, CgroupMemory& memory) {
    if (layout.version == 2) {
      const std::string file = leaf + "/memory.events";
      if (const auto text = read(file)) {
        if (auto events = parse_memory_events(*text)) {
          memory.oom_events = events->oom;
          memory.oom_kill_events = events->oom_kill;
        } else {
          note_malformed(file, events.message());
        }
      }
      if (const auto swap = counter(leaf + "/memory.swap.current", false)) {
        memory.swap_usage_bytes = *swap;
      }
      return;
    }
    const std::string file = leaf + "/memory.oom_control";
    if (const auto text = read(file)) {
      if (auto control = parse_oom_control(*text)) {
        memory.oom_kill_events = control->oom_kill;
        if (control->under_oom) {
          reading_.notes.push_back(fmt::format("cgroup {} is under OOM now", memory.path));
        }
      } else {
        note_malformed(file, control.message());
      }
    }
    // failcnt: how often usage hit the limit, v1's nearest to v2's "oom" count.
    if (const auto failcnt = counter(leaf + "/memory.failcnt", false)) memory.oom_events = *failcnt;
    // Swap in v1 is memsw (memory + swap) minus memory, where swap accounting is on.
    if (const auto memsw = counter(leaf + "/memory.memsw.usage_in_bytes", false)) {
      memory.swap_usage_bytes = *memsw > memory.usage_bytes ? *memsw - memory.usage_bytes : 0;
    }
  }

 private:
  FileAccess& files_;
  CgroupReading& reading_;
};

}  // namespace

CgroupReading read_memory_cgroup(FileAccess& files, const Roots& roots,
                                 const CgroupMembership& membership) {
  CgroupReading reading;
  Reader reader(files, reading);
  Layout layout;
  std::string path;
  if (membership.v1_memory_path) {
    layout = {1, roots.sys + "/fs/cgroup/memory", "memory.usage_in_bytes", "memory.limit_in_bytes"};
    path = normalized(*membership.v1_memory_path);
  } else if (membership.v2_path) {
    layout = {2, roots.sys + "/fs/cgroup", "memory.current", "memory.max"};
    path = normalized(*membership.v2_path);
  } else {
    reading.notes.push_back("no memory cgroup listed for the process");
    return reading;
  }
  if (leaves_namespace(path)) {
    reading.notes.push_back(
        fmt::format("cgroup {} lies outside this cgroup namespace: no cgroup limit applied", path));
    return reading;
  }

  int error = 0;
  std::string usage_file = reader.dir(layout, path) + "/" + layout.usage_file;
  auto usage_text = reader.read(usage_file, &error);
  if (!usage_text && error == ENOENT && layout.version == 2) {
    // Hybrid hosts mount the v2 hierarchy at /sys/fs/cgroup/unified.
    Layout hybrid = layout;
    hybrid.base = roots.sys + "/fs/cgroup/unified";
    const std::string hybrid_file = reader.dir(hybrid, path) + "/" + layout.usage_file;
    if (auto text = reader.read(hybrid_file)) {
      layout = hybrid;
      usage_file = hybrid_file;
      usage_text = std::move(text);
    }
  }
  std::string effective = path;
  if (!usage_text && error == ENOENT && path != "/") {
    const std::string root_file = layout.base + "/" + layout.usage_file;
    if (auto text = reader.read(root_file)) {
      reading.notes.push_back(
          fmt::format("cgroup {} is not under {}: using the mount root (a container's own cgroup)",
                      path, layout.base));
      effective.assign(1, '/');  // not = "/": g++ 12 -Wrestrict false positive
      usage_file = root_file;
      usage_text = std::move(text);
    }
  }
  if (!usage_text) {
    // The root cgroup of a host has no usage file: no cgroup limit, nothing to say.
    if (!(error == ENOENT && path == "/")) reader.note_unreadable(usage_file, error);
    return reading;
  }
  auto usage = parse_cgroup_counter(*usage_text);
  if (!usage) {
    reader.note_malformed(usage_file, usage.message());
    return reading;
  }

  CgroupMemory memory;
  memory.version = layout.version;
  memory.path = path;
  memory.usage_bytes = *usage;
  reader.read_events(layout, reader.dir(layout, effective), memory);

  // The tightest limit from the leaf up to the mount root.
  for (std::string at = effective;; at = parent_of(at)) {
    const auto limit = reader.limit(layout, at);
    if (limit && (!memory.limit_bytes || *limit < *memory.limit_bytes)) {
      memory.limit_bytes = limit;
      memory.limit_path = at;
    }
    if (at == "/") break;
  }
  reading.limit_holder_usage_bytes = memory.usage_bytes;
  if (memory.limit_bytes && memory.limit_path != effective) {
    const std::string file = reader.dir(layout, memory.limit_path) + "/" + layout.usage_file;
    if (const auto holder = reader.counter(file, true)) reading.limit_holder_usage_bytes = *holder;
  }
  // Mounted at its own cgroup, the mount root *is* the process's cgroup: name it as listed.
  if (effective != path && memory.limit_bytes) memory.limit_path = path;
  reading.memory = std::move(memory);
  return reading;
}

}  // namespace memscope::procfs
