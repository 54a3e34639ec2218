// `memscope env` and `memscope run --tune` end to end: detection from the fixture trees in
// tests/data/env/ (README there) and the fake NVML, the output formats, the script it writes,
// every error path, and a job started with --tune that really sees the variables.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "store/session_reader.hpp"
#include "test_support.hpp"

namespace memscope::testing {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

std::string fixture(const std::string& name) { return test_data_dir() + "/env/" + name; }

std::map<std::string, std::string> one_gpu() {
  return {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
          {"MEMSCOPE_FAKE_NVML_SCENARIO", test_data_dir() + "/nvml/one_gpu.json"}};
}

// memscope --proc-root/--sys-root FIXTURE env ARGS...
CommandResult env(const std::string& tree, const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& environment = one_gpu()) {
  std::vector<std::string> argv = {memscope_binary(), "--proc-root", fixture(tree) + "/proc",
                                   "--sys-root", fixture(tree) + "/sys", "env"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, environment, 60);
}

nlohmann::json env_json(const std::string& tree, std::vector<std::string> args,
                        const std::map<std::string, std::string>& environment = one_gpu()) {
  args.emplace_back("--json");
  const CommandResult result = env(tree, args, environment);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(result.out, nullptr, false);
}

TEST(Env, CgroupV2QuotaTightestOnTheLeafAndMemoryLimitOnTheSlice) {
  const nlohmann::json doc = env_json("quota-v2", {"--torch-version", "2.0.1"});
  ASSERT_FALSE(doc.is_discarded());
  const nlohmann::json& machine = doc["machine"];
  EXPECT_EQ(machine["online_cpus"], 16);
  EXPECT_EQ(machine["cpu_quota_cpus"], 2.5);
  EXPECT_EQ(machine["cpu_quota_source"], "cgroup v2 /training.slice/job-7.scope");
  EXPECT_EQ(machine["usable_cpus"], 2);
  EXPECT_EQ(machine["ram_total_bytes"], 64 * kGiB);
  EXPECT_EQ(machine["memory_limit_bytes"], 32 * kGiB);
  EXPECT_EQ(machine["memory_limit_usage_bytes"], 20 * kGiB);
  EXPECT_EQ(machine["memory_headroom_bytes"], 12 * kGiB);
  ASSERT_EQ(machine["gpus"].size(), 1u);
  EXPECT_EQ(machine["gpus"][0]["total_bytes"], 80 * kGiB);
  EXPECT_EQ(machine["gpus"][0]["name"], "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(machine["driver_version"], "535.183.01");
  const nlohmann::json& vars = doc["env"];
  EXPECT_EQ(vars["OMP_NUM_THREADS"], "2");
  EXPECT_EQ(vars["MKL_NUM_THREADS"], "2");
  EXPECT_EQ(vars["OPENBLAS_NUM_THREADS"], "2");
  EXPECT_EQ(vars["MALLOC_ARENA_MAX"], "2");
  EXPECT_EQ(vars["MALLOC_TRIM_THRESHOLD_"], "131072");
  EXPECT_EQ(vars["TOKENIZERS_PARALLELISM"], "false");
  // torch 2.0 has no expandable segments: max_split by the 80 GiB GPU.
  EXPECT_EQ(vars["PYTORCH_CUDA_ALLOC_CONF"], "max_split_size_mb:512,garbage_collection_threshold:0.8");
  EXPECT_EQ(doc["dataloader"]["num_workers"], "1");  // 2 CPUs, one kept for the training loop
  EXPECT_EQ(doc["dataloader"]["pin_memory"], "True");
  EXPECT_EQ(doc["dataloader"]["persistent_workers"], "True");
}

TEST(Env, CgroupV1CfsQuotaSharedBetweenProcesses) {
  const nlohmann::json doc = env_json("quota-v1", {"--procs", "2", "--torch-version", "2.4.0"});
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["machine"]["online_cpus"], 8);
  EXPECT_EQ(doc["machine"]["cpu_quota_cpus"], 6.0);
  EXPECT_EQ(doc["machine"]["cpu_quota_source"], "cgroup v1 /batch/job9");
  EXPECT_EQ(doc["machine"]["cpus_per_process"], 3);
  EXPECT_EQ(doc["machine"]["memory_limit_bytes"], 16 * kGiB);
  EXPECT_EQ(doc["machine"]["memory_headroom_bytes"], 12 * kGiB);
  EXPECT_EQ(doc["env"]["OMP_NUM_THREADS"], "3");
  EXPECT_EQ(doc["env"]["MALLOC_ARENA_MAX"], "4");
  EXPECT_EQ(doc["env"]["PYTORCH_CUDA_ALLOC_CONF"], "expandable_segments:True");
  // min(3 - 1, 12 GiB / 2 / 2 processes / 1 GiB = 3) = 2
  EXPECT_EQ(doc["dataloader"]["num_workers"], "2");
}

TEST(Env, NoQuotaAndNoGpu) {
  const CommandResult result = env("no-quota", {"--torch-version", "2.4.0", "--explain"},
                                   {{"MEMSCOPE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("8 online: 8 usable"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("OMP_NUM_THREADS=8"), std::string::npos) << result.out;
  EXPECT_EQ(result.out.find("PYTORCH_CUDA_ALLOC_CONF="), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("no NVIDIA GPU found"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("pin_memory=False"), std::string::npos) << result.out;
  // 6 GiB available: 6 / 2 / 1 GiB = 3 workers, fewer than the 7 CPUs allow.
  EXPECT_NE(result.out.find("num_workers=3"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("limited by memory"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("Facts: 8 online CPUs, no cgroup CPU quota"), std::string::npos)
      << "--explain adds the facts:\n" << result.out;
  const CommandResult plain = env("no-quota", {"--no-gpu"});
  EXPECT_EQ(plain.out.find("Facts:"), std::string::npos) << "no --explain:\n" << plain.out;
}

TEST(Env, FilesThatDoNotParseAreNotesNotFailures) {
  const CommandResult result = env("bad-files", {"--no-gpu", "--torch-version", "unknown"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("CPU list 'all of them': expected ranges like 0-3,8"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("cpu.max 'lots 100000': expected 'max' or a positive quota"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("1 online: 1 usable"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("torch     unknown"), std::string::npos) << result.out;
}

TEST(Env, ShellSyntaxes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bash", "export OMP_NUM_THREADS='2'\n"},
      {"zsh", "export MALLOC_ARENA_MAX='2'\n"},
      {"fish", "set -gx OMP_NUM_THREADS '2'\n"},
      {"powershell", "$env:OMP_NUM_THREADS = \"2\"\n"},
  };
  for (const auto& [shell, line] : cases) {
    const CommandResult result = env("quota-v2", {"--shell", shell, "--torch-version", "2.2"});
    ASSERT_EQ(result.exit_code, 0) << shell << ": " << result.err;
    EXPECT_NE(result.out.find(line), std::string::npos) << shell << ":\n" << result.out;
    EXPECT_NE(result.out.find("# In the training script: DataLoader(num_workers=1, "
                              "pin_memory=True, persistent_workers=True)"),
              std::string::npos)
        << result.out;
  }
}

TEST(Env, WrittenScriptSetsTheVariablesAndIsNotOverwrittenWithoutForce) {
  TempDir tmp;
  const std::string script = tmp.file("env.sh");
  CommandResult result = env("quota-v2", {"--write", script, "--torch-version", "2.2"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("source " + script), std::string::npos) << result.err;
  EXPECT_NE(result.out.find("Recommended environment"), std::string::npos) << result.out;
  const CommandResult sourced = run_command(
      {"bash", "-c", "source \"$0\" && echo \"$OMP_NUM_THREADS $PYTORCH_CUDA_ALLOC_CONF\"", script});
  EXPECT_EQ(sourced.out, "2 expandable_segments:True\n") << sourced.err;

  write_file(script, "mine\n");
  result = env("quota-v2", {"--write", script});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--force"), std::string::npos) << result.err;
  EXPECT_EQ(read_file(script), "mine\n") << "an existing file is kept";
  result = env("quota-v2", {"--write", script, "--force", "--shell", "fish"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(read_file(script).find("set -gx OMP_NUM_THREADS '2'"), std::string::npos);
}

TEST(Env, BadInput) {
  TempDir tmp;
  write_file(tmp.file("not-json"), "{ nope");
  write_file(tmp.file("other.json"), R"({"report": "memscope-fragment", "mode": "snapshot"})");
  // A simulate report with a field of another type: damaged input (3), not an internal error.
  const std::string sim_head = R"({"report": "memscope-fragment", "mode": "simulate", )";
  write_file(tmp.file("bad-snapshot.json"),
             sim_head + R"("snapshot": 5, "devices": [{"device": 0, "candidates": [{"label": "a"}],
                 "recommended": {"label": "a"}}]})");
  write_file(tmp.file("bad-label.json"),
             sim_head + R"("snapshot": "s", "devices": [{"device": 0, "candidates": [{"label": "a"}],
                 "recommended": {"label": null}}]})");
  write_file(tmp.file("bad-device.json"),
             sim_head + R"("snapshot": "s", "devices": [{"device": "0", "candidates": [],
                 "recommended": 3}]})");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--shell", "tcsh"}, 2, "unknown shell 'tcsh' (expected bash, zsh, fish or powershell)"},
      {{"--shell", "bash", "--json"}, 2, "--json and --shell"},
      {{"--procs", "0"}, 2, "--procs must be at least 1"},
      {{"--procs", "-3"}, 2, "--procs"},
      {{"--force"}, 2, "--force goes with --write"},
      {{"--write", tmp.file("missing-dir/env.sh")}, 2, "No such file or directory"},
      {{"--snapshot-sim", tmp.file("absent.json")}, 3, "cannot read"},
      {{"--snapshot-sim", tmp.file("not-json")}, 3, "not JSON"},
      {{"--snapshot-sim", tmp.file("other.json")}, 3, "not a `memscope fragment --simulate"},
      {{"--snapshot-sim", tmp.file("bad-snapshot.json")}, 3, "a field has the wrong type"},
      {{"--snapshot-sim", tmp.file("bad-label.json")}, 3, "a field has the wrong type"},
      {{"--snapshot-sim", tmp.file("bad-device.json")}, 3, "a field has the wrong type"},
  };
  for (const Case& c : cases) {
    const CommandResult result = env("quota-v2", c.args);
    std::string joined;
    for (const auto& arg : c.args) joined += arg + " ";
    EXPECT_EQ(result.exit_code, c.exit_code) << joined << result.err;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << joined << result.err;
    EXPECT_EQ(result.out, "") << joined;
  }
}

TEST(Env, MeasuredRecommendationFromFragmentSimulateWins) {
  TempDir tmp;
  const std::string snapshot = test_data_dir() + "/snapshots/fragmented.pickle";
  const CommandResult simulated = run_command(
      {memscope_binary(), "fragment", "--simulate", snapshot, "--output", tmp.file("sim.json")});
  ASSERT_EQ(simulated.exit_code, 0) << simulated.err;
  const nlohmann::json sim = nlohmann::json::parse(read_file(tmp.file("sim.json")));
  const nlohmann::json& device = sim["devices"][0];
  const std::string config = device["recommended"]["config"];
  ASSERT_NE(device["recommended"]["label"], device["candidates"][0]["label"])
      << "this snapshot should have a better setting than its own; pick another fixture";

  const nlohmann::json doc =
      env_json("quota-v2", {"--snapshot-sim", tmp.file("sim.json"), "--torch-version", "2.4"});
  EXPECT_EQ(doc["env"]["PYTORCH_CUDA_ALLOC_CONF"], config);
  std::string reason;
  for (const auto& item : doc["recommendations"]) {
    if (item["name"] == "PYTORCH_CUDA_ALLOC_CONF") reason = item["reason"];
  }
  EXPECT_EQ(reason.rfind("measured by fragment --simulate on " + snapshot + ": peak reserved ", 0),
            0u)
      << reason;
  EXPECT_NE(reason.find(" → "), std::string::npos) << reason;
}

TEST(Env, FindsTheNewestSimulateReportInTheWorkingDirectory) {
  TempDir tmp;
  const std::string snapshot = test_data_dir() + "/snapshots/fragmented.pickle";
  const CommandResult simulated = run_command(
      {memscope_binary(), "fragment", "--simulate", snapshot, "--output", tmp.file("sim.json")});
  ASSERT_EQ(simulated.exit_code, 0) << simulated.err;
  const std::string config =
      nlohmann::json::parse(read_file(tmp.file("sim.json")))["devices"][0]["recommended"]["config"];
  // Other JSON files beside it (not reports, broken) are passed over without a complaint.
  write_file(tmp.file("a-config.json"), R"({"hidden_size": 4096})");
  write_file(tmp.file("broken.json"), "{ nope");
  const auto env_in_dir = [&](const std::string& extra) {
    return run_command({"sh", "-c",
                        "cd \"$0\" && exec \"$1\" --proc-root \"$2\"/proc --sys-root \"$2\"/sys "
                        "env --json --torch-version 2.4 " + extra,
                        tmp.path(), memscope_binary(), fixture("quota-v2")},
                       one_gpu(), 60);
  };
  const CommandResult found = env_in_dir("");
  ASSERT_EQ(found.exit_code, 0) << found.err;
  const nlohmann::json doc = nlohmann::json::parse(found.out);
  EXPECT_EQ(doc["env"]["PYTORCH_CUDA_ALLOC_CONF"], config) << found.out;
  EXPECT_NE(found.out.find("using the fragment --simulate results in sim.json"), std::string::npos)
      << found.out;

  // --snapshot-sim none: the generic rule (torch 2.4: expandable segments).
  const CommandResult ignored = env_in_dir("--snapshot-sim none");
  ASSERT_EQ(ignored.exit_code, 0) << ignored.err;
  EXPECT_EQ(nlohmann::json::parse(ignored.out)["env"]["PYTORCH_CUDA_ALLOC_CONF"],
            "expandable_segments:True")
      << ignored.out;
}

// What run --tune sets, removed from this test's own environment (which its children inherit):
// a variable set by whoever runs the tests would otherwise be kept as the user's value.
void unset_tuned_variables() {
  for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                           "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "TOKENIZERS_PARALLELISM",
                           "PYTORCH_CUDA_ALLOC_CONF"}) {
    ::unsetenv(name);
  }
}

TEST(RunTune, TheJobSeesTheRecommendedVariablesAndTheSessionRecordsThem) {
  unset_tuned_variables();
  TempDir tmp;
  // What env recommends on this machine (no fixture: run samples the real system).
  std::map<std::string, std::string> environment = one_gpu();
  const CommandResult advised = run_command({memscope_binary(), "env", "--json"}, environment);
  ASSERT_EQ(advised.exit_code, 0) << advised.err;
  const nlohmann::json doc = nlohmann::json::parse(advised.out);
  const std::string threads = doc["env"]["OMP_NUM_THREADS"];

  environment["MKL_NUM_THREADS"] = "7";  // the user's own: kept
  const CommandResult result = run_command(
      {memscope_binary(), "run", "--tune", "--interval", "0.1", "--output", tmp.file("s.db"), "--",
       "sh", "-c", "echo \"$OMP_NUM_THREADS $MKL_NUM_THREADS $MALLOC_ARENA_MAX\" > \"$0\"",
       tmp.file("seen")},
      environment);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(read_file(tmp.file("seen")),
            threads + " 7 " + std::string(doc["env"]["MALLOC_ARENA_MAX"]) + "\n");
  EXPECT_NE(result.err.find("MKL_NUM_THREADS=7  kept user's value (recommended " +
                            std::string(doc["env"]["MKL_NUM_THREADS"]) + ")"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("OMP_NUM_THREADS=" + threads), std::string::npos) << result.err;

  auto reader = store::SessionReader::open(tmp.file("s.db"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  std::string tuned;
  for (const RecordingEvent& event : reader->events()) {
    if (event.kind == "tuned-env") tuned = event.message;
  }
  const nlohmann::json recorded = nlohmann::json::parse(tuned, nullptr, false);
  ASSERT_FALSE(recorded.is_discarded()) << tuned;
  EXPECT_EQ(recorded["applied"]["OMP_NUM_THREADS"], threads);
  EXPECT_EQ(recorded["applied"]["PYTORCH_CUDA_ALLOC_CONF"], doc["env"]["PYTORCH_CUDA_ALLOC_CONF"]);
  EXPECT_EQ(recorded["kept"]["MKL_NUM_THREADS"]["value"], "7");
  EXPECT_FALSE(recorded["applied"].contains("MKL_NUM_THREADS"));
}

TEST(RunTune, WithoutTuneNothingIsAdded) {
  unset_tuned_variables();
  TempDir tmp;
  const CommandResult result = run_command(
      {memscope_binary(), "run", "--no-gpu", "--interval", "0.1", "--output", tmp.file("s.db"),
       "--", "sh", "-c", "echo \"${MALLOC_ARENA_MAX:-unset}\" > \"$0\"", tmp.file("seen")},
      {});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(read_file(tmp.file("seen")), "unset\n");
}

}  // namespace
}  // namespace memscope::testing
