// `memscope fragment` end to end: the generated snapshots of tests/data/snapshots/ (every
// layout, each with the analysis its generator computed on its own), the example snapshot of
// ../shared/specs (checked against its JSON twin), the timeline, --compare, the allocator
// replay, pictures, and every bad input with its exit status.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string snapshots_dir() { return test_data_dir() + "/snapshots"; }

struct Fragment {
  CommandResult result;
  json report;
};

Fragment fragment(const TempDir& tmp, std::vector<std::string> args) {
  std::vector<std::string> argv = {memscope_binary(), "fragment"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--output", tmp.file("f.json")});
  Fragment out;
  out.result = run_command(argv, {}, 120);
  if (fs::exists(tmp.file("f.json"))) out.report = json::parse(read_file(tmp.file("f.json")));
  return out;
}

const json* device_in(const json& report, int device) {
  for (const json& d : report.at("devices")) {
    if (d.at("device") == device) return &d;
  }
  return nullptr;
}

// Every metric the generator wrote for a device is the one memscope reports.
void expect_metrics(const json& expected, const json& actual, const std::string& what) {
  for (const char* key :
       {"reserved_bytes", "allocated_bytes", "active_bytes", "requested_bytes",
        "pending_free_bytes", "internal_free_bytes", "external_free_bytes",
        "inactive_split_bytes", "largest_free_block_bytes", "segment_count", "oversize_count",
        "oversize_bytes"}) {
    if (!expected.contains(key) || expected.at(key).is_null()) continue;  // unknown to the file
    EXPECT_EQ(actual.at(key), expected.at(key)) << what << ": " << key;
  }
  if (expected.contains("external_fragmentation")) {
    EXPECT_NEAR(actual.at("external_fragmentation").get<double>(),
                expected.at("external_fragmentation").get<double>(), 1e-9)
        << what;
  }
  if (expected.contains("segment_sizes")) {
    std::vector<uint64_t> sizes;
    for (const json& segment : actual.at("segments")) sizes.push_back(segment.at("total_bytes"));
    EXPECT_EQ(sizes, expected.at("segment_sizes").get<std::vector<uint64_t>>()) << what;
  }
  EXPECT_TRUE(actual.at("identity_holds").get<bool>()) << what << ": " << actual.at("inconsistencies");
}

std::vector<std::string> fixtures() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(snapshots_dir())) {
    const std::string name = entry.path().filename().string();
    const std::string suffix = ".expected.json";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      names.push_back(name.substr(0, name.size() - suffix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Fragment, EveryGeneratedSnapshotGivesTheAnalysisItsGeneratorComputed) {
  const auto names = fixtures();
  ASSERT_GE(names.size(), 9u) << "tests/data/snapshots: one fixture per layout";
  for (const std::string& name : names) {
    TempDir tmp;
    const json expected = json::parse(read_file(snapshots_dir() + "/" + name + ".expected.json"));
    const Fragment run = fragment(tmp, {"--snapshot", snapshots_dir() + "/" + name + ".pickle"});
    ASSERT_EQ(run.result.exit_code, 0) << name << ": " << run.result.err;
    EXPECT_EQ(run.report.at("report"), "memscope-fragment");
    for (const auto& [device, metrics] : expected.at("devices").items()) {
      const json* actual = device_in(run.report, std::stoi(device));
      ASSERT_NE(actual, nullptr) << name << " device " << device;
      expect_metrics(metrics, *actual, name + " device " + device);
    }
  }
}

TEST(Fragment, TheGoldenSnapshotPrintsItsNumbers) {
  TempDir tmp;
  const Fragment run = fragment(tmp, {"--snapshot", snapshots_dir() + "/v2_3_settings.pickle"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  const json expected = json::parse(read_file(snapshots_dir() + "/v2_3_settings.expected.json"));
  const json& device0 = expected.at("devices").at("0");
  EXPECT_NE(run.result.out.find("external fragmentation"), std::string::npos) << run.result.out;
  EXPECT_NE(run.result.out.find("(holds)"), std::string::npos) << run.result.out;
  EXPECT_NE(run.result.out.find("oversize blocks"), std::string::npos)
      << "max_split_size is set in the golden file: " << run.result.out;
  EXPECT_EQ(run.report.at("layout").at("allocator_settings").at("max_split_size"),
            128 * 1024 * 1024);
  EXPECT_GT(device0.at("reserved_bytes").get<uint64_t>(), 0u);
  const json* actual = device_in(run.report, 0);
  ASSERT_NE(actual, nullptr);
  ASSERT_FALSE(actual->at("top_sites").empty());
  const json& site = actual->at("top_sites")[0];
  EXPECT_FALSE(site.at("frames").empty());
  EXPECT_NE(site.at("location").get<std::string>().find(".py:"), std::string::npos) << site;
}

// The example beside the spec, against its JSON twin: the metrics computed here from the JSON.
TEST(Fragment, TheSpecsExampleMatchesItsJsonTwin) {
  const json twin = json::parse(read_file(shared_dir() + "/specs/example_snapshot.json"));
  std::map<int, std::map<std::string, uint64_t>> want;
  for (const json& segment : twin.at("segments")) {
    auto& m = want[segment.at("device").get<int>()];
    m["reserved_bytes"] += segment.at("total_size").get<uint64_t>();
    m["segment_count"] += 1;
    for (const json& block : segment.at("blocks")) {
      const std::string state = block.at("state");
      const uint64_t size = block.at("size");
      if (state == "active_allocated") {
        m["allocated_bytes"] += size;
        m["requested_bytes"] += block.at("requested_size").get<uint64_t>();
      } else if (state == "inactive") {
        m["external_free_bytes"] += size;
        m["largest_free_block_bytes"] = std::max(m["largest_free_block_bytes"], size);
      }
    }
  }
  TempDir tmp;
  const Fragment run =
      fragment(tmp, {"--snapshot", shared_dir() + "/specs/example_snapshot.pickle"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  for (const auto& [device, metrics] : want) {
    const json* actual = device_in(run.report, device);
    ASSERT_NE(actual, nullptr) << device;
    for (const auto& [key, value] : metrics) EXPECT_EQ(actual->at(key), value) << key;
  }
}

TEST(Fragment, TimelineMarksTheOomAndEndsAtTheSnapshotsLevels) {
  TempDir tmp;
  const Fragment run =
      fragment(tmp, {"--snapshot", snapshots_dir() + "/oom.pickle", "--timeline", "--plot",
                     tmp.file("t.html")});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  const json expected = json::parse(read_file(snapshots_dir() + "/oom.expected.json"));
  ASSERT_FALSE(run.report.at("timelines").empty());
  const json& timeline = run.report.at("timelines")[0];
  EXPECT_TRUE(timeline.at("anchored").get<bool>());
  EXPECT_FALSE(timeline.at("ooms").empty());
  const json& trace = expected.at("trace").at(std::to_string(timeline.at("device").get<int>()));
  EXPECT_EQ(timeline.at("peak_reserved_bytes"), trace.at("peak_reserved_bytes"));
  EXPECT_EQ(timeline.at("points").back().at("reserved_bytes"),
            device_in(run.report, timeline.at("device").get<int>())->at("reserved_bytes"));
  EXPECT_NE(run.result.out.find("OOM at"), std::string::npos) << run.result.out;
  const std::string page = read_file(tmp.file("t.html"));
  EXPECT_NE(page.find("<html"), std::string::npos);
  EXPECT_NE(page.find("OOM: asked"), std::string::npos);
}

TEST(Fragment, MidRingTraceIsStillAnchoredAtTheEnd) {
  TempDir tmp;
  const Fragment run = fragment(tmp, {"--snapshot", snapshots_dir() + "/mid_ring.pickle", "--timeline"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  for (const json& timeline : run.report.at("timelines")) {
    EXPECT_TRUE(timeline.at("anchored").get<bool>()) << timeline.at("device");
    EXPECT_GT(timeline.at("points")[0].at("reserved_bytes").get<uint64_t>(), 0u)
        << "the overwritten start held memory already";
  }
}

TEST(Fragment, CompareOfASnapshotWithItselfFindsNothingNew) {
  TempDir tmp;
  const std::string file = snapshots_dir() + "/fragmented.pickle";
  const Fragment same = fragment(tmp, {"--compare", file, file});
  ASSERT_EQ(same.result.exit_code, 0) << same.result.err;
  EXPECT_EQ(same.report.at("compare").at("new_live_bytes"), 0);
  EXPECT_TRUE(same.report.at("compare").at("segments_gained").empty());
  TempDir tmp2;
  const Fragment other =
      fragment(tmp2, {"--compare", snapshots_dir() + "/v2_1_frames.pickle", file});
  ASSERT_EQ(other.result.exit_code, 0) << other.result.err;
  EXPECT_GT(other.report.at("compare").at("new_live_bytes").get<uint64_t>(), 0u);
  EXPECT_FALSE(other.report.at("compare").at("new_live_sites").empty());
}

TEST(Fragment, SegmentMapIsAPicture) {
  TempDir tmp;
  const Fragment run = fragment(
      tmp, {"--snapshot", snapshots_dir() + "/fragmented.pickle", "--plot", tmp.file("map.svg")});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  const std::string svg = read_file(tmp.file("map.svg"));
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("free (inactive)"), std::string::npos);
}

TEST(FragmentSimulate, RecordedSettingsReproduceEachCompleteSnapshot) {
  for (const std::string& name : fixtures()) {
    if (name == "mid_ring" || name == "bare_segments") continue;
    TempDir tmp;
    const json expected = json::parse(read_file(snapshots_dir() + "/" + name + ".expected.json"));
    std::vector<std::string> args = {"--simulate", snapshots_dir() + "/" + name + ".pickle",
                                     "--no-sweep"};
    // The device the generator's run had (a snapshot does not say; an OOM entry would).
    const json& capacity = expected.at("settings").at("device_capacity_bytes");
    if (!capacity.is_null()) {
      args.insert(args.end(), {"--capacity", std::to_string(capacity.get<uint64_t>())});
    }
    const Fragment run = fragment(tmp, args);
    ASSERT_EQ(run.result.exit_code, 0) << name << ": " << run.result.err;
    for (const json& device : run.report.at("devices")) {
      EXPECT_TRUE(device.at("complete").get<bool>()) << name;
      EXPECT_TRUE(device.at("reproduces_snapshot").get<bool>())
          << name << " device " << device.at("device") << "\n" << run.result.out;
    }
  }
}

TEST(FragmentSimulate, SweepTableAndARecommendationForTheOom) {
  TempDir tmp;
  const Fragment run = fragment(tmp, {"--simulate", snapshots_dir() + "/oom.pickle",
                                      "--config", "expandable_segments:True"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  const json& device = run.report.at("devices")[0];
  EXPECT_GE(device.at("recorded_ooms").get<int>(), 1);
  EXPECT_GE(device.at("candidates").size(), 11u) << "recorded + --config + the sweep of 10";
  EXPECT_GE(device.at("candidates")[0].at("ooms").get<int>(), 1)
      << "the recorded settings OOM as the run did";
  EXPECT_NE(run.result.out.find("recommended: "), std::string::npos) << run.result.out;
}

TEST(FragmentSimulate, MidRingTraceSaysItCannotBeReplayedFaithfully) {
  TempDir tmp;
  const Fragment run = fragment(tmp, {"--simulate", snapshots_dir() + "/mid_ring.pickle", "--no-sweep"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  EXPECT_FALSE(run.report.at("devices")[0].at("complete").get<bool>());
  EXPECT_NE(run.result.out.find("mid-ring-buffer"), std::string::npos) << run.result.out;
}

// --- bad input ------------------------------------------------------------------------------

// Pickle bytes by hand: {"segments": [{"device": 0, "address": 4096, "total_size": "big",
// "blocks": []}]} with protocol 2 opcodes.
std::string wrong_type_pickle() {
  const auto text = [](const std::string& s) {
    return std::string("X") + std::string(1, static_cast<char>(s.size())) + std::string(3, '\0') + s;
  };
  std::string p = "\x80\x02}";
  p += text("segments") + "](}" + "(";
  p += text("device") + "K" + std::string(1, '\0');
  p += text("address") + "M" + std::string("\x00\x10", 2);
  p += text("total_size") + text("big");
  p += text("blocks") + "]";
  p += "u" "e" "s" ".";
  return p;
}

struct BadCase {
  const char* name;
  int exit_code;
  const char* pattern;
};

TEST(FragmentErrors, EachBadInputExitsWithItsStatusAndSaysWhy) {
  TempDir tmp;
  write_file(tmp.file("text.pickle"), "segments: none\n");
  const std::string golden = read_file(snapshots_dir() + "/v2_3_settings.pickle");
  write_file(tmp.file("truncated.pickle"), golden.substr(0, golden.size() / 2));
  // protocol 2, GLOBAL os.system, then the rest of a REDUCE call
  const char code[] = "\x80\x02" "cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
  write_file(tmp.file("code.pickle"), std::string(code, sizeof code - 1));
  write_file(tmp.file("wrong.pickle"), wrong_type_pickle());
  const std::string ok = snapshots_dir() + "/v2_1_frames.pickle";
  const std::vector<std::pair<std::vector<std::string>, BadCase>> cases = {
      {{"--snapshot", tmp.file("text.pickle")}, {"not a pickle", 3, "not a pickle"}},
      {{"--snapshot", tmp.file("truncated.pickle")}, {"truncated", 3, "truncated"}},
      {{"--snapshot", tmp.file("code.pickle")}, {"code", 3, "GLOBAL"}},
      {{"--snapshot", tmp.file("wrong.pickle")}, {"wrong type", 3, "total_size"}},
      {{"--snapshot", tmp.file("missing.pickle")}, {"missing", 3, "missing.pickle"}},
      {{}, {"no source", 2, "give one of"}},
      {{"--snapshot", ok, "--simulate", ok}, {"two sources", 2, "give one of"}},
      {{"--snapshot", ok, "--device", "9"}, {"no such device", 2, "device 9 is not in"}},
      {{"--snapshot", ok, "--output", "/nonexistent/dir/x.json"}, {"unwritable", 2, "/nonexistent"}},
      {{"--snapshot", ok, "--plot", tmp.file("x.gif")}, {"plot format", 2, ".svg"}},
      {{"--compare", ok, ok, "--timeline"}, {"timeline", 2, "--timeline goes with"}},
      {{"--simulate", ok, "--config", "max_split_size_mb:10"}, {"bad config", 2, "max_split_size_mb"}},
      {{"--simulate", ok, "--config", "nonsense_key:1"}, {"unknown key", 2, "nonsense_key"}},
      {{"--snapshot", ok, "--top", "0"}, {"top", 2, "--top"}},
  };
  for (const auto& [args, expected] : cases) {
    std::vector<std::string> argv = {memscope_binary(), "fragment"};
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult result = run_command(argv, {}, 60);
    EXPECT_EQ(result.exit_code, expected.exit_code) << expected.name << ": " << result.err;
    EXPECT_NE(result.err.find(expected.pattern), std::string::npos)
        << expected.name << ": " << result.err;
  }
}

}  // namespace
}  // namespace memscope::testing
