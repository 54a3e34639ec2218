#include "collect/glibc_heap.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace memscope::glibc_heap {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

// Captured on Debian 12 (glibc 2.36) from a program that frees every other block of 64 in the
// main thread and in a second thread (so a second arena), and holds one 4 MiB (mmapped) block:
// mallinfo2() printed as the tracker does, then malloc_info(0, stdout).
constexpr std::string_view kCaptured = R"(mallinfo2 arena=2236416 ordblks=49 smblks=4 hblks=1 hblkhd=4198400 fsmblks=192 uordblks=1096064 fordblks=1140352 keepcost=52720
<malloc version="1">
<heap nr="0">
<sizes>
  <size from="33" to="33" total="33" count="1"/>
  <size from="321" to="321" total="321" count="1"/>
  <size from="609" to="609" total="2436" count="4"/>
  <size from="20017" to="20017" total="220187" count="11"/>
  <unsorted from="15905" to="15905" total="15905" count="1"/>
</sizes>
<total type="fast" count="0" size="0"/>
<total type="rest" count="19" size="291602"/>
<system type="current" size="548864"/>
<system type="max" size="548864"/>
<aspace type="total" size="548864"/>
<aspace type="mprotect" size="548864"/>
</heap>
<heap nr="1">
<sizes>
  <size from="33" to="48" total="192" count="4"/>
  <unsorted from="657" to="30017" total="841133" count="29"/>
</sizes>
<total type="fast" count="4" size="192"/>
<total type="rest" count="30" size="844493"/>
<system type="current" size="1687552"/>
<system type="max" size="1687552"/>
<aspace type="total" size="1687552"/>
<aspace type="mprotect" size="1687552"/>
<aspace type="subheaps" size="1"/>
</heap>
<total type="fast" count="4" size="192"/>
<total type="rest" count="49" size="1136095"/>
<total type="mmap" count="1" size="4198400"/>
<system type="current" size="2236416"/>
<system type="max" size="2236416"/>
<aspace type="total" size="2236416"/>
<aspace type="mprotect" size="2236416"/>
</malloc>
)";

std::string replaced(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  const size_t at = out.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) out.replace(at, from.size(), to);
  return out;
}

std::string error_of(std::string_view text) {
  auto report = parse_heap_report(text);
  EXPECT_FALSE(report.ok());
  return report.ok() ? std::string() : report.message();
}

TEST(GlibcHeap, ParsesACapturedReport) {
  auto report = parse_heap_report(kCaptured);
  ASSERT_TRUE(report.ok()) << report.message();
  EXPECT_EQ(report->mallinfo.arena, 2236416u);
  EXPECT_EQ(report->mallinfo.hblks, 1u);
  EXPECT_EQ(report->mallinfo.hblkhd, 4198400u);
  EXPECT_EQ(report->mallinfo.keepcost, 52720u);
  ASSERT_EQ(report->arenas.size(), 2u);
  const Arena& main_arena = report->arenas[0];
  EXPECT_EQ(main_arena.number, 0u);
  ASSERT_EQ(main_arena.sizes.size(), 5u);
  EXPECT_FALSE(main_arena.sizes[3].unsorted);
  EXPECT_EQ(main_arena.sizes[3].from_bytes, 20017u);
  EXPECT_EQ(main_arena.sizes[3].total_bytes, 220187u);
  EXPECT_EQ(main_arena.sizes[3].count, 11u);
  EXPECT_TRUE(main_arena.sizes[4].unsorted);
  EXPECT_EQ(main_arena.system_bytes, 548864u);
  EXPECT_EQ(main_arena.free_bytes(), 291602u);
  EXPECT_EQ(main_arena.in_use_bytes(), 548864u - 291602u);
  EXPECT_EQ(main_arena.free_chunks(), 18u);  // 19 in "rest", one of them the top
  // The main arena's top (free bytes outside every bin) is mallinfo2's keepcost.
  EXPECT_EQ(main_arena.top_chunk_bytes(), report->mallinfo.keepcost);
  EXPECT_EQ(main_arena.subheaps, 0u);
  const Arena& second = report->arenas[1];
  EXPECT_EQ(second.number, 1u);
  EXPECT_EQ(second.free_bytes(), 192u + 844493u);
  EXPECT_EQ(second.in_use_bytes(), 1687552u - 844685u);
  EXPECT_EQ(second.free_chunks(), 33u);
  EXPECT_EQ(second.top_chunk_bytes(), 844685u - 192u - 841133u);
  EXPECT_EQ(second.subheaps, 1u);
  EXPECT_EQ(report->totals.mmap_count, 1u);
  EXPECT_EQ(report->totals.mmap_bytes, 4198400u);
  EXPECT_EQ(report->totals.system_bytes, 2236416u);
  EXPECT_EQ(report->totals.rest_count, 49u);
  EXPECT_EQ(report->totals.rest_bytes, 1136095u);
}

TEST(GlibcHeap, TrimEstimateCountsWholePagesAfterTwoPerChunk) {
  EXPECT_EQ(bucket_trim_estimate({false, 20017, 20017, 220187, 11}), 220187u - 11u * 8192u);
  EXPECT_EQ(bucket_trim_estimate({false, 609, 609, 2436, 4}), 0u);
  EXPECT_EQ(bucket_trim_estimate({false, 1, 1, 10, UINT64_MAX}), 0u);  // no overflow
  auto report = parse_heap_report(kCaptured);
  ASSERT_TRUE(report.ok()) << report.message();
  EXPECT_EQ(report->arenas[0].trim_estimate_bytes(), (220187u - 90112u) + (15905u - 8192u));
  EXPECT_EQ(report->arenas[1].trim_estimate_bytes(), 841133u - 29u * 8192u);
  EXPECT_EQ(trim_estimate_bytes(*report), 52720u + 137788u + 603565u);
}

TEST(GlibcHeap, ToleratesUnknownCounterTypesAndAttributeOrder) {
  std::string text = replaced(kCaptured, "<aspace type=\"subheaps\" size=\"1\"/>",
                              "<aspace size=\"1\" type=\"subheaps\"/><aspace type=\"new\" size=\"5\"/>");
  text = replaced(text, "keepcost=52720", "keepcost=52720 usmblks=0");
  auto report = parse_heap_report(text);
  ASSERT_TRUE(report.ok()) << report.message();
  EXPECT_EQ(report->arenas[1].subheaps, 1u);
}

TEST(GlibcHeap, MalformedMallinfoLine) {
  EXPECT_THAT(error_of(""), HasSubstr("offset 0"));
  EXPECT_THAT(error_of("<malloc version=\"1\">\n"), HasSubstr("does not start with \"mallinfo2\""));
  EXPECT_THAT(error_of(replaced(kCaptured, " keepcost=52720", "")), HasSubstr("lacks keepcost="));
  EXPECT_THAT(error_of(replaced(kCaptured, "arena=2236416", "arena=22x")),
              HasSubstr("offset 16: arena is not a number"));
  EXPECT_THAT(error_of(replaced(kCaptured, "arena=2236416", "arena=99999999999999999999999")),
              HasSubstr("arena is not a number"));
  EXPECT_THAT(error_of(replaced(kCaptured, " ordblks=49", " ordblks")), HasSubstr("name=number"));
  EXPECT_THAT(error_of("mallinfo2 arena=1"), HasSubstr("no first line"));
}

TEST(GlibcHeap, MalformedXmlNamesTheOffset) {
  const std::string foo = replaced(kCaptured, "<system type=\"max\" size=\"1687552\"/>", "<foo/>");
  EXPECT_THAT(error_of(foo), HasSubstr(fmt::format("offset {}: <foo>", foo.find("<foo/>"))));
  EXPECT_THAT(error_of(replaced(kCaptured, "version=\"1\"", "version=\"2\"")),
              HasSubstr("malloc_info version 2 (this memscope reads 1)"));
  EXPECT_THAT(error_of(kCaptured.substr(0, kCaptured.size() / 2)), HasSubstr("unexpected end"));
  EXPECT_THAT(error_of(replaced(kCaptured, "</malloc>", "")), HasSubstr("unexpected end"));
  EXPECT_THAT(error_of(std::string(kCaptured) + "<heap nr=\"2\">"), HasSubstr("text after </malloc>"));
  EXPECT_THAT(error_of(replaced(kCaptured, "<total type=\"rest\" count=\"30\" size=\"844493\"/>", "")),
              HasSubstr("heap nr 1 lacks"));
  EXPECT_THAT(error_of(replaced(kCaptured, "<total type=\"mmap\" count=\"1\" size=\"4198400\"/>", "")),
              HasSubstr("without its fast, rest, mmap"));
  EXPECT_THAT(error_of(replaced(kCaptured, "total=\"33\"", "total=\"-33\"")),
              HasSubstr("total=\"-33\" is not a number"));
  EXPECT_THAT(error_of(replaced(kCaptured, "count=\"11\"", "")), HasSubstr("no count= attribute"));
  EXPECT_THAT(error_of(kCaptured.substr(0, kCaptured.find("<malloc") + 17)),
              HasSubstr(fmt::format("offset {}: attribute version has no closing quote",
                                    kCaptured.find("version"))));
  EXPECT_THAT(error_of(replaced(kCaptured, "<sizes>", "<sizes/>")), HasSubstr("expected <sizes>"));
  EXPECT_THAT(error_of(replaced(kCaptured, "<heap nr=\"0\">", "<heap nr=\"zero\">")),
              HasSubstr("nr=\"zero\" is not a number"));
  EXPECT_THAT(error_of(replaced(kCaptured, "<total type=\"fast\" count=\"0\"", "<total count=\"0\"")),
              HasSubstr("no type= attribute"));
  EXPECT_THAT(error_of(replaced(kCaptured, "<size from=\"33\" to=\"33\"", "<size from=\"33\" to=\"33\" a=\"\" b=\"\" c=\"\" d=\"\" e=\"\"")),
              HasSubstr("too many attributes"));
  EXPECT_THAT(error_of("mallinfo2 arena=1 ordblks=1 smblks=1 hblks=1 hblkhd=1 fsmblks=1 "
                       "uordblks=1 fordblks=1 keepcost=1\n<malloc version=\"1\">\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n</malloc>\n"),
              HasSubstr("no <heap>"));
}

TEST(GlibcHeap, BoundsTheBucketsPerArena) {
  std::string many;
  for (size_t i = 0; i <= kMaxBucketsPerArena; ++i) {
    many += "<size from=\"1\" to=\"1\" total=\"1\" count=\"1\"/>\n";
  }
  EXPECT_THAT(error_of(replaced(kCaptured, "<sizes>\n", "<sizes>\n" + many)),
              HasSubstr("more than 4096 size buckets"));
}

TEST(GlibcHeap, EnvironValue) {
  using namespace std::string_literals;
  const std::string environ = "HOME=/root\0MEMSCOPE_TRACK_OUTPUT_X=no\0MEMSCOPE_TRACK_OUTPUT=/tmp/d/p\0"s;
  EXPECT_EQ(environ_value(environ, "MEMSCOPE_TRACK_OUTPUT"), std::optional<std::string>("/tmp/d/p"));
  EXPECT_EQ(environ_value(environ, "HOME"), std::optional<std::string>("/root"));
  EXPECT_EQ(environ_value(environ, "HOM"), std::nullopt);
  EXPECT_EQ(environ_value("", "HOME"), std::nullopt);
  EXPECT_EQ(environ_value("HOME=/x", "HOME"), std::optional<std::string>("/x"));  // no final NUL
}

// A fake /proc and a fake tracker: a thread that answers the request as the tracker does.
class AskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(proc_.file("321"));
    prefix_ = files_.file("memscope-track.9");
    testing::write_file(prefix_ + ".321.mst", "");  // process 321 has a trace of its own
  }
  void set_environ(const std::string& text) const {
    testing::write_file(proc_.file("321/environ"), text);
  }
  TempDir proc_;
  TempDir files_;
  std::string prefix_;
};

TEST_F(AskTest, ReadsAndRemovesTheAnswer) {
  set_environ(std::string("A=1\0MEMSCOPE_TRACK_OUTPUT=", 26) + prefix_ + std::string("\0", 1));
  std::atomic<bool> asked{false};
  std::thread tracker([&] {
    const std::string request = prefix_ + ".321.heap-request";
    for (int i = 0; i < 500 && ::access(request.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    asked = ::unlink(request.c_str()) == 0;
    testing::write_file(prefix_ + ".321.heap.tmp", "the answer");
    std::filesystem::rename(prefix_ + ".321.heap.tmp", prefix_ + ".321.heap");
  });
  const Answer answer = ask_tracked_process(proc_.path(), 321, 5);
  tracker.join();
  EXPECT_TRUE(asked);
  ASSERT_EQ(answer.outcome, Outcome::answered) << answer.message;
  EXPECT_EQ(answer.text, "the answer");
  EXPECT_FALSE(std::filesystem::exists(prefix_ + ".321.heap"));
}

TEST_F(AskTest, NoAnswerRemovesTheRequest) {
  set_environ("MEMSCOPE_TRACK_OUTPUT=" + prefix_);
  const Answer answer = ask_tracked_process(proc_.path(), 321, 0.1);
  EXPECT_EQ(answer.outcome, Outcome::no_answer);
  EXPECT_THAT(answer.message, HasSubstr("process 321 did not answer within 0.1 s"));
  EXPECT_FALSE(std::filesystem::exists(prefix_ + ".321.heap-request"));
}

TEST_F(AskTest, NotTrackedAndNoProcess) {
  set_environ(std::string("PATH=/bin\0MEMSCOPE_TRACK_OUTPUT=\0", 33));
  Answer answer = ask_tracked_process(proc_.path(), 321, 1);
  EXPECT_EQ(answer.outcome, Outcome::not_tracked);
  EXPECT_EQ(answer.message,
            "process 321 is not running under the allocation tracker (start it with memscope "
            "leak --enable-tracking)");
  answer = ask_tracked_process(proc_.path(), 322, 1);
  EXPECT_EQ(answer.outcome, Outcome::no_process);
  EXPECT_EQ(answer.message, "no process 322");
}

TEST_F(AskTest, AForkedChildWithoutATraceOfItsOwnIsNotTracked) {
  set_environ("MEMSCOPE_TRACK_OUTPUT=" + files_.file("missing-dir/p"));
  const Answer answer = ask_tracked_process(proc_.path(), 321, 1);
  EXPECT_EQ(answer.outcome, Outcome::not_tracked);
  EXPECT_THAT(answer.message, HasSubstr("no trace of its own"));
  EXPECT_THAT(answer.message, HasSubstr("fork"));
}

TEST_F(AskTest, AnAnswerThatIsNotARegularFileIsRefused) {
  set_environ("MEMSCOPE_TRACK_OUTPUT=" + prefix_);
  // A link at the answer's name (to a file the asker could read, say): never followed.
  testing::write_file(files_.file("secret"), "not the answer");
  std::thread tracker([&] {
    const std::string request = prefix_ + ".321.heap-request";
    for (int i = 0; i < 500 && ::access(request.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::filesystem::create_symlink(files_.file("secret"), prefix_ + ".321.heap");
  });
  const Answer answer = ask_tracked_process(proc_.path(), 321, 2);
  tracker.join();
  EXPECT_EQ(answer.outcome, Outcome::failed);
  EXPECT_THAT(answer.message, HasSubstr("cannot read"));
  EXPECT_EQ(testing::read_file(files_.file("secret")), "not the answer");
}

}  // namespace
}  // namespace memscope::glibc_heap
