#include "collect/torch_snapshot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace memscope::torch {
namespace {

using pickle::Document;
using pickle::Kind;
using pickle::Value;

// Every key the decoder knows, in any of the snapshot's dicts; kFieldNames in the same order.
// clang-format off
enum class Field : uint8_t {
  unknown, segments, device_traces, allocator_settings, external_annotations, device, address,
  total_size, allocated_size, active_size, requested_size, stream, segment_type, segment_pool_id,
  is_expandable, frames, blocks, size, state, history, addr, real_size, action, time_us,
  device_free, filename, line, name, conf, max_split_size, garbage_collection_threshold,
  expandable_segments, roundup_power2_divisions, release_lock_on_cudamalloc,
  pinned_use_cuda_host_register, pinned_num_register_threads, stage,
};
constexpr std::string_view kFieldNames[] = {
    "?", "segments", "device_traces", "allocator_settings", "external_annotations", "device",
    "address", "total_size", "allocated_size", "active_size", "requested_size", "stream",
    "segment_type", "segment_pool_id", "is_expandable", "frames", "blocks", "size", "state",
    "history", "addr", "real_size", "action", "time_us", "device_free", "filename", "line",
    "name", "PYTORCH_CUDA_ALLOC_CONF", "max_split_size", "garbage_collection_threshold",
    "expandable_segments", "roundup_power2_divisions", "release_lock_on_cudamalloc",
    "pinned_use_cuda_host_register", "pinned_num_register_threads", "stage",
};
// clang-format on
static_assert(std::size(kFieldNames) == static_cast<size_t>(Field::stage) + 1);

// A direct-mapped cache from value handles to what the decoder made of them: keys, action
// names and frames repeat as the same few handles (memo references, interned strings).
template <class Code, int kBits>
class HandleCache {
 public:
  template <class Compute>
  Code get(Value value, Compute compute) {
    Slot& slot = slots_[(value.raw * 0x9E3779B1u) >> (32 - kBits)];
    if (!slot.valid || slot.raw != value.raw) slot = {value.raw, true, compute()};
    return slot.code;
  }
  void put(Value value, Code code) {
    slots_[(value.raw * 0x9E3779B1u) >> (32 - kBits)] = {value.raw, true, code};
  }

 private:
  struct Slot {
    uint32_t raw = 0;
    bool valid = false;
    Code code{};
  };
  std::vector<Slot> slots_ = std::vector<Slot>(size_t{1} << kBits);
};

// The same for frames lists by content (Document::content_id): a frames list written afresh
// for each block or entry holds the same memo references as the last one of its stack.
template <int kBits>
class ContentCache {
 public:
  uint32_t get(uint64_t content) const {
    const Slot& slot = slots_[index(content)];
    return slot.content == content ? slot.code : 0;
  }
  void put(uint64_t content, uint32_t code) { slots_[index(content)] = {content, code}; }

 private:
  static size_t index(uint64_t content) {
    return static_cast<size_t>((content * 0x9E3779B97F4A7C15ULL) >> (64 - kBits));
  }
  struct Slot {
    uint64_t content = 0;  // 0: empty (no list has content id 0)
    uint32_t code = 0;
  };
  std::vector<Slot> slots_ = std::vector<Slot>(size_t{1} << kBits);
};

// A snapshot's trace, the bulk of a big file, written once: huge pages spare a fault per 4 KiB.
template <class T>
void resize_fresh(std::vector<T>& items, size_t count) {
  items.reserve(count);
  pickle::detail::advise_huge_pages(items.data(), count * sizeof(T));
  items.resize(count);
}

// Interned frames by (filename handle, name handle, line): equal short strings share a handle,
// so a frame dict written out again maps to its id without building strings.
struct FrameKey {
  uint32_t filename;
  uint32_t name;
  int64_t line;
  bool operator==(const FrameKey&) const = default;
};
struct FrameKeyHash {
  size_t operator()(const FrameKey& key) const {
    uint64_t hash = (uint64_t{key.filename} << 32 | key.name) * 0x9E3779B97F4A7C15ULL;
    return static_cast<size_t>(hash ^ (static_cast<uint64_t>(key.line) * 0xC2B2AE3D27D4EB4FULL));
  }
};

class Decoder {
 public:
  // The elements decoded (segments, blocks, trace entries, annotations) may not outnumber what
  // the tree can hold without sharing: a list of memo references to one segment whose blocks
  // are memo references to one block would otherwise expand a small file without bound.
  explicit Decoder(const Document& document)
      : doc_(document), budget_(document.memory_bytes() / 4 + (size_t{1} << 20)) {}

  Result<Snapshot> run() {
    try {
      if (!decode_root(doc_.root())) return make_error(std::move(error_));
    } catch (const std::bad_alloc&) {
      return make_error(fmt::format("{}: out of memory", path_text("")));
    }
    return std::move(snapshot_);
  }

 private:
  struct Part {
    std::string_view name;
    size_t index;
    bool is_index;
  };
  // The path to what is being decoded, for error messages ("segments[3].blocks[2]").
  class Scope {
   public:
    Scope(Decoder& decoder, Part part) : decoder_(decoder) { decoder_.path_.push_back(part); }
    ~Scope() { decoder_.path_.pop_back(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Decoder& decoder_;
  };
  Scope at(std::string_view name) { return Scope(*this, {name, 0, false}); }
  Scope at(size_t index) { return Scope(*this, {{}, index, true}); }

  std::string path_text(std::string_view field) const {
    std::string text;
    for (const Part& part : path_) {
      if (part.is_index) {
        text += fmt::format("[{}]", part.index);
      } else {
        if (!text.empty()) text += '.';
        text += part.name;
      }
    }
    if (!field.empty()) {
      if (!text.empty() && field.front() != '[') text += '.';
      text += field;
    }
    return text.empty() ? std::string("snapshot") : text;
  }
  // Takes `count` elements from the budget; false (an error) when it runs out.
  bool spend(std::string_view field, size_t count) {
    if (count <= budget_) {
      budget_ -= count;
      return true;
    }
    return fail(field, "the snapshot refers to the same values over and over (more elements "
                       "than its data holds): refusing to expand it");
  }
  bool fail(std::string_view field, std::string_view what) {
    error_ = fmt::format("{}: {}", path_text(field), what);
    return false;
  }
  bool expected(std::string_view field, std::string_view wanted, Value got) {
    return fail(field,
                fmt::format("expected {}, got {}", wanted, pickle::kind_name(doc_.kind(got))));
  }

  // A dict's fields by position: the keys of a shape (Document::dict_slots) are mapped to
  // fields once, so the millions of dicts of a few shapes are read without looking at keys.
  struct Fields {
    const Field* fields = nullptr;  // nullptr: `slots` alternate key, value
    const uint32_t* slots = nullptr;
    size_t size = 0;
  };
  Fields fields_of(Value dict) {
    const Document::DictSlots dict_slots = doc_.dict_slots(dict);
    if (dict_slots.shape == Document::kNoShape) return {nullptr, dict_slots.slots, dict_slots.size};
    if (shape_fields_.empty()) shape_fields_.resize(doc_.shape_count());
    std::unique_ptr<Field[]>& mapped = shape_fields_[dict_slots.shape];
    if (mapped == nullptr) {
      mapped = std::make_unique<Field[]>(dict_slots.size);
      for (size_t i = 0; i < dict_slots.size; ++i) {
        mapped[i] = field_of(doc_.shape_key(dict_slots.shape, i));
      }
    }
    return {mapped.get(), dict_slots.slots, dict_slots.size};
  }
  Field field_at(const Fields& dict, size_t index) {
    return dict.fields != nullptr ? dict.fields[index] : field_of(Value{dict.slots[2 * index]});
  }
  static Value value_at(const Fields& dict, size_t index) {
    return Value{dict.fields != nullptr ? dict.slots[index] : dict.slots[2 * index + 1]};
  }

  Field field_of(Value key) {
    return fields_.get(key, [&] {
      if (!doc_.is(key, Kind::string)) return Field::unknown;
      const std::string_view text = doc_.as_string(key);
      for (size_t i = 1; i < std::size(kFieldNames); ++i) {
        if (kFieldNames[i] == text) return static_cast<Field>(i);
      }
      return Field::unknown;
    });
  }
  static std::string_view field_name(Field field) {
    return kFieldNames[static_cast<size_t>(field)];
  }

  // Typed reads of a field's value; the error names the field's path.
  bool read_int(Field field, Value value, int64_t* out) {
    if (!doc_.is(value, Kind::integer)) return expected(field_name(field), "int", value);
    *out = doc_.as_int(value);
    return true;
  }
  bool read_size(Field field, Value value, uint64_t* out) {
    int64_t number = 0;
    if (!read_int(field, value, &number)) return false;
    if (number < 0)
      return fail(field_name(field), fmt::format("expected a size or address, got {}", number));
    *out = static_cast<uint64_t>(number);
    return true;
  }
  bool read_device(Field field, Value value, int* out) {
    int64_t number = 0;
    if (!read_int(field, value, &number)) return false;
    if (number < -1 || number > std::numeric_limits<int>::max()) {
      return fail(field_name(field), fmt::format("device {} out of range", number));
    }
    *out = static_cast<int>(number);
    return true;
  }
  bool read_bool(Field field, Value value, bool* out) {
    if (!doc_.is(value, Kind::boolean)) return expected(field_name(field), "bool", value);
    *out = doc_.as_bool(value);
    return true;
  }
  bool read_string(Field field, Value value, std::string_view* out) {
    if (!doc_.is(value, Kind::string)) return expected(field_name(field), "str", value);
    *out = doc_.as_string(value);
    return true;
  }
  bool is_sequence(Value value) const {
    return doc_.is(value, Kind::list) || doc_.is(value, Kind::tuple);
  }

  bool decode_root(Value root);
  bool decode_segment(Value dict, Segment* segment);
  bool decode_block(Value dict, Block* block, bool* has_address, bool* has_requested);
  bool decode_history(Value list, Block* block, bool has_requested);
  bool decode_trace_entry(Value dict, TraceEntry* entry);
  bool decode_settings(Value dict);
  bool decode_divisions(Value value);
  bool decode_annotation(Value dict, Annotation* annotation);
  // A frames list as an interned stack id.
  bool decode_frames(Value list, uint32_t* stack);
  bool decode_frame(Value dict, uint32_t* id);

  const Document& doc_;
  Snapshot snapshot_;
  std::vector<Part> path_;
  size_t budget_;
  std::string error_;
  HandleCache<Field, 8> fields_;
  HandleCache<int, 8> states_;  // BlockState, or -1 for an unknown name
  HandleCache<TraceAction, 8> actions_;
  HandleCache<uint32_t, 14> frame_dicts_;  // frame id + 1 (0 = not decoded yet)
  // stack id + 1 of a frames list: a stack captured once is one (memoized) list in the pickle,
  // and equal small lists share one handle, so the next entry with it is a lookup.
  HandleCache<uint32_t, 14> frame_lists_;
  ContentCache<14> frame_contents_;  // stack id + 1 by the list's content
  std::vector<std::unique_ptr<Field[]>> shape_fields_;  // by shape; see fields_of
  std::unordered_map<FrameKey, uint32_t, FrameKeyHash> frame_keys_;
  // In front of frame_keys_: frame dicts written afresh repeat the same few keys.
  struct RecentFrame {
    FrameKey key{};
    uint32_t id = 0;  // frame id + 1, 0 = empty
  };
  std::vector<RecentFrame> recent_frames_ = std::vector<RecentFrame>(4096);
  std::vector<uint32_t> frame_ids_;
};

bool Decoder::decode_root(Value root) {
  Value segments;
  bool has_segments = false;
  if (doc_.is(root, Kind::list)) {
    snapshot_.bare_segment_list = true;
    segments = root;
    has_segments = true;
  } else if (doc_.is(root, Kind::dict)) {
    for (size_t i = 0; i < doc_.size(root); ++i) {
      const Value value = doc_.value(root, i);
      switch (field_of(doc_.key(root, i))) {
        case Field::segments:
          segments = value;
          has_segments = true;
          break;
        case Field::device_traces: {
          if (doc_.is(value, Kind::none)) break;
          if (!is_sequence(value)) return expected("device_traces", "list", value);
          const auto scope = at("device_traces");
          if (!spend("device_traces", doc_.size(value))) return false;
          snapshot_.device_traces.resize(doc_.size(value));
          for (size_t device = 0; device < doc_.size(value); ++device) {
            const Value trace = doc_.item(value, device);
            if (!is_sequence(trace)) return expected(fmt::format("[{}]", device), "list", trace);
            const auto device_scope = at(device);
            auto& entries = snapshot_.device_traces[device];
            if (!spend("", doc_.size(trace))) return false;
            resize_fresh(entries, doc_.size(trace));
            for (size_t e = 0; e < entries.size(); ++e) {
              const auto entry_scope = at(e);
              if (!decode_trace_entry(doc_.item(trace, e), &entries[e])) return false;
            }
          }
          break;
        }
        case Field::allocator_settings:
          if (doc_.is(value, Kind::none)) break;
          if (!doc_.is(value, Kind::dict)) return expected("allocator_settings", "dict", value);
          if (!decode_settings(value)) return false;
          break;
        case Field::external_annotations: {
          if (doc_.is(value, Kind::none)) break;
          if (!is_sequence(value)) return expected("external_annotations", "list", value);
          const auto scope = at("external_annotations");
          if (!spend("", doc_.size(value))) return false;
          snapshot_.annotations.resize(doc_.size(value));
          for (size_t a = 0; a < doc_.size(value); ++a) {
            const auto item_scope = at(a);
            if (!decode_annotation(doc_.item(value, a), &snapshot_.annotations[a])) return false;
          }
          break;
        }
        default:
          ++snapshot_.unknown_fields;
      }
    }
  } else {
    return fail("", fmt::format("expected a dict or a list of segments at the top, got {}",
                                pickle::kind_name(doc_.kind(root))));
  }
  if (!has_segments) return fail("segments", "missing (a snapshot names its segments)");
  if (!is_sequence(segments)) return expected("segments", "list", segments);
  const auto scope = at("segments");
  if (!spend("", doc_.size(segments))) return false;
  snapshot_.segments.resize(doc_.size(segments));
  for (size_t s = 0; s < snapshot_.segments.size(); ++s) {
    const auto item_scope = at(s);
    if (!decode_segment(doc_.item(segments, s), &snapshot_.segments[s])) return false;
  }
  return true;
}

bool Decoder::decode_segment(Value dict, Segment* segment) {
  if (!doc_.is(dict, Kind::dict)) return expected("", "dict", dict);
  Value blocks;
  bool has_blocks = false;
  bool has_address = false;
  bool has_total = false;
  const Fields fields = fields_of(dict);
  for (size_t i = 0; i < fields.size; ++i) {
    const Field field = field_at(fields, i);
    const Value value = value_at(fields, i);
    if (doc_.is(value, Kind::none) && field != Field::address && field != Field::total_size &&
        field != Field::blocks) {
      continue;  // an optional field left empty
    }
    bool ok = true;
    switch (field) {
      case Field::device:
        ok = read_device(field, value, &segment->device);
        break;
      case Field::address:
        ok = read_size(field, value, &segment->address);
        has_address = true;
        break;
      case Field::total_size:
        ok = read_size(field, value, &segment->total_size);
        has_total = true;
        break;
      case Field::allocated_size:
        ok = read_size(field, value, &segment->allocated_size);
        break;
      case Field::active_size:
        ok = read_size(field, value, &segment->active_size);
        break;
      case Field::requested_size:
        ok = read_size(field, value, &segment->requested_size);
        break;
      case Field::stream:
        ok = read_int(field, value, &segment->stream);
        break;
      case Field::segment_type: {
        std::string_view type;
        ok = read_string(field, value, &type);
        if (ok && type != "large" && type != "small") {
          return fail("segment_type",
                      fmt::format("expected 'large' or 'small', got {}", pickle::quote_text(type)));
        }
        segment->large = type == "large";
        break;
      }
      case Field::segment_pool_id:
        if (!is_sequence(value)) return expected("segment_pool_id", "a tuple of 2 ints", value);
        if (doc_.size(value) != 2 || !doc_.is(doc_.item(value, 0), Kind::integer) ||
            !doc_.is(doc_.item(value, 1), Kind::integer)) {
          return fail("segment_pool_id",
                      fmt::format("expected a tuple of 2 ints, got a {} of {} items",
                                  pickle::kind_name(doc_.kind(value)), doc_.size(value)));
        }
        segment->pool = {doc_.as_int(doc_.item(value, 0)), doc_.as_int(doc_.item(value, 1))};
        break;
      case Field::is_expandable:
        ok = read_bool(field, value, &segment->expandable);
        break;
      case Field::frames: {
        const auto scope = at("frames");
        ok = decode_frames(value, &segment->stack);
        break;
      }
      case Field::blocks:
        blocks = value;
        has_blocks = true;
        break;
      default:
        ++snapshot_.unknown_fields;
    }
    if (!ok) return false;
  }
  if (!has_address) return fail("address", "missing");
  if (!has_total) return fail("total_size", "missing");
  if (!has_blocks) return fail("blocks", "missing");
  if (!is_sequence(blocks)) return expected("blocks", "list", blocks);
  const auto scope = at("blocks");
  if (!spend("", doc_.size(blocks))) return false;
  segment->blocks.resize(doc_.size(blocks));
  // 2.0 blocks carry no address: each starts where the one before it ends.
  uint64_t next_address = segment->address;
  for (size_t b = 0; b < segment->blocks.size(); ++b) {
    const auto item_scope = at(b);
    Block& block = segment->blocks[b];
    bool block_has_address = false;
    bool has_requested = false;
    if (!decode_block(doc_.item(blocks, b), &block, &block_has_address, &has_requested)) {
      return false;
    }
    if (block_has_address) {
      snapshot_.block_addresses = true;
    } else {
      block.address = next_address;
    }
    next_address = block.address + block.size;
  }
  return true;
}

bool Decoder::decode_block(Value dict, Block* block, bool* has_address, bool* has_requested) {
  if (!doc_.is(dict, Kind::dict)) return expected("", "dict", dict);
  bool has_size = false;
  bool has_state = false;
  Value history;
  bool has_history = false;
  const Fields fields = fields_of(dict);
  for (size_t i = 0; i < fields.size; ++i) {
    const Field field = field_at(fields, i);
    const Value value = value_at(fields, i);
    if (doc_.is(value, Kind::none) && field != Field::size && field != Field::state) continue;
    bool ok = true;
    switch (field) {
      case Field::address:
        ok = read_size(field, value, &block->address);
        *has_address = true;
        break;
      case Field::size:
        ok = read_size(field, value, &block->size);
        has_size = true;
        break;
      case Field::requested_size:
        ok = read_size(field, value, &block->requested_size);
        *has_requested = true;
        break;
      case Field::state: {
        if (!doc_.is(value, Kind::string)) return expected("state", "str", value);
        const int state = states_.get(value, [&] {
          const std::string_view name = doc_.as_string(value);
          for (const auto known : {BlockState::active_allocated, BlockState::active_pending_free,
                                   BlockState::inactive}) {
            if (block_state_name(known) == name) return static_cast<int>(known);
          }
          return -1;
        });
        if (state < 0) {
          return fail("state", fmt::format("unknown block state {}",
                                           pickle::quote_text(doc_.as_string(value))));
        }
        block->state = static_cast<BlockState>(state);
        has_state = true;
        break;
      }
      case Field::frames: {
        const auto scope = at("frames");
        ok = decode_frames(value, &block->stack);
        break;
      }
      case Field::history:
        history = value;
        has_history = true;
        break;
      default:
        ++snapshot_.unknown_fields;
    }
    if (!ok) return false;
  }
  if (!has_size) return fail("size", "missing");
  if (!has_state) return fail("state", "missing");
  if (has_history) {
    snapshot_.block_history = true;
    if (!decode_history(history, block, *has_requested)) return false;
  }
  return true;
}

// PyTorch 2.0: `history` lists what was allocated in the block, newest last; the block's stack
// is the last entry's, and its real_size the requested size when the block has none.
bool Decoder::decode_history(Value list, Block* block, bool has_requested) {
  if (!is_sequence(list)) return expected("history", "list", list);
  const auto scope = at("history");
  for (size_t h = 0; h < doc_.size(list); ++h) {
    const auto item_scope = at(h);
    const Value dict = doc_.item(list, h);
    if (!doc_.is(dict, Kind::dict)) return expected("", "dict", dict);
    const bool last = h + 1 == doc_.size(list);
    for (size_t i = 0; i < doc_.size(dict); ++i) {
      const Field field = field_of(doc_.key(dict, i));
      const Value value = doc_.value(dict, i);
      if (doc_.is(value, Kind::none)) continue;
      uint64_t number = 0;
      uint32_t stack = 0;
      bool ok = true;
      switch (field) {
        case Field::addr:
          ok = read_size(field, value, &number);
          break;
        case Field::real_size:
          ok = read_size(field, value, &number);
          if (ok && last && !has_requested) block->requested_size = number;
          break;
        case Field::frames: {
          const auto frames_scope = at("frames");
          ok = decode_frames(value, &stack);
          if (ok && last) block->stack = stack;
          break;
        }
        default:
          ++snapshot_.unknown_fields;
      }
      if (!ok) return false;
    }
  }
  return true;
}

bool Decoder::decode_trace_entry(Value dict, TraceEntry* entry) {
  if (!doc_.is(dict, Kind::dict)) return expected("", "dict", dict);
  bool has_action = false;
  const Fields fields = fields_of(dict);
  for (size_t i = 0; i < fields.size; ++i) {
    const Field field = field_at(fields, i);
    const Value value = value_at(fields, i);
    if (doc_.is(value, Kind::none) && field != Field::action) continue;
    bool ok = true;
    switch (field) {
      case Field::action:
        if (!doc_.is(value, Kind::string)) return expected("action", "str", value);
        entry->action = actions_.get(value, [&] {
          const std::string_view name = doc_.as_string(value);
          for (int action = 0; action < static_cast<int>(TraceAction::unknown); ++action) {
            if (trace_action_name(static_cast<TraceAction>(action)) == name) {
              return static_cast<TraceAction>(action);
            }
          }
          return TraceAction::unknown;
        });
        if (entry->action == TraceAction::unknown) ++snapshot_.unknown_actions;
        has_action = true;
        break;
      case Field::addr:
        ok = read_size(field, value, &entry->addr);
        break;
      case Field::size:
        ok = read_size(field, value, &entry->size);
        break;
      case Field::stream:
        ok = read_int(field, value, &entry->stream);
        break;
      case Field::time_us:
        ok = read_int(field, value, &entry->time_us);
        break;
      case Field::device_free:
        ok = read_size(field, value, &entry->device_free);
        break;
      case Field::frames: {
        const auto scope = at("frames");
        ok = decode_frames(value, &entry->stack);
        break;
      }
      default:
        ++snapshot_.unknown_fields;
    }
    if (!ok) return false;
  }
  if (!has_action) return fail("action", "missing");
  return true;
}

bool Decoder::decode_settings(Value dict) {
  const auto scope = at("allocator_settings");
  AllocatorSettings& settings = snapshot_.settings;
  settings.present = true;
  const Fields fields = fields_of(dict);
  for (size_t i = 0; i < fields.size; ++i) {
    const Field field = field_at(fields, i);
    const Value value = value_at(fields, i);
    if (doc_.is(value, Kind::none)) continue;
    bool ok = true;
    bool flag = false;
    int64_t number = 0;
    switch (field) {
      case Field::conf: {
        std::string_view conf;
        ok = read_string(field, value, &conf);
        settings.conf = conf;
        break;
      }
      case Field::max_split_size:
        ok = read_int(field, value, &settings.max_split_size);
        break;
      case Field::garbage_collection_threshold:
        if (!doc_.is(value, Kind::floating) && !doc_.is(value, Kind::integer)) {
          return expected("garbage_collection_threshold", "float", value);
        }
        settings.garbage_collection_threshold = doc_.as_float(value);
        break;
      case Field::expandable_segments:
        ok = read_bool(field, value, &settings.expandable_segments);
        break;
      case Field::roundup_power2_divisions:
        ok = decode_divisions(value);
        break;
      case Field::release_lock_on_cudamalloc:
      case Field::pinned_use_cuda_host_register:
        ok = read_bool(field, value, &flag);
        break;
      case Field::pinned_num_register_threads:
        ok = read_int(field, value, &number);
        break;
      default:
        ++snapshot_.unknown_fields;
    }
    if (!ok) return false;
  }
  return true;
}

// {'1': n, '2': n, ..., '32768': n} keyed by the bucket's lower bound in MiB, or (some versions)
// a list whose item i is the bucket starting at 2^i MiB.
bool Decoder::decode_divisions(Value value) {
  auto& divisions = snapshot_.settings.roundup_power2_divisions;
  divisions.clear();
  const auto scope = at("roundup_power2_divisions");
  if (is_sequence(value)) {
    for (size_t i = 0; i < doc_.size(value) && i < 64; ++i) {
      const Value count = doc_.item(value, i);
      if (!doc_.is(count, Kind::integer)) return expected(fmt::format("[{}]", i), "int", count);
      divisions.emplace_back(uint64_t{1} << i, doc_.as_int(count));
    }
    return true;
  }
  if (!doc_.is(value, Kind::dict)) return expected("", "dict", value);
  for (size_t i = 0; i < doc_.size(value); ++i) {
    const Value key = doc_.key(value, i);
    const Value count = doc_.value(value, i);
    uint64_t bound = 0;
    if (doc_.is(key, Kind::integer) && doc_.as_int(key) >= 0) {
      bound = static_cast<uint64_t>(doc_.as_int(key));
    } else if (doc_.is(key, Kind::string)) {
      const std::string_view text = doc_.as_string(key);
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bound);
      if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
        return fail("", fmt::format("key {} is not a size in MiB", pickle::quote_text(text)));
      }
    } else {
      return fail("", fmt::format("expected str keys (sizes in MiB), got {}",
                                  pickle::kind_name(doc_.kind(key))));
    }
    if (!doc_.is(count, Kind::integer)) return expected(fmt::format("[{}]", bound), "int", count);
    divisions.emplace_back(bound, doc_.as_int(count));
  }
  std::sort(divisions.begin(), divisions.end());
  return true;
}

bool Decoder::decode_annotation(Value dict, Annotation* annotation) {
  if (!doc_.is(dict, Kind::dict)) return expected("", "dict", dict);
  const Fields fields = fields_of(dict);
  for (size_t i = 0; i < fields.size; ++i) {
    const Field field = field_at(fields, i);
    const Value value = value_at(fields, i);
    if (doc_.is(value, Kind::none)) continue;
    bool ok = true;
    std::string_view text;
    switch (field) {
      case Field::stage:
        ok = read_string(field, value, &text);
        annotation->stage = text;
        break;
      case Field::name:
        ok = read_string(field, value, &text);
        annotation->name = text;
        break;
      case Field::device:
        ok = read_device(field, value, &annotation->device);
        break;
      case Field::time_us:
        ok = read_int(field, value, &annotation->time_us);
        break;
      default:
        ++snapshot_.unknown_fields;
    }
    if (!ok) return false;
  }
  return true;
}

bool Decoder::decode_frames(Value list, uint32_t* stack) {
  if (doc_.is(list, Kind::none)) return true;
  if (!is_sequence(list)) return expected("", "list", list);
  if (const uint32_t known = frame_lists_.get(list, [] { return uint32_t{0}; }); known != 0) {
    *stack = known - 1;
    return true;
  }
  const uint64_t content = doc_.content_id(list);
  if (const uint32_t known = content != 0 ? frame_contents_.get(content) : 0; known != 0) {
    *stack = known - 1;
    frame_lists_.put(list, known);
    return true;
  }
  frame_ids_.clear();
  for (size_t f = 0; f < doc_.size(list); ++f) {
    const Value frame = doc_.item(list, f);
    uint32_t id = frame_dicts_.get(frame, [] { return uint32_t{0}; });
    if (id == 0) {
      const auto scope = at(f);
      if (!decode_frame(frame, &id)) return false;
      id += 1;
      frame_dicts_.put(frame, id);  // the next memo reference to this dict is a lookup
    }
    frame_ids_.push_back(id - 1);
  }
  *stack = snapshot_.frames.intern_stack(frame_ids_);
  frame_lists_.put(list, *stack + 1);
  if (content != 0) frame_contents_.put(content, *stack + 1);
  return true;
}

bool Decoder::decode_frame(Value dict, uint32_t* id) {
  if (!doc_.is(dict, Kind::dict)) return expected("", "dict", dict);
  Value filename;
  Value name;
  int64_t line = 0;
  const Fields fields = fields_of(dict);
  for (size_t i = 0; i < fields.size; ++i) {
    const Field field = field_at(fields, i);
    const Value value = value_at(fields, i);
    if (doc_.is(value, Kind::none)) continue;
    switch (field) {
      case Field::filename:
        if (!doc_.is(value, Kind::string)) return expected("filename", "str", value);
        filename = value;
        break;
      case Field::name:
        if (!doc_.is(value, Kind::string)) return expected("name", "str", value);
        name = value;
        break;
      case Field::line:
        if (!read_int(field, value, &line)) return false;
        break;
      default:
        ++snapshot_.unknown_fields;
    }
  }
  const FrameKey key{filename.raw, name.raw, line};
  RecentFrame& recent = recent_frames_[FrameKeyHash{}(key) >> 52];
  if (recent.id != 0 && recent.key == key) {
    *id = recent.id - 1;
    return true;
  }
  if (const auto found = frame_keys_.find(key); found != frame_keys_.end()) {
    *id = found->second;
  } else {
    *id = snapshot_.frames.intern_frame(
        Frame{std::string(doc_.as_string(filename)), line, std::string(doc_.as_string(name))});
    frame_keys_.emplace(key, *id);
  }
  recent = {key, *id + 1};
  return true;
}

}  // namespace

Result<Snapshot> decode_snapshot(const pickle::Document& document) {
  return Decoder(document).run();
}

Result<Snapshot> read_snapshot(const std::string& path) {
  auto document = pickle::parse_file(path);
  if (!document.ok()) return document.error();
  auto snapshot = decode_snapshot(*document);
  if (!snapshot.ok()) return make_error(fmt::format("{}: {}", path, snapshot.message()));
  return snapshot;
}

}  // namespace memscope::torch
