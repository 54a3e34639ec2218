// `memscope leak --enable-tracking` end to end: the programs in tests/track/ run under the
// allocation tracker; their planted leak sites must come out with the exact function, bytes and
// counts, their output must not change, and every bad input must fail with the documented status.
//
// What names a site: the innermost frame outside memscope and the allocator (operator new,
// std::allocator plumbing and the malloc family skipped). Planted functions are built -O0
// noinline, so each is a frame of its own. A site is one call stack: a function that allocates
// from two call stacks has two sites, so the checks add up every site named after a function.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The tracked programs are slow under the tracker on a loaded 2-core machine; none runs longer
// than a few seconds plain-tracked, the limit only catches a hang.
constexpr double kTrackedTimeout = 300;

struct Tracked {
  CommandResult result;
  json report;  // --output, or null when it was not written
};

std::vector<std::string> tracked_argv(const TempDir& tmp, const std::vector<std::string>& command) {
  std::vector<std::string> argv = {memscope_binary(),
                                   "leak",
                                   "--enable-tracking",
                                   "--no-gpu",
                                   "--trace-dir",
                                   tmp.path(),
                                   "--output",
                                   tmp.file("x.json"),
                                   "--flamegraph",
                                   tmp.file("fg"),
                                   "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

Tracked run_tracked(const TempDir& tmp, const std::vector<std::string>& command,
                    const std::map<std::string, std::string>& env = {}) {
  Tracked tracked;
  tracked.result = run_command(tracked_argv(tmp, command), env, kTrackedTimeout);
  if (fs::exists(tmp.file("x.json"))) tracked.report = json::parse(read_file(tmp.file("x.json")));
  return tracked;
}

// The lines a test program printed ("track_...: ..."), out of memscope's stdout too.
std::vector<std::string> program_lines(const std::string& out) {
  static const std::regex line_pattern("^track_[a-z_]+: .*$");
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (std::regex_match(line, line_pattern)) lines.push_back(line);
  }
  return lines;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code error;
  return !a.empty() && !b.empty() && fs::equivalent(a, b, error) && !error;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool has_frame(const json& site, const std::string& function) {
  for (const auto& frame : site.at("frames")) {
    if (frame.at("function") == function) return true;
  }
  return false;
}

// The frame a site is named after: the innermost one whose function is the site's.
const json* naming_frame(const json& site) {
  for (const auto& frame : site.at("frames")) {
    if (frame.at("function") == site.at("function")) return &frame;
  }
  return nullptr;
}

// Sites named after `function` (and in `space`, when given), of the trace of `pid` (when given).
std::vector<json> sites_named(const json& report, const std::string& function,
                              const std::string& space = "", int64_t pid = -1) {
  std::vector<json> out;
  for (const auto& site : report.at("sites")) {
    if (site.at("function") != function) continue;
    if (!space.empty() && site.at("space") != space) continue;
    if (pid >= 0 && site.at("pid").get<int64_t>() != pid) continue;
    out.push_back(site);
  }
  return out;
}

uint64_t sum_of(const std::vector<json>& sites, const char* field) {
  uint64_t total = 0;
  for (const auto& site : sites) total += site.at(field).get<uint64_t>();
  return total;
}

// Live bytes of the folded-stack lines ("root;outer;...;inner BYTES") that have `function`
// among their frames.
uint64_t folded_bytes_through(const std::string& folded, const std::string& function) {
  uint64_t total = 0;
  std::istringstream in(folded);
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    std::istringstream frames(line.substr(0, space));
    std::string frame;
    bool through = false;
    while (std::getline(frames, frame, ';')) through = through || frame == function;
    if (through) total += std::stoull(line.substr(space + 1));
  }
  return total;
}

// One planted leak: the sites named after `function` in `space` add up to exactly this.
struct Planted {
  std::string function;
  std::string space;   // "heap", "cuda", ...
  std::string memory;  // "host", "gpu"
  uint64_t leaked_bytes;
  uint64_t leaked_count;
  size_t sites;  // call stacks it allocates from
};

// Allocations that are all freed: the sites named after `function` leak nothing; when
// allocated_count is not 0 they allocated exactly that often.
struct Freed {
  std::string function;
  std::string space;  // "" for any
  uint64_t allocated_count;
};

struct TrackCase {
  const char* name;
  std::string (*binary)();
  std::vector<Planted> planted;
  std::vector<Freed> freed;
  uint64_t end_gpu_bytes;
};

void PrintTo(const TrackCase& c, std::ostream* out) { *out << c.name; }

const std::vector<TrackCase>& track_cases() {
  static const std::vector<TrackCase> cases = {
      {"leak_c",
       track_leak_c_binary,
       {{"leak_small", "heap", "host", 100 * 48, 100, 1},
        {"leak_big", "heap", "host", 3 * 1048576, 3, 1}},
       // churn: 100000 malloc/free pairs; realloc_chains: 50 chains of 20 reallocs (each a
       // free of the old block and an allocation of the new one).
       {{"churn", "heap", 100000}, {"realloc_chains", "heap", 1000}},
       0},
      {"leak_cpp",
       track_leak_cpp_binary,
       // Leaky::grow(int) is called from two places in main: two stacks, 100 + 150 nodes of 64 B.
       // leak_vector() owns the 24-byte vector object its `new` allocates; the vector's 4096-byte
       // buffer is checked apart (LeakCppVectorBuffer).
       {{"Leaky::grow(int)", "heap", "host", 250 * 64, 250, 2},
        {"leak_vector()", "heap", "host", 24, 1, 1}},
       {{"churn()", "heap", 0}},
       0},
      {"noleak",
       track_noleak_binary,
       {},
       // malloc_calloc: 64 blocks from two call sites; aligned: 20 x posix_memalign,
       // aligned_alloc, memalign, valloc; realloc_to_zero: glibc's realloc(p, 0) frees p.
       {{"malloc_calloc", "heap", 64},
        {"reallocs", "heap", 0},
        {"aligned", "heap", 80},
        {"realloc_to_zero", "heap", 0},
        {"mappings", "mmap", 0}},
       0},
      {"cuda",
       track_cuda_binary,
       {{"gpu_leak", "cuda", "gpu", 2 * 1048576, 2, 1},
        {"managed_leak", "cuda", "gpu", 65536, 1, 1},
        {"driver_leak", "cuda-driver", "gpu", 262144, 1, 1},
        {"vmm_leak", "cuda-physical", "gpu", 2 * 1048576, 1, 1}},
       // gpu_churn: 3 x cudaMalloc + cudaFree, one cudaMallocAsync + cudaFreeAsync; the range
       // vmm_leak maps is unmapped again.
       {{"gpu_churn", "cuda", 4}, {"vmm_leak", "cuda-mapping", 1}},
       2 * 1048576 + 65536 + 262144 + 2 * 1048576},
  };
  return cases;
}

class TrackedPrograms : public ::testing::TestWithParam<TrackCase> {};

TEST_P(TrackedPrograms, PlantedSitesExactlyAndNothingElseLeaksInTheProgram) {
  const TrackCase& c = GetParam();
  const std::string program = c.binary();
  const CommandResult plain = run_command({program}, {}, kTrackedTimeout);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(program_lines(plain.out).size(), 1u) << plain.out;

  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, {program});
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  EXPECT_EQ(tracked.result.err.find("could not attach"), std::string::npos) << tracked.result.err;
  // The program's output is the same under the tracker.
  EXPECT_EQ(program_lines(tracked.result.out), program_lines(plain.out)) << tracked.result.out;

  const json& report = tracked.report;
  ASSERT_TRUE(report.is_object()) << "no --output written; stderr:\n" << tracked.result.err;
  EXPECT_EQ(report.at("report"), "memscope-leak");
  EXPECT_EQ(report.at("schema_version"), 1);
  EXPECT_TRUE(report.at("processes").is_array());

  // One process, one trace: DIR/memscope-track.<memscope pid>.<pid>.mst, complete.
  ASSERT_EQ(report.at("traces").size(), 1u) << report.at("traces").dump(2);
  const json& trace = report.at("traces")[0];
  const int64_t pid = trace.at("pid").get<int64_t>();
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(same_file(trace.at("exe"), program)) << trace.at("exe");
  EXPECT_TRUE(trace.at("complete").get<bool>());
  EXPECT_FALSE(trace.at("truncated").get<bool>());
  EXPECT_GT(trace.at("events").get<uint64_t>(), 0u);
  const std::string trace_file = trace.at("trace_file");
  EXPECT_TRUE(
      std::regex_match(fs::path(trace_file).filename().string(),
                       std::regex("memscope-track\\.[0-9]+\\." + std::to_string(pid) + "\\.mst")))
      << trace_file;
  EXPECT_TRUE(same_file(fs::path(trace_file).parent_path().string(), tmp.path())) << trace_file;
  EXPECT_EQ(trace.at("end_gpu_bytes").get<uint64_t>(), c.end_gpu_bytes);

  // "sites" holds every site of every trace, leaked bytes descending.
  const json& sites = report.at("sites");
  ASSERT_FALSE(sites.empty());
  for (size_t i = 1; i < sites.size(); ++i) {
    EXPECT_GE(sites[i - 1].at("leaked_bytes").get<uint64_t>(),
              sites[i].at("leaked_bytes").get<uint64_t>())
        << "sites not sorted at " << i;
  }
  for (const auto& site : sites) {
    EXPECT_EQ(site.at("pid").get<int64_t>(), pid);
    EXPECT_EQ(site.at("trace_file"), trace_file);
  }

  std::set<std::string> planted_functions;
  for (const Planted& p : c.planted) {
    planted_functions.insert(p.function);
    const auto named = sites_named(report, p.function, p.space);
    ASSERT_EQ(named.size(), p.sites) << p.function << " in " << p.space << "\n" << sites.dump(1);
    EXPECT_EQ(sum_of(named, "leaked_bytes"), p.leaked_bytes) << p.function;
    EXPECT_EQ(sum_of(named, "leaked_count"), p.leaked_count) << p.function;
    EXPECT_EQ(sum_of(named, "allocated_count"), p.leaked_count) << p.function;
    for (const auto& site : named) {
      EXPECT_EQ(site.at("memory"), p.memory) << p.function;
      const json* frame = naming_frame(site);
      ASSERT_NE(frame, nullptr) << site.dump(1);
      EXPECT_TRUE(same_file(frame->at("module"), program)) << site.dump(1);
    }
  }
  for (const Freed& f : c.freed) {
    const auto named = sites_named(report, f.function, f.space);
    ASSERT_FALSE(named.empty()) << f.function << " in '" << f.space << "'\n" << sites.dump(1);
    EXPECT_EQ(sum_of(named, "leaked_bytes"), 0u) << f.function;
    EXPECT_EQ(sum_of(named, "leaked_count"), 0u) << f.function;
    if (f.allocated_count != 0) {
      EXPECT_EQ(sum_of(named, "allocated_count"), f.allocated_count) << f.function;
    }
  }

  // No other site leaks in the program's own code (the C library's stdio buffer and the like
  // are the C library's; a site whose stack passes through a planted function is accounted
  // for above or in its own test).
  for (const auto& site : sites) {
    if (site.at("leaked_bytes").get<uint64_t>() == 0) continue;
    bool planted = false;
    for (const auto& function : planted_functions) planted = planted || has_frame(site, function);
    if (planted) continue;
    const json* frame = naming_frame(site);
    if (frame == nullptr) continue;
    EXPECT_FALSE(same_file(frame->at("module"), program)) << "unplanted leak in " << c.name << ":\n"
                                                          << site.dump(1);
  }

  // Flame graphs: the live bytes at the end through each planted function, as in the sites.
  const std::string end_folded = read_file(tmp.file("fg.end.folded"));
  const std::string peak_folded = read_file(tmp.file("fg.peak.folded"));
  EXPECT_FALSE(peak_folded.empty());
  for (const auto& function : planted_functions) {
    uint64_t through = 0;
    for (const auto& site : sites) {
      if (site.at("memory") != "gpu-mapping" && has_frame(site, function)) {
        through += site.at("leaked_bytes").get<uint64_t>();
      }
    }
    EXPECT_GT(through, 0u) << function;
    EXPECT_EQ(folded_bytes_through(end_folded, function), through) << function << "\n"
                                                                   << end_folded;
  }
}

INSTANTIATE_TEST_SUITE_P(Track, TrackedPrograms, ::testing::ValuesIn(track_cases()),
                         [](const auto& test) { return std::string(test.param.name); });

TEST(Track, TrackerLibraryIsBuiltBesideMemscope) {
  EXPECT_TRUE(fs::exists(track_library())) << track_library();
  EXPECT_TRUE(same_file(fs::path(track_library()).parent_path().string(),
                        fs::path(memscope_binary()).parent_path().string()));
}

// leak_small's site points at the line of its malloc call (the return address's call site, not
// the line after it), in the program's source file.
TEST(Track, LeakSiteLocationIsTheLineOfTheCall) {
  const std::string source = source_dir() + "/tests/track/track_leak_c.c";
  std::istringstream in(read_file(source));
  std::string line;
  int number = 0;
  int call_line = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find("small_leaks[i] = malloc(kSmallSize);") != std::string::npos) call_line = number;
  }
  ASSERT_GT(call_line, 0);

  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, {track_leak_c_binary()});
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  const auto named = sites_named(tracked.report, "leak_small");
  ASSERT_EQ(named.size(), 1u);
  const std::string location = named[0].at("location");
  EXPECT_TRUE(ends_with(location, "track_leak_c.c:" + std::to_string(call_line))) << location;
  const json* frame = naming_frame(named[0]);
  ASSERT_NE(frame, nullptr);
  EXPECT_TRUE(ends_with(frame->at("file"), "track_leak_c.c")) << frame->dump();
  EXPECT_EQ(frame->at("line").get<int>(), call_line);
  EXPECT_FALSE(frame->at("python_interpreter").get<bool>());
  // The terminal table names it too.
  EXPECT_NE(tracked.result.out.find("leak_small"), std::string::npos) << tracked.result.out;
  EXPECT_NE(tracked.result.out.find("leak_big"), std::string::npos) << tracked.result.out;
  // At the peak (after leak_big), both leaks are live.
  const std::string peak = read_file(tmp.file("fg.peak.folded"));
  EXPECT_EQ(folded_bytes_through(peak, "leak_big"), 3u * 1048576) << peak;
  EXPECT_EQ(folded_bytes_through(peak, "leak_small"), 4800u) << peak;
}

// The 4096-byte buffer of the vector leak_vector() leaks is allocated inside std::vector's
// constructor: whatever frame names it, leak_vector() is on its stack.
TEST(Track, LeakCppVectorBuffer) {
  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, {track_leak_cpp_binary()});
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  std::vector<json> buffers;
  for (const auto& site : tracked.report.at("sites")) {
    if (has_frame(site, "leak_vector()") && site.at("function") != "leak_vector()") {
      buffers.push_back(site);
    }
  }
  ASSERT_EQ(buffers.size(), 1u) << tracked.report.at("sites").dump(1);
  EXPECT_EQ(buffers[0].at("leaked_bytes").get<uint64_t>(), 4096u);
  EXPECT_EQ(buffers[0].at("leaked_count").get<uint64_t>(), 1u);
  EXPECT_NE(buffers[0].at("function"), "operator new(unsigned long)");
}

// 8 threads, cross-thread frees: no crash or hang, and the sites of worker(int) balance — with
// the tracker's compressor thread (its ~5 MiB of records fill several chunks) and without it.
class TrackThreads : public ::testing::TestWithParam<const char*> {};

TEST_P(TrackThreads, Balance) {
  const CommandResult plain = run_command({track_threads_binary()}, {}, kTrackedTimeout);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  TempDir tmp;
  const Tracked tracked =
      run_tracked(tmp, {track_threads_binary()}, {{"MEMSCOPE_TRACK_THREAD", GetParam()}});
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  const auto lines = program_lines(tracked.result.out);
  ASSERT_EQ(lines, program_lines(plain.out)) << tracked.result.out;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(lines[0], match, std::regex("allocations=([0-9]+)"))) << lines[0];
  const uint64_t total = std::stoull(match[1]);
  EXPECT_EQ(total, 8u * 50000u);  // 40000 iterations, one hand-off every 4

  ASSERT_EQ(tracked.report.at("traces").size(), 1u);
  EXPECT_TRUE(tracked.report.at("traces")[0].at("complete").get<bool>());
  const auto named = sites_named(tracked.report, "worker(int)", "heap");
  ASSERT_FALSE(named.empty()) << tracked.report.at("sites").dump(1);
  EXPECT_EQ(sum_of(named, "allocated_count"), total);
  EXPECT_EQ(sum_of(named, "leaked_count"), 0u);
  EXPECT_EQ(sum_of(named, "leaked_bytes"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Track, TrackThreads, ::testing::Values("1", "0"));

// dlopen: the plugin's leak is symbolized in the plugin. fork: the child stops tracking (its
// leak is nowhere). fork+exec: the exec'd program has a trace of its own.
TEST(Track, ForkDlopenExec) {
  const std::string program = track_fork_dlopen_binary();
  const std::vector<std::string> command = {program, track_plugin_library(),
                                            track_exec_target_binary()};
  const CommandResult plain = run_command(command, {}, kTrackedTimeout);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(program_lines(plain.out).size(), 2u) << plain.out;

  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, command);
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  EXPECT_EQ(program_lines(tracked.result.out), program_lines(plain.out)) << tracked.result.out;
  const json& report = tracked.report;
  ASSERT_TRUE(report.is_object()) << tracked.result.err;

  // Two traces: the parent's and the exec'd program's; none from the child that only forked.
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(tmp.path())) {
    if (entry.path().extension() == ".mst") files.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(files.size(), 2u) << ::testing::PrintToString(files);
  ASSERT_EQ(report.at("traces").size(), 2u) << report.at("traces").dump(2);
  int64_t parent_pid = -1;
  int64_t exec_pid = -1;
  for (const auto& trace : report.at("traces")) {
    EXPECT_TRUE(trace.at("complete").get<bool>()) << trace.dump(2);
    if (same_file(trace.at("exe"), program)) parent_pid = trace.at("pid");
    if (same_file(trace.at("exe"), track_exec_target_binary())) exec_pid = trace.at("pid");
  }
  ASSERT_GT(parent_pid, 0) << report.at("traces").dump(2);
  ASSERT_GT(exec_pid, 0) << report.at("traces").dump(2);
  EXPECT_NE(parent_pid, exec_pid);

  const auto plugin = sites_named(report, "plugin_leak", "heap", parent_pid);
  ASSERT_EQ(plugin.size(), 1u) << report.at("sites").dump(1);
  EXPECT_EQ(plugin[0].at("leaked_bytes").get<uint64_t>(), 10000u);
  EXPECT_EQ(plugin[0].at("leaked_count").get<uint64_t>(), 10u);
  const json* plugin_frame = naming_frame(plugin[0]);
  ASSERT_NE(plugin_frame, nullptr);
  EXPECT_TRUE(same_file(plugin_frame->at("module"), track_plugin_library())) << plugin[0].dump(1);

  const auto after = sites_named(report, "after_fork_leak", "heap", parent_pid);
  ASSERT_EQ(after.size(), 1u) << report.at("sites").dump(1);
  EXPECT_EQ(after[0].at("leaked_bytes").get<uint64_t>(), 4u * 44u);
  EXPECT_EQ(after[0].at("leaked_count").get<uint64_t>(), 4u);

  const auto exec_leak = sites_named(report, "exec_leak", "heap", exec_pid);
  ASSERT_EQ(exec_leak.size(), 1u) << report.at("sites").dump(1);
  EXPECT_EQ(exec_leak[0].at("leaked_bytes").get<uint64_t>(), 7u * 77u);
  EXPECT_EQ(exec_leak[0].at("leaked_count").get<uint64_t>(), 7u);

  for (const auto& site : report.at("sites")) {
    EXPECT_FALSE(has_frame(site, "child_leak")) << site.dump(1);
  }
  EXPECT_EQ(read_file(tmp.file("fg.end.folded")).find("child_leak"), std::string::npos);
  EXPECT_EQ(folded_bytes_through(read_file(tmp.file("fg.end.folded")), "exec_leak"), 539u);
}

// A static program ignores LD_PRELOAD: no trace, a clear message, the trend verdicts anyway,
// and the command's exit status.
TEST(Track, StaticProgramCannotBeAttached) {
  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, {track_static_binary()});
  EXPECT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  EXPECT_NE(tracked.result.err.find("tracking could not attach"), std::string::npos)
      << tracked.result.err;
  EXPECT_NE(tracked.result.out.find("track_static: ran"), std::string::npos) << tracked.result.out;
  EXPECT_NE(tracked.result.out.find("series: leak suspected"), std::string::npos)
      << tracked.result.out;
  ASSERT_TRUE(tracked.report.is_object());
  EXPECT_TRUE(tracked.report.at("processes").is_array());
  EXPECT_TRUE(tracked.report.value("traces", json::array()).empty());
  EXPECT_TRUE(tracked.report.value("sites", json::array()).empty());
}

// The tracked command's exit status is memscope's, signals as 128+N.
TEST(Track, ExitStatusIsTheCommands) {
  for (const auto& [script, status] :
       std::vector<std::pair<std::string, int>>{{"exit 7", 7}, {"kill -TERM $$", 143}}) {
    TempDir tmp;
    const Tracked tracked = run_tracked(tmp, {"/bin/sh", "-c", script});
    EXPECT_EQ(tracked.result.exit_code, status) << script << "\n" << tracked.result.err;
  }
}

// --trace FILE analyses a trace written earlier: the same sites as right after the run.
TEST(Track, TraceReanalysisGivesTheSameSites) {
  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, {track_leak_c_binary()});
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  const std::string trace_file = tracked.report.at("traces")[0].at("trace_file");
  const auto again = run_command({memscope_binary(), "leak", "--trace", trace_file, "--output",
                                  tmp.file("again.json"), "--flamegraph", tmp.file("again")},
                                 {}, kTrackedTimeout);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const json report = json::parse(read_file(tmp.file("again.json")));
  EXPECT_TRUE(report.at("processes").empty());
  ASSERT_EQ(report.at("traces").size(), 1u);
  EXPECT_EQ(report.at("traces")[0].at("trace_file"), trace_file);
  EXPECT_EQ(report.at("sites"), tracked.report.at("sites"))
      << json::diff(tracked.report.at("sites"), report.at("sites")).dump(1).substr(0, 4000);
  EXPECT_EQ(read_file(tmp.file("again.end.folded")), read_file(tmp.file("fg.end.folded")));
  EXPECT_NE(again.out.find("leak_small"), std::string::npos) << again.out;
}

// Bad traces: not a trace, another format version, cut in the middle.
TEST(Track, BadTracesExitThreeAndSayWhy) {
  TempDir tmp;
  const Tracked tracked = run_tracked(tmp, {track_leak_c_binary()});
  ASSERT_EQ(tracked.result.exit_code, 0) << tracked.result.err;
  const std::string trace = read_file(tracked.report.at("traces")[0].at("trace_file"));
  ASSERT_GT(trace.size(), 64u);

  write_file(tmp.file("text.mst"), "this is not a trace\n");
  std::string version2 = trace;
  version2[8] = 2;
  version2[9] = version2[10] = version2[11] = 0;
  write_file(tmp.file("v2.mst"), version2);
  write_file(tmp.file("cut.mst"), trace.substr(0, trace.size() / 2));

  const auto leak_trace = [&](const std::string& name) {
    return run_command({memscope_binary(), "leak", "--trace", tmp.file(name)}, {}, 60);
  };
  const auto text = leak_trace("text.mst");
  EXPECT_EQ(text.exit_code, 3) << text.err;
  EXPECT_TRUE(std::regex_search(text.err, std::regex("not a memscope (allocation )?trace")))
      << text.err;
  EXPECT_NE(text.err.find("text.mst"), std::string::npos) << text.err;

  const auto v2 = leak_trace("v2.mst");
  EXPECT_EQ(v2.exit_code, 3) << v2.err;
  EXPECT_NE(v2.err.find("version 2"), std::string::npos) << v2.err;
  EXPECT_NE(v2.err.find("version 1"), std::string::npos) << v2.err;

  const auto cut = leak_trace("cut.mst");
  EXPECT_EQ(cut.exit_code, 3) << cut.err;
  EXPECT_NE(cut.err.find("truncated"), std::string::npos) << cut.err;
  EXPECT_NE(cut.out.find("cut.mst"), std::string::npos) << "no report printed:\n" << cut.out;
}

struct UsageCase {
  const char* name;
  std::vector<std::string> args;  // after `memscope leak`; "{tmp}" becomes a fresh directory
  std::map<std::string, std::string> env;
  int exit_code;
  const char* stderr_pattern;  // ECMAScript regex searched in stderr
};

void PrintTo(const UsageCase& c, std::ostream* out) { *out << c.name; }

class TrackUsage : public ::testing::TestWithParam<UsageCase> {};

TEST_P(TrackUsage, ExitsWithTheDocumentedStatus) {
  const UsageCase& c = GetParam();
  TempDir tmp;
  std::vector<std::string> argv = {memscope_binary(), "leak"};
  for (std::string arg : c.args) {
    const auto at = arg.find("{tmp}");
    if (at != std::string::npos) arg.replace(at, 5, tmp.path());
    argv.push_back(arg);
  }
  const auto result = run_command(argv, c.env, 60);
  EXPECT_EQ(result.exit_code, c.exit_code) << result.err;
  EXPECT_TRUE(std::regex_search(result.err, std::regex(c.stderr_pattern))) << result.err;
}

INSTANTIATE_TEST_SUITE_P(
    Track, TrackUsage,
    ::testing::Values(
        UsageCase{"missing_command",
                  {"--enable-tracking", "--no-gpu", "--trace-dir", "{tmp}", "--",
                   "/nonexistent/memscope-no-such-program"},
                  {},
                  127,
                  "memscope-no-such-program"},
        UsageCase{"tracking_without_command",
                  {"--enable-tracking", "--no-gpu"},
                  {},
                  2,
                  "a command after --"},
        UsageCase{
            "trace_with_command", {"--trace", "{tmp}/x.mst", "--", "/bin/true"}, {}, 2, "--trace"},
        UsageCase{"tracker_library_missing",
                  {"--enable-tracking", "--no-gpu", "--trace-dir", "{tmp}", "--", "/bin/true"},
                  {{"MEMSCOPE_TRACK_LIBRARY", "/nonexistent/libmemscope_track.so"}},
                  1,
                  "/nonexistent/libmemscope_track.so"}),
    [](const auto& test) { return std::string(test.param.name); });

}  // namespace
}  // namespace memscope::testing
