// memscope estimate end to end: the JSON figures for a tiny config worked out by hand, a
// Llama-2-7B config, the table, and every bad input with its exit status and message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

std::string fixture(const std::string& name) { return test_data_dir() + "/estimate/" + name; }

CommandResult estimate(std::vector<std::string> args) {
  args.insert(args.begin(), {memscope_binary(), "estimate"});
  return run_command(args, {}, 30);
}

nlohmann::json json_of(const CommandResult& result) {
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(result.out);
}

TEST(Estimate, TinyConfigJsonFiguresWorkedOutByHand) {
  // tiny.json: BERT-style, h 64, 2 layers, 4 heads, I 256, V 1000, 128 positions.
  // Parameters: Vh 64000 + 128h 8192 + 2 × (4h² + 4h + 2hI + I + h + 4h = 49984) + 2h = 172288.
  const auto doc = json_of(
      estimate({"--model-config", fixture("tiny.json"), "--batch", "2", "--seq", "16", "--json"}));
  EXPECT_EQ(doc["parameters"], 172288);
  EXPECT_EQ(doc["weights_bytes"], 2 * 172288);     // bf16 by default
  EXPECT_EQ(doc["gradients_bytes"], 2 * 172288);
  EXPECT_EQ(doc["optimizer_bytes"], 12 * 172288);  // fp32 master + Adam moments
  // L × sbh(34 + 5as/h) = 2 × (16·2·64) × (34 + 5·4·16/64) = 2 × 2048 × 39.
  EXPECT_EQ(doc["activations_bytes"], 2 * 2048 * 39);
  EXPECT_EQ(doc["temporary_bytes"], 4 * 16 * 2 * 1000);  // fp32 logits, 4sbv
  EXPECT_EQ(doc["cuda_context_bytes"], 512 << 20);
  EXPECT_EQ(doc["total_bytes"], 539915264);
  EXPECT_EQ(doc["formulas"]["model_states"], "no ZeRO: 16Ψ");
  EXPECT_EQ(doc["formulas"]["activations"], "L × sbh(34 + 5as/h) (Korthikanti et al. 2022)");
  EXPECT_FALSE(doc.contains("max_batch_size"));
  EXPECT_FALSE(doc.contains("fits"));
}

TEST(Estimate, SuggestBatchFindsTheLargestThatFits) {
  // 600 MiB less the fixed 512 MiB + 16Ψ leaves 89,518,080 bytes; each sample costs
  // 2 × 39,936 (activations) + 64,000 (logits) = 143,872: 622 fit, 623 do not.
  const auto doc = json_of(estimate({"--model-config", fixture("tiny.json"), "--batch", "2",
                                     "--seq", "16", "--gpu-memory", "600MiB", "--suggest-batch",
                                     "--json"}));
  EXPECT_EQ(doc["max_batch_size"], 622);
  EXPECT_EQ(doc["gpu_memory_bytes"], 600ull << 20);
  EXPECT_EQ(doc["fits"], true);
}

TEST(Estimate, LlamaSevenBillionConfigUnderZero3) {
  const auto doc = json_of(estimate({"--model-config", fixture("llama-7b.json"), "--batch", "1",
                                     "--seq", "4096", "--zero", "3", "--gpus", "8",
                                     "--checkpointing", "full", "--json"}));
  const uint64_t psi = 6738415616;
  EXPECT_EQ(doc["parameters"], psi);
  EXPECT_EQ(doc["weights_bytes"], 2 * psi / 8);
  EXPECT_EQ(doc["gradients_bytes"], 2 * psi / 8);
  EXPECT_EQ(doc["optimizer_bytes"], 12 * psi / 8);
  EXPECT_EQ(doc["activations_bytes"], 32ull * 2 * 4096 * 4096);  // L × 2sbh
  EXPECT_EQ(doc["temporary_bytes"], 4ull * 4096 * 32000);
  EXPECT_EQ(doc["data_parallel"], 8);
  // DeepSpeed ZeRO-3: 4L + 18Ψ/N with L the 32000 × 4096 embedding.
  EXPECT_EQ(doc["deepspeed_estimate_bytes"], 4ull * 32000 * 4096 + 18 * psi / 8);
}

TEST(Estimate, ParamsAloneGivesModelStatesOnly) {
  const auto doc = json_of(estimate({"--params", "7.5B", "--batch", "1", "--precision", "fp16",
                                     "--zero", "1", "--gpus", "64", "--json"}));
  EXPECT_EQ(doc["weights_bytes"].get<uint64_t>() + doc["gradients_bytes"].get<uint64_t>() +
                doc["optimizer_bytes"].get<uint64_t>(),
            31406250000u);  // the ZeRO paper's 31.4 GB
  EXPECT_EQ(doc["activations_bytes"], 0);
  EXPECT_EQ(doc["activations_estimated"], false);
}

TEST(Estimate, TableSaysWhetherItFitsAndStillExitsZero) {
  const auto fits = estimate({"--model-config", fixture("llama-7b.json"), "--batch", "1", "--zero",
                              "3", "--gpus", "8", "--checkpointing", "full", "--gpu-memory",
                              "80GiB", "--suggest-batch"});
  EXPECT_EQ(fits.exit_code, 0) << fits.err;
  for (const char* expected :
       {"weights", "gradients", "optimizer states", "activations", "temporary buffers",
        "CUDA context", "total", "ZeRO-3: 16Ψ/N", "L × 2sbh", "fits in 80GiB: yes",
        "largest micro-batch that fits in 80GiB: ", "DeepSpeed's estimator"}) {
    EXPECT_NE(fits.out.find(expected), std::string::npos) << expected << "\n" << fits.out;
  }
  // A 7B model with Adam on one 80 GB GPU does not fit: said clearly, exit status 0.
  const auto too_big = estimate({"--model-config", fixture("llama-7b.json"), "--batch", "1",
                                 "--gpu-memory", "80GB", "--suggest-batch"});
  EXPECT_EQ(too_big.exit_code, 0) << too_big.err;
  EXPECT_NE(too_big.out.find("fits in 80GB: NO"), std::string::npos) << too_big.out;
  EXPECT_NE(too_big.out.find("none, not even 1"), std::string::npos) << too_big.out;
}

struct BadCase {
  const char* name;
  std::vector<std::string> args;  // "@name" becomes tests/data/estimate/name
  int exit_code;
  const char* stderr_pattern;
};

void PrintTo(const BadCase& c, std::ostream* out) { *out << c.name; }

class EstimateBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(EstimateBadInput, ExitsWithTheDocumentedStatusAndSaysWhy) {
  const BadCase& c = GetParam();
  std::vector<std::string> args;
  for (const std::string& arg : c.args) {
    args.push_back(!arg.empty() && arg[0] == '@' ? fixture(arg.substr(1)) : arg);
  }
  const auto result = estimate(args);
  EXPECT_EQ(result.exit_code, c.exit_code) << "stderr: " << result.err;
  EXPECT_TRUE(std::regex_search(result.err, std::regex(c.stderr_pattern)))
      << "stderr was: " << result.err;
  EXPECT_EQ(result.out, "");
}

const BadCase kBadCases[] = {
    {"NoModel", {"--batch", "1"}, 2, "give the model: --params N or --model-config"},
    {"BothModels", {"--params", "7B", "--model-config", "@tiny.json", "--batch", "1"}, 2,
     "not both"},
    {"MissingBatch", {"--params", "7B"}, 2, "--batch is required"},
    {"ZeroBatch", {"--params", "7B", "--batch", "0"}, 2,
     "micro-batch size must be at least 1, got 0"},
    {"NegativeBatch", {"--params", "7B", "--batch=-3"}, 2,
     "micro-batch size must be at least 1, got -3"},
    {"BatchNotANumber", {"--params", "7B", "--batch", "many"}, 2, "many"},
    {"NegativeSeq", {"--model-config", "@tiny.json", "--batch", "1", "--seq=-5"}, 2,
     "sequence length must be at least 1, got -5"},
    {"UnknownPrecision", {"--params", "7B", "--batch", "1", "--precision", "fp8"}, 2,
     "unknown --precision 'fp8' \\(choose fp32, fp16, bf16\\)"},
    {"UnknownOptimizer", {"--params", "7B", "--batch", "1", "--optimizer", "lion"}, 2,
     "unknown --optimizer 'lion'"},
    {"UnknownCheckpointing", {"--params", "7B", "--batch", "1", "--checkpointing", "some"}, 2,
     "unknown --checkpointing 'some'"},
    {"BadParams", {"--params", "7X", "--batch", "1"}, 2, "'7X' is not a parameter count"},
    {"ZeroParams", {"--params", "0", "--batch", "1"}, 2, "'0' is not a parameter count"},
    {"ZeroStageFour", {"--params", "7B", "--batch", "1", "--zero", "4"}, 2,
     "ZeRO stage must be 0, 1, 2 or 3, got 4"},
    {"NoGpus", {"--params", "7B", "--batch", "1", "--gpus", "0"}, 2,
     "GPU count must be at least 1, got 0"},
    {"TensorParallelVsGpus", {"--params", "7B", "--batch", "1", "--gpus", "6", "--tensor-parallel", "4"},
     2, "tensor parallel size 4 does not divide the 6 GPUs"},
    {"TensorParallelVsHeads",
     {"--model-config", "@tiny.json", "--batch", "1", "--gpus", "3", "--tensor-parallel", "3"}, 2,
     "tensor parallel size 3 does not divide the 4 attention heads"},
    {"BadGpuMemory", {"--params", "7B", "--batch", "1", "--gpu-memory", "lots"}, 2,
     "--gpu-memory 'lots' is not a size"},
    {"SuggestWithoutGpuMemory", {"--model-config", "@tiny.json", "--batch", "1", "--suggest-batch"},
     2, "--suggest-batch needs --gpu-memory"},
    {"SuggestWithParams",
     {"--params", "7B", "--batch", "1", "--gpu-memory", "80GiB", "--suggest-batch"}, 2,
     "--suggest-batch needs --model-config"},
    {"ConfigMissing", {"--model-config", "@absent.json", "--batch", "1"}, 3,
     "cannot read '.*absent.json': No such file or directory"},
    {"ConfigNotJson", {"--model-config", "@truncated.json", "--batch", "1"}, 3,
     "truncated.json': model config is not valid JSON"},
    {"ConfigZeroLayers", {"--model-config", "@zero-layers.json", "--batch", "1"}, 3,
     "zero-layers.json': model config 'num_hidden_layers' is 0: must be at least 1"},
    {"ConfigMissingField", {"--model-config", "@missing-field.json", "--batch", "1"}, 3,
     "missing-field.json': model config has no 'intermediate_size'"},
    {"ConfigHeadsNotDividing", {"--model-config", "@heads-not-dividing.json", "--batch", "1"}, 3,
     "num_attention_heads 5 does not divide hidden_size 64"},
};

INSTANTIATE_TEST_SUITE_P(Estimate, EstimateBadInput, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace memscope::testing
