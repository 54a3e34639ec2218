#include "collect/torch_snapshot.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"

namespace memscope::torch {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// JSON written as a pickle the way Python's pickler (protocol 4) writes the same dicts: each
// str, list and dict memoized, dict keys written once and fetched from the memo after that,
// {"__tuple__": [...]} as a tuple.
class PickleWriter {
 public:
  std::string write(const json& value) {
    out_ = std::string("\x80\x04", 2);
    emit(value);
    out_ += '.';
    return out_;
  }

 private:
  void op(int code) { out_ += static_cast<char>(code); }
  void le(uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out_ += static_cast<char>((value >> (8 * i)) & 0xff);
  }
  void memoize() {
    op(0x94);
    ++memo_;
  }
  void text(const std::string& value) {
    if (value.size() < 256) {
      op(0x8c);
      le(value.size(), 1);
    } else {
      op(0x58);
      le(value.size(), 4);
    }
    out_ += value;
    memoize();
  }
  void key(const std::string& name) {
    if (const auto found = keys_.find(name); found != keys_.end()) {
      if (found->second < 256) {
        op(0x68);
        le(found->second, 1);
      } else {
        op(0x6a);
        le(found->second, 4);
      }
      return;
    }
    keys_[name] = memo_;
    text(name);
  }
  void emit(const json& value) {
    if (value.is_null()) {
      op(0x4e);
    } else if (value.is_boolean()) {
      op(value.get<bool>() ? 0x88 : 0x89);
    } else if (value.is_number_integer()) {
      const auto number = value.get<int64_t>();
      if (number >= 0 && number < 256) {
        op(0x4b);
        le(static_cast<uint64_t>(number), 1);
      } else if (number >= INT32_MIN && number <= INT32_MAX) {
        op(0x4a);
        le(static_cast<uint64_t>(number), 4);
      } else {
        op(0x8a);
        le(8, 1);
        le(static_cast<uint64_t>(number), 8);
      }
    } else if (value.is_number_float()) {
      op(0x47);
      const auto bits = std::bit_cast<uint64_t>(value.get<double>());
      for (int i = 7; i >= 0; --i) out_ += static_cast<char>((bits >> (8 * i)) & 0xff);
    } else if (value.is_string()) {
      text(value.get<std::string>());
    } else if (value.is_array()) {
      op(0x5d);
      memoize();
      if (value.empty()) return;
      op(0x28);
      for (const auto& item : value) emit(item);
      op(0x65);
    } else if (value.contains("__tuple__")) {
      op(0x28);
      for (const auto& item : value["__tuple__"]) emit(item);
      op(0x74);
      memoize();
    } else {
      op(0x7d);
      memoize();
      if (value.empty()) return;
      op(0x28);
      for (const auto& [name, item] : value.items()) {
        key(name);
        emit(item);
      }
      op(0x75);
    }
  }

  std::string out_;
  uint32_t memo_ = 0;
  std::map<std::string, uint32_t> keys_;
};

Result<Snapshot> decode_json(const json& value) {
  auto document = pickle::parse(PickleWriter().write(value));
  if (!document.ok()) return document.error();
  return decode_snapshot(*document);
}

std::string decode_error(const json& value) {
  auto snapshot = decode_json(value);
  EXPECT_FALSE(snapshot.ok());
  return snapshot.ok() ? std::string() : snapshot.message();
}

json read_json(const std::string& path) { return json::parse(testing::read_file(path)); }

// What a stack's frames are, as JSON frames are written.
json frames_of(const Snapshot& snapshot, uint32_t stack) {
  json out = json::array();
  const auto [ids, count] = snapshot.frames.stack(stack);
  for (size_t i = 0; i < count; ++i) {
    const Frame& frame = snapshot.frames.frame(ids[i]);
    out.push_back({{"filename", frame.filename}, {"line", frame.line}, {"name", frame.name}});
  }
  return out;
}
json plain_frames(const json& frames) {
  json out = json::array();
  for (const auto& frame : frames) {
    out.push_back({{"filename", frame.value("filename", "")},
                   {"line", frame.value("line", 0)},
                   {"name", frame.value("name", "")}});
  }
  return out;
}

// Compares a decoded snapshot with the JSON twin of its pickle, field by field, applying the
// layout rules of ../shared/specs/pytorch-memory.md (2.0 blocks: addresses follow each other,
// the last history entry gives frames and requested size).
void expect_matches_json(const Snapshot& snapshot, const json& expected) {
  const json segments = expected.is_array() ? expected : expected.at("segments");
  EXPECT_EQ(snapshot.bare_segment_list, expected.is_array());
  ASSERT_EQ(snapshot.segments.size(), segments.size());
  for (size_t s = 0; s < segments.size(); ++s) {
    SCOPED_TRACE(fmt::format("segments[{}]", s));
    const json& want = segments[s];
    const Segment& got = snapshot.segments[s];
    EXPECT_EQ(got.device, want.value("device", 0));
    EXPECT_EQ(got.address, want.at("address").get<uint64_t>());
    EXPECT_EQ(got.total_size, want.at("total_size").get<uint64_t>());
    EXPECT_EQ(got.allocated_size, want.value("allocated_size", uint64_t{0}));
    EXPECT_EQ(got.active_size, want.value("active_size", uint64_t{0}));
    EXPECT_EQ(got.requested_size, want.value("requested_size", uint64_t{0}));
    EXPECT_EQ(got.stream, want.value("stream", int64_t{0}));
    EXPECT_EQ(got.large, want.value("segment_type", "large") == "large");
    EXPECT_EQ(got.expandable, want.value("is_expandable", false));
    if (want.contains("segment_pool_id")) {
      const json& pool = want["segment_pool_id"]["__tuple__"];
      EXPECT_EQ(got.pool, std::make_pair(pool[0].get<int64_t>(), pool[1].get<int64_t>()));
    }
    EXPECT_EQ(frames_of(snapshot, got.stack), plain_frames(want.value("frames", json::array())));
    const json& blocks = want.at("blocks");
    ASSERT_EQ(got.blocks.size(), blocks.size());
    uint64_t next_address = got.address;
    for (size_t b = 0; b < blocks.size(); ++b) {
      SCOPED_TRACE(fmt::format("blocks[{}]", b));
      const json& want_block = blocks[b];
      const Block& block = got.blocks[b];
      const json history = want_block.value("history", json::array());
      const uint64_t address = want_block.value("address", next_address);
      EXPECT_EQ(block.address, address);
      next_address = address + want_block.at("size").get<uint64_t>();
      EXPECT_EQ(block.size, want_block.at("size").get<uint64_t>());
      EXPECT_EQ(block_state_name(block.state), want_block.at("state").get<std::string>());
      uint64_t requested = want_block.value("requested_size", uint64_t{0});
      json frames = want_block.value("frames", json::array());
      if (!history.empty()) {
        if (!want_block.contains("requested_size")) requested = history.back().at("real_size");
        frames = history.back().value("frames", json::array());
      }
      EXPECT_EQ(block.requested_size, requested);
      EXPECT_EQ(frames_of(snapshot, block.stack), plain_frames(frames));
    }
  }
  const json traces =
      expected.is_array() ? json::array() : expected.value("device_traces", json::array());
  ASSERT_EQ(snapshot.device_traces.size(), traces.size());
  for (size_t d = 0; d < traces.size(); ++d) {
    ASSERT_EQ(snapshot.device_traces[d].size(), traces[d].size());
    for (size_t e = 0; e < traces[d].size(); ++e) {
      SCOPED_TRACE(fmt::format("device_traces[{}][{}]", d, e));
      const json& want = traces[d][e];
      const TraceEntry& got = snapshot.device_traces[d][e];
      const std::string action = want.at("action");
      EXPECT_EQ(trace_action_name(got.action), action == "mystery_action" ? "unknown" : action);
      EXPECT_EQ(got.addr, want.value("addr", uint64_t{0}));
      EXPECT_EQ(got.size, want.value("size", uint64_t{0}));
      EXPECT_EQ(got.stream, want.value("stream", int64_t{0}));
      EXPECT_EQ(got.time_us, want.value("time_us", int64_t{-1}));
      EXPECT_EQ(got.device_free, want.value("device_free", uint64_t{0}));
      EXPECT_EQ(frames_of(snapshot, got.stack), plain_frames(want.value("frames", json::array())));
    }
  }
  const bool has_settings = !expected.is_array() && expected.contains("allocator_settings");
  EXPECT_EQ(snapshot.settings.present, has_settings);
  if (has_settings) {
    const json& want = expected["allocator_settings"];
    EXPECT_EQ(snapshot.settings.conf, want.value("PYTORCH_CUDA_ALLOC_CONF", ""));
    EXPECT_EQ(snapshot.settings.max_split_size, want.value("max_split_size", int64_t{-1}));
    EXPECT_DOUBLE_EQ(snapshot.settings.garbage_collection_threshold,
                     want.value("garbage_collection_threshold", 0.0));
    EXPECT_EQ(snapshot.settings.expandable_segments, want.value("expandable_segments", false));
    std::vector<std::pair<uint64_t, int64_t>> divisions;
    const json& want_divisions = want.at("roundup_power2_divisions");
    if (want_divisions.is_array()) {
      for (size_t i = 0; i < want_divisions.size(); ++i) {
        divisions.emplace_back(uint64_t{1} << i, want_divisions[i].get<int64_t>());
      }
    } else {
      for (const auto& [bound, count] : want_divisions.items()) {
        divisions.emplace_back(std::stoull(bound), count.get<int64_t>());
      }
      std::sort(divisions.begin(), divisions.end());
    }
    EXPECT_EQ(snapshot.settings.roundup_power2_divisions, divisions);
  }
  const json annotations =
      expected.is_array() ? json::array() : expected.value("external_annotations", json::array());
  ASSERT_EQ(snapshot.annotations.size(), annotations.size());
  for (size_t a = 0; a < annotations.size(); ++a) {
    EXPECT_EQ(snapshot.annotations[a].stage, annotations[a].at("stage"));
    EXPECT_EQ(snapshot.annotations[a].name, annotations[a].at("name"));
    EXPECT_EQ(snapshot.annotations[a].device, annotations[a].value("device", 0));
    EXPECT_EQ(snapshot.annotations[a].time_us, annotations[a].value("time_us", int64_t{-1}));
  }
}

TEST(TorchSnapshot, ExampleMatchesItsJson) {
  const std::string base = testing::shared_dir() + "/specs/example_snapshot";
  auto snapshot = read_snapshot(base + ".pickle");
  ASSERT_TRUE(snapshot.ok()) << snapshot.message();
  expect_matches_json(*snapshot, read_json(base + ".json"));
  EXPECT_TRUE(snapshot->block_addresses);
  EXPECT_FALSE(snapshot->block_history);
  EXPECT_EQ(snapshot->unknown_fields, 0u);
  EXPECT_EQ(snapshot->unknown_actions, 0u);
  // Stacks are interned: a segment and the block it was made for share one.
  EXPECT_EQ(snapshot->segments[0].stack, snapshot->segments[0].blocks[0].stack);
  EXPECT_NE(snapshot->segments[0].stack, 0u);
  EXPECT_EQ(snapshot->segments[0].blocks[1].stack, 0u);  // no frames: the empty stack
  EXPECT_EQ(snapshot->frames.frame_count(), 7u);
  EXPECT_EQ(snapshot->device_traces[0][10].action, TraceAction::oom);
  EXPECT_EQ(snapshot->device_traces[0][10].device_free, 56623104u);
}

TEST(TorchSnapshot, EveryLayoutAndProtocolMatchesItsJson) {
  size_t fixtures = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(testing::test_data_dir() + "/snapshots")) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("p_") || entry.path().extension() != ".pickle") continue;
    SCOPED_TRACE(name);
    auto snapshot = read_snapshot(entry.path().string());
    ASSERT_TRUE(snapshot.ok()) << snapshot.message();
    std::filesystem::path twin = entry.path();
    expect_matches_json(*snapshot, read_json(twin.replace_extension(".json").string()));
    EXPECT_EQ(snapshot->block_history, name.starts_with("p_v20") || name.starts_with("p_bare"));
    EXPECT_EQ(snapshot->block_addresses, !name.starts_with("p_v20") && !name.starts_with("p_bare"));
    ++fixtures;
  }
  EXPECT_EQ(fixtures, 6u);  // 2.0, 2.1, 2.3, 2.5, bare list, newest; protocols 2 to 5
}

TEST(TorchSnapshot, LegacyBlocksTakeAddressesAndStacksFromHistory) {
  const std::string path = testing::test_data_dir() + "/snapshots/p_v20_history_proto2.pickle";
  auto snapshot = read_snapshot(path);
  ASSERT_TRUE(snapshot.ok()) << snapshot.message();
  const Segment& segment = snapshot->segments[0];
  ASSERT_EQ(segment.blocks.size(), 3u);
  EXPECT_EQ(segment.blocks[1].address, segment.address + segment.blocks[0].size);
  EXPECT_EQ(segment.blocks[2].address,
            segment.address + segment.blocks[0].size + segment.blocks[1].size);
  // Block 0 has a history of two entries; the last one's real_size is size - 128.
  EXPECT_EQ(segment.blocks[0].requested_size, segment.blocks[0].size - 128);
  EXPECT_NE(segment.blocks[0].stack, 0u);
  EXPECT_EQ(segment.blocks[1].stack, 0u);
}

TEST(TorchSnapshot, UnknownFieldsAndActionsAreCountedAndIgnored) {
  const std::string base = testing::test_data_dir() + "/snapshots/p_newest_unknown_proto4";
  auto snapshot = read_snapshot(base + ".pickle");
  ASSERT_TRUE(snapshot.ok()) << snapshot.message();
  const json expected = read_json(base + ".json");
  // Top user_metadata, segment pool_id, entry compile_context + user_metadata, settings
  // new_knob, and two fx_* fields in each frame of entry 3.
  const size_t fx_frames = expected["device_traces"][0][3]["frames"].size();
  EXPECT_EQ(snapshot->unknown_fields, 5 + 2 * fx_frames);
  EXPECT_EQ(snapshot->unknown_actions, 1u);
  EXPECT_EQ(snapshot->device_traces[0][2].action, TraceAction::unknown);
  EXPECT_EQ(snapshot->settings.roundup_power2_divisions.front(),
            std::make_pair(uint64_t{1}, int64_t{1}));
  EXPECT_EQ(snapshot->settings.roundup_power2_divisions[3],
            std::make_pair(uint64_t{8}, int64_t{8}));
}

// A small snapshot in JSON, edited by the error tests below.
json small_snapshot() {
  const json frame = {{"filename", "train.py"}, {"line", 3}, {"name", "forward"}};
  const json block = {{"address", 1024},
                      {"size", 512},
                      {"requested_size", 500},
                      {"state", "active_allocated"},
                      {"frames", {frame}}};
  const json segment = {{"device", 0},
                        {"address", 1024},
                        {"total_size", 2048},
                        {"segment_type", "small"},
                        {"segment_pool_id", {{"__tuple__", {0, 0}}}},
                        {"blocks", {block, block, block}}};
  const json entry = {
      {"action", "alloc"},           {"addr", 1024},     {"size", 500}, {"stream", 0},
      {"time_us", 1700000000000000}, {"frames", {frame}}};
  return {
      {"segments", {segment, segment}},
      {"device_traces", {{entry, entry, entry, entry}}},
      {"allocator_settings", {{"max_split_size", -1}, {"roundup_power2_divisions", {{"1", 2}}}}},
      {"external_annotations",
       {{{"stage", "START"}, {"name", "step"}, {"device", 0}, {"time_us", 5}}}}};
}

TEST(TorchSnapshotErrors, TheSmallSnapshotDecodes) {
  auto snapshot = decode_json(small_snapshot());
  ASSERT_TRUE(snapshot.ok()) << snapshot.message();
  expect_matches_json(*snapshot, small_snapshot());
}

TEST(TorchSnapshotErrors, WrongTypesNameTheirPath) {
  const std::vector<std::pair<json::json_pointer, json>> edits{
      {json::json_pointer("/segments/1/blocks/2/size"), "512"},
      {json::json_pointer("/segments/0/address"), 1.5},
      {json::json_pointer("/segments/0/blocks/1/frames/0/line"), "3"},
      {json::json_pointer("/segments/0/blocks"), {{"a", 1}}},
      {json::json_pointer("/segments/1/segment_pool_id"), 0},
      {json::json_pointer("/device_traces/0/3/addr"), "0x400"},
      {json::json_pointer("/device_traces/0/1/frames"), "train.py:3"},
      {json::json_pointer("/device_traces/0"), 7},
      {json::json_pointer("/allocator_settings/max_split_size"), false},
      {json::json_pointer("/external_annotations/0/name"), 12},
      {json::json_pointer("/segments/0/blocks/0/size"), -512},
  };
  const std::vector<std::string> messages{
      "segments[1].blocks[2].size: expected int, got str",
      "segments[0].address: expected int, got float",
      "segments[0].blocks[1].frames[0].line: expected int, got str",
      "segments[0].blocks: expected list, got dict",
      "segments[1].segment_pool_id: expected a tuple of 2 ints, got int",
      "device_traces[0][3].addr: expected int, got str",
      "device_traces[0][1].frames: expected list, got str",
      "device_traces[0]: expected list, got int",
      "allocator_settings.max_split_size: expected int, got bool",
      "external_annotations[0].name: expected str, got int",
      "segments[0].blocks[0].size: expected a size or address, got -512",
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    json snapshot = small_snapshot();
    snapshot[edits[i].first] = edits[i].second;
    EXPECT_EQ(decode_error(snapshot), messages[i]);
  }
}

TEST(TorchSnapshotErrors, UnknownNamesOfKnownFields) {
  json snapshot = small_snapshot();
  snapshot["segments"][0]["blocks"][1]["state"] = "half_allocated";
  EXPECT_EQ(decode_error(snapshot),
            "segments[0].blocks[1].state: unknown block state 'half_allocated'");
  snapshot = small_snapshot();
  snapshot["segments"][1]["segment_type"] = "huge";
  EXPECT_EQ(decode_error(snapshot),
            "segments[1].segment_type: expected 'large' or 'small', got 'huge'");
  snapshot = small_snapshot();
  snapshot["segments"][0]["blocks"][0]["state"] = "two\nlines";  // found by fuzz_pickle
  EXPECT_EQ(decode_error(snapshot),
            "segments[0].blocks[0].state: unknown block state 'two\\x0alines'");
  snapshot = small_snapshot();
  snapshot["allocator_settings"]["roundup_power2_divisions"] = {{"1MB", 4}};
  EXPECT_EQ(decode_error(snapshot),
            "allocator_settings.roundup_power2_divisions: key '1MB' is not a size in MiB");
}

TEST(TorchSnapshotErrors, MissingRequiredFields) {
  const std::vector<std::pair<json::json_pointer, std::string>> removals{
      {json::json_pointer("/segments/1"), "address"},
      {json::json_pointer("/segments/0"), "total_size"},
      {json::json_pointer("/segments/0"), "blocks"},
      {json::json_pointer("/segments/1/blocks/1"), "size"},
      {json::json_pointer("/segments/0/blocks/2"), "state"},
      {json::json_pointer("/device_traces/0/2"), "action"},
      {json::json_pointer(""), "segments"},
  };
  const std::vector<std::string> messages{
      "segments[1].address: missing",
      "segments[0].total_size: missing",
      "segments[0].blocks: missing",
      "segments[1].blocks[1].size: missing",
      "segments[0].blocks[2].state: missing",
      "device_traces[0][2].action: missing",
      "segments: missing (a snapshot names its segments)",
  };
  for (size_t i = 0; i < removals.size(); ++i) {
    json snapshot = small_snapshot();
    snapshot[removals[i].first].erase(removals[i].second);
    EXPECT_EQ(decode_error(snapshot), messages[i]);
  }
}

TEST(TorchSnapshotErrors, TopLevelThatIsNoSnapshot) {
  EXPECT_EQ(decode_error(json(42)),
            "snapshot: expected a dict or a list of segments at the top, got int");
  EXPECT_EQ(decode_error(json{{"segments", "none"}}), "segments: expected list, got str");
  EXPECT_EQ(decode_error(json::array({1})), "segments[0]: expected dict, got int");
}

TEST(TorchSnapshot, OptionalFieldsMayBeNoneOrAbsent) {
  json snapshot = small_snapshot();
  snapshot["device_traces"][0][0]["time_us"] = nullptr;
  snapshot["device_traces"][0][1].erase("frames");
  snapshot["segments"][0]["blocks"][0]["frames"] = nullptr;
  snapshot["allocator_settings"]["PYTORCH_CUDA_ALLOC_CONF"] = nullptr;
  snapshot.erase("external_annotations");
  auto decoded = decode_json(snapshot);
  ASSERT_TRUE(decoded.ok()) << decoded.message();
  EXPECT_EQ(decoded->device_traces[0][0].time_us, -1);
  EXPECT_EQ(decoded->device_traces[0][1].stack, 0u);
  EXPECT_EQ(decoded->segments[0].blocks[0].stack, 0u);
  EXPECT_NE(decoded->segments[0].blocks[1].stack, 0u);
  EXPECT_TRUE(decoded->annotations.empty());
  EXPECT_EQ(decoded->unknown_fields, 0u);
}

TEST(TorchSnapshot, FramesDictsWrittenAfreshInternToOneFrame) {
  // The writer above writes each frame dict anew (no memo reference), unlike PyTorch.
  auto decoded = decode_json(small_snapshot());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->frames.frame_count(), 1u);
  EXPECT_EQ(decoded->frames.stack_count(), 2u);  // the empty stack and [train.py:3]
  EXPECT_EQ(decoded->device_traces[0][3].stack, decoded->segments[1].blocks[2].stack);
}

TEST(TorchSnapshot, DictsThatHoldTheirKeysDecodeLikeOthers) {
  // Past 64 keys a dict stores its keys itself instead of sharing a key list: the decoder reads
  // both kinds. 70 unknown keys on a segment, a block and a trace entry.
  json snapshot = small_snapshot();
  for (int i = 0; i < 70; ++i) {
    const std::string key = fmt::format("x{:02}", i);
    snapshot["segments"][1][key] = i;
    snapshot["segments"][1]["blocks"][2][key] = i;
    snapshot["device_traces"][0][3][key] = i;
  }
  snapshot["device_traces"][0][3]["size"] = 499;
  snapshot["segments"][1]["blocks"][2]["state"] = "inactive";
  auto decoded = decode_json(snapshot);
  ASSERT_TRUE(decoded.ok()) << decoded.message();
  expect_matches_json(*decoded, snapshot);
  EXPECT_EQ(decoded->unknown_fields, 3u * 70);
  EXPECT_EQ(decoded->device_traces[0][3].size, 499u);
  EXPECT_EQ(decoded->segments[1].blocks[2].state, BlockState::inactive);
  EXPECT_NE(decoded->device_traces[0][3].stack, 0u);
}

TEST(TorchSnapshot, FramesListsOfTheSameFrameDictsShareAStack) {
  // As PyTorch writes them: frame dicts memoized once, each entry's frames list written afresh
  // with memo references. Entries 1 and 3 are [f, g] (equal lists share their storage), 2 is
  // [g, f], 0 holds the dicts themselves.
  const auto op = [](int code) { return std::string(1, static_cast<char>(code)); };
  const auto str = [&](std::string_view text) {
    return op(0x8c) + op(static_cast<int>(text.size())) + std::string(text);
  };
  const std::string mark = op(0x28);
  const auto frame = [&](int line, std::string_view name) {
    return op(0x7d) + mark + str("filename") + str("a.py") + str("line") + op(0x4b) + op(line) +
           str("name") + str(name) + op(0x75) + op(0x94);
  };
  const auto entry = [&](const std::string& frames) {
    return op(0x7d) + mark + str("action") + str("alloc") + str("addr") + op(0x4b) + op(16) +
           str("size") + op(0x4b) + op(8) + str("frames") + op(0x5d) + mark + frames + op(0x65) +
           op(0x75);
  };
  const std::string f = op(0x68) + op(0);
  const std::string g = op(0x68) + op(1);
  std::string p = op(0x80) + op(4) + op(0x7d) + mark + str("segments") + op(0x5d) +
                  str("device_traces") + op(0x5d) + mark + op(0x5d) + mark;
  p += entry(frame(1, "f") + frame(2, "g")) + entry(f + g) + entry(g + f) + entry(f + g);
  p += op(0x65) + op(0x65) + op(0x75) + op(0x2e);
  auto document = pickle::parse(p);
  ASSERT_TRUE(document.ok()) << document.message();
  auto decoded = decode_snapshot(*document);
  ASSERT_TRUE(decoded.ok()) << decoded.message();
  const auto& trace = decoded->device_traces.at(0);
  ASSERT_EQ(trace.size(), 4u);
  EXPECT_EQ(trace[1].stack, trace[0].stack);
  EXPECT_EQ(trace[3].stack, trace[0].stack);
  EXPECT_NE(trace[2].stack, trace[0].stack);
  EXPECT_EQ(frames_of(*decoded, trace[3].stack),
            json::parse(R"([{"filename": "a.py", "line": 1, "name": "f"},
                            {"filename": "a.py", "line": 2, "name": "g"}])"));
  EXPECT_EQ(frames_of(*decoded, trace[2].stack),
            json::parse(R"([{"filename": "a.py", "line": 2, "name": "g"},
                            {"filename": "a.py", "line": 1, "name": "f"}])"));
  EXPECT_EQ(decoded->frames.frame_count(), 2u);
  EXPECT_EQ(decoded->frames.stack_count(), 3u);  // the empty stack, [f, g], [g, f]
}

TEST(TorchSnapshotErrors, FilesThatAreNoSnapshotsNameTheFile) {
  testing::TempDir dir;
  const std::string json_path = testing::shared_dir() + "/specs/example_snapshot.json";
  auto not_pickle = read_snapshot(json_path);
  ASSERT_FALSE(not_pickle.ok());
  EXPECT_EQ(not_pickle.message(), json_path + ": not a pickle (first byte 0x7b)");

  const std::string bytes =
      testing::read_file(testing::shared_dir() + "/specs/example_snapshot.pickle");
  testing::write_file(dir.file("cut.pickle"), bytes.substr(0, bytes.size() / 2));
  auto cut = read_snapshot(dir.file("cut.pickle"));
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.message(), HasSubstr(dir.file("cut.pickle") + ": offset "));
  EXPECT_THAT(cut.message(), HasSubstr("truncated (the file ends"));

  testing::write_file(dir.file("wrong.pickle"), PickleWriter().write(json{{"segments", 3}}));
  auto wrong = read_snapshot(dir.file("wrong.pickle"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.message(), dir.file("wrong.pickle") + ": segments: expected list, got int");

  auto missing = read_snapshot(dir.file("none.pickle"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), dir.file("none.pickle") + ": No such file or directory");
}

}  // namespace
}  // namespace memscope::torch

namespace memscope::torch {
namespace {

// {"segments": [S, S, ... 100,000 times]} where S = {"device": 0, "address": 0, "total_size": 1,
// "blocks": [B, B, ... 100,000 times]} and every repeat is a memo reference: 400 KB that would
// decode to 10^10 blocks.
TEST(TorchSnapshotErrors, MemoReferencesAreNotExpandedWithoutBound) {
  const auto op = [](int code) { return std::string(1, static_cast<char>(code)); };
  const auto str = [&](std::string_view text) {
    return op(0x8c) + op(static_cast<int>(text.size())) + std::string(text);
  };
  const std::string memoize = op(0x94);
  const std::string mark = op(0x28);
  constexpr int kRepeats = 100'000;
  std::string p = op(0x80) + op(4) + op(0x7d) + memoize + str("segments") + op(0x5d) + memoize + mark;
  p += op(0x7d) + memoize + mark + str("device") + op(0x4b) + op(0) + str("address") + op(0x4b) +
       op(0) + str("total_size") + op(0x4b) + op(1) + str("blocks") + op(0x5d) + memoize + mark;
  p += op(0x7d) + memoize + mark + str("size") + op(0x4b) + op(1) + str("state") +
       str("inactive") + op(0x75);
  for (int i = 1; i < kRepeats; ++i) p += op(0x68) + op(4);  // the block again
  p += op(0x65) + op(0x75);                                  // APPENDS, SETITEMS of S
  for (int i = 1; i < kRepeats; ++i) p += op(0x68) + op(2);  // the segment again
  p += op(0x65) + op(0x73) + op(0x2e);
  auto document = pickle::parse(p);
  ASSERT_TRUE(document.ok()) << document.message();
  auto snapshot = decode_snapshot(*document);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_NE(snapshot.message().find("refers to the same values over and over"), std::string::npos)
      << snapshot.message();
}

}  // namespace
}  // namespace memscope::torch
