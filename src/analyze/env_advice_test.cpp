#include "analyze/env_advice.hpp"

#include <gtest/gtest.h>

namespace memscope::analyze {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

// The recommendation called `name`; one named and valued "<absent>" when there is none.
Recommendation find(const EnvAdvice& advice, const std::string& name) {
  for (const Recommendation& item : advice.items) {
    if (item.name == name) return item;
  }
  return {"<absent>", "<absent>", "", "", true};
}

std::string value_of(const EnvAdvice& advice, const std::string& name) {
  return find(advice, name).value;
}

// A 16-CPU host with 64 GiB, two 80 GiB GPUs, torch 2.3.
MachineFacts big_host() {
  MachineFacts facts;
  facts.online_cpus = 16;
  facts.ram_total_bytes = 64 * kGiB;
  facts.ram_available_bytes = 60 * kGiB;
  facts.gpus = {{0, "A100", 80 * kGiB}, {1, "A100", 80 * kGiB}};
  facts.torch_version = "2.3.1+cu121";
  facts.torch_version_source = "--torch-version";
  return facts;
}

TEST(EnvAdvice, ThreadsFollowTheCgroupQuotaNotTheOnlineCpus) {
  MachineFacts facts = big_host();
  facts.cpu_quota_cores = 4.5;  // floor: 4
  facts.cpu_quota_source = "cgroup v2 /job/cpu.max";
  const EnvAdvice advice = recommend_env(facts);
  EXPECT_EQ(advice.usable_cpus, 4u);
  EXPECT_EQ(value_of(advice, "OMP_NUM_THREADS"), "4");
  EXPECT_EQ(value_of(advice, "MKL_NUM_THREADS"), "4");
  EXPECT_EQ(value_of(advice, "OPENBLAS_NUM_THREADS"), "4");
  EXPECT_NE(find(advice, "OMP_NUM_THREADS").detail.find("cgroup CPU quota 4.50"),
            std::string::npos);
}

TEST(EnvAdvice, AQuotaAboveTheOnlineCpusChangesNothing) {
  MachineFacts facts = big_host();
  facts.cpu_quota_cores = 64;
  EXPECT_EQ(value_of(recommend_env(facts), "OMP_NUM_THREADS"), "16");
}

TEST(EnvAdvice, ThreadsAreSharedBetweenProcessesAndNeverZero) {
  MachineFacts facts = big_host();
  facts.processes = 3;  // 16 / 3 = 5
  EXPECT_EQ(value_of(recommend_env(facts), "OMP_NUM_THREADS"), "5");
  facts.cpu_quota_cores = 0.5;  // less than one CPU: still one thread
  facts.processes = 2;
  const EnvAdvice advice = recommend_env(facts);
  EXPECT_EQ(value_of(advice, "OMP_NUM_THREADS"), "1");
  ASSERT_FALSE(advice.notes.empty());
  EXPECT_NE(advice.notes.back().find("oversubscribe"), std::string::npos);
}

TEST(EnvAdvice, ExpandableSegmentsFromTorch21On) {
  MachineFacts facts = big_host();
  EXPECT_EQ(value_of(recommend_env(facts), "PYTORCH_CUDA_ALLOC_CONF"), "expandable_segments:True");
  facts.torch_version = "2.1.0";
  EXPECT_EQ(value_of(recommend_env(facts), "PYTORCH_CUDA_ALLOC_CONF"), "expandable_segments:True");
  facts.torch_version = "2.0.1+cu118";
  EXPECT_EQ(value_of(recommend_env(facts), "PYTORCH_CUDA_ALLOC_CONF"),
            "max_split_size_mb:512,garbage_collection_threshold:0.8");
}

TEST(EnvAdvice, UnknownTorchGetsMaxSplitSizedByTheSmallestGpu) {
  MachineFacts facts = big_host();
  facts.torch_version.clear();
  facts.gpus = {{0, "A100", 80 * kGiB}, {1, "T4", 16 * kGiB}};
  const EnvAdvice advice = recommend_env(facts);
  EXPECT_EQ(value_of(advice, "PYTORCH_CUDA_ALLOC_CONF"),
            "max_split_size_mb:128,garbage_collection_threshold:0.8");
  EXPECT_NE(find(advice, "PYTORCH_CUDA_ALLOC_CONF").reason.find("torch version unknown"),
            std::string::npos);
}

TEST(EnvAdvice, MaxSplitSizeRule) {
  EXPECT_EQ(max_split_size_mb_for(4 * kGiB), 64u);     // 32 -> clamped up to 64
  EXPECT_EQ(max_split_size_mb_for(16 * kGiB), 128u);   // 128
  EXPECT_EQ(max_split_size_mb_for(24 * kGiB), 128u);   // 192 -> 128
  EXPECT_EQ(max_split_size_mb_for(40 * kGiB), 256u);   // 320 -> 256
  EXPECT_EQ(max_split_size_mb_for(80 * kGiB), 512u);   // 640 -> 512
  EXPECT_EQ(max_split_size_mb_for(141 * kGiB), 1024u);  // 1128 -> 1024
  EXPECT_EQ(max_split_size_mb_for(1024 * kGiB), 1024u);  // clamped
}

TEST(EnvAdvice, AMeasuredConfigWinsOverTheRule) {
  MachineFacts facts = big_host();
  MeasuredAllocConf measured;
  measured.config = "max_split_size_mb:256";
  measured.snapshot = "snap.pickle";
  measured.source = "sim.json";
  measured.recorded_peak_reserved_bytes = 10 * kGiB;
  measured.peak_reserved_bytes = 8 * kGiB;
  facts.measured = measured;
  const EnvAdvice advice = recommend_env(facts);
  const Recommendation conf = find(advice, "PYTORCH_CUDA_ALLOC_CONF");
  EXPECT_EQ(conf.value, "max_split_size_mb:256");
  EXPECT_EQ(conf.reason,
            "measured by fragment --simulate on snap.pickle: peak reserved 10.0 GiB → 8.0 GiB");
  // Nothing better measured: the rule, with a note.
  facts.measured->config.clear();
  const EnvAdvice fallback = recommend_env(facts);
  EXPECT_EQ(value_of(fallback, "PYTORCH_CUDA_ALLOC_CONF"), "expandable_segments:True");
  ASSERT_EQ(fallback.notes.size(), 1u);
  EXPECT_NE(fallback.notes[0].find("nothing better"), std::string::npos);
}

TEST(EnvAdvice, WithoutGpusNoCudaAdviceAndNoPinnedMemory) {
  MachineFacts facts = big_host();
  facts.gpus.clear();
  facts.gpu_unavailable_reason = "NVML not available";
  const EnvAdvice advice = recommend_env(facts);
  EXPECT_EQ(find(advice, "PYTORCH_CUDA_ALLOC_CONF").name, "<absent>");
  EXPECT_EQ(value_of(advice, "DataLoader pin_memory"), "False");
  ASSERT_EQ(advice.notes.size(), 1u);
  EXPECT_NE(advice.notes[0].find("no NVIDIA GPU found (NVML not available)"), std::string::npos);
}

TEST(EnvAdvice, WorkersFromCpusAndMemoryHeadroom) {
  MachineFacts facts = big_host();
  facts.cpu_quota_cores = 6;  // 5 for workers
  EXPECT_EQ(value_of(recommend_env(facts), "DataLoader num_workers"), "5");
  // 60 GiB available but a 16 GiB cgroup limit with 10 used: 6 GiB headroom / 2 = 3 workers.
  facts.memory_limit_bytes = 16 * kGiB;
  facts.memory_limit_usage_bytes = 10 * kGiB;
  const EnvAdvice limited = recommend_env(facts);
  EXPECT_EQ(limited.memory_headroom_bytes, 6 * kGiB);
  EXPECT_EQ(value_of(limited, "DataLoader num_workers"), "3");
  EXPECT_NE(find(limited, "DataLoader num_workers").reason.find("limited by memory"),
            std::string::npos);
  EXPECT_FALSE(find(limited, "DataLoader num_workers").is_env);
  EXPECT_EQ(value_of(limited, "DataLoader persistent_workers"), "True");
  EXPECT_EQ(value_of(limited, "TOKENIZERS_PARALLELISM"), "false");
  // Plenty of both: capped at 8.
  MachineFacts wide = big_host();
  wide.online_cpus = 64;
  EXPECT_EQ(value_of(recommend_env(wide), "DataLoader num_workers"), "8");
}

TEST(EnvAdvice, OneCpuMeansNoWorkersNoPersistenceAndTokenizerThreads) {
  MachineFacts facts = big_host();
  facts.online_cpus = 1;
  const EnvAdvice advice = recommend_env(facts);
  EXPECT_EQ(value_of(advice, "DataLoader num_workers"), "0");
  EXPECT_EQ(value_of(advice, "DataLoader persistent_workers"), "False");
  EXPECT_EQ(value_of(advice, "TOKENIZERS_PARALLELISM"), "true");
  EXPECT_EQ(value_of(advice, "MALLOC_ARENA_MAX"), "2");
  EXPECT_EQ(value_of(recommend_env(big_host()), "MALLOC_ARENA_MAX"), "4");
}

TEST(EnvAdvice, TorchVersionPy) {
  EXPECT_EQ(parse_torch_version_py("from typing import Optional\n\n__all__ = ['__version__']\n"
                                   "__version__ = '2.1.0+cu121'\ndebug = False\n"),
            "2.1.0+cu121");
  EXPECT_EQ(parse_torch_version_py("__version__ = \"1.13.1\"\n"), "1.13.1");
  EXPECT_EQ(parse_torch_version_py("__version__: str = '2.5.0a0+git1'\n"), "2.5.0a0+git1");
  EXPECT_EQ(parse_torch_version_py("x = 1\n"), "");
  EXPECT_EQ(parse_torch_version_py("__version__ = get()\n"), "");
  EXPECT_EQ(parse_torch_version_py("__version__ = '2.1\n"), "");
}

TEST(EnvAdvice, ExpandableSegmentsVersionCheck) {
  EXPECT_EQ(torch_has_expandable_segments("2.1.0"), true);
  EXPECT_EQ(torch_has_expandable_segments("2.10.0a0"), true);
  EXPECT_EQ(torch_has_expandable_segments("3.0"), true);
  EXPECT_EQ(torch_has_expandable_segments("2.0.1"), false);
  EXPECT_EQ(torch_has_expandable_segments("1.13.1+cpu"), false);
  EXPECT_EQ(torch_has_expandable_segments("nightly"), std::nullopt);
  EXPECT_EQ(torch_has_expandable_segments("2"), std::nullopt);
  EXPECT_EQ(torch_has_expandable_segments(""), std::nullopt);
}

}  // namespace
}  // namespace memscope::analyze
