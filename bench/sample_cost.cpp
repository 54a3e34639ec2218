// Per-sample CPU cost of reading the memory of a process tree: memscope's ProcessCollector (with
// its sampling policy, and "naive": no kept descriptors, smaps_rollup every sample), the bare
// floor of reading stat+statm+smaps_rollup of every process, and psutil reading the same fields
// (bench/psutil_reader.py), side by side on the same tree in the same run.
//
// For each round and each tree size, the program forks a tree (a root that forks size-1
// children; each touches --kib of memory and sleeps), runs every reader on it in turn (the order
// rotates from round to round), then kills the tree. Every reader takes one cold sample and then
// --seconds steady ones, back to back. The CPU time of a sample is the reader's own user+sys
// (CLOCK_PROCESS_CPUTIME_ID here, time.process_time() in Python), so the kernel's work of
// generating /proc files counts. memscope's collector is driven in simulated time: sample i is
// collect(now = i seconds), i.e. a 1 Hz sampler whose sleeps were cut out (--sleep-ms puts real
// sleeps back), so the steady samples cover --seconds / 10 full smaps_rollup refresh cycles.
//
// usage: sample_cost [--sizes 1,100,1000] [--rounds 3] [--seconds 30] [--kib 256]
//                    [--sleep-ms 0] [--readers a,b,...] [--python /usr/bin/python3]
//                    [--psutil-reader bench/psutil_reader.py]
// Prints each round on stderr as it goes and a markdown table of medians on stdout.
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collect/linux/process_collector.hpp"
#include "spawned_tree.hpp"

namespace {

using memscope::ProcessSample;
using memscope::bench::Tree;
using memscope::procfs::ProcessCollector;

constexpr double kMaxSmapsAgeGoal = 10.0;  // PSS/USS no older than this, for every process

double seconds_of(const timespec& ts) {
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return seconds_of(ts);
}
double wall_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return seconds_of(ts);
}
double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}
struct UserSys {
  double user = 0;
  double sys = 0;
};
UserSys rusage_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return {seconds_of(usage.ru_utime), seconds_of(usage.ru_stime)};
}

void sleep_ms(int ms) {
  if (ms <= 0) return;
  timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// --- readers -------------------------------------------------------------------------------

// One reader's run on one tree: the cold sample, then the steady ones.
struct ReaderRun {
  bool ok = true;
  std::string problem;
  double cold_cpu = 0;
  double cold_wall = 0;
  std::vector<double> steady_cpu;
  double steady_wall = 0;  // summed
  UserSys steady_split;    // summed, from getrusage / os.times()
  size_t processes_min = static_cast<size_t>(-1);
  size_t processes_max = 0;
  double max_smaps_age = 0;
  // Per steady sample, for memscope's collector only.
  std::optional<double> smaps_reads;
  std::optional<double> opens;
  std::optional<double> stat_reads;
  size_t kept_descriptors = 0;

  double steady_mean() const {
    double sum = 0;
    for (double cpu : steady_cpu) sum += cpu;
    return steady_cpu.empty() ? 0 : sum / static_cast<double>(steady_cpu.size());
  }
  void fail(std::string why) {
    if (ok) problem = std::move(why);
    ok = false;
  }
  void count_processes(size_t count) {
    processes_min = std::min(processes_min, count);
    processes_max = std::max(processes_max, count);
  }
};

struct Options {
  std::vector<int> sizes = {1, 100, 1000};
  int rounds = 3;
  int seconds = 30;
  size_t kib = 256;
  int sleep_ms = 0;
  std::vector<std::string> readers;  // empty: all
  std::string python = "/usr/bin/python3";
  std::string psutil_reader;
};

// Drives a sample function through the cold sample and the steady ones, timing each.
template <typename SampleFn>
ReaderRun drive(const Options& options, SampleFn&& sample_at) {
  ReaderRun run;
  UserSys split_before;
  for (int i = 0; i <= options.seconds; ++i) {
    if (i > 0) sleep_ms(options.sleep_ms);
    if (i == 1) split_before = rusage_now();
    const double wall_before = wall_now();
    const double cpu_before = cpu_now();
    sample_at(i, run);
    const double cpu = cpu_now() - cpu_before;
    const double wall = wall_now() - wall_before;
    if (i == 0) {
      run.cold_cpu = cpu;
      run.cold_wall = wall;
    } else {
      run.steady_cpu.push_back(cpu);
      run.steady_wall += wall;
    }
  }
  const UserSys split_after = rusage_now();
  run.steady_split = {split_after.user - split_before.user, split_after.sys - split_before.sys};
  return run;
}

ReaderRun run_memscope(const Options& options, const Tree& tree, ProcessCollector::Policy policy) {
  ProcessCollector collector(memscope::procfs::Roots{}, policy);
  std::vector<ProcessSample> samples;
  ProcessCollector::Stats before;
  ReaderRun run = drive(options, [&](int i, ReaderRun& into) {
    if (i == 1) before = collector.stats();
    collector.collect_into(static_cast<double>(i), tree.root, samples);
    into.count_processes(samples.size());
    if (samples.size() != tree.pids.size()) {
      into.fail(fmt::format("sample {} has {} processes, the tree {}", i, samples.size(),
                            tree.pids.size()));
    }
    for (const ProcessSample& process : samples) {
      into.max_smaps_age = std::max(into.max_smaps_age, process.smaps_age_seconds);
      if (!process.smaps_readable) into.fail(fmt::format("pid {}: smaps unreadable", process.pid));
      if (process.pss_bytes == 0) into.fail(fmt::format("pid {}: PSS 0", process.pid));
    }
  });
  const ProcessCollector::Stats after = collector.stats();
  const auto per_sample = [&](uint64_t later, uint64_t earlier) {
    return static_cast<double>(later - earlier) / static_cast<double>(options.seconds);
  };
  run.smaps_reads = per_sample(after.smaps_reads, before.smaps_reads);
  run.opens = per_sample(after.opens, before.opens);
  run.stat_reads = per_sample(after.stat_reads, before.stat_reads);
  run.kept_descriptors = collector.open_descriptors();
  if (run.max_smaps_age > kMaxSmapsAgeGoal + 1e-9) {
    run.fail(fmt::format("PSS/USS {:.1f} s old", run.max_smaps_age));
  }
  return run;
}

// Reads a whole file from offset 0 into buffer; false when it cannot be read.
bool pread_whole(int fd, std::vector<char>& buffer) {
  off_t offset = 0;
  for (;;) {
    const ssize_t got = pread(fd, buffer.data(), buffer.size(), offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    if (got == 0) return true;
    offset += got;
  }
}

constexpr const char* kFloorFiles[] = {"stat", "statm", "smaps_rollup"};

// The floor: stat, statm and smaps_rollup of every pid of the tree (known in advance: no
// listing, no parsing), with open/read/close each time.
ReaderRun run_floor_open(const Options& options, const Tree& tree) {
  std::vector<char> buffer(16384);
  char path[64];
  return drive(options, [&](int, ReaderRun& into) {
    size_t read_ok = 0;
    for (int pid : tree.pids) {
      bool all = true;
      for (const char* name : kFloorFiles) {
        std::snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
        const int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          all = false;
          continue;
        }
        all = pread_whole(fd, buffer) && all;
        close(fd);
      }
      if (all) ++read_ok;
    }
    into.count_processes(read_ok);
    if (read_ok != tree.pids.size()) into.fail("some files could not be read");
  });
}

// The same three files through descriptors opened once (before the cold sample, untimed) and
// read again with pread at offset 0: what generating the files costs the kernel, no more.
ReaderRun run_floor_kept(const Options& options, const Tree& tree) {
  std::vector<char> buffer(16384);
  std::vector<int> fds;
  char path[64];
  for (int pid : tree.pids) {
    for (const char* name : kFloorFiles) {
      std::snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
      fds.push_back(open(path, O_RDONLY | O_CLOEXEC));
    }
  }
  ReaderRun run = drive(options, [&](int, ReaderRun& into) {
    size_t read_ok = 0;
    for (int fd : fds) {
      if (fd >= 0 && pread_whole(fd, buffer)) ++read_ok;
    }
    into.count_processes(read_ok / std::size(kFloorFiles));
    if (read_ok != fds.size()) into.fail("some files could not be read");
  });
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  return run;
}

// Runs bench/psutil_reader.py on the tree and reads its JSON lines.
ReaderRun run_psutil(const Options& options, const Tree& tree, const char* mode) {
  ReaderRun run;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    run.fail("pipe failed");
    return run;
  }
  const std::string root = std::to_string(tree.root);
  const std::string samples = std::to_string(options.seconds);
  const std::string sleep_seconds = fmt::format("{:.3f}", options.sleep_ms / 1000.0);
  const pid_t child = fork();
  if (child == 0) {
    dup2(out[1], STDOUT_FILENO);
    const char* argv[] = {options.python.c_str(),
                          options.psutil_reader.c_str(),
                          "--root",
                          root.c_str(),
                          "--samples",
                          samples.c_str(),
                          "--mode",
                          mode,
                          "--sleep",
                          sleep_seconds.c_str(),
                          nullptr};
    execv(argv[0], const_cast<char* const*>(argv));
    std::fprintf(stderr, "sample_cost: cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char chunk[4096];
  for (;;) {
    const ssize_t got = read(out[0], chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(chunk, static_cast<size_t>(got));
  }
  close(out[0]);
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    run.fail(fmt::format("{} failed", options.psutil_reader));
    return run;
  }
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) {
      run.fail("unreadable line from psutil_reader.py");
      continue;
    }
    const int index = row.value("sample", -1);
    const auto processes = row.value("processes", size_t{0});
    run.count_processes(processes);
    if (processes != tree.pids.size()) {
      run.fail(fmt::format("sample {} has {} processes, the tree {}", index, processes,
                           tree.pids.size()));
    }
    const double cpu = row.value("cpu_seconds", 0.0);
    const double wall = row.value("wall_seconds", 0.0);
    if (index == 0) {
      run.cold_cpu = cpu;
      run.cold_wall = wall;
    } else {
      run.steady_cpu.push_back(cpu);
      run.steady_wall += wall;
      run.steady_split.user += row.value("user_seconds", 0.0);
      run.steady_split.sys += row.value("sys_seconds", 0.0);
    }
  }
  if (run.steady_cpu.size() != static_cast<size_t>(options.seconds)) {
    run.fail(fmt::format("{} steady samples from psutil_reader.py", run.steady_cpu.size()));
  }
  return run;
}

struct Reader {
  const char* name;
  const char* label;  // for the table
};

// Table order.
constexpr Reader kReaders[] = {
    {"memscope", "memscope ProcessCollector (policy: kept fds, smaps_rollup <= 10 s old)"},
    {"memscope-naive", "memscope, naive policy (keep_fds=false, smaps_max_age_seconds=0)"},
    {"floor-open", "floor: open+read+close stat, statm, smaps_rollup of each pid"},
    {"floor-kept", "floor: pread stat, statm, smaps_rollup on kept fds"},
    {"psutil", "psutil, all fields every sample"},
    {"psutil-memory", "psutil, memory_full_info() only, Process objects reused"},
};

ReaderRun run_reader(std::string_view name, const Options& options, const Tree& tree) {
  if (name == "memscope") return run_memscope(options, tree, ProcessCollector::Policy{});
  if (name == "memscope-naive") {
    ProcessCollector::Policy naive;
    naive.keep_fds = false;
    naive.smaps_max_age_seconds = 0;
    return run_memscope(options, tree, naive);
  }
  if (name == "floor-open") return run_floor_open(options, tree);
  if (name == "floor-kept") return run_floor_kept(options, tree);
  if (name == "psutil") return run_psutil(options, tree, "all");
  return run_psutil(options, tree, "memory");
}

// --- results -------------------------------------------------------------------------------

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

std::string ms(double seconds) { return fmt::format("{:.3f}", seconds * 1e3); }

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) items.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

std::string default_psutil_reader() {
  const std::string source = __FILE__;
  const size_t slash = source.rfind('/');
  return (slash == std::string::npos ? std::string(".") : source.substr(0, slash)) +
         "/psutil_reader.py";
}

int usage() {
  std::fprintf(stderr,
               "usage: sample_cost [--sizes 1,100,1000] [--rounds 3] [--seconds 30] [--kib 256]\n"
               "                   [--sleep-ms 0] [--readers NAME,...] [--python PATH]\n"
               "                   [--psutil-reader PATH]\n"
               "readers: memscope memscope-naive floor-open floor-kept psutil psutil-memory\n");
  return 2;
}

std::optional<Options> parse(int argc, char** argv) {
  Options options;
  options.psutil_reader = default_psutil_reader();
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return std::nullopt;
    const std::string value = argv[++i];
    if (flag == "--sizes") {
      options.sizes.clear();
      for (const auto& item : split_list(value)) options.sizes.push_back(std::atoi(item.c_str()));
    } else if (flag == "--rounds") {
      options.rounds = std::atoi(value.c_str());
    } else if (flag == "--seconds") {
      options.seconds = std::atoi(value.c_str());
    } else if (flag == "--kib") {
      options.kib = static_cast<size_t>(std::atol(value.c_str()));
    } else if (flag == "--sleep-ms") {
      options.sleep_ms = std::atoi(value.c_str());
    } else if (flag == "--readers") {
      options.readers = split_list(value);
    } else if (flag == "--python") {
      options.python = value;
    } else if (flag == "--psutil-reader") {
      options.psutil_reader = value;
    } else {
      return std::nullopt;
    }
  }
  if (options.rounds < 1 || options.seconds < 1 || options.sizes.empty()) return std::nullopt;
  for (int size : options.sizes) {
    if (size < 1) return std::nullopt;
  }
  for (const auto& name : options.readers) {
    if (std::none_of(std::begin(kReaders), std::end(kReaders),
                     [&](const Reader& reader) { return name == reader.name; })) {
      return std::nullopt;
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = parse(argc, argv);
  if (!parsed) return usage();
  const Options& options = *parsed;

  std::vector<std::string> readers;
  for (const Reader& reader : kReaders) {
    if (options.readers.empty() || std::find(options.readers.begin(), options.readers.end(),
                                             reader.name) != options.readers.end()) {
      readers.emplace_back(reader.name);
    }
  }

  // (size, reader) -> one run per round.
  std::map<std::pair<int, std::string>, std::vector<ReaderRun>> results;
  bool all_ok = true;
  for (int round = 0; round < options.rounds; ++round) {
    for (int size : options.sizes) {
      const auto tree = memscope::bench::spawn_tree(size, options.kib * 1024);
      if (!tree) return 1;
      if (round == 0) {
        std::fprintf(stderr, "tree of %d: root %s; last child %s\n", size,
                     memscope::bench::describe_process(tree->pids.front()).c_str(),
                     memscope::bench::describe_process(tree->pids.back()).c_str());
      }
      for (size_t k = 0; k < readers.size(); ++k) {
        const std::string& name = readers[(k + static_cast<size_t>(round)) % readers.size()];
        ReaderRun run = run_reader(name, options, *tree);
        std::fprintf(stderr,
                     "round %d  %5d processes  %-15s cold %9s ms  steady %8s ms/sample  "
                     "(user %s sys %s ms total)%s%s\n",
                     round + 1, size, name.c_str(), ms(run.cold_cpu).c_str(),
                     ms(run.steady_mean()).c_str(), ms(run.steady_split.user).c_str(),
                     ms(run.steady_split.sys).c_str(),
                     run.ok ? "" : "  FAILED: ", run.problem.c_str());
        all_ok = all_ok && run.ok;
        results[{size, name}].push_back(std::move(run));
      }
      memscope::bench::end_tree(*tree);
    }
  }

  fmt::print(
      "Per-sample CPU time (user+sys of the reader), steady state = mean of {} samples "
      "after the cold one; medians of {} rounds{}.\n\n",
      options.seconds, options.rounds,
      options.sleep_ms > 0 ? fmt::format(", {} ms real sleep between samples", options.sleep_ms)
                           : ", samples back to back (memscope in simulated 1 Hz time)");
  fmt::print(
      "| processes | reader | steady ms/sample (median) | range over rounds | "
      "cold sample ms | sys share | smaps_rollup reads/sample | max PSS age s | "
      "psutil ÷ reader |\n");
  fmt::print("|---:|---|---:|---|---:|---:|---:|---:|---:|\n");
  for (int size : options.sizes) {
    std::optional<double> psutil_steady;
    if (const auto it = results.find({size, "psutil"}); it != results.end()) {
      std::vector<double> means;
      for (const auto& run : it->second) means.push_back(run.steady_mean());
      psutil_steady = median(means);
    }
    for (const Reader& reader : kReaders) {
      const auto it = results.find({size, reader.name});
      if (it == results.end()) continue;
      std::vector<double> means;
      std::vector<double> colds;
      std::vector<double> smaps;
      double user = 0;
      double sys = 0;
      double max_age = 0;
      bool ok = true;
      for (const auto& run : it->second) {
        means.push_back(run.steady_mean());
        colds.push_back(run.cold_cpu);
        if (run.smaps_reads) smaps.push_back(*run.smaps_reads);
        user += run.steady_split.user;
        sys += run.steady_split.sys;
        max_age = std::max(max_age, run.max_smaps_age);
        ok = ok && run.ok;
      }
      const double steady = median(means);
      const auto [low, high] = std::minmax_element(means.begin(), means.end());
      const bool is_memscope = std::string_view(reader.name).rfind("memscope", 0) == 0;
      fmt::print("| {} | {}{} | {} | {}–{} | {} | {:.0f} % | {} | {} | {} |\n", size, reader.label,
                 ok ? "" : " (FAILED a check)", ms(steady), ms(*low), ms(*high), ms(median(colds)),
                 user + sys > 0 ? 100 * sys / (user + sys) : 0.0,
                 smaps.empty() ? std::string("—") : fmt::format("{:.1f}", median(smaps)),
                 is_memscope ? fmt::format("{:.0f}", max_age) : std::string("—"),
                 psutil_steady && steady > 0 ? fmt::format("{:.1f}", *psutil_steady / steady)
                                             : std::string("—"));
    }
  }
  return all_ok ? 0 : 1;
}
