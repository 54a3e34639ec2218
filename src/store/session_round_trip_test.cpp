// Writing a session and reading it back gives the same values, field by field.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "store/session_reader.hpp"
#include "store/session_writer.hpp"
#include "store/sqlite.hpp"
#include "store/store_test_samples.hpp"
#include "test_support.hpp"

namespace memscope::store {
namespace {

using memscope::testing::TempDir;
using testing::expect_same;
using testing::make_degraded_sample;
using testing::make_info;
using testing::make_sample;
using testing::read_all;

int64_t count_rows(const std::string& path, const char* table) {
  auto db = sqlite::Database::open(path, SQLITE_OPEN_READONLY);
  EXPECT_TRUE(db.ok());
  auto count = db->query_int((std::string("SELECT count(*) FROM ") + table).c_str());
  EXPECT_TRUE(count.ok()) << count.message();
  return count.ok() ? *count : -1;
}

TEST(SessionRoundTrip, SamplesWithNoneOneAndManyProcessesAndDevices) {
  TempDir dir;
  const std::vector<Sample> written = {make_sample(0, 0, 0), make_sample(0.5, 1, 1),
                                       make_sample(1.0, 50, 4), make_degraded_sample(1.5),
                                       make_sample(2.0, 3, 0)};
  {
    auto writer = SessionWriter::create(dir.file("s.msession"), make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    for (const Sample& sample : written) ASSERT_TRUE(writer->append(sample).ok());
    ASSERT_TRUE(writer->finish(make_info()).ok());
  }
  auto reader = SessionReader::open(dir.file("s.msession"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->sample_count(), written.size());
  const std::vector<Sample> read = read_all(*reader);
  ASSERT_EQ(read.size(), written.size());
  for (size_t i = 0; i < read.size(); ++i) expect_same(written[i], read[i]);
}

TEST(SessionRoundTrip, FinishStoresHowTheCommandEnded) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  RecordingInfo final_info = make_info();
  final_info.end_unix_ms = final_info.start_unix_ms + 61'000;
  final_info.root_pid = 777;
  final_info.term_signal = 9;
  final_info.oom_killed = true;
  final_info.outcome = "killed by SIGKILL (out of memory)";
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    ASSERT_TRUE(writer->append(make_sample(0, 2, 1)).ok());
    ASSERT_TRUE(writer->finish(final_info).ok());
    EXPECT_FALSE(writer->append(make_sample(1, 2, 1)).ok());
    EXPECT_FALSE(writer->finish(final_info).ok());
  }
  // A finished session is one self-contained file.
  EXPECT_NE(access((path + "-wal").c_str(), F_OK), 0);
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_TRUE(reader->finished());
  expect_same(final_info, reader->info());
  EXPECT_FALSE(reader->info().exit_code.has_value());

  final_info.term_signal.reset();
  final_info.exit_code = 0;
  final_info.oom_killed = false;
  auto again = SessionWriter::create(path, make_info(), /*overwrite=*/true);
  ASSERT_TRUE(again.ok()) << again.message();
  ASSERT_TRUE(again->finish(final_info).ok());
  auto reread = SessionReader::open(path);
  ASSERT_TRUE(reread.ok()) << reread.message();
  expect_same(final_info, reread->info());
  EXPECT_EQ(reread->sample_count(), 0u);
}

TEST(SessionRoundTrip, AWriterDroppedWithoutFinishLeavesAnUnfinishedSession) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    // Within one second of sample time: only the destructor commits these.
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(writer->append(make_sample(i * 0.1, 2, 1)).ok());
  }
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_FALSE(reader->finished());
  expect_same(make_info(), reader->info());
  EXPECT_EQ(reader->info().end_unix_ms, 0);
  EXPECT_EQ(reader->sample_count(), 4u);
}

TEST(SessionRoundTrip, EventsComeBackInTimeOrder) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  const std::vector<RecordingEvent> events = {
      {0, "start", "python3 train.py"},
      {12.5, "signal-forwarded", "SIGTERM"},
      {12.75, "oom-kill", "pid 4243 (pt_data_worker) killed, \"quoted\"\nsecond line"},
      {13, "exit", ""},
  };
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    ASSERT_TRUE(writer->add_event(events[0]).ok());
    ASSERT_TRUE(writer->append(make_sample(0, 1, 0)).ok());
    ASSERT_TRUE(writer->add_event(events[2]).ok());  // out of order on purpose
    ASSERT_TRUE(writer->add_event(events[1]).ok());
    ASSERT_TRUE(writer->add_event(events[3]).ok());
  }
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  const std::vector<RecordingEvent> read = reader->events();
  ASSERT_EQ(read.size(), events.size());
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].t_seconds, events[i].t_seconds);
    EXPECT_EQ(read[i].kind, events[i].kind);
    EXPECT_EQ(read[i].message, events[i].message);
  }
}

TEST(SessionRoundTrip, SamplesComeBackInTimeOrder) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    for (double t : {0.0, 2.0, 1.0, 3.0}) ASSERT_TRUE(writer->append(make_sample(t, 1, 1)).ok());
  }
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  std::vector<double> times;
  for (const Sample& sample : read_all(*reader)) times.push_back(sample.t_seconds);
  EXPECT_EQ(times, (std::vector<double>{0.0, 1.0, 2.0, 3.0}));
}

TEST(SessionRoundTrip, UnchangingProcessAndDeviceDataIsStoredOnce) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(writer->append(make_sample(i, 30, 2)).ok());
    ASSERT_TRUE(writer->finish(make_info()).ok());
  }
  EXPECT_EQ(count_rows(path, "processes"), 30);
  EXPECT_EQ(count_rows(path, "process_samples"), 20 * 30);
  EXPECT_EQ(count_rows(path, "devices"), 2);
  EXPECT_EQ(count_rows(path, "device_samples"), 20 * 2);
  EXPECT_EQ(count_rows(path, "gpu_processes"), 20 * (1 + 2));
}

TEST(SessionRoundTrip, AProcessThatChangesOrComesBackIsReadAsItWas) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  std::vector<Sample> written;
  for (int i = 0; i < 6; ++i) {
    Sample sample = make_sample(i, 3, 1);
    if (i >= 2) sample.processes[1].comm = "renamed";              // prctl(PR_SET_NAME)
    if (i >= 3) sample.processes[2].ppid = 1;                      // reparented
    if (i == 4) sample.processes.erase(sample.processes.begin());  // gone for one sample
    if (i >= 4) sample.devices[0].memory_api = "v1";               // v2 call started failing
    written.push_back(sample);
  }
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    for (const Sample& sample : written) ASSERT_TRUE(writer->append(sample).ok());
  }
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  const std::vector<Sample> read = read_all(*reader);
  ASSERT_EQ(read.size(), written.size());
  for (size_t i = 0; i < read.size(); ++i) expect_same(written[i], read[i]);
  // 3 first rows, the renamed one, the reparented one, process 0 again after its absence.
  EXPECT_EQ(count_rows(path, "processes"), 6);
  EXPECT_EQ(count_rows(path, "devices"), 2);
}

TEST(SessionRoundTrip, ALiveSessionCanBeReadWhileRecording) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  auto writer = SessionWriter::create(path, make_info());
  ASSERT_TRUE(writer.ok()) << writer.message();
  ASSERT_TRUE(writer->append(make_sample(0, 4, 1)).ok());
  ASSERT_TRUE(writer->append(make_sample(0.5, 4, 1)).ok());
  ASSERT_TRUE(writer->flush().ok());
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_FALSE(reader->finished());
  EXPECT_EQ(reader->sample_count(), 2u);
  EXPECT_EQ(read_all(*reader).size(), 2u);
  // The writer goes on and finishes while the reader is open.
  ASSERT_TRUE(writer->append(make_sample(1.0, 4, 1)).ok());
  ASSERT_TRUE(writer->finish(make_info()).ok());
  EXPECT_EQ(read_all(*reader).size(), 3u);
}

TEST(SessionRoundTrip, AMovedWriterKeepsWriting) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  auto created = SessionWriter::create(path, make_info());
  ASSERT_TRUE(created.ok()) << created.message();
  SessionWriter writer = std::move(*created);
  ASSERT_TRUE(writer.append(make_sample(0, 1, 0)).ok());
  EXPECT_FALSE(created->append(make_sample(1, 1, 0)).ok());  // NOLINT(bugprone-use-after-move)
  ASSERT_TRUE(writer.finish(make_info()).ok());
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->sample_count(), 1u);
}

}  // namespace
}  // namespace memscope::store
