// The published figures (../shared/specs/pytorch-memory.md section 4) reproduced exactly, the
// batch search, and every validation error.
#include "analyze/training_memory.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace memscope::analyze {
namespace {

TrainingSetup zero_paper(int stage) {
  TrainingSetup setup;
  setup.parameters = 7'500'000'000;
  setup.precision = Precision::kFp16;
  setup.optimizer = Optimizer::kAdamW;
  setup.zero_stage = stage;
  setup.gpus = 64;
  return setup;
}

uint64_t model_states(const TrainingMemory& m) {
  return m.weights_bytes + m.gradients_bytes + m.optimizer_bytes;
}

std::string gigabytes(uint64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / 1e9);
}

// Llama-2-7B's config.json fields.
ModelConfig llama2_7b() {
  ModelConfig c;
  c.hidden_size = 4096;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 32;
  c.intermediate_size = 11008;
  c.vocab_size = 32000;
  c.max_position_embeddings = 4096;
  c.gated_mlp = true;
  c.tied_embeddings = false;
  return c;
}

ModelConfig bert_base() {
  ModelConfig c;
  c.hidden_size = 768;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.intermediate_size = 3072;
  c.vocab_size = 30522;
  c.max_position_embeddings = 512;
  return c;
}

TEST(TrainingMemory, ZeroPaperSevenPointFiveBillionOn64Gpus) {
  // Rajbhandari et al. (arXiv:1910.02054) figure 1: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB.
  const uint64_t expected[] = {120'000'000'000, 31'406'250'000, 16'640'625'000, 1'875'000'000};
  const char* published[] = {"120.0", "31.4", "16.6", "1.9"};
  for (int stage = 0; stage <= 3; ++stage) {
    auto memory = estimate_training_memory(zero_paper(stage));
    ASSERT_TRUE(memory.ok()) << memory.message();
    EXPECT_EQ(model_states(*memory), expected[stage]) << "stage " << stage;
    EXPECT_EQ(gigabytes(model_states(*memory)), published[stage]) << "stage " << stage;
  }
}

TEST(TrainingMemory, ZeroStagesShardTheRightComponents) {
  auto two = estimate_training_memory(zero_paper(2));
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->weights_bytes, 15'000'000'000u);                 // 2Ψ, not sharded
  EXPECT_EQ(two->gradients_bytes, 15'000'000'000u / 64);          // 2Ψ/N
  EXPECT_EQ(two->optimizer_bytes, 90'000'000'000u / 64);          // 12Ψ/N
  EXPECT_EQ(two->model_states_formula, "ZeRO-2: 2Ψ + 14Ψ/N");
  auto one = estimate_training_memory(zero_paper(1));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->model_states_formula, "ZeRO-1: 4Ψ + 12Ψ/N");
  EXPECT_EQ(estimate_training_memory(zero_paper(3))->model_states_formula, "ZeRO-3: 16Ψ/N");
  EXPECT_EQ(estimate_training_memory(zero_paper(0))->model_states_formula, "no ZeRO: 16Ψ");
}

TEST(TrainingMemory, Fp32AdamIsSixteenBytesPerParameter) {
  TrainingSetup setup;
  setup.parameters = 1'000'000;
  setup.precision = Precision::kFp32;
  auto memory = estimate_training_memory(setup);
  ASSERT_TRUE(memory.ok());
  EXPECT_EQ(memory->weights_bytes, 4'000'000u);
  EXPECT_EQ(memory->gradients_bytes, 4'000'000u);
  EXPECT_EQ(memory->optimizer_bytes, 8'000'000u);
  EXPECT_FALSE(memory->activations_estimated);
  EXPECT_EQ(memory->total_bytes, 16'000'000u + kCudaContextBytes);
}

TEST(TrainingMemory, SgdAndEightBitAdamOptimizerStates) {
  TrainingSetup setup;
  setup.parameters = 1'024'000;
  setup.optimizer = Optimizer::kSgd;
  setup.precision = Precision::kBf16;
  EXPECT_EQ(estimate_training_memory(setup)->optimizer_bytes, 8u * 1'024'000);  // master + momentum
  setup.precision = Precision::kFp32;
  EXPECT_EQ(estimate_training_memory(setup)->optimizer_bytes, 4u * 1'024'000);
  // bitsandbytes: 2 B/param of 8-bit state plus two fp32 scales per 256-element block.
  setup.optimizer = Optimizer::kAdam8bit;
  EXPECT_EQ(estimate_training_memory(setup)->optimizer_bytes, 2u * 1'024'000 + 8u * 4000);
  setup.precision = Precision::kBf16;
  EXPECT_EQ(estimate_training_memory(setup)->optimizer_bytes, 6u * 1'024'000 + 8u * 4000);
}

TEST(TrainingMemory, EightBitAdamKeepsFp32StateForSmallTensors) {
  TrainingSetup setup;
  setup.model = bert_base();
  setup.optimizer = Optimizer::kAdam8bit;
  setup.precision = Precision::kFp32;
  setup.sequence_length = 128;
  const uint64_t small = small_tensor_parameters(bert_base());
  const uint64_t params = count_parameters(bert_base());
  // Biases and LayerNorms: 768 or 3072 elements each.
  EXPECT_EQ(small, 12u * (2 * 768 + 2 * 768 + 3072 + 768 + 4 * 768) + 2 * 768);
  const double large = static_cast<double>(params - small);
  const auto expected =
      static_cast<uint64_t>(std::ceil(8.0 * static_cast<double>(small) + 2.0 * large +
                                      8.0 * large / 256.0));
  EXPECT_EQ(estimate_training_memory(setup)->optimizer_bytes, expected);
}

TEST(TrainingMemory, DeepSpeedEstimatorFigures) {
  // DeepSpeed ZeRO-2 without offload: 2Ψ + 18Ψ/N; ZeRO-3: 4L + 18Ψ/N.
  EXPECT_EQ(deepspeed_zero2_gpu_bytes(7'500'000'000, 64), 15'000'000'000u + 2'109'375'000u);
  EXPECT_EQ(deepspeed_zero3_gpu_bytes(7'500'000'000, 131'072'000, 64),
            524'288'000u + 2'109'375'000u);
  // int() truncation, as DeepSpeed does.
  EXPECT_EQ(deepspeed_zero2_gpu_bytes(1000, 7), 2000u + 2571u);
  auto two = estimate_training_memory(zero_paper(2));
  EXPECT_EQ(two->deepspeed_estimate_bytes, 17'109'375'000u);
  TrainingSetup three;
  three.model = llama2_7b();
  three.zero_stage = 3;
  three.gpus = 8;
  auto memory = estimate_training_memory(three);
  ASSERT_TRUE(memory.ok());
  EXPECT_EQ(memory->deepspeed_estimate_bytes,
            4u * 32000 * 4096 + 18u * 6'738'415'616 / 8);
  EXPECT_EQ(estimate_training_memory(zero_paper(1))->deepspeed_estimate_bytes, 0u);
}

TEST(TrainingMemory, ParameterCountsFromConfigs) {
  EXPECT_EQ(count_parameters(llama2_7b()), 6'738'415'616u);
  // BertModel has 109,482,240: 592,128 of them (token types 2h, pooler h² + h) are not counted.
  EXPECT_EQ(count_parameters(bert_base()), 109'482'240u - 2 * 768 - (768 * 768 + 768));
  EXPECT_EQ(largest_layer_parameters(llama2_7b()), 32000u * 4096);
  ModelConfig tied = llama2_7b();
  tied.tied_embeddings = true;
  EXPECT_EQ(count_parameters(tied), 6'738'415'616u - 32000u * 4096);
  ModelConfig gqa = llama2_7b();
  gqa.num_key_value_heads = 8;  // k and v shrink to h x h/4
  EXPECT_EQ(count_parameters(gqa), 6'738'415'616u - 32u * 2 * (4096u * 4096 - 4096u * 1024));
}

TEST(TrainingMemory, KorthikantiActivationFormulas) {
  const double s = 2048;
  const double b = 4;
  const double h = 6144;
  const double a = 64;
  const double t = 8;
  const double sbh = s * b * h;
  using C = Checkpointing;
  const auto bf16 = Precision::kBf16;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, 1, C::kNone, false, bf16),
                   sbh * (34 + 5 * a * s / h));
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, t, C::kNone, false, bf16),
                   sbh * (10 + 24 / t + 5 * a * s / (h * t)));
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, t, C::kNone, true, bf16),
                   sbh * (34 / t + 5 * a * s / (h * t)));
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, t, C::kSelective, false, bf16),
                   sbh * (10 + 24 / t));
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, t, C::kSelective, true, bf16),
                   34 * sbh / t);
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, 1, C::kFull, false, bf16), 2 * sbh);
  // The breakdown: attention 11sbh + 5as²b, MLP 19sbh, LayerNorms 4sbh.
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, 1, C::kNone, false, Precision::kFp16),
                   (11 * sbh + 5 * a * s * s * b) + 19 * sbh + 4 * sbh);
  // fp32 doubles the values but not the two sbh and one as²b of 1-byte dropout masks.
  EXPECT_DOUBLE_EQ(layer_activation_bytes(s, b, h, a, 1, C::kNone, false, Precision::kFp32),
                   2 * (34 * sbh + 5 * a * s * s * b) - 2 * sbh - a * s * s * b);
}

TEST(TrainingMemory, ActivationsAndLogitsForAConfig) {
  TrainingSetup setup;
  setup.model = llama2_7b();
  setup.micro_batch = 1;
  setup.sequence_length = 4096;
  setup.checkpointing = Checkpointing::kFull;
  auto memory = estimate_training_memory(setup);
  ASSERT_TRUE(memory.ok());
  EXPECT_EQ(memory->activations_bytes, 32u * 2 * 4096 * 4096);  // L × 2sbh
  EXPECT_EQ(memory->temporary_bytes, 4u * 4096 * 32000);        // 4sbv fp32 logits
  EXPECT_EQ(memory->activations_formula, "L × 2sbh (Korthikanti et al. 2022)");
  EXPECT_EQ(memory->total_bytes, memory->weights_bytes + memory->gradients_bytes +
                                     memory->optimizer_bytes + memory->activations_bytes +
                                     memory->temporary_bytes + kCudaContextBytes);
  // The sequence defaults to the config's max_position_embeddings.
  setup.sequence_length = 0;
  EXPECT_EQ(estimate_training_memory(setup)->sequence_length, 4096);
  // Tensor parallelism splits weights and the split part of activations.
  setup.tensor_parallel = 2;
  setup.gpus = 2;
  setup.checkpointing = Checkpointing::kNone;
  auto split = estimate_training_memory(setup);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->weights_bytes, 6'738'415'616u);  // 2 bytes × Ψ/2
  EXPECT_EQ(split->activations_bytes,
            static_cast<uint64_t>(32.0 * 4096 * 4096 * (10 + 12 + 5.0 * 32 * 4096 / (4096 * 2))));
}

TEST(TrainingMemory, LargestMicroBatchThatFits) {
  TrainingSetup setup;
  setup.model = llama2_7b();
  setup.sequence_length = 4096;
  setup.checkpointing = Checkpointing::kFull;
  setup.zero_stage = 3;
  setup.gpus = 8;
  const uint64_t gpu = 80ull << 30;
  auto best = max_micro_batch(setup, gpu);
  ASSERT_TRUE(best.ok()) << best.message();
  ASSERT_GT(*best, 0);
  setup.micro_batch = *best;
  EXPECT_LE(estimate_training_memory(setup)->total_bytes, gpu);
  setup.micro_batch = *best + 1;
  EXPECT_GT(estimate_training_memory(setup)->total_bytes, gpu);
  // Nothing fits: 0, not an error.
  setup.zero_stage = 0;
  setup.gpus = 1;
  EXPECT_EQ(*max_micro_batch(setup, gpu), 0);
  // No config, no activations: no answer.
  TrainingSetup bare;
  bare.parameters = 1000;
  EXPECT_FALSE(max_micro_batch(bare, gpu).ok());
  EXPECT_FALSE(max_micro_batch(setup, 0).ok());
}

TEST(TrainingMemory, ParsesHuggingFaceConfigs) {
  auto llama = parse_model_config(R"({"model_type": "llama", "hidden_size": 4096,
      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
      "intermediate_size": 11008, "vocab_size": 32000, "max_position_embeddings": 4096,
      "hidden_act": "silu", "tie_word_embeddings": false})");
  ASSERT_TRUE(llama.ok()) << llama.message();
  EXPECT_TRUE(llama->gated_mlp);
  EXPECT_FALSE(llama->tied_embeddings);
  EXPECT_EQ(count_parameters(*llama), 6'738'415'616u);
  auto bert = parse_model_config(R"({"model_type": "bert", "hidden_size": 768,
      "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
      "vocab_size": 30522, "max_position_embeddings": 512, "hidden_act": "gelu"})");
  ASSERT_TRUE(bert.ok()) << bert.message();
  EXPECT_FALSE(bert->gated_mlp);
  EXPECT_TRUE(bert->tied_embeddings);
}

TEST(TrainingMemory, ConfigErrorsNameTheField) {
  const std::string full = R"("hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 256, "vocab_size": 100, "max_position_embeddings": 32)";
  EXPECT_EQ(parse_model_config("{" + full + "}").ok(), true);
  EXPECT_EQ(parse_model_config("not json").message(), "model config is not valid JSON");
  EXPECT_EQ(parse_model_config("[1, 2]").message(), "model config is not a JSON object");
  EXPECT_EQ(parse_model_config(R"({"hidden_size": 64})").message(),
            "model config has no 'num_hidden_layers'");
  EXPECT_EQ(parse_model_config(R"({"hidden_size": "big"})").message(),
            "model config field 'hidden_size' is not an integer: \"big\"");
  EXPECT_EQ(parse_model_config("{" + full + R"(, "tie_word_embeddings": 1})").message(),
            "model config field 'tie_word_embeddings' is not true/false: 1");
  auto zero_layers = parse_model_config(
      R"({"hidden_size": 64, "num_hidden_layers": 0, "num_attention_heads": 4,
          "intermediate_size": 256, "vocab_size": 100, "max_position_embeddings": 32})");
  ASSERT_TRUE(zero_layers.ok());
  EXPECT_EQ(validate_model_config(*zero_layers).message(),
            "model config 'num_hidden_layers' is 0: must be at least 1");
  ModelConfig odd = bert_base();
  odd.num_attention_heads = 5;
  EXPECT_EQ(validate_model_config(odd).message(),
            "model config: num_attention_heads 5 does not divide hidden_size 768");
  ModelConfig kv = bert_base();
  kv.num_key_value_heads = 5;
  EXPECT_EQ(validate_model_config(kv).message(),
            "model config: num_key_value_heads 5 does not divide num_attention_heads 12");
  ModelConfig negative = bert_base();
  negative.vocab_size = -1;
  EXPECT_EQ(validate_model_config(negative).message(),
            "model config 'vocab_size' is -1: must be at least 1");
}

TEST(TrainingMemory, SetupErrors) {
  struct Case {
    const char* name;
    void (*change)(TrainingSetup&);
    const char* message;
  };
  const Case cases[] = {
      {"no model", [](TrainingSetup& s) { s.parameters = 0; },
       "no model: give a parameter count or a model config"},
      {"zero batch", [](TrainingSetup& s) { s.micro_batch = 0; },
       "micro-batch size must be at least 1, got 0"},
      {"negative batch", [](TrainingSetup& s) { s.micro_batch = -3; },
       "micro-batch size must be at least 1, got -3"},
      {"negative seq", [](TrainingSetup& s) { s.sequence_length = -1; },
       "sequence length must be at least 1, got -1"},
      {"zero 4", [](TrainingSetup& s) { s.zero_stage = 4; },
       "ZeRO stage must be 0, 1, 2 or 3, got 4"},
      {"zero -1", [](TrainingSetup& s) { s.zero_stage = -1; },
       "ZeRO stage must be 0, 1, 2 or 3, got -1"},
      {"no gpus", [](TrainingSetup& s) { s.gpus = 0; }, "GPU count must be at least 1, got 0"},
      {"tp 0", [](TrainingSetup& s) { s.tensor_parallel = 0; },
       "tensor parallel size must be at least 1, got 0"},
      {"tp vs gpus", [](TrainingSetup& s) { s.gpus = 6; s.tensor_parallel = 4; },
       "tensor parallel size 4 does not divide the 6 GPUs"},
      {"tp vs heads", [](TrainingSetup& s) {
         s.model = bert_base();  // 12 heads
         s.gpus = 8;
         s.tensor_parallel = 8;
       },
       "tensor parallel size 8 does not divide the 12 attention heads"},
      {"bad config", [](TrainingSetup& s) {
         s.model = bert_base();
         s.model->num_hidden_layers = 0;
       },
       "model config 'num_hidden_layers' is 0: must be at least 1"},
  };
  for (const Case& c : cases) {
    TrainingSetup setup;
    setup.parameters = 1000;
    c.change(setup);
    EXPECT_EQ(validate_setup(setup).message(), c.message) << c.name;
    auto memory = estimate_training_memory(setup);
    ASSERT_FALSE(memory.ok()) << c.name;
    EXPECT_EQ(memory.message(), c.message) << c.name;
  }
}

TEST(TrainingMemory, ParsesChoicesAndParameterCounts) {
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_EQ(parse_precision("fp8"), std::nullopt);
  EXPECT_EQ(parse_optimizer("adam8bit"), Optimizer::kAdam8bit);
  EXPECT_EQ(parse_optimizer("lion"), std::nullopt);
  EXPECT_EQ(parse_checkpointing("selective"), Checkpointing::kSelective);
  EXPECT_EQ(parse_checkpointing("some"), std::nullopt);
  EXPECT_EQ(*parse_parameter_count("7e9"), 7'000'000'000u);
  EXPECT_EQ(*parse_parameter_count("7B"), 7'000'000'000u);
  EXPECT_EQ(*parse_parameter_count("350M"), 350'000'000u);
  EXPECT_EQ(*parse_parameter_count("1.3b"), 1'300'000'000u);
  EXPECT_EQ(*parse_parameter_count("125000000"), 125'000'000u);
  EXPECT_EQ(parse_parameter_count("7X").message(),
            "'7X' is not a parameter count (expected e.g. 7e9, 7B, 350M)");
  EXPECT_FALSE(parse_parameter_count("").ok());
  EXPECT_FALSE(parse_parameter_count("B").ok());
  EXPECT_FALSE(parse_parameter_count("7BB").ok());
  EXPECT_EQ(parse_parameter_count("-5").message(),
            "'-5' is not a parameter count between 1 and 1e15");
  EXPECT_FALSE(parse_parameter_count("inf").ok());
}

}  // namespace
}  // namespace memscope::analyze
