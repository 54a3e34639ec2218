#include "analyze/training_memory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace memscope::analyze {
namespace {

// One kind of weight tensor in the model: its size and how many of them there are.
struct TensorGroup {
  uint64_t elements;
  uint64_t count;
};

uint64_t u64(int64_t value) { return static_cast<uint64_t>(std::max<int64_t>(value, 0)); }

std::vector<TensorGroup> weight_tensors(const ModelConfig& c) {
  const uint64_t h = u64(c.hidden_size);
  const uint64_t layers = u64(c.num_hidden_layers);
  const uint64_t heads = u64(std::max<int64_t>(c.num_attention_heads, 1));
  const uint64_t kv_heads = c.num_key_value_heads > 0 ? u64(c.num_key_value_heads) : heads;
  const uint64_t kv_dim = h / heads * kv_heads;
  const uint64_t inner = u64(c.intermediate_size);
  const uint64_t vocab = u64(c.vocab_size);
  std::vector<TensorGroup> groups = {{vocab * h, 1}};  // token embeddings
  if (!c.tied_embeddings) groups.push_back({vocab * h, 1});  // output layer
  if (c.gated_mlp) {
    // Llama: q, o (h x h), k, v (h x kv_dim), gate, up, down (h x I), two RMSNorm weights per
    // layer, a final RMSNorm; rotary positions have no parameters; no biases.
    groups.push_back({h * h, 2 * layers});
    groups.push_back({h * kv_dim, 2 * layers});
    groups.push_back({h * inner, 3 * layers});
    groups.push_back({h, 2 * layers + 1});
    return groups;
  }
  // BERT/GPT: learned positions, q, k, v, o with biases, a two-matrix MLP with biases, two
  // LayerNorms (weight and bias) per layer and one outside the layers.
  groups.push_back({u64(c.max_position_embeddings) * h, 1});
  groups.push_back({h * h, 2 * layers});
  groups.push_back({h * kv_dim, 2 * layers});
  groups.push_back({h, 2 * layers});       // q and o biases
  groups.push_back({kv_dim, 2 * layers});  // k and v biases
  groups.push_back({h * inner, 2 * layers});
  groups.push_back({inner, layers});       // first MLP bias
  groups.push_back({h, layers});           // second MLP bias
  groups.push_back({h, 4 * layers + 2});   // LayerNorm weights and biases
  return groups;
}

// bitsandbytes keeps 32-bit state for tensors under this many elements (spec section 4).
constexpr uint64_t kMin8bitElements = 4096;
// Its block-wise 8-bit state has one fp32 scale per block of this many elements, per state.
constexpr double kAdam8bitBlock = 256.0;

Result<int64_t> positive_field(const nlohmann::json& doc, const char* key, bool required) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) {
    if (required) return make_error(fmt::format("model config has no '{}'", key));
    return int64_t{0};
  }
  if (!it->is_number_integer()) {
    return make_error(fmt::format("model config field '{}' is not an integer: {}", key,
                                  it->dump()));
  }
  return it->get<int64_t>();
}

bool gated_model(const nlohmann::json& doc) {
  static constexpr std::array<std::string_view, 8> kGatedTypes = {
      "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "olmo"};
  const std::string type = doc.value("model_type", std::string{});
  const std::string act = doc.value("hidden_act", std::string{});
  return act == "silu" || act == "swiglu" ||
         std::find(kGatedTypes.begin(), kGatedTypes.end(), type) != kGatedTypes.end();
}

double bytes_per_value(Precision precision) { return precision == Precision::kFp32 ? 4.0 : 2.0; }

// Optimizer bytes for `params` parameters of which `small` sit in tensors under 4096 elements:
// fp32 master weights under mixed precision, plus the optimizer's own state.
double optimizer_state_bytes(Optimizer optimizer, Precision precision, double params,
                             double small) {
  const double master = precision == Precision::kFp32 ? 0.0 : 4.0 * params;
  switch (optimizer) {
    case Optimizer::kAdamW:
      return master + 8.0 * params;  // two fp32 moments
    case Optimizer::kSgd:
      return master + 4.0 * params;  // one fp32 momentum buffer
    case Optimizer::kAdam8bit: {
      const double large = params - small;
      return master + 8.0 * small + 2.0 * large + 2.0 * 4.0 * large / kAdam8bitBlock;
    }
  }
  return master;
}

std::string coefficient(double value) { return fmt::format("{:.4g}", value); }

std::string model_states_formula(int stage, double w, double g, double k) {
  switch (stage) {
    case 0:
      return fmt::format("no ZeRO: {}Ψ", coefficient(w + g + k));
    case 1:
      return fmt::format("ZeRO-1: {}Ψ + {}Ψ/N", coefficient(w + g), coefficient(k));
    case 2:
      return fmt::format("ZeRO-2: {}Ψ + {}Ψ/N", coefficient(w), coefficient(g + k));
    default:
      return fmt::format("ZeRO-3: {}Ψ/N", coefficient(w + g + k));
  }
}

std::string activations_formula(Checkpointing checkpointing, bool tp, bool sp,
                                Precision precision) {
  std::string per_layer;
  switch (checkpointing) {
    case Checkpointing::kNone:
      per_layer = !tp ? "sbh(34 + 5as/h)"
                      : (sp ? "sbh(34/t + 5as/(ht))" : "sbh(10 + 24/t + 5as/(ht))");
      break;
    case Checkpointing::kSelective:
      per_layer = !tp ? "34sbh" : (sp ? "34sbh/t" : "sbh(10 + 24/t)");
      break;
    case Checkpointing::kFull:
      per_layer = tp && sp ? "2sbh/t" : "2sbh";
      break;
  }
  std::string text = fmt::format("L × {} (Korthikanti et al. 2022)", per_layer);
  if (precision == Precision::kFp32) text += ", fp32: 16-bit terms doubled, 1-byte masks kept";
  return text;
}

}  // namespace

Result<ModelConfig> parse_model_config(std::string_view json_text) {
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, false);
  if (doc.is_discarded()) return make_error("model config is not valid JSON");
  if (!doc.is_object()) return make_error("model config is not a JSON object");
  ModelConfig config;
  const std::array<std::pair<const char*, int64_t*>, 6> required = {{
      {"hidden_size", &config.hidden_size},
      {"num_hidden_layers", &config.num_hidden_layers},
      {"num_attention_heads", &config.num_attention_heads},
      {"intermediate_size", &config.intermediate_size},
      {"vocab_size", &config.vocab_size},
      {"max_position_embeddings", &config.max_position_embeddings},
  }};
  for (const auto& [key, field] : required) {
    Result<int64_t> value = positive_field(doc, key, true);
    if (!value) return value.error();
    *field = *value;
  }
  Result<int64_t> kv_heads = positive_field(doc, "num_key_value_heads", false);
  if (!kv_heads) return kv_heads.error();
  config.num_key_value_heads = *kv_heads;
  config.gated_mlp = gated_model(doc);
  if (const auto tie = doc.find("tie_word_embeddings"); tie != doc.end() && !tie->is_null()) {
    if (!tie->is_boolean()) {
      return make_error(fmt::format("model config field 'tie_word_embeddings' is not true/false: {}",
                                    tie->dump()));
    }
    config.tied_embeddings = tie->get<bool>();
  }
  return config;
}

Status validate_model_config(const ModelConfig& c) {
  const std::array<std::pair<const char*, int64_t>, 6> sizes = {{
      {"hidden_size", c.hidden_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"intermediate_size", c.intermediate_size},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings},
  }};
  for (const auto& [key, value] : sizes) {
    if (value < 1) return make_error(fmt::format("model config '{}' is {}: must be at least 1", key, value));
  }
  if (c.hidden_size % c.num_attention_heads != 0) {
    return make_error(fmt::format("model config: num_attention_heads {} does not divide hidden_size {}",
                                  c.num_attention_heads, c.hidden_size));
  }
  if (c.num_key_value_heads < 0 ||
      (c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads != 0)) {
    return make_error(fmt::format(
        "model config: num_key_value_heads {} does not divide num_attention_heads {}",
        c.num_key_value_heads, c.num_attention_heads));
  }
  return Status::success();
}

uint64_t count_parameters(const ModelConfig& config) {
  uint64_t total = 0;
  for (const TensorGroup& group : weight_tensors(config)) total += group.elements * group.count;
  return total;
}

uint64_t largest_layer_parameters(const ModelConfig& config) {
  uint64_t largest = 0;
  for (const TensorGroup& group : weight_tensors(config)) largest = std::max(largest, group.elements);
  return largest;
}

uint64_t small_tensor_parameters(const ModelConfig& config) {
  uint64_t small = 0;
  for (const TensorGroup& group : weight_tensors(config)) {
    if (group.elements < kMin8bitElements) small += group.elements * group.count;
  }
  return small;
}

Status validate_setup(const TrainingSetup& setup) {
  if (setup.model) {
    if (Status valid = validate_model_config(*setup.model); !valid) return valid;
  } else if (setup.parameters == 0) {
    return make_error("no model: give a parameter count or a model config");
  }
  if (setup.micro_batch < 1) {
    return make_error(fmt::format("micro-batch size must be at least 1, got {}", setup.micro_batch));
  }
  if (setup.sequence_length < 0) {
    return make_error(fmt::format("sequence length must be at least 1, got {}", setup.sequence_length));
  }
  if (setup.zero_stage < 0 || setup.zero_stage > 3) {
    return make_error(fmt::format("ZeRO stage must be 0, 1, 2 or 3, got {}", setup.zero_stage));
  }
  if (setup.gpus < 1) return make_error(fmt::format("GPU count must be at least 1, got {}", setup.gpus));
  if (setup.tensor_parallel < 1) {
    return make_error(fmt::format("tensor parallel size must be at least 1, got {}", setup.tensor_parallel));
  }
  if (setup.gpus % setup.tensor_parallel != 0) {
    return make_error(fmt::format("tensor parallel size {} does not divide the {} GPUs",
                                  setup.tensor_parallel, setup.gpus));
  }
  if (setup.model && setup.model->num_attention_heads % setup.tensor_parallel != 0) {
    return make_error(fmt::format("tensor parallel size {} does not divide the {} attention heads",
                                  setup.tensor_parallel, setup.model->num_attention_heads));
  }
  return Status::success();
}

double layer_activation_bytes(double s, double b, double h, double a, double t,
                              Checkpointing checkpointing, bool sequence_parallel,
                              Precision precision) {
  // Korthikanti et al. (spec section 4), in tensors: per layer the replicated part is the inputs
  // of QKV and of the MLP and the two LayerNorms (4 sbh values) plus two 1-byte dropout masks
  // (2sbh); the part split by t is Q, K, V, the projection's input and the MLP's two 4h tensors
  // (12 sbh values) and the attention scores: softmax and dropout outputs (2 as²b values) plus
  // their 1-byte mask. With 16-bit values: 10sbh + 24sbh/t + 5as²b/t. Sequence parallelism
  // splits the replicated part too. fp32 doubles the values, not the masks.
  const double value = bytes_per_value(precision);
  const double replicated_share = sequence_parallel ? 1.0 / t : 1.0;
  const double sbh = s * b * h;
  if (checkpointing == Checkpointing::kFull) return sbh * value * replicated_share;  // 2sbh
  const double without_scores = sbh * ((4.0 * value + 2.0) * replicated_share + 12.0 * value / t);
  if (checkpointing == Checkpointing::kSelective) return without_scores;  // scores recomputed
  return without_scores + a * s * s * b * (2.0 * value + 1.0) / t;
}

uint64_t deepspeed_zero2_gpu_bytes(uint64_t parameters, int64_t gpus) {
  // DeepSpeed estimate_zero2_model_states_mem_needs, no offload: 2Ψ + 18Ψ/N, truncated as int().
  return 2 * parameters + 18 * parameters / u64(gpus);
}

uint64_t deepspeed_zero3_gpu_bytes(uint64_t parameters, uint64_t largest_layer, int64_t gpus) {
  // DeepSpeed estimate_zero3_model_states_mem_needs, no offload: 4L + 18Ψ/N.
  return 4 * largest_layer + 18 * parameters / u64(gpus);
}

Result<TrainingMemory> estimate_training_memory(const TrainingSetup& setup) {
  if (Status valid = validate_setup(setup); !valid) return valid.error();
  TrainingMemory memory;
  memory.parameters = setup.model ? count_parameters(*setup.model) : setup.parameters;
  memory.data_parallel = setup.gpus / setup.tensor_parallel;
  const double n = static_cast<double>(memory.data_parallel);
  const double t = static_cast<double>(setup.tensor_parallel);
  const double psi = static_cast<double>(memory.parameters) / t;  // this GPU's share under TP
  const double small =
      setup.model ? static_cast<double>(small_tensor_parameters(*setup.model)) / t : 0.0;

  // Model states (spec section 4, ZeRO paper): weights and gradients in the training precision,
  // the optimizer's bytes K per parameter; stage 1 shards K, 2 also the gradients, 3 everything.
  const double w = bytes_per_value(setup.precision);
  const double g = w;
  const double k_bytes = optimizer_state_bytes(setup.optimizer, setup.precision, psi, small);
  const int stage = setup.zero_stage;
  memory.weights_bytes = static_cast<uint64_t>(std::ceil(w * psi / (stage >= 3 ? n : 1.0)));
  memory.gradients_bytes = static_cast<uint64_t>(std::ceil(g * psi / (stage >= 2 ? n : 1.0)));
  memory.optimizer_bytes = static_cast<uint64_t>(std::ceil(k_bytes / (stage >= 1 ? n : 1.0)));
  memory.model_states_formula = model_states_formula(stage, w, g, psi > 0 ? k_bytes / psi : 0.0);
  if (setup.tensor_parallel > 1) memory.model_states_formula += ", Ψ = parameters / t";

  if (setup.model) {
    const ModelConfig& c = *setup.model;
    memory.sequence_length =
        setup.sequence_length > 0 ? setup.sequence_length : c.max_position_embeddings;
    const double s = static_cast<double>(memory.sequence_length);
    const double b = static_cast<double>(setup.micro_batch);
    const double per_layer = layer_activation_bytes(
        s, b, static_cast<double>(c.hidden_size), static_cast<double>(c.num_attention_heads), t,
        setup.checkpointing, setup.sequence_parallel, setup.precision);
    memory.activations_bytes =
        static_cast<uint64_t>(std::ceil(per_layer * static_cast<double>(c.num_hidden_layers)));
    memory.activations_estimated = true;
    memory.activations_formula = activations_formula(
        setup.checkpointing, setup.tensor_parallel > 1, setup.sequence_parallel, setup.precision);
    // Korthikanti et al. section 4: the loss keeps the output layer's logits in fp32, 4sbv/t.
    memory.temporary_bytes = static_cast<uint64_t>(
        std::ceil(4.0 * s * b * static_cast<double>(c.vocab_size) / t));
  }
  memory.cuda_context_bytes = kCudaContextBytes;
  memory.total_bytes = memory.weights_bytes + memory.gradients_bytes + memory.optimizer_bytes +
                       memory.activations_bytes + memory.temporary_bytes +
                       memory.cuda_context_bytes;

  // DeepSpeed's estimators model mixed-precision Adam without tensor parallelism.
  const bool deepspeed_comparable = setup.tensor_parallel == 1 &&
                                    setup.precision != Precision::kFp32 &&
                                    setup.optimizer == Optimizer::kAdamW;
  if (deepspeed_comparable && stage == 2) {
    memory.deepspeed_estimate_bytes = deepspeed_zero2_gpu_bytes(memory.parameters, setup.gpus);
  } else if (deepspeed_comparable && stage == 3 && setup.model) {
    memory.deepspeed_estimate_bytes = deepspeed_zero3_gpu_bytes(
        memory.parameters, largest_layer_parameters(*setup.model), setup.gpus);
  }
  return memory;
}

Result<int64_t> max_micro_batch(TrainingSetup setup, uint64_t gpu_memory_bytes) {
  if (!setup.model) {
    return make_error("the largest micro-batch needs a model config (activations depend on it)");
  }
  if (gpu_memory_bytes == 0) return make_error("the largest micro-batch needs the GPU's memory size");
  const auto fits = [&](int64_t batch) -> Result<bool> {
    setup.micro_batch = batch;
    Result<TrainingMemory> memory = estimate_training_memory(setup);
    if (!memory) return memory.error();
    return memory->total_bytes <= gpu_memory_bytes;
  };
  Result<bool> one = fits(1);
  if (!one) return one.error();
  if (!*one) return int64_t{0};
  // Memory grows with the batch: double until it no longer fits, then bisect.
  constexpr int64_t kLimit = int64_t{1} << 40;
  int64_t good = 1;
  int64_t bad = 2;
  while (bad <= kLimit && *fits(bad)) {
    good = bad;
    bad *= 2;
  }
  if (bad > kLimit) return good;
  while (bad - good > 1) {
    const int64_t middle = good + (bad - good) / 2;
    if (*fits(middle)) {
      good = middle;
    } else {
      bad = middle;
    }
  }
  return good;
}

std::optional<Precision> parse_precision(std::string_view text) {
  if (text == "fp32") return Precision::kFp32;
  if (text == "fp16") return Precision::kFp16;
  if (text == "bf16") return Precision::kBf16;
  return std::nullopt;
}

std::optional<Optimizer> parse_optimizer(std::string_view text) {
  if (text == "adamw" || text == "adam") return Optimizer::kAdamW;
  if (text == "sgd") return Optimizer::kSgd;
  if (text == "adam8bit") return Optimizer::kAdam8bit;
  return std::nullopt;
}

std::optional<Checkpointing> parse_checkpointing(std::string_view text) {
  if (text == "none") return Checkpointing::kNone;
  if (text == "selective") return Checkpointing::kSelective;
  if (text == "full") return Checkpointing::kFull;
  return std::nullopt;
}

std::string_view to_string(Precision precision) {
  switch (precision) {
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
  }
  return "?";
}

std::string_view to_string(Optimizer optimizer) {
  switch (optimizer) {
    case Optimizer::kAdamW: return "adamw";
    case Optimizer::kSgd: return "sgd";
    case Optimizer::kAdam8bit: return "adam8bit";
  }
  return "?";
}

std::string_view to_string(Checkpointing checkpointing) {
  switch (checkpointing) {
    case Checkpointing::kNone: return "none";
    case Checkpointing::kSelective: return "selective";
    case Checkpointing::kFull: return "full";
  }
  return "?";
}

Result<uint64_t> parse_parameter_count(std::string_view text) {
  const std::string original(text);
  const auto bad = [&] {
    return make_error(fmt::format("'{}' is not a parameter count (expected e.g. 7e9, 7B, 350M)",
                                  original));
  };
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) return bad();
  const std::string_view unit = text.substr(static_cast<size_t>(end - text.data()));
  double multiplier = 1;
  if (unit.size() > 1) return bad();
  if (unit.size() == 1) {
    switch (std::tolower(static_cast<unsigned char>(unit[0]))) {
      case 'k': multiplier = 1e3; break;
      case 'm': multiplier = 1e6; break;
      case 'b': multiplier = 1e9; break;
      case 't': multiplier = 1e12; break;
      default: return bad();
    }
  }
  const double count = number * multiplier;
  if (!std::isfinite(count) || count < 1 || count > 1e15) {
    return make_error(fmt::format("'{}' is not a parameter count between 1 and 1e15", original));
  }
  return static_cast<uint64_t>(std::llround(count));
}

}  // namespace memscope::analyze
