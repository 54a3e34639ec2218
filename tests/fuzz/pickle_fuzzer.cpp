// libFuzzer target: snapshot pickles are untrusted input. Whatever the bytes, the pickle reader
// must end in a document or a one-line error (never a crash, an exception, or memory beyond its
// limits), and the snapshot decoder must turn any document into a snapshot or a one-line error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "collect/pickle.hpp"
#include "collect/torch_snapshot.hpp"

namespace {

using memscope::pickle::Document;
using memscope::pickle::Kind;
using memscope::pickle::Value;

bool one_line(std::string_view message) {
  return !message.empty() && message.find('\n') == std::string_view::npos;
}

// Touches every value reachable within a budget (a list may contain itself through the memo).
uint64_t walk(const Document& doc, Value value, int depth, uint64_t& budget) {
  if (budget == 0 || depth > 64) return 0;
  --budget;
  uint64_t sum = static_cast<uint64_t>(doc.kind(value));
  switch (doc.kind(value)) {
    case Kind::integer:
      return sum + static_cast<uint64_t>(doc.as_int(value));
    case Kind::floating:
      return sum + (doc.as_float(value) > 0 ? 1 : 0);
    case Kind::boolean:
      return sum + (doc.as_bool(value) ? 1 : 0);
    case Kind::string:
    case Kind::bytes:
      return sum + doc.as_string(value).size();
    case Kind::list:
    case Kind::tuple:
      for (size_t i = 0; i < doc.size(value); ++i)
        sum += walk(doc, doc.item(value, i), depth + 1, budget);
      return sum;
    case Kind::dict:
      for (size_t i = 0; i < doc.size(value); ++i) {
        sum += walk(doc, doc.key(value, i), depth + 1, budget);
        sum += walk(doc, doc.value(value, i), depth + 1, budget);
      }
      return sum;
    case Kind::none:
      return sum;
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  memscope::pickle::Limits limits;
  limits.max_nodes = 1 << 20;
  limits.max_depth = 1000;
  limits.max_memo = 1 << 16;
  const auto document =
      memscope::pickle::parse(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!document.ok()) {
    if (!one_line(document.message())) __builtin_trap();
    return 0;
  }
  uint64_t budget = 1 << 16;
  volatile uint64_t sink = walk(*document, document->root(), 0, budget);
  (void)sink;
  const auto snapshot = memscope::torch::decode_snapshot(*document);
  if (!snapshot.ok()) {
    if (!one_line(snapshot.message())) __builtin_trap();
    return 0;
  }
  for (const auto& segment : snapshot->segments) {
    if (segment.stack >= snapshot->frames.stack_count()) __builtin_trap();
    for (const auto& block : segment.blocks) {
      if (block.stack >= snapshot->frames.stack_count()) __builtin_trap();
    }
  }
  for (const auto& trace : snapshot->device_traces) {
    for (const auto& entry : trace) {
      if (entry.stack >= snapshot->frames.stack_count()) __builtin_trap();
    }
  }
  return 0;
}
