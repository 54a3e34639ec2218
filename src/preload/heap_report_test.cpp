#include "preload/heap_report.hpp"

#include <fcntl.h>

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "preload/trace_writer.hpp"

namespace memscope::track {
namespace {

class HeapReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/memscope-heap-report-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    prefix_ = dir_ + "/memscope-track.7";
    ASSERT_TRUE(reporter_.init(prefix_.c_str(), 4242));
  }
  void TearDown() override {
    ::unlink(reporter_.request_path());
    ::unlink(reporter_.answer_path());
    ::rmdir(dir_.c_str());
  }
  void request() const {
    FILE* file = std::fopen(reporter_.request_path(), "w");
    ASSERT_NE(file, nullptr);
    std::fclose(file);
  }
  static bool exists(const char* path) { return ::access(path, F_OK) == 0; }
  std::string answer_text() const {
    std::ifstream in(reporter_.answer_path());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_;
  std::string prefix_;
  HeapReporter reporter_;
};

TEST_F(HeapReporterTest, NamesTheFilesAfterPrefixAndPid) {
  EXPECT_EQ(std::string(reporter_.request_path()), prefix_ + ".4242.heap-request");
  EXPECT_EQ(std::string(reporter_.answer_path()), prefix_ + ".4242.heap");
}

TEST_F(HeapReporterTest, AnswersOnlyWhenAsked) {
  EXPECT_FALSE(reporter_.answer());
  EXPECT_FALSE(exists(reporter_.answer_path()));
  request();
  EXPECT_TRUE(reporter_.answer());
  EXPECT_FALSE(exists(reporter_.request_path()));
  EXPECT_FALSE(exists((prefix_ + ".4242.heap.tmp").c_str()));
  const std::string text = answer_text();
  EXPECT_EQ(text.rfind("mallinfo2 arena=", 0), 0u) << text.substr(0, 200);
  EXPECT_NE(text.find(" keepcost="), std::string::npos);
  EXPECT_NE(text.find("\n<malloc version=\"1\">\n<heap nr=\"0\">"), std::string::npos);
  EXPECT_NE(text.find("</malloc>\n"), std::string::npos);
  EXPECT_FALSE(reporter_.answer());  // the request was used up
}

TEST_F(HeapReporterTest, LooksAtMostOnceASecond) {
  request();
  EXPECT_FALSE(reporter_.poll(500'000'000));  // the first look comes a second in
  EXPECT_TRUE(reporter_.poll(1'000'000'000));
  ::unlink(reporter_.answer_path());
  request();
  EXPECT_FALSE(reporter_.poll(1'999'999'999));
  EXPECT_TRUE(exists(reporter_.request_path()));
  EXPECT_TRUE(reporter_.poll(2'000'000'000));
  EXPECT_TRUE(exists(reporter_.answer_path()));
}

TEST(HeapReporter, RefusesAPrefixThatDoesNotFit) {
  HeapReporter reporter;
  const std::string prefix(5000, 'x');
  EXPECT_FALSE(reporter.init(prefix.c_str(), 1));
  EXPECT_FALSE(reporter.answer());
  EXPECT_FALSE(reporter.poll(10'000'000'000));
}

// The recording path's signal for the heap check: a second of trace time, even when full chunks
// (not time) were what flushed meanwhile.
TEST_F(HeapReporterTest, WriterSaysWhenASecondPassed) {
  const std::string path = dir_ + "/trace.mst";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  TraceWriter writer;
  ASSERT_TRUE(writer.open(fd));
  writer.tick(5);
  EXPECT_FALSE(writer.take_second_passed());
  writer.tick(999'999'999);
  EXPECT_FALSE(writer.take_second_passed());
  writer.tick(1'000'000'000);
  EXPECT_TRUE(writer.take_second_passed());
  EXPECT_FALSE(writer.take_second_passed());  // taken
  writer.flush();                              // any flush: the second still counts from 1 s
  writer.tick(1'900'000'000);
  EXPECT_FALSE(writer.take_second_passed());
  writer.tick(2'000'000'001);
  EXPECT_TRUE(writer.take_second_passed());
  writer.release();
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace memscope::track
