#include "collect/pickle.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <functional>
#include <limits>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace memscope::pickle {

namespace {
// Memo entries stored far ahead of the dense part (never in pickles Python writes).
constexpr size_t kMaxSparseMemo = size_t{1} << 20;
}  // namespace
namespace {

#define MEMSCOPE_HOT [[gnu::always_inline]] inline

using namespace encoding;  // NOLINT(google-build-using-namespace): our own encoding

constexpr uint32_t kMaxIndex = (uint32_t{1} << 30) - 2;  // index 2^30 - 1 stays free for kUnset
constexpr uint32_t kUnset = 0xFFFFFFFE;                  // a memo slot never stored
constexpr uint32_t kMaxShapes = 1 << 16;
constexpr uint32_t kMaxShapeKeys = 64;
constexpr uint32_t kNoShape = 0xFFFFFFFF;
constexpr size_t kInternMaxBytes = 512;
constexpr size_t kShareMaxSlots = 255;
constexpr size_t kMaxLineBytes = 256;
constexpr size_t kBufferBytes = size_t{1} << 18;
constexpr uint32_t kNoneHandle = 0 << 2;
constexpr uint32_t kFalseHandle = 1 << 2;
constexpr uint32_t kTrueHandle = 2 << 2;
constexpr uint32_t kEmptyTupleHandle = 3 << 2;

bool padded(uint64_t word) { return ((word >> 4) & 1) != 0; }
uint64_t container(uint64_t code, uint64_t field, uint64_t offset, bool is_padded) {
  return code | (uint64_t{is_padded} << 4) | (field << 5) | (offset << 32);
}
Value handle(uint32_t node) { return Value{node << 2}; }

struct OpcodeName {
  uint8_t code;
  std::string_view name;
};
// clang-format off
constexpr OpcodeName kOpcodeNames[] = {
    {0x28, "MARK"}, {0x29, "EMPTY_TUPLE"}, {0x2e, "STOP"}, {0x30, "POP"}, {0x31, "POP_MARK"},
    {0x32, "DUP"}, {0x42, "BINBYTES"}, {0x43, "SHORT_BINBYTES"}, {0x46, "FLOAT"},
    {0x47, "BINFLOAT"}, {0x49, "INT"}, {0x4a, "BININT"}, {0x4b, "BININT1"}, {0x4c, "LONG"},
    {0x4d, "BININT2"}, {0x4e, "NONE"}, {0x50, "PERSID"}, {0x51, "BINPERSID"}, {0x52, "REDUCE"},
    {0x53, "STRING"}, {0x54, "BINSTRING"}, {0x55, "SHORT_BINSTRING"}, {0x56, "UNICODE"},
    {0x58, "BINUNICODE"}, {0x5d, "EMPTY_LIST"}, {0x61, "APPEND"}, {0x62, "BUILD"},
    {0x63, "GLOBAL"}, {0x64, "DICT"}, {0x65, "APPENDS"}, {0x67, "GET"}, {0x68, "BINGET"},
    {0x69, "INST"}, {0x6a, "LONG_BINGET"}, {0x6c, "LIST"}, {0x6f, "OBJ"}, {0x70, "PUT"},
    {0x71, "BINPUT"}, {0x72, "LONG_BINPUT"}, {0x73, "SETITEM"}, {0x74, "TUPLE"},
    {0x75, "SETITEMS"}, {0x7d, "EMPTY_DICT"}, {0x80, "PROTO"}, {0x81, "NEWOBJ"}, {0x82, "EXT1"},
    {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"},
    {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"},
    {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"}, {0x8e, "BINBYTES8"}, {0x8f, "EMPTY_SET"},
    {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}, {0x92, "NEWOBJ_EX"}, {0x93, "STACK_GLOBAL"},
    {0x94, "MEMOIZE"}, {0x95, "FRAME"}, {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"},
    {0x98, "READONLY_BUFFER"},
};
// clang-format on

std::string_view opcode_name(uint8_t op) {
  for (const auto& [code, name] : kOpcodeNames) {
    if (code == op) return name;
  }
  return {};
}

// Opcodes that call code, import, or reach outside the pickle.
constexpr std::string_view kRefused =
    "\x50\x51\x52\x62\x63\x69\x6f\x81\x82\x83\x84\x92\x93\x97\x98";
// What a pickle can start with: PROTO (protocol 2+), or, in protocols 0 and 1, an opcode that
// pushes a value or a MARK.
constexpr std::string_view kFirstOpcodes =
    "\x80\x28\x29\x5d\x7d\x4e\x49\x4a\x4b\x4c\x4d\x46\x47\x58\x54\x55\x53\x56\x63\x67\x68\x6a";
bool refused(uint8_t op) { return kRefused.find(static_cast<char>(op)) != std::string_view::npos; }
bool starts_pickle(uint8_t op) {
  return kFirstOpcodes.find(static_cast<char>(op)) != std::string_view::npos;
}

uint64_t load_le(const char* bytes, size_t count) {
  uint64_t value = 0;
  for (size_t i = count; i-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

// Where the pickle's bytes come from: memory, or a FILE read through one bounded buffer.
class Input {
 public:
  explicit Input(std::string_view bytes)
      : start_(bytes.data()), cur_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  explicit Input(std::FILE* file) : file_(file), buffer_(kBufferBytes) {
    start_ = cur_ = end_ = buffer_.data();
  }

  // At least `count` bytes at data(); false when the input ends (or fails) first.
  MEMSCOPE_HOT bool ensure(size_t count) {
    return static_cast<size_t>(end_ - cur_) >= count || refill(count);
  }
  MEMSCOPE_HOT const char* data() const { return cur_; }
  MEMSCOPE_HOT void skip(size_t count) { cur_ += count; }
  MEMSCOPE_HOT uint64_t offset() const { return consumed_ + static_cast<uint64_t>(cur_ - start_); }
  const std::string& read_error() const { return read_error_; }

  // Appends the next `count` bytes to `out` as they arrive (so a length field larger than the
  // input never allocates more than the input holds); false if the input ends first.
  bool read_into(uint64_t count, detail::PodArray<char>& out) {
    if (file_ == nullptr && static_cast<uint64_t>(end_ - cur_) < count) return false;
    while (count > 0) {
      if (cur_ == end_ && !refill(1)) return false;
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(count, static_cast<uint64_t>(end_ - cur_)));
      out.append(cur_, take);
      cur_ += take;
      count -= take;
    }
    return true;
  }

 private:
  bool refill(size_t count) {
    if (file_ == nullptr || !read_error_.empty()) return false;
    const auto kept = static_cast<size_t>(end_ - cur_);
    consumed_ += static_cast<uint64_t>(cur_ - start_);
    std::memmove(buffer_.data(), cur_, kept);
    size_t filled = kept;
    while (filled < count) {
      const size_t got = std::fread(buffer_.data() + filled, 1, buffer_.size() - filled, file_);
      filled += got;
      if (got == 0) {
        if (std::ferror(file_) != 0) read_error_ = std::generic_category().message(errno);
        break;
      }
    }
    start_ = cur_ = buffer_.data();
    end_ = cur_ + filled;
    return filled >= count;
  }

  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  const char* start_ = nullptr;  // the byte at offset consumed_
  const char* cur_ = nullptr;
  const char* end_ = nullptr;
  uint64_t consumed_ = 0;
  std::string read_error_;
};

// An open-addressing map from 64-bit keys (never ~0) to 32-bit values.
class FlatMap {
 public:
  bool find(uint64_t key, uint32_t* value) const {
    if (keys_.size() == 0) return false;
    for (size_t slot = slot_of(key);; slot = (slot + 1) & (keys_.size() - 1)) {
      if (keys_[slot] == key) {
        *value = values_[slot];
        return true;
      }
      if (keys_[slot] == kEmpty) return false;
    }
  }
  void insert(uint64_t key, uint32_t value) {
    if ((count_ + 1) * 2 > keys_.size()) grow();
    size_t slot = slot_of(key);
    while (keys_[slot] != kEmpty) slot = (slot + 1) & (keys_.size() - 1);
    keys_[slot] = key;
    values_[slot] = value;
    ++count_;
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  size_t slot_of(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20) & (keys_.size() - 1);
  }
  void grow() {
    detail::PodArray<uint64_t> old_keys = std::move(keys_);
    detail::PodArray<uint32_t> old_values = std::move(values_);
    const size_t size = old_keys.size() == 0 ? 64 : old_keys.size() * 2;
    keys_.resize(size);
    values_.resize(size);
    for (size_t i = 0; i < size; ++i) keys_[i] = kEmpty;
    count_ = 0;
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != kEmpty) insert(old_keys[i], old_values[i]);
    }
  }

  detail::PodArray<uint64_t> keys_;
  detail::PodArray<uint32_t> values_;
  size_t count_ = 0;
};

}  // namespace

// The unpickling machine: a value stack with MARK positions, the memo, and the tree it builds.
class Parser {
 public:
  Parser(Input& input, const Limits& limits) : input_(input), limits_(limits) {
    doc_.nodes_.push_back(kNone);
    doc_.nodes_.push_back(kFalse);
    doc_.nodes_.push_back(kTrue);
    doc_.nodes_.push_back(container(kTuple, 0, 0, false));
    doc_.shapes_.push_back(0);  // shape 0: no keys
    shape_cache_.push_back({kUnset, kNoShape});
  }

  Result<Document> run() {
    bool done = false;
    try {
      done = parse_all();
    } catch (const std::bad_alloc&) {
      error_ = fmt::format("offset {}: out of memory", op_offset_);
    }
    if (!done) return make_error(std::move(error_));
    doc_.nodes_.shrink_to_fit();
    doc_.children_.shrink_to_fit();
    doc_.numbers_.shrink_to_fit();
    doc_.text_.shrink_to_fit();
    doc_.shapes_.shrink_to_fit();
    doc_.shape_keys_.shrink_to_fit();
    return std::move(doc_);
  }

 private:
  struct ShapeCache {
    uint32_t key;    // the last key added to this shape...
    uint32_t child;  // ...and the shape it led to
  };

  template <class... Args>
  bool fail(fmt::format_string<Args...> format, Args&&... args) {
    error_ =
        fmt::format("offset {}: {}", op_offset_, fmt::format(format, std::forward<Args>(args)...));
    return false;
  }
  bool truncated() {
    if (!input_.read_error().empty()) return fail("read error: {}", input_.read_error());
    return fail("truncated (the file ends inside {})", opcode_name(op_));
  }
  // The opcode's argument of `count` bytes, or nullptr (truncated).
  MEMSCOPE_HOT const char* arg(size_t count) {
    if (!input_.ensure(count)) return nullptr;
    const char* at = input_.data();
    input_.skip(count);
    return at;
  }

  MEMSCOPE_HOT size_t frame_base() const {
    return marks_.size() == 0 ? 0 : marks_[marks_.size() - 1];
  }
  MEMSCOPE_HOT size_t in_frame() const { return stack_.size() - frame_base(); }
  MEMSCOPE_HOT bool need(size_t count) { return in_frame() >= count || underflow(count); }
  bool underflow(size_t count) {
    return fail("stack underflow ({} needs {} value{} above the last MARK, has {})",
                opcode_name(op_), count, count == 1 ? "" : "s", in_frame());
  }
  MEMSCOPE_HOT bool push(Value value) {
    if (stack_.size() >= limits_.max_nodes) [[unlikely]]
      return fail("stack holds over {} values", limits_.max_nodes);
    stack_.push_back(value.raw);
    return true;
  }
  // Pops the last MARK; `*mark` is where its values start on the stack.
  bool pop_mark(size_t* mark) {
    if (marks_.size() == 0) return fail("{} without a MARK", opcode_name(op_));
    *mark = marks_[marks_.size() - 1];
    marks_.resize(marks_.size() - 1);
    return true;
  }

  MEMSCOPE_HOT bool count_values(uint64_t added) {
    values_ += added;
    if (values_ > limits_.max_nodes) return fail("more than {} values", limits_.max_nodes);
    return true;
  }
  MEMSCOPE_HOT bool new_node(uint64_t word, Value* out) {
    if (doc_.nodes_.size() >= kMaxIndex)
      return fail("more than {} containers and strings", kMaxIndex);
    if (!count_values(1)) return false;
    *out = handle(static_cast<uint32_t>(doc_.nodes_.size()));
    doc_.nodes_.push_back(word);
    return true;
  }
  MEMSCOPE_HOT bool push_node(uint64_t word) {
    Value value;
    return new_node(word, &value) && push(value);
  }
  MEMSCOPE_HOT bool push_int(int64_t number) {
    if (number >= -(int64_t{1} << 30) && number < (int64_t{1} << 30)) {
      return push(Value{(static_cast<uint32_t>(number) << 1) | 1});
    }
    if (doc_.numbers_.size() >= kMaxIndex) return fail("more than {} large numbers", kMaxIndex);
    if (!count_values(1)) return false;
    const auto index = static_cast<uint32_t>(doc_.numbers_.size());
    doc_.numbers_.push_back(number);
    return push(Value{(index << 2) | kNumberTag});
  }
  bool push_float(double number) {
    if (doc_.numbers_.size() >= kMaxIndex) return fail("more than {} large numbers", kMaxIndex);
    const uint64_t index = doc_.numbers_.size();
    doc_.numbers_.push_back(std::bit_cast<int64_t>(number));
    return push_node(kFloat | (index << 4));
  }

  bool push_text(uint64_t code, uint64_t length);
  bool read_line(std::string* line);
  bool push_line_int(const std::string& line, bool is_long);
  bool push_long(uint64_t length);

  // The common cases inline: the next index (MEMOIZE), an index stored before.
  MEMSCOPE_HOT bool memo_put_fast(uint64_t index) {
    if (index != memo_.size() || stack_.size() == frame_base() || memo_count_ >= limits_.max_memo) {
      return memo_put(index);
    }
    memo_.push_back(stack_[stack_.size() - 1]);
    ++memo_count_;
    return true;
  }
  MEMSCOPE_HOT bool memo_get_fast(uint64_t index) {
    if (index < memo_.size() && memo_[index] != kUnset) return push(Value{memo_[index]});
    return memo_get(index);
  }
  bool memo_put(uint64_t index);
  bool memo_get(uint64_t index);

  // Room for `add` more slots after the `used` slots of a container: in place when its region
  // has room or ends the children array, else a new region of bit_ceil(used + add) slots at the
  // end (amortized O(1) per slot). Updates the word's offset and padding; `*at` = first new slot.
  bool make_room(uint64_t* word, uint64_t used, uint64_t add, uint64_t* at);
  // Fills an empty container (node `node`) with `count` slots: a region of equal content
  // written before when there is one (snapshots repeat the same frames lists and frame dicts
  // millions of times), else new slots.
  bool fill_empty(uint32_t node, uint64_t* word, const uint32_t* slots, size_t count);
  bool new_container(uint64_t code, size_t mark);
  bool append(Value target, size_t first, size_t count);
  bool set_items(Value target, size_t first, size_t pairs);
  uint32_t transition(uint32_t shape, uint32_t key);
  Value container_at(size_t position, uint64_t code_a, uint64_t code_b, std::string_view what);

  enum class Fast : uint8_t { done, not_taken, failed };
  Fast fast_step(const char* at);
  bool step();
  bool parse_all();

  Input& input_;
  Limits limits_;
  Document doc_;
  detail::PodArray<uint32_t> stack_;
  detail::PodArray<uint32_t> marks_;
  detail::PodArray<uint32_t> memo_;
  std::unordered_map<uint64_t, uint32_t> sparse_memo_;  // indices far past the dense part
  uint64_t memo_count_ = 0;
  detail::PodArray<uint32_t> string_index_;  // open addressing: node + 1, 0 = empty
  size_t string_count_ = 0;
  FlatMap transitions_;  // shape << 32 | key → shape
  // Regions that fill_empty may share: offset << 32 | count << 24 | 24 bits of hash, 0 = empty.
  detail::PodArray<uint64_t> regions_;
  size_t region_count_ = 0;
  detail::PodArray<uint32_t> scratch_;
  std::vector<ShapeCache> shape_cache_;
  uint64_t values_ = 0;
  uint64_t op_offset_ = 0;
  uint8_t op_ = 0;
  bool stopped_ = false;
  std::string error_;
};

bool Parser::push_text(uint64_t code, uint64_t length) {
  if (length > std::numeric_limits<uint32_t>::max()) {
    return fail("{} of {} bytes: memscope reads strings of up to 4 GiB", opcode_name(op_), length);
  }
  detail::PodArray<char>& text = doc_.text_;
  const size_t start = text.size();
  const auto length32 = static_cast<uint32_t>(length);
  char prefix[4];
  std::memcpy(prefix, &length32, 4);
  text.append(prefix, 4);
  if (!input_.read_into(length, text)) {
    text.resize(start);
    return truncated();
  }
  if (length > kInternMaxBytes) return push_node(code | (uint64_t{start} << 4));
  // Equal short strings share one node: snapshots repeat a few names millions of times.
  const std::string_view content(text.data() + start + 4, length);
  const size_t hash = std::hash<std::string_view>{}(content) ^ code;
  if ((string_count_ + 1) * 2 > string_index_.size()) {
    detail::PodArray<uint32_t> old = std::move(string_index_);
    string_index_.resize(old.size() == 0 ? 1024 : old.size() * 2);
    std::memset(string_index_.data(), 0, string_index_.size() * sizeof(uint32_t));
    const size_t mask = string_index_.size() - 1;
    for (size_t i = 0; i < old.size(); ++i) {
      if (old[i] == 0) continue;
      const uint64_t word = doc_.nodes_[old[i] - 1];
      const size_t offset = static_cast<size_t>(word >> 4);
      const auto size = static_cast<size_t>(load_le(text.data() + offset, 4));
      size_t slot =
          (std::hash<std::string_view>{}({text.data() + offset + 4, size}) ^ code_of(word)) & mask;
      while (string_index_[slot] != 0) slot = (slot + 1) & mask;
      string_index_[slot] = old[i];
    }
  }
  const size_t mask = string_index_.size() - 1;
  size_t slot = hash & mask;
  for (; string_index_[slot] != 0; slot = (slot + 1) & mask) {
    const uint64_t word = doc_.nodes_[string_index_[slot] - 1];
    if (code_of(word) != code) continue;
    const size_t offset = static_cast<size_t>(word >> 4);
    if (load_le(text.data() + offset, 4) == length &&
        std::memcmp(text.data() + offset + 4, content.data(), length) == 0) {
      text.resize(start);
      return push(handle(string_index_[slot] - 1));
    }
  }
  Value value;
  if (!new_node(code | (uint64_t{start} << 4), &value)) return false;
  string_index_[slot] = (value.raw >> 2) + 1;
  ++string_count_;
  return push(value);
}

bool Parser::read_line(std::string* line) {
  line->clear();
  for (;;) {
    if (!input_.ensure(1)) return truncated();
    const char c = *input_.data();
    input_.skip(1);
    if (c == '\n') return true;
    if (line->size() >= kMaxLineBytes)
      return fail("{} argument longer than {} bytes", opcode_name(op_), kMaxLineBytes);
    line->push_back(c);
  }
}

bool Parser::push_line_int(const std::string& line, bool is_long) {
  if (!is_long && line == "00") return push(Value{kFalseHandle});
  if (!is_long && line == "01") return push(Value{kTrueHandle});
  std::string_view digits = line;
  if (is_long && !digits.empty() && digits.back() == 'L') digits.remove_suffix(1);
  int64_t number = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (error == std::errc::result_out_of_range)
    return fail("integer too large (memscope reads up to 64 bits)");
  if (error != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return fail("{} argument {} is not an integer", opcode_name(op_), quote_text(line));
  }
  return push_int(number);
}

bool Parser::push_long(uint64_t length) {
  if (length > 8) {
    return fail("integer too large ({} of {} bytes; memscope reads up to 64 bits)",
                opcode_name(op_), length);
  }
  const char* bytes = arg(static_cast<size_t>(length));
  if (bytes == nullptr) return truncated();
  uint64_t bits = load_le(bytes, static_cast<size_t>(length));
  if (length > 0 && length < 8 && (bits >> (8 * length - 1)) != 0) {
    bits |= ~uint64_t{0} << (8 * length);  // sign-extend
  }
  return push_int(static_cast<int64_t>(bits));
}

bool Parser::memo_put(uint64_t index) {
  if (!need(1)) return false;
  const uint32_t value = stack_[stack_.size() - 1];
  // The dense part grows only as far as the entries stored justify (an index far ahead would
  // otherwise buy 4096 slots per 5-byte opcode); what lies beyond goes to the sparse map,
  // which real pickles never use (Python numbers its memo entries 0, 1, 2, ...).
  if (index < memo_.size() + 4096 && index < 2 * memo_count_ + 4096) {
    if (index >= memo_.size()) {
      const size_t old = memo_.size();
      memo_.resize(static_cast<size_t>(index) + 1);
      for (size_t i = old; i <= index; ++i) memo_[i] = kUnset;
    }
    // An index first stored far ahead (sparse) may since have come within the dense part.
    if (memo_[index] == kUnset && (sparse_memo_.empty() || sparse_memo_.erase(index) == 0)) {
      ++memo_count_;
    }
    memo_[index] = value;
  } else if (sparse_memo_.insert_or_assign(index, value).second) {
    ++memo_count_;
    if (sparse_memo_.size() > kMaxSparseMemo) {
      return fail("more than {} memo entries stored far ahead of the others", kMaxSparseMemo);
    }
  }
  if (memo_count_ > limits_.max_memo) return fail("more than {} memo entries", limits_.max_memo);
  return true;
}

bool Parser::memo_get(uint64_t index) {
  uint32_t value = index < memo_.size() ? memo_[index] : kUnset;
  if (value == kUnset && !sparse_memo_.empty()) {
    if (const auto found = sparse_memo_.find(index); found != sparse_memo_.end())
      value = found->second;
  }
  if (value == kUnset)
    return fail("{} of memo index {}, which was never stored", opcode_name(op_), index);
  return push(Value{value});
}

bool Parser::make_room(uint64_t* word, uint64_t used, uint64_t add, uint64_t* at) {
  if (used + add > kMaxSlots) return fail("a container of more than {} slots", kMaxSlots);
  if (!count_values(add)) return false;
  detail::PodArray<uint32_t>& children = doc_.children_;
  uint64_t offset = offset_of(*word);
  bool is_padded = padded(*word);
  const uint64_t capacity = is_padded ? std::bit_ceil(used) : used;
  if (used == 0) {
    offset = children.size();
    children.resize(children.size() + add);
    is_padded = false;
  } else if (used + add <= capacity) {
    // room in place
  } else if (offset + capacity == children.size()) {
    children.resize(offset + used + add);
    is_padded = false;
  } else {
    const uint64_t grown = std::bit_ceil(used + add);
    const uint64_t old_offset = offset;
    offset = children.size();
    children.resize(children.size() + grown);
    std::memcpy(children.data() + offset, children.data() + old_offset, used * sizeof(uint32_t));
    is_padded = true;
  }
  if (children.size() > std::numeric_limits<uint32_t>::max()) {
    return fail("the tree holds over {} child values", std::numeric_limits<uint32_t>::max());
  }
  *word = container(code_of(*word), field_of(*word), offset, is_padded);
  *at = offset + used;
  return true;
}

// The container handle at stack position `position` if it is a node of one of the codes,
// else a None handle (after setting the error).
Value Parser::container_at(size_t position, uint64_t code_a, uint64_t code_b,
                           std::string_view what) {
  const uint32_t raw = stack_[position];
  if ((raw & 3) == 0 &&
      (code_of(doc_.nodes_[raw >> 2]) == code_a || code_of(doc_.nodes_[raw >> 2]) == code_b)) {
    return Value{raw};
  }
  fail("{} to a value that is not a {}", opcode_name(op_), what);
  return Value{kNoneHandle};
}

bool Parser::new_container(uint64_t code, size_t mark) {
  Value value;
  const uint64_t initial =
      code == kDictPairs ? container(kDictShaped, 0, 0, false) : container(code, 0, 0, false);
  if (!new_node(initial, &value)) return false;
  const size_t count = stack_.size() - mark;
  if (code == kDictPairs) {
    if (count % 2 != 0)
      return fail("{} with an odd number of values ({})", opcode_name(op_), count);
    if (!set_items(value, mark, count / 2)) return false;
  } else if (!append(value, mark, count)) {
    return false;
  }
  stack_.resize(mark);
  return push(value);
}

bool Parser::fill_empty(uint32_t node, uint64_t* word, const uint32_t* slots, size_t count) {
  // Only content that can repeat: no large numbers (addresses, times) and no containers made
  // after this one (a fresh child is never in an earlier region). The table of shared regions
  // stops growing at 2^24 slots: its 24-bit hashes would put every later entry in the first
  // 2^24 slots, one long probe each.
  bool shareable = count <= kShareMaxSlots &&
                   ((region_count_ + 1) * 2 <= regions_.size() || regions_.size() < (size_t{1} << 24));
  if (shareable) {
    // Branch-free over all slots (the compiler vectorizes it): lists of frames are the
    // shareable ones, and they are tens of slots long.
    uint32_t refused = 0;
    for (size_t i = 0; i < count; ++i) {
      const uint32_t tag = slots[i] & 3;
      refused |= static_cast<uint32_t>(tag == kNumberTag) |
                 static_cast<uint32_t>(tag == 0 && (slots[i] >> 2) >= node);
    }
    shareable = refused == 0;
  }
  uint64_t hash = 0;
  if (shareable) {
    // Four independent chains: one chain waits for each multiply before the next.
    constexpr uint64_t kMix = 0x9E3779B97F4A7C15ULL;
    uint64_t lanes[4] = {count, 1, 2, 3};
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
      for (size_t lane = 0; lane < 4; ++lane) lanes[lane] = (lanes[lane] ^ slots[i + lane]) * kMix;
    }
    for (; i < count; ++i) lanes[0] = (lanes[0] ^ slots[i]) * kMix;
    hash = (lanes[0] ^ std::rotl(lanes[1], 16) ^ std::rotl(lanes[2], 32) ^ std::rotl(lanes[3], 48)) *
           kMix;
  }
  hash = (hash >> 40) & 0xFFFFFF;
  size_t slot = 0;
  if (shareable) {
    if ((region_count_ + 1) * 2 > regions_.size()) {
      detail::PodArray<uint64_t> old = std::move(regions_);
      regions_.resize(old.size() == 0 ? 1024 : old.size() * 2);
      std::memset(regions_.data(), 0, regions_.size() * sizeof(uint64_t));
      for (size_t i = 0; i < old.size(); ++i) {
        if (old[i] == 0) continue;
        size_t to = (old[i] & 0xFFFFFF) & (regions_.size() - 1);
        while (regions_[to] != 0) to = (to + 1) & (regions_.size() - 1);
        regions_[to] = old[i];
      }
    }
    const size_t mask = regions_.size() - 1;
    for (slot = hash & mask; regions_[slot] != 0; slot = (slot + 1) & mask) {
      const uint64_t entry = regions_[slot];
      if ((entry & 0xFFFFFF) != hash || ((entry >> 24) & 0xFF) != count) continue;
      const auto offset = static_cast<uint32_t>(entry >> 32);
      if (std::memcmp(doc_.children_.data() + offset, slots, count * sizeof(uint32_t)) == 0) {
        *word = container(code_of(*word), field_of(*word), offset, false);
        return true;
      }
    }
  }
  uint64_t at = 0;
  if (!make_room(word, 0, count, &at)) return false;
  std::memcpy(doc_.children_.data() + at, slots, count * sizeof(uint32_t));
  if (shareable) {
    regions_[slot] = (at << 32) | (uint64_t{count} << 24) | hash;
    ++region_count_;
  }
  return true;
}

bool Parser::append(Value target, size_t first, size_t count) {
  if (count == 0) return true;
  uint64_t word = doc_.nodes_[target.raw >> 2];
  if (field_of(word) == 0) {
    if (!fill_empty(target.raw >> 2, &word, stack_.data() + first, count)) return false;
    doc_.nodes_[target.raw >> 2] = container(code_of(word), count, offset_of(word), padded(word));
    return true;
  }
  uint64_t at = 0;
  if (!make_room(&word, field_of(word), count, &at)) return false;
  std::memcpy(doc_.children_.data() + at, stack_.data() + first, count * sizeof(uint32_t));
  doc_.nodes_[target.raw >> 2] =
      container(code_of(word), field_of(word) + count, offset_of(word), padded(word));
  return true;
}

uint32_t Parser::transition(uint32_t shape, uint32_t key) {
  if (shape_cache_[shape].key == key) return shape_cache_[shape].child;
  uint32_t child = kNoShape;
  const uint64_t map_key = (uint64_t{shape} << 32) | key;
  if (!transitions_.find(map_key, &child)) {
    const uint64_t parent = doc_.shapes_[shape];
    const auto count = static_cast<uint32_t>(parent & 0xFFFFFFFF);
    if (count >= kMaxShapeKeys || doc_.shapes_.size() >= kMaxShapes) return kNoShape;
    const uint64_t offset = doc_.shape_keys_.size();
    doc_.shape_keys_.resize(offset + count + 1);
    std::memcpy(doc_.shape_keys_.data() + offset, doc_.shape_keys_.data() + (parent >> 32),
                count * sizeof(uint32_t));
    doc_.shape_keys_[offset + count] = key;
    child = static_cast<uint32_t>(doc_.shapes_.size());
    doc_.shapes_.push_back((offset << 32) | (count + 1));
    shape_cache_.push_back({kUnset, kNoShape});
    transitions_.insert(map_key, child);
  }
  shape_cache_[shape] = {key, child};
  return child;
}

bool Parser::set_items(Value target, size_t first, size_t pairs) {
  if (pairs == 0) return true;
  const uint32_t node = target.raw >> 2;
  uint64_t word = doc_.nodes_[node];
  const uint32_t* items = stack_.data() + first;
  size_t done = 0;
  if (code_of(word) == kDictShaped) {
    const uint32_t shape = field_of(word);
    const auto used = static_cast<uint32_t>(doc_.shapes_[shape] & 0xFFFFFFFF);
    uint32_t reached = shape;
    for (; done < pairs; ++done) {
      const uint32_t next = transition(reached, items[2 * done]);
      if (next == kNoShape) break;
      reached = next;
    }
    if (done > 0 && used == 0) {
      scratch_.resize(done);
      for (size_t i = 0; i < done; ++i) scratch_[i] = items[2 * i + 1];
      if (!fill_empty(node, &word, scratch_.data(), done)) return false;
      word = container(kDictShaped, reached, offset_of(word), padded(word));
    } else if (done > 0) {
      uint64_t at = 0;
      if (!make_room(&word, used, done, &at)) return false;
      uint32_t* values = doc_.children_.data() + at;
      for (size_t i = 0; i < done; ++i) values[i] = items[2 * i + 1];
      word = container(kDictShaped, reached, offset_of(word), padded(word));
    }
    if (done == pairs) {
      doc_.nodes_[node] = word;
      return true;
    }
    // Too many keys, or too many shapes: this dict stores its keys itself from now on.
    const uint64_t keys_offset = doc_.shapes_[reached] >> 32;
    const auto count = static_cast<uint32_t>(doc_.shapes_[reached] & 0xFFFFFFFF);
    if (!count_values(count)) return false;
    const uint64_t offset = doc_.children_.size();
    doc_.children_.resize(offset + 2 * uint64_t{count});
    for (uint32_t i = 0; i < count; ++i) {
      doc_.children_[offset + 2 * i] = doc_.shape_keys_[keys_offset + i];
      doc_.children_[offset + 2 * i + 1] = doc_.children_[offset_of(word) + i];
    }
    if (doc_.children_.size() > std::numeric_limits<uint32_t>::max()) {
      return fail("the tree holds over {} child values", std::numeric_limits<uint32_t>::max());
    }
    word = container(kDictPairs, 2 * uint64_t{count}, offset, false);
  }
  const uint64_t used = field_of(word);
  const uint64_t add = 2 * (pairs - done);
  uint64_t at = 0;
  if (!make_room(&word, used, add, &at)) return false;
  std::memcpy(doc_.children_.data() + at, items + 2 * done, add * sizeof(uint32_t));
  doc_.nodes_[node] = container(kDictPairs, used + add, offset_of(word), padded(word));
  return true;
}

bool Parser::step() {
  op_offset_ = input_.offset();
  const char* op_byte = arg(1);
  if (op_byte == nullptr) {
    if (!input_.read_error().empty()) return fail("read error: {}", input_.read_error());
    return fail("truncated (the file ends before STOP)");
  }
  op_ = static_cast<uint8_t>(*op_byte);
  const char* bytes = nullptr;
  // The argument of `count` bytes, or return the truncation error.
#define MEMSCOPE_ARG(count) \
  if ((bytes = arg(count)) == nullptr) return truncated()
  switch (op_) {
    case 0x80: {  // PROTO
      MEMSCOPE_ARG(1);
      const auto protocol = static_cast<uint8_t>(*bytes);
      if (protocol > 5)
        return fail("pickle protocol {}: memscope reads protocols up to 5", protocol);
      return true;
    }
    case 0x95:
      MEMSCOPE_ARG(8);
      return true;  // FRAME: a hint for buffering; we stream anyway
    case 0x2e:      // STOP
      if (!need(1)) return false;
      doc_.root_ = Value{stack_[stack_.size() - 1]};
      stopped_ = true;
      return true;
    case 0x28:  // MARK
      if (marks_.size() >= limits_.max_depth)
        return fail("more than {} MARKs open", limits_.max_depth);
      marks_.push_back(static_cast<uint32_t>(stack_.size()));
      return true;
    case 0x30:  // POP
      if (in_frame() > 0) {
        stack_.resize(stack_.size() - 1);
      } else if (marks_.size() > 0) {
        marks_.resize(marks_.size() - 1);
      } else {
        return need(1);
      }
      return true;
    case 0x31: {  // POP_MARK
      size_t mark = 0;
      if (!pop_mark(&mark)) return false;
      stack_.resize(mark);
      return true;
    }
    case 0x32:  // DUP
      return need(1) && push(Value{stack_[stack_.size() - 1]});
    case 0x4e:
      return push(Value{kNoneHandle});
    case 0x88:
      return push(Value{kTrueHandle});
    case 0x89:
      return push(Value{kFalseHandle});
    case 0x4a:  // BININT
      MEMSCOPE_ARG(4);
      return push_int(static_cast<int32_t>(static_cast<uint32_t>(load_le(bytes, 4))));
    case 0x4b:
      MEMSCOPE_ARG(1);
      return push_int(static_cast<uint8_t>(*bytes));  // BININT1
    case 0x4d:
      MEMSCOPE_ARG(2);
      return push_int(static_cast<int64_t>(load_le(bytes, 2)));
    case 0x8a:
      MEMSCOPE_ARG(1);
      return push_long(static_cast<uint8_t>(*bytes));  // LONG1
    case 0x8b: {                                       // LONG4
      MEMSCOPE_ARG(4);
      const auto length = static_cast<int32_t>(static_cast<uint32_t>(load_le(bytes, 4)));
      if (length < 0) return fail("LONG4 of negative length {}", length);
      return push_long(static_cast<uint64_t>(length));
    }
    case 0x47: {  // BINFLOAT: big-endian
      MEMSCOPE_ARG(8);
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(bytes[i]);
      return push_float(std::bit_cast<double>(bits));
    }
    case 0x8c:
      MEMSCOPE_ARG(1);
      return push_text(kStr, static_cast<uint8_t>(*bytes));
    case 0x55:
      MEMSCOPE_ARG(1);
      return push_text(kStr, static_cast<uint8_t>(*bytes));
    case 0x58:
      MEMSCOPE_ARG(4);
      return push_text(kStr, load_le(bytes, 4));
    case 0x54: {  // BINSTRING (protocol 1): a signed length
      MEMSCOPE_ARG(4);
      const auto length = static_cast<int32_t>(static_cast<uint32_t>(load_le(bytes, 4)));
      if (length < 0) return fail("BINSTRING of negative length {}", length);
      return push_text(kStr, static_cast<uint64_t>(length));
    }
    case 0x8d:
      MEMSCOPE_ARG(8);
      return push_text(kStr, load_le(bytes, 8));
    case 0x43:
      MEMSCOPE_ARG(1);
      return push_text(kBytes, static_cast<uint8_t>(*bytes));
    case 0x42:
      MEMSCOPE_ARG(4);
      return push_text(kBytes, load_le(bytes, 4));
    case 0x8e:  // BINBYTES8
    case 0x96:  // BYTEARRAY8 (read as bytes)
      MEMSCOPE_ARG(8);
      return push_text(kBytes, load_le(bytes, 8));
    case 0x7d:
      return push_node(container(kDictShaped, 0, 0, false));  // EMPTY_DICT
    case 0x5d:                                                // EMPTY_LIST
    case 0x8f:                                                // EMPTY_SET (a list)
      return push_node(container(kList, 0, 0, false));
    case 0x29:
      return push(Value{kEmptyTupleHandle});
    case 0x85:    // TUPLE1
    case 0x86:    // TUPLE2
    case 0x87: {  // TUPLE3
      const size_t count = op_ - 0x84u;
      if (!need(count)) return false;
      return new_container(kTuple, stack_.size() - count);
    }
    case 0x74:    // TUPLE
    case 0x6c:    // LIST
    case 0x64:    // DICT
    case 0x91: {  // FROZENSET (a list)
      size_t mark = 0;
      if (!pop_mark(&mark)) return false;
      if (op_ == 0x74 && mark == stack_.size()) return push(Value{kEmptyTupleHandle});
      return new_container(op_ == 0x74 ? kTuple : op_ == 0x64 ? kDictPairs : kList, mark);
    }
    case 0x61: {  // APPEND
      if (!need(2)) return false;
      const Value list = container_at(stack_.size() - 2, kList, kList, "list");
      if (list.raw == kNoneHandle || !append(list, stack_.size() - 1, 1)) return false;
      stack_.resize(stack_.size() - 1);
      return true;
    }
    case 0x73: {  // SETITEM
      if (!need(3)) return false;
      const Value dict = container_at(stack_.size() - 3, kDictPairs, kDictShaped, "dict");
      if (dict.raw == kNoneHandle || !set_items(dict, stack_.size() - 2, 1)) return false;
      stack_.resize(stack_.size() - 2);
      return true;
    }
    case 0x65:    // APPENDS
    case 0x90:    // ADDITEMS
    case 0x75: {  // SETITEMS
      size_t mark = 0;
      if (!pop_mark(&mark)) return false;
      if (mark == frame_base()) {
        return fail("{} with nothing below its MARK to add to", opcode_name(op_));
      }
      const size_t count = stack_.size() - mark;
      if (op_ == 0x75) {
        if (count % 2 != 0) return fail("SETITEMS with an odd number of values ({})", count);
        const Value dict = container_at(mark - 1, kDictPairs, kDictShaped, "dict");
        if (dict.raw == kNoneHandle || !set_items(dict, mark, count / 2)) return false;
      } else {
        const Value list = container_at(mark - 1, kList, kList, op_ == 0x65 ? "list" : "set");
        if (list.raw == kNoneHandle || !append(list, mark, count)) return false;
      }
      stack_.resize(mark);
      return true;
    }
    case 0x94:
      return memo_put_fast(memo_count_);  // MEMOIZE
    case 0x71:
      MEMSCOPE_ARG(1);
      return memo_put_fast(static_cast<uint8_t>(*bytes));
    case 0x72:
      MEMSCOPE_ARG(4);
      return memo_put_fast(load_le(bytes, 4));
    case 0x68:
      MEMSCOPE_ARG(1);
      return memo_get_fast(static_cast<uint8_t>(*bytes));
    case 0x6a:
      MEMSCOPE_ARG(4);
      return memo_get_fast(load_le(bytes, 4));
    case 0x49:    // INT
    case 0x4c:    // LONG
    case 0x46:    // FLOAT
    case 0x70:    // PUT
    case 0x67: {  // GET
      std::string line;
      if (!read_line(&line)) return false;
      if (op_ == 0x49 || op_ == 0x4c) return push_line_int(line, op_ == 0x4c);
      if (op_ == 0x46) {
        double number = 0;
        const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), number);
        if (error != std::errc() || end != line.data() + line.size() || line.empty()) {
          return fail("FLOAT argument {} is not a number", quote_text(line));
        }
        return push_float(number);
      }
      uint64_t index = 0;
      const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), index);
      if (error != std::errc() || end != line.data() + line.size() || line.empty()) {
        return fail("{} argument {} is not a memo index", opcode_name(op_), quote_text(line));
      }
      return op_ == 0x70 ? memo_put(index) : memo_get(index);
    }
    default:
      break;
  }
#undef MEMSCOPE_ARG
  if (refused(op_)) {
    return fail(
        "refused opcode {} (0x{:02x}): it would call code; memscope reads data-only pickles",
        opcode_name(op_), op_);
  }
  if (!opcode_name(op_).empty()) {
    return fail("unsupported opcode {} (0x{:02x}): protocol 0 text strings are not read",
                opcode_name(op_), op_);
  }
  return fail("unknown opcode 0x{:02x}", op_);
}

bool Parser::parse_all() {
  if (!input_.ensure(1)) {
    error_ = input_.read_error().empty() ? "not a pickle (the input is empty)"
                                         : fmt::format("read error: {}", input_.read_error());
    return false;
  }
  const auto first = static_cast<uint8_t>(*input_.data());
  if (!starts_pickle(first)) {
    error_ = fmt::format("not a pickle (first byte 0x{:02x})", first);
    return false;
  }
  // The opcodes that make up most of a snapshot go through fast_step when their argument is in
  // the buffer; everything else (and every error) through step().
  constexpr size_t kLongestFastOp = 10;
  while (!stopped_) {
    if (input_.ensure(kLongestFastOp)) {
      const Fast fast = fast_step(input_.data());
      if (fast == Fast::done) continue;
      if (fast == Fast::failed) return false;
    }
    if (!step()) return false;
  }
  return true;
}

// What step() does for the most common opcodes: `done`; `not_taken` (nothing consumed) where
// one of step()'s checks would fail or it is another opcode, and step() takes it; `failed` (the
// error set, as step() sets it). `at` has at least 10 bytes.
MEMSCOPE_HOT Parser::Fast Parser::fast_step(const char* at) {
  const auto push_raw = [&](uint32_t raw, size_t consumed) {
    if (stack_.size() >= limits_.max_nodes) return Fast::not_taken;
    stack_.push_back(raw);
    input_.skip(consumed);
    return Fast::done;
  };
  const auto push_memo = [&](uint64_t index, size_t consumed) {
    if (index >= memo_.size() || memo_[index] == kUnset) return Fast::not_taken;
    return push_raw(memo_[index], consumed);
  };
  const auto push_small = [&](int64_t number, size_t consumed) {
    if (number < -(int64_t{1} << 30) || number >= (int64_t{1} << 30)) return Fast::not_taken;
    return push_raw((static_cast<uint32_t>(number) << 1) | 1, consumed);
  };
  const auto outcome = [](bool ok) { return ok ? Fast::done : Fast::failed; };
  switch (static_cast<uint8_t>(at[0])) {
    case 0x68:  // BINGET
      return push_memo(static_cast<uint8_t>(at[1]), 2);
    case 0x6a:  // LONG_BINGET
      return push_memo(load_le(at + 1, 4), 5);
    case 0x94:  // MEMOIZE
      if (memo_count_ != memo_.size() || stack_.size() == frame_base() ||
          memo_count_ >= limits_.max_memo) {
        return Fast::not_taken;
      }
      memo_.push_back(stack_[stack_.size() - 1]);
      ++memo_count_;
      input_.skip(1);
      return Fast::done;
    case 0x28:  // MARK
      if (marks_.size() >= limits_.max_depth) return Fast::not_taken;
      marks_.push_back(static_cast<uint32_t>(stack_.size()));
      input_.skip(1);
      return Fast::done;
    case 0x4b:  // BININT1
      return push_small(static_cast<uint8_t>(at[1]), 2);
    case 0x4d:  // BININT2
      return push_small(static_cast<int64_t>(load_le(at + 1, 2)), 3);
    case 0x4a:  // BININT
      return push_small(static_cast<int32_t>(static_cast<uint32_t>(load_le(at + 1, 4))), 5);
    // These may fail (limits): their errors name the opcode and its offset, as step()'s do.
    case 0x8a: {  // LONG1 (addresses, times) of up to 8 bytes
      const auto length = static_cast<uint8_t>(at[1]);
      if (length > 8) return Fast::not_taken;
      op_offset_ = input_.offset();
      op_ = 0x8a;
      input_.skip(2);
      return outcome(push_long(length));
    }
    case 0x7d:  // EMPTY_DICT
      op_offset_ = input_.offset();
      op_ = 0x7d;
      input_.skip(1);
      return outcome(push_node(container(kDictShaped, 0, 0, false)));
    default:
      return Fast::not_taken;
  }
}

namespace detail {
void advise_huge_pages(void* data, size_t bytes) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto start = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (start + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (start + bytes) & ~(kHuge - 1);
  // Advice only: where it is refused (THP off, old kernel) the pages stay small.
  if (last > first) {
    [[maybe_unused]] const int refused =
        ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
}

void* map_bytes(size_t bytes) {
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return nullptr;
  // The whole mapping, so that the advice does not split it (mremap keeps it when it moves).
  [[maybe_unused]] const int refused = ::madvise(data, bytes, MADV_HUGEPAGE);
  return data;
}

void* remap_bytes(void* data, size_t old_bytes, size_t new_bytes) {
  void* moved = ::mremap(data, old_bytes, new_bytes, MREMAP_MAYMOVE);
  return moved == MAP_FAILED ? nullptr : moved;
}

void unmap_bytes(void* data, size_t bytes) { ::munmap(data, bytes); }
}  // namespace detail

std::string quote_text(std::string_view text) {
  constexpr size_t kShown = 40;
  std::string out = "'";
  for (const char c : text.substr(0, kShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\' && c != '\'') {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  out += text.size() > kShown ? "'..." : "'";
  return out;
}

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::none:
      return "None";
    case Kind::boolean:
      return "bool";
    case Kind::integer:
      return "int";
    case Kind::floating:
      return "float";
    case Kind::string:
      return "str";
    case Kind::bytes:
      return "bytes";
    case Kind::list:
      return "list";
    case Kind::tuple:
      return "tuple";
    case Kind::dict:
      return "dict";
  }
  return "None";
}

double Document::as_float(Value value) const {
  if (kind(value) == Kind::integer) return static_cast<double>(as_int(value));
  const uint64_t node = word(value);
  if (code_of(node) != kFloat) return 0;
  return std::bit_cast<double>(numbers_[static_cast<size_t>(node >> 4)]);
}

bool Document::find(Value dict, std::string_view wanted, Value* out) const {
  for (size_t i = size(dict); i-- > 0;) {
    const Value candidate = key(dict, i);
    if (kind(candidate) == Kind::string && as_string(candidate) == wanted) {
      *out = value(dict, i);
      return true;
    }
  }
  return false;
}

size_t Document::memory_bytes() const {
  return sizeof(Document) + nodes_.capacity_bytes() + children_.capacity_bytes() +
         numbers_.capacity_bytes() + text_.capacity_bytes() + shapes_.capacity_bytes() +
         shape_keys_.capacity_bytes();
}

Result<Document> parse(std::FILE* file, const Limits& limits) {
  Input input(file);
  return Parser(input, limits).run();
}

Result<Document> parse(std::string_view bytes, const Limits& limits) {
  Input input(bytes);
  return Parser(input, limits).run();
}

Result<Document> parse_file(const std::string& path, const Limits& limits) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return make_error(fmt::format("{}: {}", path, std::generic_category().message(errno)));
  }
  // Bounded by the file's size: a snapshot holds about one value per 16 bytes; one per 4 is
  // far beyond any real one, and keeps a file of one-byte containers from taking 12x its size.
  Limits bounded = limits;
  struct stat info {};
  if (::fstat(fileno(file), &info) == 0 && S_ISREG(info.st_mode)) {
    const uint64_t by_size = static_cast<uint64_t>(info.st_size) / 4 + (uint64_t{1} << 20);
    bounded.max_nodes = std::min(bounded.max_nodes, by_size);
  }
  auto document = parse(file, bounded);
  std::fclose(file);
  if (!document.ok()) return make_error(fmt::format("{}: {}", path, document.message()));
  return document;
}

}  // namespace memscope::pickle
