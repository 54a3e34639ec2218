#include "collect/trace_csv.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <ios>
#include <map>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace memscope::trace {
namespace {

using ::testing::StartsWith;

constexpr char kHeader[] = "t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes\n";
// Copied from report/session_export.hpp (kCsvHeader): collect's tests do not link report.
constexpr char kExportHeader[] =
    "t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes,gpu_bytes\n";

struct Read {
  Status status;
  std::vector<Sample> samples;
};

Read read_csv(const std::string& text) {
  std::istringstream in(text);
  Read read;
  read.status = for_each_csv_sample(in, "x.csv", [&read](const Sample& sample) {
    read.samples.push_back(sample);
    return true;
  });
  return read;
}

// The message of a read that must fail.
std::string error_of(const std::string& text) {
  Read read = read_csv(text);
  EXPECT_FALSE(read.status.ok()) << "read " << read.samples.size() << " samples";
  return read.status.message();
}

uint64_t pss_sum(const Sample& sample) {
  uint64_t sum = 0;
  for (const ProcessSample& process : sample.processes) sum += process.pss_bytes;
  return sum;
}

// The number of instants and of rows in a trace, counted without the reader: the first field
// of each data line, consecutive equal values being one instant.
struct TraceCounts {
  size_t instants = 0;
  size_t rows = 0;
};

TraceCounts count_by_scan(const std::string& text) {
  TraceCounts counts;
  std::istringstream lines(text);
  std::string line;
  std::string previous_t;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    if (line.empty() || line == "\r") continue;
    const std::string t = line.substr(0, line.find(','));
    if (counts.rows == 0 || t != previous_t) ++counts.instants;
    previous_t = t;
    ++counts.rows;
  }
  return counts;
}

TEST(TraceCsvTraces, EveryRecordedTraceParses) {
  const std::map<std::string, size_t> known_instants = {
      {"A_hog.csv", 397},    {"A_leak.csv", 424},   {"A_loader.csv", 367},
      {"A_stable.csv", 443}, {"A_warmup.csv", 340},
  };
  size_t traces = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::shared_dir() + "/traces")) {
    if (entry.path().extension() != ".csv") continue;
    ++traces;
    const std::string path = entry.path().string();
    SCOPED_TRACE(path);
    const TraceCounts expected = count_by_scan(testing::read_file(path));
    size_t instants = 0;
    size_t rows = 0;
    double last_t = -1;
    Status status = for_each_csv_sample_file(path, [&](const Sample& sample) {
      ++instants;
      rows += sample.processes.size();
      EXPECT_GT(sample.t_seconds, last_t);
      last_t = sample.t_seconds;
      EXPECT_FALSE(sample.processes.empty());
      for (const ProcessSample& process : sample.processes) {
        EXPECT_GT(process.pss_bytes, 0u);
        EXPECT_GE(process.rss_bytes, process.pss_bytes);
        EXPECT_TRUE(process.smaps_readable);
      }
      return true;
    });
    ASSERT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(instants, expected.instants);
    EXPECT_EQ(rows, expected.rows);
    const auto known = known_instants.find(entry.path().filename().string());
    if (known != known_instants.end()) {
      EXPECT_EQ(instants, known->second);
    }
  }
  EXPECT_GE(traces, known_instants.size());
}

TEST(TraceCsvTraces, StableFirstInstantAsRecorded) {
  std::vector<Sample> first;
  Status status = for_each_csv_sample_file(testing::shared_dir() + "/traces/A_stable.csv",
                                           [&first](const Sample& sample) {
                                             first.push_back(sample);
                                             return false;
                                           });
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].t_seconds, 0.0);
  EXPECT_EQ(pss_sum(first[0]), 2432000u);
  ASSERT_EQ(first[0].processes.size(), 1u);
  const ProcessSample& process = first[0].processes[0];
  EXPECT_EQ(process.pid, 13989);
  EXPECT_EQ(process.ppid, 13985);
  EXPECT_EQ(process.comm, "python3");
  EXPECT_EQ(process.rss_bytes, 4251648u);
  EXPECT_EQ(process.uss_bytes, 1384448u);
  EXPECT_EQ(process.swap_bytes, 0u);
}

TEST(TraceCsvTraces, LoaderInstantWithWorkersSumsTheirPss) {
  // t=2.094 is the first instant with the two DataLoader workers: 257289216 + 143946752 +
  // 144848896.
  bool found = false;
  Status status = for_each_csv_sample_file(testing::shared_dir() + "/traces/A_loader.csv",
                                           [&found](const Sample& sample) {
                                             if (sample.t_seconds != 2.094) return true;
                                             found = true;
                                             EXPECT_EQ(sample.processes.size(), 3u);
                                             EXPECT_EQ(pss_sum(sample), 546084864u);
                                             return false;
                                           });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(found);
}

TEST(TraceCsv, ReadsMemscopeExport) {
  // As report/escape.cpp's csv_field writes a comm with a comma or a quote.
  Read read = read_csv(std::string(kExportHeader) +
                       "0.000,10,1,python3,300,200,100,5,4096\n"
                       "0.000,11,10,\"a,b\",30,20,10,0,0\n"
                       "0.200,10,1,\"say \"\"hi\"\"\",301,201,101,6,8192\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 2u);
  ASSERT_EQ(read.samples[0].processes.size(), 2u);
  const ProcessSample& first = read.samples[0].processes[0];
  EXPECT_EQ(first.pid, 10);
  EXPECT_EQ(first.ppid, 1);
  EXPECT_EQ(first.comm, "python3");
  EXPECT_EQ(first.rss_bytes, 300u);
  EXPECT_EQ(first.pss_bytes, 200u);
  EXPECT_EQ(first.uss_bytes, 100u);
  EXPECT_EQ(first.swap_bytes, 5u);
  EXPECT_EQ(first.gpu_bytes, 4096u);
  EXPECT_EQ(read.samples[0].processes[1].comm, "a,b");
  EXPECT_EQ(read.samples[1].t_seconds, 0.2);
  EXPECT_EQ(read.samples[1].processes[0].comm, "say \"hi\"");
  EXPECT_EQ(read.samples[1].processes[0].gpu_bytes, 8192u);
}

TEST(TraceCsv, QuotedFieldMayHoldALineBreak) {
  Read read = read_csv(std::string(kHeader) + "0,10,1,\"two\nlines\",3,2,1,0\n1,10,1,x,3,2,1,0\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 2u);
  EXPECT_EQ(read.samples[0].processes[0].comm, "two\nlines");
}

TEST(TraceCsv, ColumnsInAnyOrder) {
  Read read = read_csv(
      "comm,pss_bytes,swap_bytes,pid,uss_bytes,t,rss_bytes,ppid\n"
      "worker,200,7,42,100,1.5,300,41\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 1u);
  EXPECT_EQ(read.samples[0].t_seconds, 1.5);
  const ProcessSample& process = read.samples[0].processes.at(0);
  EXPECT_EQ(process.pid, 42);
  EXPECT_EQ(process.ppid, 41);
  EXPECT_EQ(process.comm, "worker");
  EXPECT_EQ(process.rss_bytes, 300u);
  EXPECT_EQ(process.pss_bytes, 200u);
  EXPECT_EQ(process.uss_bytes, 100u);
  EXPECT_EQ(process.swap_bytes, 7u);
}

TEST(TraceCsv, IgnoresExtraColumns) {
  Read read = read_csv(
      "host,t,pid,cmdline,pss_bytes,note\n"
      "box,0.5,7,\"python3 train.py --lr=0.1,0.2\",1000,\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 1u);
  EXPECT_EQ(read.samples[0].processes.at(0).pid, 7);
  EXPECT_EQ(read.samples[0].processes.at(0).pss_bytes, 1000u);
}

TEST(TraceCsv, MissingOptionalColumnsDefault) {
  Read read = read_csv("t,pid,pss_bytes\n0,7,1000\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 1u);
  const ProcessSample& process = read.samples[0].processes.at(0);
  EXPECT_EQ(process.ppid, 0);
  EXPECT_EQ(process.comm, "");
  EXPECT_EQ(process.rss_bytes, 1000u);  // rss and uss fall back to pss
  EXPECT_EQ(process.uss_bytes, 1000u);
  EXPECT_EQ(process.swap_bytes, 0u);
  EXPECT_EQ(process.gpu_bytes, 0u);
  EXPECT_TRUE(process.smaps_readable);
}

TEST(TraceCsv, CrlfLineEndings) {
  Read read =
      read_csv("t,pid,comm,pss_bytes\r\n0,7,\"a,b\",1000\r\n0,8,c,2000\r\n1,7,a,1100\r\n\r\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 2u);
  EXPECT_EQ(pss_sum(read.samples[0]), 3000u);
  EXPECT_EQ(read.samples[0].processes[0].comm, "a,b");
  EXPECT_EQ(read.samples[0].processes[1].comm, "c");
  EXPECT_EQ(read.samples[1].processes[0].pss_bytes, 1100u);
}

TEST(TraceCsv, LastLineWithoutNewlineAndBlankLinesAtTheEnd) {
  Read unterminated = read_csv("t,pid,pss_bytes\n0,7,1000\n1,7,1001");
  ASSERT_TRUE(unterminated.status.ok()) << unterminated.status.message();
  ASSERT_EQ(unterminated.samples.size(), 2u);
  EXPECT_EQ(unterminated.samples[1].processes[0].pss_bytes, 1001u);

  Read blank_end = read_csv("t,pid,pss_bytes\n0,7,1000\n\n\r\n\n");
  ASSERT_TRUE(blank_end.status.ok()) << blank_end.status.message();
  EXPECT_EQ(blank_end.samples.size(), 1u);
}

TEST(TraceCsv, HeaderOnlyIsNoSamples) {
  Read read = read_csv(kHeader);
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  EXPECT_TRUE(read.samples.empty());
}

TEST(TraceCsv, Utf8ByteOrderMarkBeforeHeader) {
  Read read = read_csv("\xEF\xBB\xBFt,pid,pss_bytes\n0,7,1000\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  EXPECT_EQ(read.samples.size(), 1u);
}

TEST(TraceCsv, SameInstantBySameValue) {
  Read read = read_csv("t,pid,pss_bytes\n0.2,7,1\n0.200,8,2\n0.20,9,3\n0.4,7,1\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 2u);
  EXPECT_EQ(read.samples[0].processes.size(), 3u);
  EXPECT_EQ(read.samples[1].processes.size(), 1u);
}

TEST(TraceCsv, NumbersMayHaveSpacesAroundAndLimitsFit) {
  Read read = read_csv("t,pid,ppid,pss_bytes\n 1e1 , 2147483647 ,0, 18446744073709551615\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  ASSERT_EQ(read.samples.size(), 1u);
  EXPECT_EQ(read.samples[0].t_seconds, 10.0);
  EXPECT_EQ(read.samples[0].processes[0].pid, 2147483647);
  EXPECT_EQ(read.samples[0].processes[0].pss_bytes, 18446744073709551615u);
}

TEST(TraceCsv, StopsWhenTheVisitorSaysSo) {
  // The malformed last line is never reached.
  std::istringstream in("t,pid,pss_bytes\n0,7,1\n1,7,2\n2,7,3\nnot,a,row,at all\n");
  size_t visits = 0;
  Status status = for_each_csv_sample(in, "x.csv", [&visits](const Sample&) {
    ++visits;
    return visits < 2;
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(visits, 2u);
}

TEST(TraceCsv, LineOfExactly64KiBIsAccepted) {
  const std::string row = "0,7,1,";
  const std::string comm(64 * 1024 - row.size() - std::string(",3,2,1,0").size(), 'c');
  Read read = read_csv(std::string(kHeader) + row + comm + ",3,2,1,0\n");
  ASSERT_TRUE(read.status.ok()) << read.status.message();
  EXPECT_EQ(read.samples.at(0).processes.at(0).comm.size(), comm.size());
}

// A stream buffer that makes the rows of one instant each time the reader asks for more, and
// counts how many instants it has handed out.
class GeneratedTrace : public std::streambuf {
 public:
  explicit GeneratedTrace(int instants) : instants_(instants) {}
  int handed_out() const { return handed_out_; }

 protected:
  int_type underflow() override {
    if (handed_out_ == instants_) return traits_type::eof();
    chunk_.clear();
    if (!header_sent_) {
      chunk_ = kHeader;
      header_sent_ = true;
    } else {
      const std::string t = std::to_string(handed_out_++);
      for (int pid = 1; pid <= 3; ++pid) {
        chunk_ += t + "," + std::to_string(pid) + ",0,worker,300,200,100,0\n";
      }
    }
    setg(chunk_.data(), chunk_.data(), chunk_.data() + chunk_.size());
    return traits_type::to_int_type(chunk_[0]);
  }

 private:
  int instants_;
  int handed_out_ = 0;
  bool header_sent_ = false;
  std::string chunk_;
};

TEST(TraceCsv, StreamsWithoutReadingAhead) {
  // Each instant must be delivered once the first row of the next one is read, so memory holds
  // one instant whatever the length of the trace.
  constexpr int kInstants = 20000;
  GeneratedTrace trace(kInstants);
  std::istream in(&trace);
  int visits = 0;
  Status status = for_each_csv_sample(in, "generated", [&](const Sample& sample) {
    const int instant = static_cast<int>(sample.t_seconds);
    EXPECT_EQ(instant, visits);
    EXPECT_LE(trace.handed_out(), instant + 2);
    EXPECT_EQ(sample.processes.size(), 3u);
    ++visits;
    return true;
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(visits, kInstants);
}

TEST(TraceCsv, ReadsAFile) {
  testing::TempDir dir;
  testing::write_file(dir.file("t.csv"), std::string(kHeader) + "0,7,1,a,3,2,1,0\n");
  size_t visits = 0;
  Status status = for_each_csv_sample_file(dir.file("t.csv"), [&visits](const Sample&) {
    ++visits;
    return true;
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(visits, 1u);
}

// Errors: each names the file, the line and what is wrong.

TEST(TraceCsvErrors, EmptyFile) {
  EXPECT_THAT(error_of(""), StartsWith("x.csv: empty file: expected a header line (t,pid,"));
}

TEST(TraceCsvErrors, BlankHeaderLine) {
  EXPECT_THAT(error_of("\n0,7,1000\n"), StartsWith("x.csv line 1: empty line where the header"));
}

TEST(TraceCsvErrors, MissingRequiredColumnsAreAllNamed) {
  EXPECT_EQ(error_of("ppid,comm,rss_bytes\n1,a,2\n"),
            "x.csv: missing column(s) pid, pss_bytes, t (header: ppid,comm,rss_bytes)");
  EXPECT_EQ(error_of("t,pid,rss_bytes\n"),
            "x.csv: missing column(s) pss_bytes (header: t,pid,rss_bytes)");
  // A file without a header: its first row is taken for one.
  EXPECT_THAT(error_of("0.000,7,1,python3,3,2,1,0\n"),
              StartsWith("x.csv: missing column(s) pid, pss_bytes, t (header: 0.000,7,"));
}

TEST(TraceCsvErrors, ColumnTwiceInHeader) {
  EXPECT_EQ(error_of("t,pid,pss_bytes,pid\n"),
            "x.csv line 1: column pid appears twice in the header");
}

TEST(TraceCsvErrors, WrongFieldCount) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,7,1\n0,8,1,9\n"),
            "x.csv line 3: 4 fields, but the header has 3");
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,7,1\n0,8\n"),
            "x.csv line 3: 2 fields, but the header has 3");
}

TEST(TraceCsvErrors, NotANumber) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,abc,1\n"),
            "x.csv line 2: pid is not a whole number: \"abc\"");
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,7,12kB\n"),
            "x.csv line 2: pss_bytes is not a whole number: \"12kB\"");
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,7,1.5\n"),
            "x.csv line 2: pss_bytes is not a whole number: \"1.5\"");
  EXPECT_EQ(error_of("t,pid,pss_bytes\nzero,7,1\n"), "x.csv line 2: t is not a number: \"zero\"");
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,7,\n"), "x.csv line 2: pss_bytes is empty: \"\"");
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,0,1\n"), "x.csv line 2: pid 0 is not a process");
}

TEST(TraceCsvErrors, NegativeNumber) {
  EXPECT_EQ(error_of("t,pid,rss_bytes,pss_bytes\n0,7,-5,1\n"),
            "x.csv line 2: rss_bytes is negative: \"-5\"");
  EXPECT_EQ(error_of("t,pid,pss_bytes\n-1.5,7,1\n"), "x.csv line 2: t is negative: \"-1.5\"");
}

TEST(TraceCsvErrors, TimeNotFinite) {
  for (const char* t : {"nan", "inf", "-inf", "infinity", "NAN"}) {
    EXPECT_EQ(error_of(std::string("t,pid,pss_bytes\n0,7,1\n") + t + ",7,1\n"),
              std::string("x.csv line 3: t is not a finite number: \"") + t + "\"");
  }
}

TEST(TraceCsvErrors, NumberTooLarge) {
  EXPECT_THAT(error_of("t,pid,pss_bytes\n0,7,18446744073709551616\n"),
              StartsWith("x.csv line 2: pss_bytes is too large"));
  EXPECT_THAT(error_of("t,pid,pss_bytes\n0,2147483648,1\n"),
              StartsWith("x.csv line 2: pid is too large"));
  EXPECT_EQ(error_of("t,pid,pss_bytes\n1e999,7,1\n"), "x.csv line 2: t is out of range: \"1e999\"");
}

TEST(TraceCsvErrors, TimeGoesBackwards) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n12.6,7,1\n12.4,7,1\n"),
            "x.csv line 3: t goes backwards (12.4 after 12.6)");
}

TEST(TraceCsvErrors, TimeReturnsToAnEarlierInstant) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0.2,7,1\n0.4,7,1\n0.2,8,1\n"),
            "x.csv line 4: t goes backwards (0.2 after 0.4)");
}

TEST(TraceCsvErrors, LineLongerThan64KiB) {
  const std::string comm(70 * 1024, 'c');
  EXPECT_EQ(error_of(std::string(kHeader) + "0,7,1,a,3,2,1,0\n0,8,1," + comm + ",3,2,1,0\n"),
            "x.csv line 3: line is longer than 65536 bytes: not a trace");
  // One byte over, with no line break at all.
  EXPECT_EQ(error_of(std::string(64 * 1024 + 1, 't')),
            "x.csv line 1: line is longer than 65536 bytes: not a trace");
}

TEST(TraceCsvErrors, QuotedFieldLongerThan64KiB) {
  std::string text = std::string(kHeader) + "0,7,1,\"";
  for (int i = 0; i < 20000; ++i) text += "abc\n";
  EXPECT_THAT(error_of(text), StartsWith("x.csv line 2: a quoted field runs on for more than"));
}

TEST(TraceCsvErrors, SamePidTwiceInOneInstant) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0.2,7,1\n0.2,8,1\n0.2,7,2\n"),
            "x.csv line 4: pid 7 appears twice at t=0.2 (first on line 2)");
}

TEST(TraceCsvErrors, NotText) {
  EXPECT_EQ(error_of(std::string("t,pid,pss_bytes\n0,7,1\0\n", 23)),
            "x.csv line 2: contains a NUL byte: not a text file");
  EXPECT_EQ(error_of(std::string("\x7f"
                                 "ELF\x02\x01\x01\0\0\0",
                                 10)),
            "x.csv line 1: contains a NUL byte: not a text file");
}

TEST(TraceCsvErrors, BadQuoting) {
  EXPECT_EQ(error_of(std::string(kHeader) + "0,7,1,\"abc\"d,3,2,1,0\n"),
            "x.csv line 2: field 4: text after the closing quote of a quoted field");
  EXPECT_THAT(error_of(std::string(kHeader) + "0,7,1,ab\"c,3,2,1,0\n"),
              StartsWith("x.csv line 2: field 4: a quote inside an unquoted field"));
  EXPECT_EQ(error_of(std::string(kHeader) + "0,7,1,a,3,2,1,0\n0,8,1,\"abc,3,2,1,0\n"),
            "x.csv line 3: a quoted field is not closed before the end of the file");
}

TEST(TraceCsvErrors, BlankLineBetweenRows) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,7,1\n\n1,7,1\n"),
            "x.csv line 3: empty line between rows (allowed only at the end)");
}

TEST(TraceCsvErrors, ControlCharactersAreNotEchoed) {
  EXPECT_EQ(error_of("t,pid,pss_bytes\n0,\x1b[31m,1\n"),
            "x.csv line 2: pid is not a whole number: \"?[31m\"");
}

// A stream buffer whose reads fail after the header, as libstdc++'s filebuf does on an I/O error.
class FailingBuffer : public std::streambuf {
 protected:
  int_type underflow() override {
    if (served_) throw std::ios_base::failure("disk on fire");
    served_ = true;
    setg(header_.data(), header_.data(), header_.data() + header_.size());
    return traits_type::to_int_type(header_[0]);
  }

 private:
  std::string header_ = kHeader;
  bool served_ = false;
};

TEST(TraceCsvErrors, ReadErrorIsAnErrorNotAnException) {
  FailingBuffer buffer;
  std::istream in(&buffer);
  Status status = for_each_csv_sample(in, "x.csv", [](const Sample&) { return true; });
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), StartsWith("x.csv line 2: read error: disk on fire"));
}

TEST(TraceCsvErrors, MissingFile) {
  Status status =
      for_each_csv_sample_file("/nonexistent/trace.csv", [](const Sample&) { return true; });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "cannot open /nonexistent/trace.csv: No such file or directory");
}

TEST(TraceCsvErrors, Directory) {
  testing::TempDir dir;
  Status status = for_each_csv_sample_file(dir.path(), [](const Sample&) { return true; });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "cannot read " + dir.path() + ": Is a directory");
}

TEST(TraceCsvErrors, UnreadableFile) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  testing::TempDir dir;
  testing::write_file(dir.file("t.csv"), kHeader);
  ASSERT_EQ(chmod(dir.file("t.csv").c_str(), 0), 0);
  Status status = for_each_csv_sample_file(dir.file("t.csv"), [](const Sample&) { return true; });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "cannot open " + dir.file("t.csv") + ": Permission denied");
}

}  // namespace
}  // namespace memscope::trace
