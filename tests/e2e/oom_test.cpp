// `memscope oom` and `memscope run --oom-guard` end to end: every bad input fails fast with no
// action taken; live runs on a growing process raise critical and act before the limit; replays
// of the shared traces and the recorded sessions meet the forecast's goals; a live run and the
// replay of its session give the same answers.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/session_reader.hpp"
#include "test_support.hpp"

namespace memscope::testing {
namespace {

using nlohmann::json;

std::string sessions_dir() { return test_data_dir() + "/sessions"; }
std::string traces_dir() { return shared_dir() + "/traces"; }

std::map<std::string, std::string> fake_gpu(const std::string& scenario) {
  return {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
          {"MEMSCOPE_FAKE_NVML_SCENARIO", test_data_dir() + "/nvml/" + scenario}};
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// The file's text, or "" while it does not exist.
std::string text_of(const std::string& path) { return exists(path) ? read_file(path) : ""; }

// Polls until `path` contains `text`: a file written by a process memscope started may land a
// moment after memscope exits.
bool wait_for_text(const std::string& path, const std::string& text, double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int>(timeout_seconds * 1000));
  while (text_of(path).find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// One JSON object per line (--events); a line that does not parse fails the test.
std::vector<json> read_events(const std::string& path) {
  std::vector<json> events;
  std::istringstream in(text_of(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json event = json::parse(line, nullptr, false);
    EXPECT_FALSE(event.is_discarded()) << path << ": not JSON: " << line;
    if (!event.is_discarded()) events.push_back(std::move(event));
  }
  return events;
}

std::vector<json> level_changes(const std::vector<json>& events) {
  std::vector<json> changes;
  for (const json& event : events) {
    if (!event.contains("action")) changes.push_back(event);
  }
  return changes;
}

std::vector<json> actions(const std::vector<json>& events) {
  std::vector<json> out;
  for (const json& event : events) {
    if (event.contains("action")) out.push_back(event);
  }
  return out;
}

json read_report(const std::string& path) {
  json report = json::parse(text_of(path), nullptr, false);
  EXPECT_FALSE(report.is_discarded()) << path << " is not JSON: " << text_of(path);
  return report.is_discarded() ? json::object() : report;
}

// The report's entry for `resource`, or null.
json resource_of(const json& report, const std::string& resource) {
  if (!report.contains("resources")) return nullptr;
  for (const json& entry : report["resources"]) {
    if (entry.value("resource", "") == resource) return entry;
  }
  return nullptr;
}

// first_raised.LEVEL of a resource, or null when that level was never reached.
json first_raised(const json& entry, const std::string& level) {
  if (!entry.is_object() || !entry.contains("first_raised")) return nullptr;
  const json& raised = entry["first_raised"];
  return raised.contains(level) ? raised[level] : json(nullptr);
}

json field_of(const json& object, const char* field) {
  return object.contains(field) ? object[field] : json();
}

std::string describe(const json& entry) { return entry.is_null() ? "(absent)" : entry.dump(2); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// memscope_grow RATE MAX MARKER [HOLD]: grows RATE MiB/s up to MAX MiB, holds HOLD s.
std::vector<std::string> grow(int mib_per_second, int max_mib, const std::string& marker,
                              std::optional<int> hold_seconds = std::nullopt) {
  std::vector<std::string> argv = {grow_binary(), std::to_string(mib_per_second),
                                   std::to_string(max_mib), marker};
  if (hold_seconds) argv.push_back(std::to_string(*hold_seconds));
  return argv;
}

std::vector<std::string> concat(std::vector<std::string> first,
                                const std::vector<std::string>& second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

// "SIGNAL USR1 212" → the MiB held when the signal arrived, -1 if the marker says otherwise.
int marker_mib(const std::string& marker, const std::string& signal_name) {
  std::smatch match;
  const std::regex pattern("SIGNAL " + signal_name + " ([0-9]+)");
  return std::regex_search(marker, match, pattern) ? std::stoi(match[1]) : -1;
}

// --------------------------------------------------------------------------------------------
// Bad input: the documented status, a message that says why, and nothing done.

struct BadInputCase {
  const char* name;
  // After the binary. {tmp} and {sessions} are substituted; "{outputs}" stands for --events and
  // --output files in {tmp}, "{command}" for a command that leaves {tmp}/started if it ever runs.
  std::vector<std::string> args;
  int exit_code;
  const char* stderr_pattern;  // ECMAScript regex searched in stderr
};

void PrintTo(const BadInputCase& c, std::ostream* out) { *out << c.name; }

class OomCli : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(OomCli, BadInputFailsFastWithTheDocumentedStatusAndTakesNoAction) {
  const BadInputCase& c = GetParam();
  TempDir tmp;
  write_file(tmp.file("notes.txt"), "this is not a session\n");
  write_file(tmp.file("missing_columns.csv"),
             "t,pid,ppid,comm,rss_bytes\n0.0,100,1,python3,1048576\n0.2,100,1,python3,2097152\n");
  write_file(tmp.file("backwards.csv"),
             "t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes\n"
             "0.0,100,1,python3,1048576,1048576,1048576,0\n"
             "1.0,100,1,python3,2097152,2097152,2097152,0\n"
             "0.5,100,1,python3,3145728,3145728,3145728,0\n");
  write_file(tmp.file("header_only.csv"),
             "t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes\n");
  const std::string truncated = tmp.file("truncated.db");
  std::filesystem::copy_file(sessions_dir() + "/gpu_stable_sawtooth.db", truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(truncated) / 2);

  std::vector<std::string> args;
  for (const std::string& arg : c.args) {
    if (arg == "{outputs}") {
      args = concat(args, {"--events", "{tmp}/ev.jsonl", "--output", "{tmp}/o.json"});
    } else if (arg == "{command}") {
      args = concat(args, {"--", "sh", "-c", "touch {tmp}/started"});
    } else {
      args.push_back(arg);
    }
  }
  std::vector<std::string> argv = {memscope_binary()};
  for (std::string arg : args) {
    for (const auto& [key, value] : std::map<std::string, std::string>{
             {"{tmp}", tmp.path()}, {"{sessions}", sessions_dir()}}) {
      for (auto at = arg.find(key); at != std::string::npos; at = arg.find(key)) {
        arg.replace(at, key.size(), value);
      }
    }
    argv.push_back(arg);
  }
  const auto start = std::chrono::steady_clock::now();
  const auto result = run_command(argv, fake_gpu("one_gpu.json"), 30);
  EXPECT_EQ(result.exit_code, c.exit_code) << "stderr: " << result.err;
  EXPECT_TRUE(std::regex_search(result.err, std::regex(c.stderr_pattern)))
      << "stderr was: " << result.err;
  EXPECT_LT(seconds_since(start), 10) << "a bad input is found before monitoring starts";
  EXPECT_FALSE(exists(tmp.file("started"))) << "the command was started";
  EXPECT_EQ(text_of(tmp.file("ev.jsonl")), "") << "events were written";
  EXPECT_FALSE(exists(tmp.file("o.json"))) << "a report was written";
  EXPECT_EQ(result.out.find("action:"), std::string::npos) << result.out;
}

const BadInputCase kBadInput[] = {
    {"ThresholdZero",
     {"oom", "--threshold", "0", "{outputs}", "{command}"},
     2,
     "--threshold must be between 1 and 100 \\(got 0\\)"},
    {"ThresholdAboveHundred",
     {"oom", "--threshold", "101", "{outputs}", "{command}"},
     2,
     "--threshold must be between 1 and 100 \\(got 101\\)"},
    {"ThresholdNotANumber",
     {"oom", "--threshold", "abc", "{outputs}", "{command}"},
     2,
     "--threshold.*abc|abc.*--threshold"},
    {"KillWithoutTarget",
     {"oom", "--kill", "--duration", "1", "{outputs}"},
     2,
     "--kill needs a target"},
    {"OnUnknownLevel",
     {"oom", "--on", "extreme=signal:USR1", "{outputs}", "{command}"},
     2,
     "unknown level 'extreme'"},
    {"OnLowLevel",
     {"oom", "--on", "low=signal:USR1", "{outputs}", "{command}"},
     2,
     "'low' is not an action level"},
    {"OnUnknownSignal",
     {"oom", "--on", "critical=signal:NOPE", "{outputs}", "{command}"},
     2,
     "unknown signal 'NOPE'"},
    {"OnSignalOutOfRange",
     {"oom", "--on", "critical=signal:99", "{outputs}", "{command}"},
     2,
     "out of range"},
    {"OnWithoutEquals",
     {"oom", "--on", "critical", "{outputs}", "{command}"},
     2,
     "--on 'critical'.*LEVEL=signal:SIG"},
    {"OnUnknownAction",
     {"oom", "--on", "critical=frob:x", "{outputs}", "{command}"},
     2,
     "unknown action 'frob'"},
    {"OnEmptyExec",
     {"oom", "--on", "critical=exec:", "{outputs}", "{command}"},
     2,
     "empty command after 'exec:'"},
    {"OnSignalWithoutTarget",
     {"oom", "--on", "critical=signal:USR1", "--duration", "1", "{outputs}"},
     2,
     "a signal needs a target"},
    {"KillGraceNegative",
     {"oom", "--kill", "--kill-grace", "-1", "{outputs}", "{command}"},
     2,
     "--kill-grace must be 0 or more"},
    {"ReplayMissingFile", {"oom", "--replay", "{tmp}/missing.db", "{outputs}"}, 3, "missing.db"},
    {"ReplayNotASession",
     {"oom", "--replay", "{tmp}/notes.txt", "{outputs}"},
     3,
     "is not a memscope session"},
    {"ReplayTruncatedSession",
     {"oom", "--replay", "{tmp}/truncated.db", "{outputs}"},
     3,
     "truncated.db"},
    {"ReplayCsvWithoutLimit",
     {"oom", "--replay-csv", "{tmp}/backwards.csv", "{outputs}"},
     2,
     "--replay-csv needs --limit"},
    {"ReplayCsvMissingColumns",
     {"oom", "--replay-csv", "{tmp}/missing_columns.csv", "--limit", "1GiB", "{outputs}"},
     3,
     "missing_columns.csv.*pss_bytes"},
    {"ReplayCsvTimeGoesBackwards",
     {"oom", "--replay-csv", "{tmp}/backwards.csv", "--limit", "1GiB", "{outputs}"},
     3,
     "backwards.csv.*(line 4|:4)"},
    {"ReplayCsvMissingFile",
     {"oom", "--replay-csv", "{tmp}/missing.csv", "--limit", "1GiB", "{outputs}"},
     3,
     "missing.csv"},
    {"ReplayCsvNoSamples",
     {"oom", "--replay-csv", "{tmp}/header_only.csv", "--limit", "1GiB", "{outputs}"},
     3,
     "holds no samples"},
    {"LimitNotASize",
     {"oom", "--limit", "garbage", "{outputs}", "{command}"},
     2,
     "--limit: 'garbage' is not a size"},
    {"LimitZero", {"oom", "--limit", "0", "{outputs}", "{command}"}, 2, "'0' is not a size"},
    {"LimitWithoutTree",
     {"oom", "--limit", "1GiB", "--duration", "1", "{outputs}"},
     2,
     "--limit applies to a process tree"},
    {"PidDoesNotExist",
     {"oom", "--pid", "4000000", "{outputs}"},
     2,
     "--pid 4000000: no such process"},
    {"PidNegative", {"oom", "--pid", "-5", "{outputs}"}, 2, "-5"},
    {"IntervalTooShort",
     {"oom", "--interval", "0.01", "{outputs}", "{command}"},
     2,
     "--interval must be at least 0.1"},
    {"DurationNegative",
     {"oom", "--duration", "-3", "{outputs}", "{command}"},
     2,
     "--duration must be positive"},
    {"MonitorWithDuration",
     {"oom", "--monitor", "--duration", "5", "{outputs}", "{command}"},
     2,
     "--monitor and --duration exclude each other"},
    {"PidAndReplay",
     {"oom", "--pid", "1", "--replay", "{sessions}/gpu_startup_ramp.db", "{outputs}"},
     2,
     "give one of --pid, a command after --, --replay or --replay-csv"},
    {"ReplayAndCommand",
     {"oom", "--replay", "{sessions}/gpu_startup_ramp.db", "{outputs}", "{command}"},
     2,
     "give one of"},
    {"EventsInMissingDirectory",
     {"oom", "--events", "/nonexistent/dir/ev.jsonl", "--output", "{tmp}/o.json", "{command}"},
     2,
     "--events: cannot write '/nonexistent/dir/ev.jsonl'"},
    {"OutputInMissingDirectory",
     {"oom", "--events", "{tmp}/ev.jsonl", "--output", "/nonexistent/dir/o.json", "{command}"},
     2,
     "cannot write '/nonexistent/dir/o.json'"},
    {"ReplayEventsInMissingDirectory",
     {"oom", "--replay", "{sessions}/gpu_startup_ramp.db", "--events", "/nonexistent/dir/e.jsonl",
      "--output", "{tmp}/o.json"},
     2,
     "/nonexistent/dir/e.jsonl"},
    {"KillAimedAtInit", {"oom", "--pid", "1", "--kill"}, 2, "never aimed at init"},
    {"RunActionWithoutOomGuard",
     {"run", "--on", "critical=signal:USR1", "--output", "{tmp}/s.db", "{command}"},
     2,
     "add --oom-guard"},
    {"RunEventsWithoutOomGuard",
     {"run", "--events", "{tmp}/ev.jsonl", "--output", "{tmp}/s.db", "{command}"},
     2,
     "add --oom-guard"},
    // Out of range is a usage error whether or not --oom-guard is there to use it.
    {"RunThresholdWithoutOomGuard",
     {"run", "--threshold", "0", "--output", "{tmp}/s.db", "{command}"},
     2,
     "--threshold"},
    {"RunOomGuardUnknownSignal",
     {"run", "--oom-guard", "--on", "critical=signal:NOPE", "--output", "{tmp}/s.db", "{command}"},
     2,
     "unknown signal 'NOPE'"},
    {"RunOomGuardThresholdZero",
     {"run", "--oom-guard", "--threshold", "0", "--output", "{tmp}/s.db", "{command}"},
     2,
     "--threshold must be between 1 and 100"},
};

INSTANTIATE_TEST_SUITE_P(Oom, OomCli, ::testing::ValuesIn(kBadInput),
                         [](const auto& test) { return std::string(test.param.name); });

TEST(OomCli, HelpListsTheSourcesAndActions) {
  const auto result = run_command({memscope_binary(), "oom", "--help"}, {}, 30);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  for (const char* flag : {"--replay-csv", "--replay", "--limit", "--on", "--kill", "--dry-run",
                           "--events", "--threshold", "--monitor"}) {
    EXPECT_NE(result.out.find(flag), std::string::npos) << flag << " in:\n" << result.out;
  }
  const auto top = run_command({memscope_binary(), "--help"}, {}, 30);
  EXPECT_NE(top.out.find("oom"), std::string::npos) << top.out;
}

// --------------------------------------------------------------------------------------------
// Live: a real process growing 20 MiB/s towards a 400 MiB limit the test sets.

// The fields the issue requires of the tree's entry in the report.
void ExpectTreeReport(const json& report, const std::string& mode) {
  // docs/report-formats.md: the document names itself and its schema.
  EXPECT_EQ(report.value("report", ""), "memscope-oom") << report.dump(2);
  EXPECT_EQ(report.value("schema_version", 0), 1);
  EXPECT_EQ(report.value("mode", ""), mode);
  const json tree = resource_of(report, "tree");
  ASSERT_TRUE(tree.is_object()) << "no tree resource in " << report.dump(2);
  for (const char* field :
       {"risk_level", "confidence", "current_usage_percent", "growth_rate_mb_per_sec",
        "predicted_oom_time_seconds", "limit_bytes", "limit_source", "recommendation"}) {
    EXPECT_TRUE(tree.contains(field)) << field << " missing in " << tree.dump(2);
  }
  EXPECT_EQ(tree.value("limit_bytes", uint64_t{0}), 400ull << 20);
  EXPECT_EQ(tree.value("limit_source", ""), "--limit");
  EXPECT_FALSE(tree.value("recommendation", "").empty());
  const json critical = first_raised(tree, "critical");
  ASSERT_TRUE(critical.is_object()) << "tree never critical: " << tree.dump(2);
  EXPECT_TRUE(critical.contains("t_seconds"));
  EXPECT_TRUE(critical.contains("predicted_oom_time_seconds"));
}

// The events of a run whose critical level sent `action_prefix` to the target.
void ExpectCriticalAndAction(const std::vector<json>& events, const std::string& action_prefix) {
  bool critical = false;
  for (const json& change : level_changes(events)) {
    if (change.value("resource", "") == "tree" && change.value("level", "") == "critical") {
      critical = true;
      EXPECT_NE(change.value("previous_level", ""), "critical") << change.dump();
      for (const char* field : {"t", "usage_percent", "predicted_oom_time_seconds", "confidence"}) {
        EXPECT_TRUE(change.contains(field)) << field << " missing in " << change.dump();
      }
    }
  }
  EXPECT_TRUE(critical) << "no critical level change for the tree";
  const std::vector<json> taken = actions(events);
  ASSERT_FALSE(taken.empty()) << "no action in the events";
  bool found = false;
  for (const json& action : taken) {
    if (action.value("action", "").rfind(action_prefix, 0) != 0) continue;
    found = true;
    for (const char* field :
         {"t", "resource", "level", "usage_percent", "predicted_oom_time_seconds", "action"}) {
      EXPECT_TRUE(action.contains(field)) << field << " missing in " << action.dump();
    }
    EXPECT_EQ(action.value("level", ""), "critical") << action.dump();
    EXPECT_EQ(action.value("resource", ""), "tree") << action.dump();
    EXPECT_TRUE(action.value("ok", false)) << action.dump();
    EXPECT_LT(action.value("usage_percent", 100.0), 100.0) << action.dump();
  }
  EXPECT_TRUE(found) << "no action starting with '" << action_prefix << "' in "
                     << json(taken).dump(2);
}

TEST(OomLive, SignalsAGrowingCommandBeforeItsLimitIsCrossed) {
  TempDir tmp;
  const std::string marker = tmp.file("marker");
  const auto start = std::chrono::steady_clock::now();
  const auto result =
      run_command(concat({memscope_binary(), "oom", "--monitor", "--interval", "0.2", "--limit",
                          "400MiB", "--on", "critical=signal:USR1", "--events",
                          tmp.file("ev.jsonl"), "--output", tmp.file("out.json"), "--no-gpu", "--"},
                         grow(20, 1000, marker)),
                  {}, 90);
  const double elapsed = seconds_since(start);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_LT(elapsed, 60) << "the signal makes the command stop well before 1000 MiB";
  const int held = marker_mib(text_of(marker), "USR1");
  ASSERT_GE(held, 0) << "marker: '" << text_of(marker) << "'\nstdout:\n" << result.out;
  EXPECT_LT(held, 400) << "the signal arrived after the limit was crossed";
  const std::vector<json> events = read_events(tmp.file("ev.jsonl"));
  ExpectCriticalAndAction(events, "signal SIGUSR1 to pid ");
  ExpectTreeReport(read_report(tmp.file("out.json")), "live");
  EXPECT_NE(result.out.find("critical"), std::string::npos) << result.out;
}

TEST(OomLive, SignalsAGrowingProcessGivenByPid) {
  TempDir tmp;
  const std::string marker = tmp.file("marker");
  BackgroundCommand target(grow(20, 1000, marker));
  BackgroundCommand memscope({memscope_binary(), "oom", "--monitor", "--interval", "0.2", "--limit",
                              "400MiB", "--on", "critical=signal:USR1", "--events",
                              tmp.file("ev.jsonl"), "--output", tmp.file("out.json"), "--no-gpu",
                              "--pid", std::to_string(target.pid())});
  // The target is our child: reaping it is what makes it vanish from /proc for memscope.
  const auto grown = target.wait(60);
  EXPECT_EQ(grown.exit_code, 0) << grown.err;
  const auto result = memscope.wait(30);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const int held = marker_mib(text_of(marker), "USR1");
  ASSERT_GE(held, 0) << "marker: '" << text_of(marker) << "'\nstdout:\n" << result.out;
  EXPECT_LT(held, 400);
  ExpectCriticalAndAction(read_events(tmp.file("ev.jsonl")),
                          "signal SIGUSR1 to pid " + std::to_string(target.pid()));
  ExpectTreeReport(read_report(tmp.file("out.json")), "live");
}

TEST(OomLive, DryRunSaysWhatItWouldSendAndSendsNothing) {
  TempDir tmp;
  const std::string marker = tmp.file("marker");
  // Grows past the limit (440 MiB at 22 s), holds 1 s and exits by itself.
  const auto result =
      run_command(concat({memscope_binary(), "oom", "--dry-run", "--duration", "25", "--interval",
                          "0.2", "--limit", "400MiB", "--on", "critical=signal:USR1", "--events",
                          tmp.file("ev.jsonl"), "--output", tmp.file("out.json"), "--no-gpu", "--"},
                         grow(20, 440, marker, 1)),
                  {}, 60);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_FALSE(exists(marker)) << "dry run, yet: " << text_of(marker);
  const std::vector<json> events = read_events(tmp.file("ev.jsonl"));
  const std::vector<json> taken = actions(events);
  ASSERT_FALSE(taken.empty()) << text_of(tmp.file("ev.jsonl"));
  for (const json& action : taken) {
    EXPECT_EQ(action.value("action", "").rfind("would send SIGUSR1 to pid ", 0), 0u)
        << action.dump();
    EXPECT_TRUE(action.value("dry_run", false)) << action.dump();
  }
  EXPECT_NE(result.out.find("would send SIGUSR1"), std::string::npos) << result.out;
}

TEST(OomLive, ExecActionGetsTheAssessmentInItsEnvironment) {
  TempDir tmp;
  const std::string marker = tmp.file("marker");
  const std::string env_file = tmp.file("env.txt");
  // The signal ends the command; the exec action records its environment.
  const auto result = run_command(
      concat({memscope_binary(), "oom", "--monitor", "--interval", "0.2", "--limit", "400MiB",
              "--on", "critical=exec:env > " + env_file, "--on", "critical=signal:USR1", "--events",
              tmp.file("ev.jsonl"), "--no-gpu", "--"},
             grow(20, 1000, marker)),
      {}, 90);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  ASSERT_TRUE(wait_for_text(env_file, "MEMSCOPE_LEVEL=", 10)) << "no environment written; stdout:\n"
                                                              << result.out;
  const std::string env = text_of(env_file);
  EXPECT_NE(env.find("MEMSCOPE_LEVEL=critical\n"), std::string::npos) << env;
  EXPECT_NE(env.find("MEMSCOPE_RESOURCE=tree\n"), std::string::npos) << env;
  std::smatch predicted;
  ASSERT_TRUE(
      std::regex_search(env, predicted, std::regex("MEMSCOPE_PREDICTED_OOM_SECONDS=([0-9.]*)\n")))
      << env;
  EXPECT_FALSE(predicted[1].str().empty()) << "a growing tree has a predicted time";
  EXPECT_NE(env.find("MEMSCOPE_LIMIT_BYTES=" + std::to_string(400ull << 20)), std::string::npos)
      << env;
  bool exec_event = false;
  for (const json& action : actions(read_events(tmp.file("ev.jsonl")))) {
    exec_event |= action.value("action", "").rfind("exec: env > ", 0) == 0;
  }
  EXPECT_TRUE(exec_event) << text_of(tmp.file("ev.jsonl"));
}

TEST(OomLive, KillStopsTheLargestProcessOfTheTreeOnly) {
  TempDir tmp;
  const std::string big = tmp.file("big");
  const std::string small = tmp.file("small");
  // A tree: sh, a process growing 20 MiB/s and one growing 4 MiB/s to 60 MiB (15 s, then exits).
  const std::string script =
      fmt::format("'{0}' 20 1000 '{1}' & '{0}' 4 60 '{2}' 0; wait", grow_binary(), big, small);
  const auto result = run_command(
      {memscope_binary(), "oom", "--monitor", "--interval", "0.2", "--limit", "400MiB", "--kill",
       "--kill-grace", "5", "--events", tmp.file("ev.jsonl"), "--no-gpu", "--", "sh", "-c", script},
      {}, 60);
  EXPECT_EQ(result.exit_code, 0) << result.err << "\nstdout:\n" << result.out;
  const int held = marker_mib(text_of(big), "TERM");
  EXPECT_GE(held, 0) << "the largest process was not sent SIGTERM: '" << text_of(big) << "'";
  EXPECT_LT(held, 400);
  EXPECT_FALSE(exists(small)) << "a smaller process was signalled: " << text_of(small);
  bool kill_event = false;
  for (const json& action : actions(read_events(tmp.file("ev.jsonl")))) {
    const std::string what = action.value("action", "");
    if (what.rfind("kill: SIGTERM to pid ", 0) == 0) {
      kill_event = true;
      EXPECT_NE(what.find("memscope_grow"), std::string::npos) << what;
    }
    EXPECT_EQ(what.find("SIGKILL"), std::string::npos) << "it exited within its grace: " << what;
  }
  EXPECT_TRUE(kill_event) << text_of(tmp.file("ev.jsonl"));
}

TEST(OomLive, HostAloneIsAssessedOncePerInterval) {
  TempDir tmp;
  const auto result = run_command({memscope_binary(), "oom", "--duration", "2", "--interval", "0.5",
                                   "--no-gpu", "--output", tmp.file("o.json")},
                                  {}, 30);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json report = read_report(tmp.file("o.json"));
  EXPECT_EQ(report.value("report", ""), "memscope-oom");
  const json host = resource_of(report, "host");
  ASSERT_TRUE(host.is_object()) << report.dump(2);
  EXPECT_GT(host.value("limit_bytes", uint64_t{0}), 0u);
  if (host.value("current_usage_percent", 100.0) < 60) {
    EXPECT_EQ(host.value("risk_level", ""), "low") << host.dump(2);
    EXPECT_TRUE(host["first_raised"].empty()) << host.dump(2);
  } else {
    std::cerr << "host usage " << host.value("current_usage_percent", 0.0)
              << " %: this machine is under memory pressure; level not checked\n";
  }
  // One assessment line for the host per interval: 0, 0.5, 1, 1.5, 2 s.
  int host_lines = 0;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line,
                          std::regex("^\\s*\\S+\\s+host\\s+(low|medium|high|critical)\\s.*% of"))) {
      ++host_lines;
    }
  }
  EXPECT_GE(host_lines, 4) << result.out;
  EXPECT_LE(host_lines, 6) << result.out;
}

// The fake NVML's leak under a sawtooth, watched live: gpu0 goes critical and the exec action
// gets told which resource.
TEST(OomLive, FakeGpuLeakRaisesCriticalAndRunsTheExecAction) {
  TempDir tmp;
  const std::string env_file = tmp.file("env.txt");
  const auto result = run_command({memscope_binary(), "oom", "--duration", "20", "--interval",
                                   "0.25", "--output", tmp.file("o.json"), "--events",
                                   tmp.file("e.jsonl"), "--on", "critical=exec:env > " + env_file},
                                  fake_gpu("gpu_leak_under_sawtooth.json"), 60);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json report = read_report(tmp.file("o.json"));
  const json gpu = resource_of(report, "gpu0");
  ASSERT_TRUE(gpu.is_object()) << report.dump(2);
  const json critical = first_raised(gpu, "critical");
  ASSERT_TRUE(critical.is_object()) << describe(gpu);
  EXPECT_LE(critical.value("t_seconds", 1e9), 20.0);
  ASSERT_TRUE(wait_for_text(env_file, "MEMSCOPE_RESOURCE=", 10)) << text_of(tmp.file("e.jsonl"));
  const std::string env = text_of(env_file);
  EXPECT_NE(env.find("MEMSCOPE_RESOURCE=gpu0\n"), std::string::npos) << env;
  EXPECT_NE(env.find("MEMSCOPE_LEVEL=critical\n"), std::string::npos) << env;
  EXPECT_NE(env.find("MEMSCOPE_TARGET_PID=\n"), std::string::npos) << "no target: " << env;
  bool gpu_critical = false;
  for (const json& change : level_changes(read_events(tmp.file("e.jsonl")))) {
    gpu_critical |=
        change.value("resource", "") == "gpu0" && change.value("level", "") == "critical";
  }
  EXPECT_TRUE(gpu_critical);
}

// --------------------------------------------------------------------------------------------
// Replays of the shared traces (shared/traces/README.md) and the recorded sessions.

struct Replayed {
  CommandResult result;
  json report;
  std::vector<json> events;
};

Replayed replay(const std::vector<std::string>& source_args) {
  TempDir tmp;
  Replayed replayed;
  replayed.result =
      run_command(concat(concat({memscope_binary(), "oom"}, source_args),
                         {"--output", tmp.file("o.json"), "--events", tmp.file("e.jsonl")}),
                  {}, 60);
  EXPECT_EQ(replayed.result.exit_code, 0) << replayed.result.err;
  replayed.report = read_report(tmp.file("o.json"));
  replayed.events = read_events(tmp.file("e.jsonl"));
  EXPECT_EQ(replayed.report.value("mode", ""), "replay");
  return replayed;
}

// The first t at which the trace's PSS, summed over that t's rows, reaches `limit_bytes`.
std::optional<double> csv_crossing(const std::string& path, uint64_t limit_bytes) {
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("t,pid,ppid,comm,rss_bytes,pss_bytes", 0), 0u) << line;
  std::optional<double> current_t;
  uint64_t sum = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream row(line);
    for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
    if (fields.size() < 6) continue;
    const double t = std::stod(fields[0]);
    if (current_t && t != *current_t) {
      if (sum >= limit_bytes) return current_t;
      sum = 0;
    }
    current_t = t;
    sum += std::stoull(fields[5]);
  }
  if (current_t && sum >= limit_bytes) return current_t;
  return std::nullopt;
}

struct TraceCase {
  const char* file;
  const char* limit;
  uint64_t limit_bytes;
  bool reaches_limit;
};

void PrintTo(const TraceCase& c, std::ostream* out) { *out << c.file; }

class OomReplay : public ::testing::TestWithParam<TraceCase> {};

TEST_P(OomReplay, SharedTraceMeetsTheForecastGoals) {
  const TraceCase& c = GetParam();
  const std::string path = traces_dir() + "/" + c.file;
  if (!exists(path)) GTEST_SKIP() << path << " is not here";
  const Replayed replayed = replay({"--replay-csv", path, "--limit", c.limit});
  const json tree = resource_of(replayed.report, "tree");
  ASSERT_TRUE(tree.is_object()) << replayed.report.dump(2);
  EXPECT_EQ(tree.value("limit_bytes", uint64_t{0}), c.limit_bytes);
  EXPECT_EQ(tree.value("limit_source", ""), "--limit");
  const std::optional<double> crossing = csv_crossing(path, c.limit_bytes);
  if (!c.reaches_limit) {
    EXPECT_FALSE(crossing) << "the trace crosses its limit at " << *crossing;
    EXPECT_TRUE(first_raised(tree, "high").is_null()) << describe(tree);
    EXPECT_TRUE(first_raised(tree, "critical").is_null()) << describe(tree);
    return;
  }
  ASSERT_TRUE(crossing) << "the trace never reaches " << c.limit;
  const json critical = first_raised(tree, "critical");
  ASSERT_TRUE(critical.is_object()) << "never critical; crossing at " << *crossing << " s\n"
                                    << describe(tree);
  const double t_critical = critical.value("t_seconds", 1e9);
  EXPECT_LE(t_critical, *crossing - 30)
      << "critical at " << t_critical << " s, the limit is crossed at " << *crossing << " s";
  ASSERT_TRUE(critical["predicted_oom_time_seconds"].is_number()) << critical.dump();
  const double predicted = critical["predicted_oom_time_seconds"].get<double>();
  const double truth = *crossing - t_critical;
  EXPECT_NEAR(predicted, truth, 0.25 * truth)
      << "at t = " << t_critical << " s predicted " << predicted << " s, truth " << truth
      << " s (crossing at " << *crossing << " s)";
  bool critical_event = false;
  for (const json& change : level_changes(replayed.events)) {
    if (change.value("level", "") == "critical") {
      critical_event = true;
      EXPECT_DOUBLE_EQ(change.value("t", -1.0), t_critical) << change.dump();
    }
  }
  EXPECT_TRUE(critical_event) << "no critical line in --events";
}

const TraceCase kTraces[] = {
    {"A_stable.csv", "512MiB", 512ull << 20, false},
    {"A_warmup.csv", "400MiB", 400ull << 20, false},
    {"A_loader.csv", "1024MiB", 1024ull << 20, false},
    {"A_leak.csv", "1024MiB", 1024ull << 20, true},
    {"A_hog.csv", "2048MiB", 2048ull << 20, true},
};

INSTANTIATE_TEST_SUITE_P(Oom, OomReplay, ::testing::ValuesIn(kTraces), [](const auto& test) {
  std::string name = test.param.file;
  return name.substr(0, name.find('.'));
});

TEST(OomReplay, ActionsAreOnlyReportedNeverTaken) {
  const std::string path = traces_dir() + "/A_hog.csv";
  if (!exists(path)) GTEST_SKIP() << path << " is not here";
  // The trace's pids may belong to live processes on this machine now: nothing may reach them.
  const Replayed replayed = replay(
      {"--replay-csv", path, "--limit", "2048MiB", "--on", "critical=signal:USR1", "--kill"});
  const std::vector<json> taken = actions(replayed.events);
  ASSERT_GE(taken.size(), 2u) << json(replayed.events).dump(2);
  for (const json& action : taken) {
    EXPECT_TRUE(action.value("dry_run", false)) << action.dump();
    EXPECT_NE(action.value("action", "").find("would send"), std::string::npos) << action.dump();
  }
}

// In the GPU sessions the host and the recorded tree (a `sleep`) must stay quiet.
void ExpectQuietHostAndTree(const json& report) {
  for (const char* resource : {"host", "tree"}) {
    const json entry = resource_of(report, resource);
    EXPECT_TRUE(first_raised(entry, "high").is_null()) << resource << ": " << describe(entry);
    EXPECT_TRUE(first_raised(entry, "critical").is_null()) << resource << ": " << describe(entry);
  }
}

TEST(OomReplay, GpuStableSawtoothNeverRaisesHighOrCritical) {
  const Replayed replayed = replay({"--replay", sessions_dir() + "/gpu_stable_sawtooth.db"});
  const json gpu = resource_of(replayed.report, "gpu0");
  ASSERT_TRUE(gpu.is_object()) << replayed.report.dump(2);
  EXPECT_EQ(gpu.value("limit_bytes", uint64_t{0}), 81559ull << 20);
  EXPECT_TRUE(first_raised(gpu, "high").is_null()) << describe(gpu);
  EXPECT_TRUE(first_raised(gpu, "critical").is_null()) << describe(gpu);
  ExpectQuietHostAndTree(replayed.report);
}

TEST(OomReplay, GpuLeakUnderSawtoothIsCriticalTwentySecondsAhead) {
  constexpr double kCrossing = 59.5;  // tests/data/sessions/README.md
  const Replayed replayed = replay({"--replay", sessions_dir() + "/gpu_leak_under_sawtooth.db"});
  const json gpu = resource_of(replayed.report, "gpu0");
  const json critical = first_raised(gpu, "critical");
  ASSERT_TRUE(critical.is_object()) << describe(gpu);
  const double t_critical = critical.value("t_seconds", 1e9);
  EXPECT_LE(t_critical, kCrossing - 20) << describe(gpu);
  ASSERT_TRUE(critical["predicted_oom_time_seconds"].is_number()) << critical.dump();
  const double truth = kCrossing - t_critical;
  EXPECT_NEAR(critical["predicted_oom_time_seconds"].get<double>(), truth, 0.25 * truth)
      << critical.dump();
  ExpectQuietHostAndTree(replayed.report);
}

TEST(OomReplay, GpuStartupRampIsCriticalByNinetyFivePercent) {
  // tests/data/sessions/README.md: the sample of the 7.75 s tick (taken up to 33 ms after it)
  // is the first at >= 95 %.
  constexpr double kPasses95Percent = 7.75 + 0.05;
  const Replayed replayed = replay({"--replay", sessions_dir() + "/gpu_startup_ramp.db"});
  const json gpu = resource_of(replayed.report, "gpu0");
  const json critical = first_raised(gpu, "critical");
  ASSERT_TRUE(critical.is_object()) << describe(gpu);
  EXPECT_LE(critical.value("t_seconds", 1e9), kPasses95Percent) << describe(gpu);
  EXPECT_EQ(gpu.value("risk_level", ""), "critical") << "the device sits at 99.6 % at the end";
}

TEST(OomReplay, HostSawtoothLeakIsCriticalWellBeforeTheCrossing) {
  constexpr double kCrossing = 55.0;  // first sample >= 99 % of 320 MiB
  const Replayed replayed =
      replay({"--replay", sessions_dir() + "/host_sawtooth_leak.db", "--limit", "320MiB"});
  const json tree = resource_of(replayed.report, "tree");
  ASSERT_TRUE(tree.is_object()) << replayed.report.dump(2);
  EXPECT_EQ(tree.value("limit_bytes", uint64_t{0}), 320ull << 20);
  const json critical = first_raised(tree, "critical");
  ASSERT_TRUE(critical.is_object()) << describe(tree);
  EXPECT_LE(critical.value("t_seconds", 1e9), kCrossing - 15) << describe(tree);
}

// --------------------------------------------------------------------------------------------
// One implementation: `run --oom-guard` live and `oom --replay` of its session agree.

TEST(OomGuard, ReplayOfTheRecordedSessionGivesTheLiveAnswers) {
  TempDir tmp;
  const std::string session = tmp.file("s.db");
  auto start = std::chrono::steady_clock::now();
  // 15 MiB/s to 330 MiB (22 s), held 3 s: past the 300 MiB limit, no action configured.
  const auto live = run_command(
      concat({memscope_binary(), "run", "--oom-guard", "--interval", "0.2", "--limit", "300MiB",
              "--events", tmp.file("live.jsonl"), "--output", session, "--no-gpu", "--"},
             grow(15, 330, tmp.file("marker"), 3)),
      {}, 90);
  const double live_seconds = seconds_since(start);
  ASSERT_EQ(live.exit_code, 0) << live.err;
  EXPECT_FALSE(exists(tmp.file("marker"))) << "no action was configured";
  EXPECT_NE(live.err.find("oom-guard:"), std::string::npos) << live.err;

  start = std::chrono::steady_clock::now();
  const auto replayed = run_command({memscope_binary(), "oom", "--replay", session, "--limit",
                                     "300MiB", "--events", tmp.file("replay.jsonl")},
                                    {}, 60);
  const double replay_seconds = seconds_since(start);
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  EXPECT_LT(replay_seconds, live_seconds / 5)
      << "replay " << replay_seconds << " s, recording " << live_seconds << " s";

  const std::vector<json> live_changes = level_changes(read_events(tmp.file("live.jsonl")));
  const std::vector<json> replay_changes = level_changes(read_events(tmp.file("replay.jsonl")));
  bool tree_critical = false;
  for (const json& change : live_changes) {
    tree_critical |=
        change.value("resource", "") == "tree" && change.value("level", "") == "critical";
  }
  EXPECT_TRUE(tree_critical) << "the tree crossed 300 MiB live: " << json(live_changes).dump(2);
  ASSERT_EQ(live_changes.size(), replay_changes.size())
      << "live:\n"
      << json(live_changes).dump(2) << "\nreplay:\n"
      << json(replay_changes).dump(2);
  for (size_t i = 0; i < live_changes.size(); ++i) {
    for (const char* field : {"t", "resource", "level", "previous_level", "usage_percent",
                              "predicted_oom_time_seconds"}) {
      EXPECT_EQ(field_of(live_changes[i], field), field_of(replay_changes[i], field))
          << "change " << i << ", field " << field << "\nlive:   " << live_changes[i].dump()
          << "\nreplay: " << replay_changes[i].dump();
    }
  }

  auto reader = store::SessionReader::open(session);
  ASSERT_TRUE(reader.ok()) << reader.message();
  size_t recorded = 0;
  for (const auto& event : reader->events()) {
    if (event.kind != "oom-level") continue;
    ++recorded;
    const json message = json::parse(event.message, nullptr, false);
    ASSERT_FALSE(message.is_discarded()) << event.message;
    EXPECT_TRUE(message.contains("level")) << event.message;
  }
  EXPECT_EQ(recorded, live_changes.size()) << "the session holds every level change";
}

}  // namespace
}  // namespace memscope::testing
