// Training memory per GPU (`memscope estimate`): weights, gradients, optimizer states,
// activations, temporary buffers and the CUDA context for a model, a micro-batch and a
// parallel layout, with the formulas of ../shared/specs/pytorch-memory.md section 4 (the ZeRO
// paper for model states, Korthikanti et al. 2022 for activations, DeepSpeed's estimators as a
// cross-check). Pure: numbers in, numbers out; the CLI reads files and prints.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace memscope::analyze {

enum class Precision { kFp32, kFp16, kBf16 };
enum class Optimizer { kAdamW, kSgd, kAdam8bit };
enum class Checkpointing { kNone, kSelective, kFull };

// Hugging Face config.json fields (BERT and Llama spell them alike), plus what decides how the
// parameters are counted.
struct ModelConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // grouped-query attention; 0 = num_attention_heads
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  // Llama family (gated SiLU MLP: gate, up, down; RMSNorm; rotary positions; no biases) versus
  // BERT/GPT (two-matrix MLP, LayerNorm, learned positions, biases).
  bool gated_mlp = false;
  bool tied_embeddings = true;  // tie_word_embeddings; Hugging Face's default is true
};

// Reads a config.json. Errors name what is missing or wrong ("'num_hidden_layers' is 0").
Result<ModelConfig> parse_model_config(std::string_view json_text);
// The config's own consistency: positive sizes, heads dividing hidden (and kv heads dividing
// heads).
Status validate_model_config(const ModelConfig& config);
// Parameters of the model the config describes (embeddings, layers, final norm, an untied output
// layer). Llama-2-7B's config gives 6,738,415,616; BERT-base's gives 108,890,112 (its token-type
// embeddings and pooler, 592,128 more, are not counted).
uint64_t count_parameters(const ModelConfig& config);
// The largest weight matrix (DeepSpeed's "largest layer" L for ZeRO-3).
uint64_t largest_layer_parameters(const ModelConfig& config);
// Parameters in tensors under 4096 elements: bitsandbytes keeps 32-bit state for those.
uint64_t small_tensor_parameters(const ModelConfig& config);

struct TrainingSetup {
  uint64_t parameters = 0;            // --params; ignored when model is set
  std::optional<ModelConfig> model;   // --model-config; needed for activations
  int64_t micro_batch = 1;            // --batch, per GPU
  int64_t sequence_length = 0;        // --seq; 0 = the config's max_position_embeddings
  Precision precision = Precision::kBf16;
  Optimizer optimizer = Optimizer::kAdamW;
  Checkpointing checkpointing = Checkpointing::kNone;
  bool sequence_parallel = false;     // Megatron's sequence parallelism (with tensor parallel)
  int zero_stage = 0;
  int64_t gpus = 1;                   // all GPUs; data-parallel ranks N = gpus / tensor_parallel
  int64_t tensor_parallel = 1;
};

// Command-line values that cannot work: batch < 1, zero outside 0..3, gpus not a multiple of T,
// T not dividing the heads, no parameters...
Status validate_setup(const TrainingSetup& setup);

struct TrainingMemory {
  uint64_t parameters = 0;        // the whole model
  int64_t data_parallel = 1;      // N
  int64_t sequence_length = 0;    // used for activations (0 without a model config)
  // Per GPU, bytes.
  uint64_t weights_bytes = 0;
  uint64_t gradients_bytes = 0;
  uint64_t optimizer_bytes = 0;
  uint64_t activations_bytes = 0;
  uint64_t temporary_bytes = 0;   // fp32 logits of the output layer (needs vocab_size)
  uint64_t cuda_context_bytes = 0;
  uint64_t total_bytes = 0;
  bool activations_estimated = false;  // false with --params alone
  // The formulas used, for people to check: "ZeRO-2: 2Ψ + 14Ψ/N", "sbh(34 + 5as/h) per layer"...
  std::string model_states_formula;
  std::string activations_formula;
  // DeepSpeed's own estimator for this stage (0 when it has none: stages 0, 1, or ZeRO-3
  // without a config to find the largest layer).
  uint64_t deepspeed_estimate_bytes = 0;
};

// CUDA context and kernels a process holds on each GPU before it allocates anything. An
// assumption (it varies with the GPU, the CUDA version and lazy loading), shown as such.
constexpr uint64_t kCudaContextBytes = 512ull << 20;

// Model states per GPU (weights + gradients + optimizer), ZeRO paper: stage 0 (2+2+K)Ψ,
// 1 (2+2)Ψ + KΨ/N, 2 2Ψ + (2+K)Ψ/N, 3 (2+2+K)Ψ/N with K = 12 for mixed-precision Adam.
// Activations per layer (16-bit): Korthikanti et al. as the spec gives them.
Result<TrainingMemory> estimate_training_memory(const TrainingSetup& setup);

// Bytes of activations one transformer layer keeps for the backward pass (spec section 4):
// s = sequence, b = micro-batch, h = hidden, a = heads, t = tensor parallel.
double layer_activation_bytes(double s, double b, double h, double a, double t,
                              Checkpointing checkpointing, bool sequence_parallel,
                              Precision precision);

// DeepSpeed's estimators, GPU side without offload (spec section 4).
uint64_t deepspeed_zero2_gpu_bytes(uint64_t parameters, int64_t gpus);
uint64_t deepspeed_zero3_gpu_bytes(uint64_t parameters, uint64_t largest_layer, int64_t gpus);

// The largest micro-batch whose total fits in gpu_memory_bytes (0 when not even 1 fits), with
// everything else in `setup` kept. Needs a model config.
Result<int64_t> max_micro_batch(TrainingSetup setup, uint64_t gpu_memory_bytes);

// "fp32" -> kFp32 ...; nothing for an unknown word.
std::optional<Precision> parse_precision(std::string_view text);
std::optional<Optimizer> parse_optimizer(std::string_view text);
std::optional<Checkpointing> parse_checkpointing(std::string_view text);
std::string_view to_string(Precision precision);
std::string_view to_string(Optimizer optimizer);
std::string_view to_string(Checkpointing checkpointing);

// "7e9", "7B", "350M", "1.3b", "125000000" -> parameters; an error names the text.
Result<uint64_t> parse_parameter_count(std::string_view text);

}  // namespace memscope::analyze
