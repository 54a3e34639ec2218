#include "report/prometheus.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace memscope::report {
namespace {

AgentState small_state() {
  AgentState state;
  state.hostname = "node1";
  state.endpoint = "127.0.0.1:9400";
  state.samples_taken = 3;
  state.sample_duration_seconds = 0.25;
  state.previous_render_seconds = 0.001;
  state.start_unix_ms = 1700000000000;
  Sample& sample = state.sample;
  sample.unix_ms = 1700000000500;
  sample.system.meminfo.total_bytes = 16ull << 30;
  sample.system.meminfo.available_bytes = 8ull << 30;
  sample.system.used_bytes = 8ull << 30;
  sample.system.limit_bytes = 16ull << 30;
  sample.system.limit_source = "MemTotal";
  sample.system.vmstat.has_oom_kill = true;
  sample.system.vmstat.oom_kill = 2;
  DeviceSample gpu;
  gpu.index = 0;
  gpu.name = "NVIDIA A100";
  gpu.uuid = "GPU-1";
  gpu.total_bytes = 80ull << 30;
  gpu.used_bytes = 1ull << 30;
  gpu.free_bytes = 79ull << 30;
  gpu.utilization_percent = 50;
  sample.devices.push_back(gpu);
  ProcessSample trainer;
  trainer.pid = 42;
  trainer.comm = "python";
  trainer.rank = 1;
  trainer.local_rank = 0;
  trainer.rss_bytes = 100;
  trainer.pss_bytes = 90;
  trainer.uss_bytes = 80;
  trainer.gpu_bytes = 1000;
  sample.processes.push_back(trainer);
  ProcessSample weird;
  weird.pid = 43;
  weird.comm = "we\"ird\\x\ny";
  weird.rss_bytes = weird.pss_bytes = weird.uss_bytes = 10;
  sample.processes.push_back(weird);
  analyze::Assessment host;
  host.resource = "host";
  host.level = analyze::RiskLevel::kHigh;
  host.predicted_oom_seconds = 120.5;
  host.growth_bytes_per_second = 1024.5;
  host.confidence = 0.75;
  host.limit_bytes = 16ull << 30;
  state.assessments.push_back(host);
  analyze::Assessment gpu0 = host;
  gpu0.resource = "gpu0";
  gpu0.level = analyze::RiskLevel::kLow;
  gpu0.predicted_oom_seconds.reset();
  gpu0.growth_bytes_per_second = -3;
  gpu0.confidence = 1;
  gpu0.limit_bytes = 80ull << 30;
  state.assessments.push_back(gpu0);
  analyze::LeakVerdict leak;
  leak.pid = 42;
  leak.comm = "python";
  leak.memory = "uss";
  leak.verdict = "leak suspected";
  leak.growth_bytes_per_second = 2048;
  state.leaks.push_back(leak);
  return state;
}

TEST(Prometheus, ExactTextForASmallSample) {
  const std::string expected = R"(# HELP memscope_agent_info The agent: version, host name and endpoint.
# TYPE memscope_agent_info gauge
memscope_agent_info{version="0.1.0",hostname="node1",endpoint="127.0.0.1:9400"} 1
# HELP memscope_agent_samples_total Samples the agent has taken.
# TYPE memscope_agent_samples_total counter
memscope_agent_samples_total 3
# HELP memscope_agent_sample_duration_seconds What the latest sample cost.
# TYPE memscope_agent_sample_duration_seconds gauge
memscope_agent_sample_duration_seconds 0.25
# HELP memscope_agent_scrape_duration_seconds How long rendering the previous /metrics answer took.
# TYPE memscope_agent_scrape_duration_seconds gauge
memscope_agent_scrape_duration_seconds 0.001
# HELP memscope_agent_last_sample_timestamp_seconds Wall-clock time of the latest sample (Unix seconds).
# TYPE memscope_agent_last_sample_timestamp_seconds gauge
memscope_agent_last_sample_timestamp_seconds 1700000000.5
# HELP memscope_agent_processes Processes the agent reports.
# TYPE memscope_agent_processes gauge
memscope_agent_processes 2
# HELP memscope_host_memory_total_bytes Host memory (MemTotal).
# TYPE memscope_host_memory_total_bytes gauge
memscope_host_memory_total_bytes 17179869184
# HELP memscope_host_memory_available_bytes Host memory available (MemAvailable).
# TYPE memscope_host_memory_available_bytes gauge
memscope_host_memory_available_bytes 8589934592
# HELP memscope_host_memory_used_bytes Host memory used against the tightest limit: the cgroup's usage, or MemTotal - MemAvailable.
# TYPE memscope_host_memory_used_bytes gauge
memscope_host_memory_used_bytes 8589934592
# HELP memscope_host_memory_limit_bytes The tightest host memory limit: the cgroup limit, or MemTotal.
# TYPE memscope_host_memory_limit_bytes gauge
memscope_host_memory_limit_bytes{source="MemTotal"} 17179869184
# HELP memscope_host_swap_used_bytes Swap in use.
# TYPE memscope_host_swap_used_bytes gauge
memscope_host_swap_used_bytes 0
# HELP memscope_host_oom_kills_total Kernel OOM kills (vmstat oom_kill).
# TYPE memscope_host_oom_kills_total counter
memscope_host_oom_kills_total 2
# HELP memscope_gpu_info One per GPU, with its name.
# TYPE memscope_gpu_info gauge
memscope_gpu_info{gpu="0",uuid="GPU-1",name="NVIDIA A100"} 1
# HELP memscope_gpu_up 1 when the GPU could be read, 0 when it was lost.
# TYPE memscope_gpu_up gauge
memscope_gpu_up{gpu="0",uuid="GPU-1"} 1
# HELP memscope_gpu_memory_used_bytes GPU memory used (NVML).
# TYPE memscope_gpu_memory_used_bytes gauge
memscope_gpu_memory_used_bytes{gpu="0",uuid="GPU-1"} 1073741824
# HELP memscope_gpu_memory_total_bytes GPU memory in total.
# TYPE memscope_gpu_memory_total_bytes gauge
memscope_gpu_memory_total_bytes{gpu="0",uuid="GPU-1"} 85899345920
# HELP memscope_gpu_memory_free_bytes GPU memory free.
# TYPE memscope_gpu_memory_free_bytes gauge
memscope_gpu_memory_free_bytes{gpu="0",uuid="GPU-1"} 84825604096
# HELP memscope_gpu_utilization_ratio GPU busy share over NVML's last period.
# TYPE memscope_gpu_utilization_ratio gauge
memscope_gpu_utilization_ratio{gpu="0",uuid="GPU-1"} 0.5
# HELP memscope_process_memory_bytes Memory of a reported process by kind: rss, pss, uss (private) and gpu (summed over GPUs). rank/local_rank from RANK/LOCAL_RANK in its environment, empty when unknown.
# TYPE memscope_process_memory_bytes gauge
memscope_process_memory_bytes{pid="42",comm="python",rank="1",local_rank="0",kind="rss"} 100
memscope_process_memory_bytes{pid="42",comm="python",rank="1",local_rank="0",kind="pss"} 90
memscope_process_memory_bytes{pid="42",comm="python",rank="1",local_rank="0",kind="uss"} 80
memscope_process_memory_bytes{pid="42",comm="python",rank="1",local_rank="0",kind="gpu"} 1000
memscope_process_memory_bytes{pid="43",comm="we\"ird\\x\ny",rank="",local_rank="",kind="rss"} 10
memscope_process_memory_bytes{pid="43",comm="we\"ird\\x\ny",rank="",local_rank="",kind="pss"} 10
memscope_process_memory_bytes{pid="43",comm="we\"ird\\x\ny",rank="",local_rank="",kind="uss"} 10
memscope_process_memory_bytes{pid="43",comm="we\"ird\\x\ny",rank="",local_rank="",kind="gpu"} 0
# HELP memscope_oom_risk_level OOM risk per resource: 0 low, 1 medium, 2 high, 3 critical.
# TYPE memscope_oom_risk_level gauge
memscope_oom_risk_level{resource="host"} 2
memscope_oom_risk_level{resource="gpu0"} 0
# HELP memscope_oom_predicted_seconds Forecast time until the resource reaches its limit; +Inf when it is not growing.
# TYPE memscope_oom_predicted_seconds gauge
memscope_oom_predicted_seconds{resource="host"} 120.5
memscope_oom_predicted_seconds{resource="gpu0"} +Inf
# HELP memscope_oom_growth_bytes_per_second Fitted growth of the resource's memory envelope (may be negative).
# TYPE memscope_oom_growth_bytes_per_second gauge
memscope_oom_growth_bytes_per_second{resource="host"} 1024.5
memscope_oom_growth_bytes_per_second{resource="gpu0"} -3
# HELP memscope_oom_confidence_ratio Confidence of the forecast, 0..1.
# TYPE memscope_oom_confidence_ratio gauge
memscope_oom_confidence_ratio{resource="host"} 0.75
memscope_oom_confidence_ratio{resource="gpu0"} 1
# HELP memscope_oom_limit_bytes The limit the resource is measured against.
# TYPE memscope_oom_limit_bytes gauge
memscope_oom_limit_bytes{resource="host"} 17179869184
memscope_oom_limit_bytes{resource="gpu0"} 85899345920
# HELP memscope_leak_growth_bytes_per_second Trend of a process's memory (memory=uss, or gpuN for its memory on GPU N).
# TYPE memscope_leak_growth_bytes_per_second gauge
memscope_leak_growth_bytes_per_second{pid="42",comm="python",memory="uss"} 2048
# HELP memscope_leak_suspected 1 when the verdict is 'leak suspected'.
# TYPE memscope_leak_suspected gauge
memscope_leak_suspected{pid="42",comm="python",memory="uss"} 1
)";
  const std::string text = prometheus_text(small_state());
  EXPECT_EQ(text, expected);
}

TEST(Prometheus, EscapesLabelValuesAndFormatsSpecialValues) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(format_sample_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_sample_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_sample_value(std::nan("")), "NaN");
  EXPECT_EQ(format_sample_value(3), "3");
  EXPECT_EQ(format_sample_value(-0.125), "-0.125");
  EXPECT_EQ(format_sample_value(1e20), "1e+20");
}

TEST(Prometheus, InvalidUtf8InNamesIsReplaced) {
  AgentState state = small_state();
  state.sample.processes[0].comm = "bad\xff";
  const std::string text = prometheus_text(state);
  EXPECT_EQ(text.find('\xff'), std::string::npos);
  EXPECT_NE(text.find("comm=\"bad\xef\xbf\xbd\""), std::string::npos);
}

TEST(Prometheus, InvalidUtf8InAnyLabelIsReplaced) {
  AgentState state = small_state();
  state.hostname = "node\xc3";
  state.sample.devices[0].name = "A100\xfe";
  const std::string text = prometheus_text(state);
  EXPECT_EQ(text.find('\xfe'), std::string::npos);
  EXPECT_EQ(text.find("node\xc3\""), std::string::npos);
  EXPECT_NE(text.find("hostname=\"node\xef\xbf\xbd\""), std::string::npos);
  EXPECT_NE(text.find("name=\"A100\xef\xbf\xbd\""), std::string::npos);
}

// Every sample line belongs to a family declared once, before it, with its samples together.
void expect_well_formed(const std::string& text) {
  std::map<std::string, int> types;
  std::set<std::string> finished;
  std::string current;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(++types[name], 1) << name;
      if (!current.empty()) finished.insert(current);
      current = name;
      continue;
    }
    if (line[0] == '#') continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name, current) << line;
    EXPECT_EQ(finished.count(name), 0u) << line;
    EXPECT_NE(line.rfind(' '), std::string::npos);
  }
}

TEST(Prometheus, EightGpusAndTwoHundredProcessesRender) {
  AgentState state = small_state();
  const DeviceSample gpu = state.sample.devices.front();
  const ProcessSample process = state.sample.processes.front();
  state.sample.devices.clear();
  state.sample.processes.clear();
  for (int i = 0; i < 8; ++i) {
    DeviceSample device = gpu;
    device.index = i;
    device.uuid = "GPU-" + std::to_string(i);
    state.sample.devices.push_back(device);
  }
  for (int i = 0; i < 200; ++i) {
    ProcessSample p = process;
    p.pid = 1000 + i;
    p.rank = i;
    state.sample.processes.push_back(p);
  }
  const std::string text = prometheus_text(state);
  expect_well_formed(text);
  size_t process_lines = 0;
  size_t gpu_used_lines = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    process_lines += line.rfind("memscope_process_memory_bytes{", 0) == 0;
    gpu_used_lines += line.rfind("memscope_gpu_memory_used_bytes{", 0) == 0;
  }
  EXPECT_EQ(process_lines, 800u);
  EXPECT_EQ(gpu_used_lines, 8u);
  EXPECT_NE(text.find("memscope_process_memory_bytes{pid=\"1199\",comm=\"python\",rank=\"199\","),
            std::string::npos);
  EXPECT_NE(text.find("memscope_gpu_memory_used_bytes{gpu=\"7\",uuid=\"GPU-7\"}"),
            std::string::npos);
}

TEST(Prometheus, LostGpuReportsUpZeroAndNoMemory) {
  AgentState state = small_state();
  state.sample.devices[0].ok = false;
  const std::string text = prometheus_text(state);
  expect_well_formed(text);
  EXPECT_NE(text.find("memscope_gpu_up{gpu=\"0\",uuid=\"GPU-1\"} 0\n"), std::string::npos);
  EXPECT_EQ(text.find("memscope_gpu_memory_used_bytes{"), std::string::npos);
}

TEST(AgentSnapshot, CarriesTheDocumentedFields) {
  const nlohmann::json snapshot = snapshot_json(small_state());
  EXPECT_EQ(snapshot["report"], "memscope-agent-snapshot");
  EXPECT_EQ(snapshot["schema_version"], 1);
  EXPECT_EQ(snapshot["hostname"], "node1");
  EXPECT_EQ(snapshot["endpoint"], "127.0.0.1:9400");
  EXPECT_EQ(snapshot["time_unix_ms"], 1700000000500);
  EXPECT_EQ(snapshot["time"], "2023-11-14T22:13:20.500Z");
  EXPECT_EQ(snapshot["host"]["limit_bytes"], 16ull << 30);
  EXPECT_EQ(snapshot["host"]["oom_kills"], 2);
  EXPECT_TRUE(snapshot["host"]["cgroup"].is_null());
  ASSERT_EQ(snapshot["gpus"].size(), 1u);
  EXPECT_EQ(snapshot["gpus"][0]["uuid"], "GPU-1");
  EXPECT_EQ(snapshot["gpus"][0]["used_bytes"], 1ull << 30);
  ASSERT_EQ(snapshot["processes"].size(), 2u);
  EXPECT_EQ(snapshot["processes"][0]["rank"], 1);
  EXPECT_EQ(snapshot["processes"][0]["local_rank"], 0);
  EXPECT_TRUE(snapshot["processes"][1]["rank"].is_null());
  EXPECT_EQ(snapshot["processes"][0]["gpu_bytes"], 1000);
  ASSERT_EQ(snapshot["oom"].size(), 2u);
  EXPECT_EQ(snapshot["oom"][0]["level"], "high");
  EXPECT_EQ(snapshot["oom"][0]["risk_level"], 2);
  EXPECT_DOUBLE_EQ(snapshot["oom"][0]["predicted_oom_seconds"].get<double>(), 120.5);
  EXPECT_TRUE(snapshot["oom"][1]["predicted_oom_seconds"].is_null());
  ASSERT_EQ(snapshot["leaks"].size(), 1u);
  EXPECT_EQ(snapshot["leaks"][0]["verdict"], "leak suspected");
  EXPECT_DOUBLE_EQ(snapshot["leaks"][0]["growth_bytes_per_second"].get<double>(), 2048);
  // Survives a dump (invalid UTF-8 was replaced) and parses back.
  AgentState odd = small_state();
  odd.sample.processes[0].cmdline = "python \xff";
  std::string dumped;
  EXPECT_NO_THROW(dumped = snapshot_json(odd).dump());
  EXPECT_EQ(nlohmann::json::parse(dumped)["processes"][0]["cmdline"], "python \xef\xbf\xbd");
}

}  // namespace
}  // namespace memscope::report
