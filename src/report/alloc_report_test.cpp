#include "report/alloc_report.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include <sstream>
#include <string>
#include <vector>

#include "core/units.hpp"

namespace memscope::alloc {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

Frame frame(const std::string& function, const std::string& module, uint64_t offset,
            bool python = false) {
  Frame f;
  f.ip = 0x400000 + offset;
  f.function = function;
  f.module = module;
  f.module_offset = offset;
  f.python_interpreter = python;
  return f;
}

ResolvedSite resolved(uint32_t stack, Space space, uint64_t leaked, uint64_t count,
                      const std::string& function, const std::string& location,
                      std::vector<Frame> frames = {}) {
  ResolvedSite r;
  r.site.stack = stack;
  r.site.space = space;
  r.site.leaked_bytes = leaked;
  r.site.leaked_count = count;
  r.site.max_live_bytes = leaked;
  r.site.allocated_bytes = leaked * 2;
  r.site.allocated_count = count * 2;
  r.function = function;
  r.location = location;
  r.frames = std::move(frames);
  return r;
}

SiteReport small_report() {
  SiteReport report;
  report.process.pid = 4242;
  report.process.ppid = 1;
  report.process.exe = "/usr/bin/python3.11";
  report.process.cmdline = "python3 train.py";
  report.end.complete = true;
  report.end.end_reason = "exit";
  report.duration_seconds = 12.3456;
  report.peak_seconds = 3.2104;
  report.peak_host_bytes = 3 * kMiB / 2;
  report.peak_gpu_bytes = 2 * kGiB;
  report.end_host_bytes = kMiB;
  report.end_gpu_bytes = 512 * kMiB;
  report.events = 1000;
  report.unknown_frees = 3;
  report.growth_times_seconds = {4.1152, 8.2304, 12.3456};
  return report;
}

std::vector<ResolvedSite> small_sites() {
  std::vector<ResolvedSite> sites;
  sites.push_back(
      resolved(7, Space::cuda, 512 * kMiB, 2, "Model::load(std::string const&)", "model.cpp:42"));
  sites.push_back(resolved(3, Space::heap, 768 * kKiB, 3000, "cache_put", "cache.c:10"));
  sites.back().site.growing = true;
  sites.push_back(resolved(9, Space::mmap, 256 * kKiB, 1, "", "libfoo.so+0x1a2b"));
  sites.back().function = "??";
  sites.push_back(resolved(2, Space::heap, 100, 1, "tiny", "tiny.c:1"));
  sites.push_back(resolved(5, Space::heap, 0, 0, "freed_everything", "ok.c:5"));
  return sites;
}

TEST(FrameLocation, FileAndLineElseModuleAndOffsetElseAddress) {
  Frame frame;
  frame.ip = 0x7f0012345678;
  EXPECT_EQ(frame_location(frame), "0x7f0012345678");
  frame.module = "/usr/lib/x86_64-linux-gnu/libfoo.so";
  frame.module_offset = 0x1a2b;
  EXPECT_EQ(frame_location(frame), "libfoo.so+0x1a2b");
  frame.file = "/src/cache.c";
  EXPECT_EQ(frame_location(frame), "cache.c");
  frame.line = 10;
  EXPECT_EQ(frame_location(frame), "cache.c:10");
}

TEST(SitesTable, HeaderAndRowsOfLeakingSites) {
  const std::string text = sites_table(small_report(), small_sites(), 10);
  const std::vector<std::string> expected = {
      "pid 4242  /usr/bin/python3.11  ran 12.3s  peak 1.5 MiB host + 2.0 GiB gpu at 3.2s  end: "
      "1.0 MiB host + 512.0 MiB gpu live",
      "    leaked    count memory      function                        location",
      " 512.0 MiB        2 gpu         Model::load(std::string const&) model.cpp:42",
      " 768.0 KiB     3000 host        cache_put                       cache.c:10  growing (held "
      "768.0 KiB)",
      " 256.0 KiB        1 host        ??                              libfoo.so+0x1a2b",
      "     100 B        1 host        tiny                            tiny.c:1",
  };
  EXPECT_EQ(lines_of(text), expected) << text;
}

// Stacks ending in the same function and location are one row; a growing site that gave its
// memory back at exit ranks by what it held.
TEST(SitesTable, MergesAFunctionsStacksAndRanksGrowthByWhatItHeld) {
  std::vector<ResolvedSite> sites;
  sites.push_back(resolved(1, Space::heap, 3000, 3, "leak", "a.c:1"));
  sites.push_back(resolved(2, Space::heap, 2000, 2, "leak", "a.c:1"));
  sites.push_back(resolved(3, Space::heap, 1000, 1, "other", "b.c:2"));
  sites.push_back(resolved(4, Space::heap, 0, 0, "step", "train.c:9"));
  sites.back().site.growing = true;
  sites.back().site.max_live_bytes = 50 * kMiB;
  const std::vector<std::string> expected = {
      "    leaked    count memory      function location",
      "       0 B        0 host        step     train.c:9  growing (held 50.0 MiB)",
      "   4.9 KiB        5 host        leak     a.c:1  2 stacks",
      "    1000 B        1 host        other    b.c:2",
  };
  std::vector<std::string> lines = lines_of(sites_table(small_report(), sites, 10));
  lines.erase(lines.begin());  // the header line
  EXPECT_EQ(lines, expected);
}

TEST(SitesTable, CutsAtTopAndSaysWhatTheRestHold) {
  const std::vector<std::string> lines = lines_of(sites_table(small_report(), small_sites(), 2));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3].substr(0, 20), " 768.0 KiB     3000 ");
  EXPECT_EQ(lines[4], "2 more sites hold 256.1 KiB");
  const std::vector<std::string> one = lines_of(sites_table(small_report(), small_sites(), 3));
  EXPECT_EQ(one.back(), "1 more site holds 100 B");
}

TEST(SitesTable, SaysWhenNothingLeakedAndHowTheTraceEnded) {
  SiteReport report = small_report();
  report.end.complete = false;
  std::vector<ResolvedSite> sites = {resolved(5, Space::heap, 0, 0, "f", "f.c:1")};
  std::vector<std::string> lines = lines_of(sites_table(report, sites, 10));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].ends_with("gpu live (incomplete: the process did not exit normally)"))
      << lines[0];
  EXPECT_EQ(lines[1], "no allocation was still live at the end");
  report.end.truncated = true;
  lines = lines_of(sites_table(report, {}, 10));
  EXPECT_TRUE(lines[0].ends_with("gpu live (truncated)")) << lines[0];
}

TEST(SitesTable, ShortensLongFunctionNames) {
  const std::string name(100, 'x');
  const std::vector<ResolvedSite> sites = {resolved(1, Space::heap, 10, 1, name, "a.c:1")};
  const std::vector<std::string> lines = lines_of(sites_table(small_report(), sites, 10));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2],
            fmt::format("      10 B        1 host        {}... a.c:1", std::string(57, 'x')));
}

TEST(TraceJson, CarriesTheTotalsAndEverySiteWithFrames) {
  std::vector<ResolvedSite> sites = small_sites();
  sites[1].site.peak_bytes = 1000;
  sites[1].site.first_seen_seconds = 0.12345;
  sites[1].site.last_seen_seconds = 9.87654;
  sites[1].site.live_bytes_over_time = {10, 20, 30};
  sites[1].frames = {
      frame("malloc", "/lib/libc.so.6", 0x9a0f0), frame("cache_put", "/usr/bin/prog", 0x1234),
      frame("_PyEval_EvalFrameDefault", "/usr/lib/libpython3.11.so.1.0", 0xbeef, true)};
  sites[1].frames[1].file = "/src/cache.c";
  sites[1].frames[1].line = 10;
  const nlohmann::json json = trace_json(small_report(), sites);
  EXPECT_EQ(json.at("pid"), 4242);
  EXPECT_EQ(json.at("exe"), "/usr/bin/python3.11");
  EXPECT_EQ(json.at("cmdline"), "python3 train.py");
  EXPECT_EQ(json.at("complete"), true);
  EXPECT_EQ(json.at("truncated"), false);
  EXPECT_EQ(json.at("end_reason"), "exit");
  EXPECT_DOUBLE_EQ(json.at("duration_seconds").get<double>(), 12.346);
  EXPECT_DOUBLE_EQ(json.at("peak_seconds").get<double>(), 3.21);
  EXPECT_TRUE(json.at("peak_host_bytes").is_number_unsigned());
  EXPECT_EQ(json.at("peak_host_bytes").get<uint64_t>(), 3 * kMiB / 2);
  EXPECT_EQ(json.at("peak_gpu_bytes").get<uint64_t>(), 2 * kGiB);
  EXPECT_EQ(json.at("end_host_bytes").get<uint64_t>(), kMiB);
  EXPECT_EQ(json.at("end_gpu_bytes").get<uint64_t>(), 512 * kMiB);
  EXPECT_EQ(json.at("events"), 1000);
  EXPECT_EQ(json.at("unknown_frees"), 3);
  ASSERT_EQ(json.at("sites").size(), 5u);

  const nlohmann::json& gpu = json.at("sites")[0];
  EXPECT_EQ(gpu.at("memory"), "gpu");
  EXPECT_EQ(gpu.at("space"), "cuda");
  EXPECT_EQ(gpu.at("function"), "Model::load(std::string const&)");
  EXPECT_EQ(gpu.at("location"), "model.cpp:42");

  const nlohmann::json& site = json.at("sites")[1];
  EXPECT_EQ(site.at("memory"), "host");
  EXPECT_EQ(site.at("space"), "heap");
  EXPECT_EQ(site.at("stack"), 3);
  EXPECT_TRUE(site.at("leaked_bytes").is_number_integer());
  EXPECT_EQ(site.at("leaked_bytes"), 768 * kKiB);
  EXPECT_EQ(site.at("leaked_count"), 3000);
  EXPECT_EQ(site.at("peak_bytes"), 1000);
  EXPECT_EQ(site.at("max_live_bytes"), 768 * kKiB);
  EXPECT_EQ(site.at("allocated_bytes"), 2 * 768 * kKiB);
  EXPECT_EQ(site.at("allocated_count"), 6000);
  EXPECT_DOUBLE_EQ(site.at("first_seen_seconds").get<double>(), 0.123);
  EXPECT_DOUBLE_EQ(site.at("last_seen_seconds").get<double>(), 9.877);
  EXPECT_EQ(site.at("growing"), true);
  EXPECT_EQ(site.at("growth"), nlohmann::json::parse(R"([
      {"t_seconds": 4.115, "live_bytes": 10}, {"t_seconds": 8.23, "live_bytes": 20},
      {"t_seconds": 12.346, "live_bytes": 30}])"));
  ASSERT_EQ(site.at("frames").size(), 3u);
  EXPECT_EQ(site.at("frames")[0], nlohmann::json::parse(R"({"function": "malloc", "file": "",
      "line": 0, "module": "/lib/libc.so.6", "offset": "0x9a0f0", "ip": "0x49a0f0",
      "python_interpreter": false})"));
  EXPECT_EQ(site.at("frames")[1].at("file"), "/src/cache.c");
  EXPECT_EQ(site.at("frames")[1].at("line"), 10);
  EXPECT_EQ(site.at("frames")[2].at("python_interpreter"), true);
  EXPECT_EQ(site.at("frames")[2].at("offset"), "0xbeef");
  EXPECT_TRUE(json.at("sites")[2].at("frames").empty());
}

// A report whose sites are given by their frames (innermost first), each frame symbolized as
// given: what folded_stacks(report, frame_of) reads.
class FramedReport {
 public:
  void add(const std::vector<Frame>& frames, Space space, uint64_t leaked, uint64_t peak) {
    uint32_t parent = 0;
    for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
      report_.stacks.add(++nodes_, StackNode{parent, f->ip});
      parent = nodes_;
      frames_[f->ip] = *f;
    }
    Site site;
    site.stack = parent;
    site.space = space;
    site.leaked_bytes = leaked;
    site.peak_bytes = peak;
    report_.sites.push_back(site);
  }
  FoldedLines folded() const {
    return folded_stacks(report_, [&](uint64_t ip) -> const Frame& { return frames_.at(ip); });
  }

 private:
  SiteReport report_;
  std::map<uint64_t, Frame> frames_;
  uint32_t nodes_ = 0;
};

TEST(FoldedStacks, OutermostFirstMergedSortedAndEscaped) {
  FramedReport report;
  // Two sites (different spaces) with the same frames merge.
  const std::vector<Frame> train = {frame("malloc", "/lib/libc.so.6", 0x10),
                                    frame("load_batch", "/usr/bin/prog", 0x20),
                                    frame("main", "/usr/bin/prog", 0x30)};
  report.add(train, Space::heap, 300, 1);
  report.add(train, Space::mmap, 4096, 0);
  // Python interpreter frames, a frame without a function, one without a module.
  Frame unknown;
  unknown.ip = 0x7f00dead;
  report.add({frame("PyMem_Malloc", "/usr/lib/libpython3.11.so.1.0", 0x100, true),
              frame("", "/usr/lib/libfoo.so", 0xabc), unknown,
              frame("_PyEval_EvalFrameDefault", "/usr/bin/python3.11", 0x200, true)},
             Space::heap, 64, 0);
  // Separators inside names.
  report.add({frame("odd;name\nwith\rbreaks", "/usr/bin/prog", 0x40),
              frame("main", "/usr/bin/prog", 0x30)},
             Space::heap, 7, 0);
  report.add(train, Space::heap, 0, 999);  // nothing at the end
  report.add({}, Space::heap, 5, 0);       // no frames at all

  const FoldedLines lines = report.folded();
  EXPECT_EQ(
      lines.end,
      "[no stack] 5\n"
      "[python] _PyEval_EvalFrameDefault;0x7f00dead;libfoo.so+0xabc;[python] PyMem_Malloc 64\n"
      "main;load_batch;malloc 4396\n"
      "main;odd_name_with_breaks 7\n");
  EXPECT_EQ(lines.peak, "main;load_batch;malloc 1000\n");
  const FoldedLines none = FramedReport().folded();
  EXPECT_EQ(none.end, "");
  EXPECT_EQ(none.peak, "");
}

TEST(FoldedStacks, EverySiteOfAReportWithEachAddressSymbolizedOnce) {
  SiteReport report;
  // 1 main <- 2 load_batch <- 3 malloc; 1 main <- 4 odd
  report.stacks.add(1, StackNode{0, 0x430});
  report.stacks.add(2, StackNode{1, 0x420});
  report.stacks.add(3, StackNode{2, 0x410});
  report.stacks.add(4, StackNode{1, 0x440});
  const std::map<uint64_t, Frame> frames = {{0x430, frame("main", "/usr/bin/prog", 0x30)},
                                            {0x420, frame("load_batch", "/usr/bin/prog", 0x20)},
                                            {0x410, frame("malloc", "/lib/libc.so.6", 0x10)},
                                            {0x440, frame("odd;name", "/usr/bin/prog", 0x40)}};
  const auto add_site = [&](uint32_t stack, Space space, uint64_t leaked, uint64_t peak) {
    Site site;
    site.stack = stack;
    site.space = space;
    site.leaked_bytes = leaked;
    site.peak_bytes = peak;
    report.sites.push_back(site);
  };
  add_site(3, Space::heap, 300, 1);
  add_site(3, Space::mmap, 4096, 0);
  add_site(4, Space::heap, 7, 999);
  add_site(0, Space::heap, 5, 0);
  add_site(2, Space::heap, 0, 0);  // nothing live at either moment: not in the lines
  std::map<uint64_t, int> calls;
  const FoldedLines lines = folded_stacks(report, [&](uint64_t ip) -> const Frame& {
    ++calls[ip];
    return frames.at(ip);
  });
  EXPECT_EQ(lines.end, "[no stack] 5\nmain;load_batch;malloc 4396\nmain;odd_name 7\n");
  EXPECT_EQ(lines.peak, "main;load_batch;malloc 1\nmain;odd_name 999\n");
  for (const auto& [ip, count] : calls) EXPECT_EQ(count, 1) << std::hex << ip;
  EXPECT_EQ(calls.size(), 4u);
}

}  // namespace
}  // namespace memscope::alloc
