// What survives a recorder killed with SIGKILL, and what reading and writing long sessions cost
// in memory.
#include <gtest/gtest.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "store/session_reader.hpp"
#include "store/session_writer.hpp"
#include "store/store_test_samples.hpp"
#include "test_support.hpp"

namespace memscope::store {
namespace {

using Clock = std::chrono::steady_clock;
using memscope::testing::TempDir;
using testing::make_info;
using testing::make_sample;

constexpr double kSampleSpacing = 0.25;
constexpr int kSamples = 13;  // t = 0, 0.25, ... 3.0

// Appends samples on a real 4 Hz schedule and tells the parent (through `progress`) the index
// of each sample once append() has returned. Never returns.
[[noreturn]] void record_until_killed(const std::string& path, int progress) {
  auto writer = SessionWriter::create(path, make_info());
  if (!writer.ok()) _exit(2);
  const auto start = Clock::now();
  for (int i = 0; i < kSamples; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(i * kSampleSpacing));
    if (!writer->append(make_sample(i * kSampleSpacing, 10, 1)).ok()) _exit(3);
    if (write(progress, &i, sizeof i) != sizeof i) _exit(4);
  }
  _exit(0);
}

TEST(SessionDurability, SigkillKeepsEverySampleAppendedUpToASecondBeforeIt) {
  TempDir dir;
  const std::string path = dir.file("killed.msession");
  int progress[2];
  ASSERT_EQ(pipe(progress), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(progress[0]);
    record_until_killed(path, progress[1]);
  }
  close(progress[1]);

  // When each sample was reported appended, by the parent's clock (never earlier than it was).
  std::map<int, Clock::time_point> appended;
  int index = -1;
  ASSERT_EQ(read(progress[0], &index, sizeof index), static_cast<ssize_t>(sizeof index));
  appended[index] = Clock::now();
  const auto kill_at = appended[0] + std::chrono::milliseconds(2600);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now());
    if (left.count() <= 0) break;
    pollfd ready{progress[0], POLLIN, 0};
    if (poll(&ready, 1, static_cast<int>(left.count())) == 1 &&
        read(progress[0], &index, sizeof index) == static_cast<ssize_t>(sizeof index)) {
      appended[index] = Clock::now();
    }
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  const auto killed_at = Clock::now();
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  close(progress[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the recorder ended before it was killed: " << status;

  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_FALSE(reader->finished());
  EXPECT_EQ(reader->info().end_unix_ms, 0);
  EXPECT_FALSE(reader->info().exit_code.has_value());
  std::set<double> kept;
  for (const Sample& sample : testing::read_all(*reader)) kept.insert(sample.t_seconds);
  EXPECT_EQ(kept.size(), reader->sample_count());
  for (const auto& [i, when] : appended) {
    if (killed_at - when >= std::chrono::seconds(1)) {
      EXPECT_TRUE(kept.count(i * kSampleSpacing)) << "lost the sample at t=" << i * kSampleSpacing;
    }
  }
  // On schedule, commits at t=0, 1 and 2 keep 9 samples of the 11 appended.
  RecordProperty("appended", static_cast<int>(appended.size()));
  RecordProperty("kept", static_cast<int>(kept.size()));
}

size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// 10,000 samples of 50 processes: writing and streaming them back must not grow with length.
TEST(SessionStreaming, LongSessionsWriteAndReadInConstantMemory) {
  TempDir dir;
  const std::string path = dir.file("long.msession");
  constexpr int kCount = 10'000;
  constexpr int kEarly = 2'000;
  constexpr size_t kSlack = 1 << 20;
  {
    auto writer = SessionWriter::create(path, make_info());
    ASSERT_TRUE(writer.ok()) << writer.message();
    size_t early = 0;
    for (int i = 0; i < kCount; ++i) {
      ASSERT_TRUE(writer->append(make_sample(i, 50, 1)).ok());
      if (i == kEarly) early = heap_in_use();
    }
    EXPECT_LT(heap_in_use(), early + kSlack) << "the writer's memory grows with the session";
    ASSERT_TRUE(writer->finish(make_info()).ok());
  }
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->sample_count(), static_cast<size_t>(kCount));

  size_t early = 0;
  size_t late = 0;
  int seen = 0;
  const Status status = reader->for_each_sample([&](const Sample& sample) {
    EXPECT_EQ(sample.processes.size(), 50u);
    if (seen == kEarly) early = heap_in_use();
    if (seen == kCount - 1) late = heap_in_use();
    ++seen;
    return true;
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(seen, kCount);
  EXPECT_LT(late, early + kSlack) << "streaming holds on to samples it has handed out";

  // Stopping early reads only what was asked for.
  seen = 0;
  ASSERT_TRUE(reader->for_each_sample([&](const Sample&) { return ++seen < 10; }).ok());
  EXPECT_EQ(seen, 10);
}

}  // namespace
}  // namespace memscope::store
