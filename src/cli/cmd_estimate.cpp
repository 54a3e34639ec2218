// memscope estimate (--params N | --model-config config.json) --batch B [--seq S]
//   [--precision fp32|fp16|bf16] [--optimizer adamw|sgd|adam8bit]
//   [--checkpointing none|selective|full] [--zero 0..3] [--gpus N] [--tensor-parallel T]
//   [--sequence-parallel] [--gpu-memory 80GiB] [--suggest-batch] [--json]
// Training memory per GPU from ../shared/specs/pytorch-memory.md section 4
// (analyze/training_memory.hpp). "Does not fit" is an answer, not a failure: exit 0.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analyze/training_memory.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "core/units.hpp"

namespace memscope::cli {
namespace {

using analyze::TrainingMemory;
using analyze::TrainingSetup;

struct EstimateOptions {
  std::string params;
  std::string model_config;
  int64_t batch = 0;
  int64_t seq = 0;
  std::string precision = "bf16";
  std::string optimizer = "adamw";
  std::string checkpointing = "none";
  int zero = 0;
  int64_t gpus = 1;
  int64_t tensor_parallel = 1;
  bool sequence_parallel = false;
  std::string gpu_memory;
  bool suggest_batch = false;
  bool json = false;
  CLI::Option* batch_option = nullptr;
};

int fail(int status, const std::string& message) {
  std::cerr << "memscope estimate: " << message << "\n";
  return status;
}

Result<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(fmt::format("cannot read '{}'", path));
  return text.str();
}

std::string per_parameter(double bytes) { return fmt::format("{:g} B/parameter", bytes); }

std::string optimizer_words(analyze::Optimizer optimizer, analyze::Precision precision) {
  const bool mixed = precision != analyze::Precision::kFp32;
  switch (optimizer) {
    case analyze::Optimizer::kAdamW:
      return mixed ? "fp32 master weights + two fp32 moments, 12 B/parameter"
                   : "two fp32 moments, 8 B/parameter";
    case analyze::Optimizer::kSgd:
      return mixed ? "fp32 master weights + fp32 momentum, 8 B/parameter"
                   : "fp32 momentum, 4 B/parameter";
    case analyze::Optimizer::kAdam8bit:
      return mixed ? "fp32 master weights + 8-bit moments with block scales, ~6 B/parameter"
                   : "8-bit moments with block scales, ~2 B/parameter";
  }
  return "";
}

void print_table(const EstimateOptions& options, const TrainingSetup& setup,
                 const TrainingMemory& memory, uint64_t gpu_memory,
                 const std::optional<int64_t>& max_batch) {
  const double value_bytes = setup.precision == analyze::Precision::kFp32 ? 4 : 2;
  std::cout << fmt::format(
      "{} parameters, {}, {}, checkpointing {}, ZeRO-{}, {} GPU{} (data parallel N = {}, "
      "tensor parallel t = {}), micro-batch {}{}\n\n",
      memory.parameters, analyze::to_string(setup.precision),
      analyze::to_string(setup.optimizer), analyze::to_string(setup.checkpointing),
      setup.zero_stage, setup.gpus, setup.gpus == 1 ? "" : "s", memory.data_parallel,
      setup.tensor_parallel, setup.micro_batch,
      memory.activations_estimated ? fmt::format(", sequence {}", memory.sequence_length) : "");
  const auto row = [](const char* name, uint64_t bytes, const std::string& how) {
    std::string line = fmt::format("  {:<18} {:>12}  {}", name, format_bytes(bytes), how);
    line.erase(line.find_last_not_of(' ') + 1);
    std::cout << line << "\n";
  };
  std::cout << fmt::format("  {:<18} {:>12}  {}\n", "per GPU", "bytes", "how");
  row("weights", memory.weights_bytes,
      fmt::format("{}, {}", analyze::to_string(setup.precision), per_parameter(value_bytes)));
  row("gradients", memory.gradients_bytes,
      fmt::format("{}, {}", analyze::to_string(setup.precision), per_parameter(value_bytes)));
  row("optimizer states", memory.optimizer_bytes,
      std::string(analyze::to_string(setup.optimizer)) + ": " +
          optimizer_words(setup.optimizer, setup.precision));
  if (memory.activations_estimated) {
    row("activations", memory.activations_bytes, memory.activations_formula);
    row("temporary buffers", memory.temporary_bytes, "fp32 logits for the loss, 4sbv/t");
  } else {
    row("activations", 0, "not estimated: needs --model-config");
    row("temporary buffers", 0, "not estimated: needs --model-config");
  }
  row("CUDA context", memory.cuda_context_bytes, "assumed; varies with the GPU and CUDA version");
  row("total", memory.total_bytes, "");
  std::cout << fmt::format("\nmodel states: {} (ZeRO paper, arXiv:1910.02054)\n",
                           memory.model_states_formula);
  if (memory.deepspeed_estimate_bytes > 0) {
    std::cout << fmt::format("DeepSpeed's estimator (ZeRO-{}, no offload): {} of model states\n",
                             setup.zero_stage, format_bytes(memory.deepspeed_estimate_bytes));
  }
  if (gpu_memory > 0) {
    if (memory.total_bytes <= gpu_memory) {
      std::cout << fmt::format("fits in {}: yes, {} to spare\n", options.gpu_memory,
                               format_bytes(gpu_memory - memory.total_bytes));
    } else {
      std::cout << fmt::format("fits in {}: NO, {} short\n", options.gpu_memory,
                               format_bytes(memory.total_bytes - gpu_memory));
    }
  }
  if (max_batch) {
    std::cout << (*max_batch > 0
                      ? fmt::format("largest micro-batch that fits in {}: {}\n",
                                    options.gpu_memory, *max_batch)
                      : fmt::format("largest micro-batch that fits in {}: none, not even 1\n",
                                    options.gpu_memory));
  }
}

nlohmann::json to_json(const TrainingSetup& setup, const TrainingMemory& memory,
                       uint64_t gpu_memory, const std::optional<int64_t>& max_batch) {
  nlohmann::json doc = {
      {"parameters", memory.parameters},
      {"precision", analyze::to_string(setup.precision)},
      {"optimizer", analyze::to_string(setup.optimizer)},
      {"checkpointing", analyze::to_string(setup.checkpointing)},
      {"zero_stage", setup.zero_stage},
      {"gpus", setup.gpus},
      {"tensor_parallel", setup.tensor_parallel},
      {"sequence_parallel", setup.sequence_parallel},
      {"data_parallel", memory.data_parallel},
      {"micro_batch", setup.micro_batch},
      {"sequence_length", memory.sequence_length},
      {"weights_bytes", memory.weights_bytes},
      {"gradients_bytes", memory.gradients_bytes},
      {"optimizer_bytes", memory.optimizer_bytes},
      {"activations_bytes", memory.activations_bytes},
      {"temporary_bytes", memory.temporary_bytes},
      {"cuda_context_bytes", memory.cuda_context_bytes},
      {"total_bytes", memory.total_bytes},
      {"activations_estimated", memory.activations_estimated},
      {"formulas",
       {{"model_states", memory.model_states_formula},
        {"activations", memory.activations_formula}}},
  };
  if (memory.deepspeed_estimate_bytes > 0) {
    doc["deepspeed_estimate_bytes"] = memory.deepspeed_estimate_bytes;
  }
  if (gpu_memory > 0) {
    doc["gpu_memory_bytes"] = gpu_memory;
    doc["fits"] = memory.total_bytes <= gpu_memory;
  }
  if (max_batch) doc["max_batch_size"] = *max_batch;
  return doc;
}

int run_estimate(const EstimateOptions& options) {
  // Command-line checks first (exit 2), then the config file (exit 3).
  if (options.params.empty() == options.model_config.empty()) {
    return fail(kExitUsage, options.params.empty()
                                ? "give the model: --params N or --model-config config.json"
                                : "give --params or --model-config, not both");
  }
  if (options.batch_option->count() == 0) {
    return fail(kExitUsage, "--batch is required (the micro-batch size per GPU)");
  }
  TrainingSetup setup;
  const auto precision = analyze::parse_precision(options.precision);
  if (!precision) {
    return fail(kExitUsage, fmt::format("unknown --precision '{}' (choose fp32, fp16, bf16)",
                                        options.precision));
  }
  const auto optimizer = analyze::parse_optimizer(options.optimizer);
  if (!optimizer) {
    return fail(kExitUsage, fmt::format("unknown --optimizer '{}' (choose adamw, sgd, adam8bit)",
                                        options.optimizer));
  }
  const auto checkpointing = analyze::parse_checkpointing(options.checkpointing);
  if (!checkpointing) {
    return fail(kExitUsage,
                fmt::format("unknown --checkpointing '{}' (choose none, selective, full)",
                            options.checkpointing));
  }
  uint64_t gpu_memory = 0;
  if (!options.gpu_memory.empty()) {
    Result<uint64_t> parsed = parse_size(options.gpu_memory);
    if (!parsed) return fail(kExitUsage, "--gpu-memory " + parsed.message());
    if (*parsed == 0) return fail(kExitUsage, "--gpu-memory must be more than 0");
    gpu_memory = *parsed;
  }
  if (options.suggest_batch && gpu_memory == 0) {
    return fail(kExitUsage, "--suggest-batch needs --gpu-memory (e.g. --gpu-memory 80GiB)");
  }
  if (options.suggest_batch && options.model_config.empty()) {
    return fail(kExitUsage,
                "--suggest-batch needs --model-config: activations depend on the model's shape");
  }
  if (!options.params.empty()) {
    Result<uint64_t> params = analyze::parse_parameter_count(options.params);
    if (!params) return fail(kExitUsage, "--params " + params.message());
    setup.parameters = *params;
  }
  setup.micro_batch = options.batch;
  setup.sequence_length = options.seq;
  setup.precision = *precision;
  setup.optimizer = *optimizer;
  setup.checkpointing = *checkpointing;
  setup.sequence_parallel = options.sequence_parallel;
  setup.zero_stage = options.zero;
  setup.gpus = options.gpus;
  setup.tensor_parallel = options.tensor_parallel;
  {
    // Setup values alone (a config's own errors are the file's, below).
    TrainingSetup values = setup;
    if (!options.model_config.empty()) values.parameters = 1;
    if (Status valid = analyze::validate_setup(values); !valid) {
      return fail(kExitUsage, valid.message());
    }
  }
  if (!options.model_config.empty()) {
    Result<std::string> text = read_whole_file(options.model_config);
    if (!text) return fail(kExitBadInput, text.message());
    Result<analyze::ModelConfig> config = analyze::parse_model_config(*text);
    if (!config) return fail(kExitBadInput, fmt::format("'{}': {}", options.model_config, config.message()));
    if (Status valid = analyze::validate_model_config(*config); !valid) {
      return fail(kExitBadInput, fmt::format("'{}': {}", options.model_config, valid.message()));
    }
    setup.model = *config;
  }
  Result<TrainingMemory> memory = analyze::estimate_training_memory(setup);
  if (!memory) return fail(kExitUsage, memory.message());  // T against the config's heads
  std::optional<int64_t> max_batch;
  if (options.suggest_batch) {
    Result<int64_t> best = analyze::max_micro_batch(setup, gpu_memory);
    if (!best) return fail(kExitUsage, best.message());
    max_batch = *best;
  }
  if (options.json) {
    std::cout << to_json(setup, *memory, gpu_memory, max_batch).dump(2) << "\n";
  } else {
    print_table(options, setup, *memory, gpu_memory, max_batch);
  }
  return kExitOk;
}

}  // namespace

Runner attach_estimate(CLI::App& sub, const GlobalOptions& /*global*/) {
  auto options = std::make_shared<EstimateOptions>();
  sub.add_option("--params", options->params, "Parameter count: 7e9, 7B, 350M");
  sub.add_option("--model-config", options->model_config,
                 "Hugging Face config.json (hidden_size, num_hidden_layers, num_attention_heads, "
                 "intermediate_size, vocab_size, max_position_embeddings)");
  options->batch_option =
      sub.add_option("--batch", options->batch, "Micro-batch size per GPU (required)");
  sub.add_option("--seq", options->seq,
                 "Sequence length (default: the config's max_position_embeddings)");
  sub.add_option("--precision", options->precision, "fp32 | fp16 | bf16")->capture_default_str();
  sub.add_option("--optimizer", options->optimizer, "adamw | sgd | adam8bit")
      ->capture_default_str();
  sub.add_option("--checkpointing", options->checkpointing,
                 "Activation checkpointing: none | selective | full")
      ->capture_default_str();
  sub.add_option("--zero", options->zero, "ZeRO stage 0..3")->capture_default_str();
  sub.add_option("--gpus", options->gpus, "GPUs in all (data parallel N = gpus / T)")
      ->capture_default_str();
  sub.add_option("--tensor-parallel", options->tensor_parallel, "Tensor parallel size T")
      ->capture_default_str();
  sub.add_flag("--sequence-parallel", options->sequence_parallel,
               "Megatron sequence parallelism (with --tensor-parallel)");
  sub.add_option("--gpu-memory", options->gpu_memory,
                 "Memory of one GPU (80GiB, 80GB): says whether it fits");
  sub.add_flag("--suggest-batch", options->suggest_batch,
               "Also print the largest micro-batch that fits in --gpu-memory");
  sub.add_flag("--json", options->json, "JSON instead of the table");
  return [options] { return run_estimate(*options); };
}

}  // namespace memscope::cli
