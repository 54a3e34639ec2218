#include "report/profile_report.hpp"

#include <gtest/gtest.h>

#include "analyze/peaks.hpp"
#include "report/report_test_data.hpp"

namespace memscope::report {
namespace {

using nlohmann::json;

json profile_of(const testdata::Session& session) {
  analyze::PeakTracker tracker;
  for (const Sample& sample : session.samples) tracker.add(sample);
  return profile_json(tracker.summary(), session.samples.back(), session.info);
}

// Every key ending _bytes holds an unsigned integer (or null), everywhere in the document.
void expect_bytes_are_integers(const json& value, const std::string& where) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      const std::string path = where + "." + key;
      if (key.size() > 6 && key.ends_with("_bytes")) {
        EXPECT_TRUE(child.is_number_unsigned() || child.is_null()) << path << " = " << child;
      }
      if (key.ends_with("_seconds")) {
        EXPECT_TRUE(child.is_number() || child.is_null()) << path;
      }
      expect_bytes_are_integers(child, path);
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) expect_bytes_are_integers(value[i], where + "[]");
  }
}

TEST(ProfileJson, KeepsTheSeedLayoutKeys) {
  const json report = profile_of(testdata::make_session());
  EXPECT_EQ(report["report"], "memscope-profile");
  EXPECT_EQ(report["schema_version"], 1);
  EXPECT_EQ(report["timestamp"], "2025-11-23T17:46:59.900Z");
  EXPECT_DOUBLE_EQ(report["duration_seconds"].get<double>(), 19.9);
  EXPECT_DOUBLE_EQ(report["interval_seconds"].get<double>(), 0.1);

  const json& device = report["devices"]["0"];
  ASSERT_TRUE(device.is_object());
  const json& current = device["current_memory"];
  for (const char* key : {"allocated", "free", "total"}) {
    EXPECT_TRUE(current[key].is_number_unsigned()) << key;
  }
  EXPECT_TRUE(current["utilization"].is_number_float());
  EXPECT_EQ(current["total"].get<uint64_t>(), 80 * kGiB);
  EXPECT_EQ(current["reserved_bytes"].get<uint64_t>(), 300 * kMiB);
  EXPECT_TRUE(device["peak_memory"].is_number_unsigned());
  EXPECT_EQ(device["peak_memory"].get<uint64_t>(), 2 * kGiB + 180 * kMiB + 300 * kMiB);
  EXPECT_DOUBLE_EQ(device["peak_memory_time_seconds"].get<double>(), 0.9);
  const json& statistics = device["statistics"];
  for (const char* key :
       {"avg_utilization", "max_utilization", "avg_gpu_utilization", "max_gpu_utilization"}) {
    EXPECT_TRUE(statistics[key].is_number()) << key;
  }
  EXPECT_EQ(statistics["num_snapshots"], 200);
  EXPECT_DOUBLE_EQ(statistics["max_gpu_utilization"].get<double>(), 89.0);
  EXPECT_EQ(device["name"], "Fake H100");
  EXPECT_EQ(device["uuid"], "GPU-00000000-1111");
  ASSERT_EQ(device["processes"].size(), 1u);
  EXPECT_EQ(device["processes"][0]["pid"], 100);
  EXPECT_EQ(device["processes"][0]["comm"], "python3");
  EXPECT_TRUE(device["processes"][0]["used_bytes"].is_number_unsigned());
  EXPECT_TRUE(device["processes"][0]["peak_used_bytes"].is_number_unsigned());
  EXPECT_TRUE(device["errors"].is_array());
}

TEST(ProfileJson, HostSectionAndTopProcesses) {
  const json report = profile_of(testdata::make_session(200, 20));
  const json& host = report["host"];
  for (const char* key :
       {"total_bytes", "available_bytes", "used_bytes", "cached_bytes", "shmem_bytes"}) {
    EXPECT_TRUE(host["system"][key].is_number_unsigned()) << key;
  }
  EXPECT_EQ(host["limit"]["source"], "MemTotal");
  EXPECT_EQ(host["limit"]["limit_bytes"].get<uint64_t>(), 16 * kGiB);
  EXPECT_TRUE(host["limit"]["used_percent"].is_number());
  EXPECT_GE(host["limit"]["peak_used_bytes"].get<uint64_t>(),
            host["limit"]["used_bytes"].get<uint64_t>());
  EXPECT_TRUE(host["cgroup"].is_null());
  EXPECT_EQ(host["swap"]["total_bytes"].get<uint64_t>(), 2 * kGiB);
  EXPECT_EQ(host["swap"]["peak_used_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(host["pressure"]["available"].get<bool>());
  EXPECT_TRUE(host["pressure"]["some"]["avg10"].is_number());
  EXPECT_TRUE(host["pressure"]["full"]["total_microseconds"].is_number_unsigned());

  const json& top = host["top_processes"];
  ASSERT_EQ(top.size(), kTopProcesses);
  EXPECT_EQ(top[0]["pid"], 100);  // the largest peak USS first
  EXPECT_EQ(top[1]["pid"], 101);
  for (const char* key : {"pid", "comm", "cmdline", "rss_bytes", "pss_bytes", "uss_bytes",
                          "peak_rss_bytes", "peak_uss_bytes", "smaps_readable"}) {
    EXPECT_TRUE(top[0].contains(key)) << key;
  }
  EXPECT_TRUE(report["notes"].is_array());
  expect_bytes_are_integers(report, "$");
}

TEST(ProfileJson, NoGpusAndUnreadableSmapsAreNotes) {
  testdata::Session session = testdata::make_session(5);
  for (Sample& sample : session.samples) {
    sample.devices.clear();
    sample.processes[1].smaps_readable = false;
    sample.processes[0].comm = std::string("bad\xff\xfe utf8");
  }
  session.samples.back().system.notes.push_back("/proc/pressure/memory unavailable");
  const json report = profile_of(session);
  EXPECT_TRUE(report["devices"].is_object());
  EXPECT_TRUE(report["devices"].empty());
  ASSERT_GE(report["notes"].size(), 2u);
  EXPECT_EQ(report["notes"][0], "/proc/pressure/memory unavailable");
  EXPECT_NE(report["notes"][1].get<std::string>().find("smaps_rollup"), std::string::npos);
  EXPECT_NO_THROW((void)report.dump());  // invalid UTF-8 in a process name was repaired
}

TEST(ProfileJson, ALostDeviceReportsItsError) {
  testdata::Session session = testdata::make_session(3);
  DeviceSample& lost = session.samples.back().devices[0];
  lost = DeviceSample{};
  lost.index = 0;
  lost.ok = false;
  lost.errors = {"GPU is lost"};
  const json report = profile_of(session);
  const json& device = report["devices"]["0"];
  EXPECT_EQ(device["errors"][0], "GPU is lost");
  EXPECT_EQ(device["statistics"]["unreadable_snapshots"], 1);
  EXPECT_EQ(device["name"], "Fake H100");
  EXPECT_EQ(device["current_memory"]["total"].get<uint64_t>(), 80 * kGiB);
}

}  // namespace
}  // namespace memscope::report
