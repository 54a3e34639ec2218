// A reader for the data subset of Python's pickle format that PyTorch's memory snapshots use
// (protocols 2 to 5; opcodes in ../shared/specs/pytorch-memory.md section 1). It never executes
// or imports anything: an opcode that would call code (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
// INST, OBJ, NEWOBJ, NEWOBJ_EX, PERSID, BINPERSID, EXT1/2/4) is refused with an error naming it
// and its offset. The input is read as a stream (a bounded buffer, not the whole file), and the
// decoded values live in a compact tree: 8 bytes per container plus 4 per child (a dict holds
// only its values: dicts with the same keys share one key list), equal short strings stored once,
// integers of up to 31 bits inline in their handle — well under the file's size.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.hpp"

namespace memscope::pickle {

enum class Kind : uint8_t { none, boolean, integer, floating, string, bytes, list, tuple, dict };
std::string_view kind_name(Kind kind);  // "None", "bool", "int", "float", "str", "bytes", ...

// A value in a Document: a tagged 32-bit handle (small integers are stored in the handle).
struct Value {
  uint32_t raw = 0;
  bool operator==(const Value& other) const { return raw == other.raw; }
};

namespace detail {

// Asks the kernel for transparent huge pages over the 2 MiB pages inside [data, data + bytes)
// (when it is configured to grant them on request): the tree's big arrays and a snapshot's
// trace are written once, page by page, and a fault per 4 KiB page costs more than the writes.
// The range must not be grown by realloc later (the advice splits its mapping, and mremap
// does not move a range of several mappings: realloc would copy).
void advise_huge_pages(void* data, size_t bytes);
// Arrays from this size on have a mapping of their own, advised as above and grown by mremap.
constexpr size_t kMappedBytes = size_t{4} << 20;
void* map_bytes(size_t bytes);                                     // nullptr when refused
void* remap_bytes(void* data, size_t old_bytes, size_t new_bytes);  // nullptr when refused
void unmap_bytes(void* data, size_t bytes);

// A growable array of trivially copyable values: small ones on malloc/realloc, large ones on a
// mapping of their own grown with mremap, without copying and without holding old and new
// copies at once (std::vector would, and the tree's biggest arrays are hundreds of MB for a
// 1 GB snapshot), on huge pages where the kernel grants them.
template <class T>
class PodArray {
 public:
  PodArray() = default;
  ~PodArray() { clear(); }
  PodArray(const PodArray& other) { append(other.data_, other.size_); }
  PodArray& operator=(const PodArray& other) {
    if (this != &other) {
      size_ = 0;
      append(other.data_, other.size_);
    }
    return *this;
  }
  PodArray(PodArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)),
        mapped_(std::exchange(other.mapped_, false)) {}
  PodArray& operator=(PodArray&& other) noexcept {
    if (this != &other) {
      clear();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
      mapped_ = std::exchange(other.mapped_, false);
    }
    return *this;
  }

  size_t size() const { return size_; }
  size_t capacity_bytes() const { return capacity_ * sizeof(T); }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t index) { return data_[index]; }
  const T& operator[](size_t index) const { return data_[index]; }

  [[gnu::always_inline]] void push_back(T value) {
    if (size_ == capacity_) [[unlikely]]
      reserve(size_ + 1);
    data_[size_++] = value;
  }
  void append(const T* values, size_t count) {
    reserve(size_ + count);
    if (count != 0) std::memcpy(data_ + size_, values, count * sizeof(T));
    size_ += count;
  }
  // New elements are left uninitialized (the parser writes them before anyone reads them).
  void resize(size_t count) {
    reserve(count);
    size_ = count;
  }
  // At least `count` elements of room, growing by doubling.
  [[gnu::noinline]] void reserve(size_t count) {
    if (count <= capacity_) return;
    size_t grown = capacity_ < 16 ? 16 : capacity_ * 2;
    if (grown < count) grown = count;
    reallocate(grown);
  }
  void shrink_to_fit() {
    if (size_ < capacity_) reallocate(size_);
  }
  void clear() {
    if (mapped_) {
      unmap_bytes(data_, capacity_ * sizeof(T));
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    size_ = capacity_ = 0;
    mapped_ = false;
  }

 private:
  void reallocate(size_t count) {
    if (count == 0) {
      clear();
      return;
    }
    const size_t bytes = count * sizeof(T);
    void* grown = nullptr;
    if (mapped_) {
      grown = remap_bytes(data_, capacity_ * sizeof(T), bytes);
    } else if (bytes >= kMappedBytes) {
      grown = map_bytes(bytes);
      if (grown != nullptr) {
        if (size_ != 0) std::memcpy(grown, data_, size_ * sizeof(T));
        std::free(data_);
        mapped_ = true;
      }
    } else {
      grown = std::realloc(data_, bytes);
    }
    if (grown == nullptr) throw std::bad_alloc();  // caught at the parser's boundary
    data_ = static_cast<T*>(grown);
    capacity_ = count;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  bool mapped_ = false;  // data_ is a mapping of its own (kMappedBytes and up)
};

}  // namespace detail

// The encoding of the tree, shared by the parser (pickle.cpp) and the inline accessors below.
// A Value handle: bit 0 set → an integer of up to 31 bits in the handle itself; low bits 10 →
// numbers_[raw >> 2], an integer; low bits 00 → nodes_[raw >> 2].
// A node word: bits 0-3 its code; str, bytes: bits 4-63 the offset in text_ (4-byte length,
// then the bytes); float: bits 4-63 the index in numbers_ of its bit pattern; containers: bit 4
// "padded" (its child region has room for bit_ceil(slots) slots), bits 5-31 the number of slots
// (list, tuple, dict of pairs: key, value, key, value...) or the shape (dict of values, its keys
// in shape_keys_), bits 32-63 the offset of its slots in children_. Slots once written never
// change (containers only grow), so containers of equal content may share one region.
// Nodes 0 to 3 are None, False, True and the empty tuple.
namespace encoding {
enum Code : uint64_t {
  kNone = 0,
  kFalse = 1,
  kTrue = 2,
  kFloat = 3,
  kStr = 4,
  kBytes = 5,
  kList = 6,
  kTuple = 7,
  kDictPairs = 8,
  kDictShaped = 9,
};
constexpr uint32_t kNumberTag = 2;
constexpr uint64_t kMaxSlots = (uint64_t{1} << 27) - 1;
inline uint64_t code_of(uint64_t word) { return word & 15; }
inline uint32_t field_of(uint64_t word) { return static_cast<uint32_t>((word >> 5) & kMaxSlots); }
inline uint32_t offset_of(uint64_t word) { return static_cast<uint32_t>(word >> 32); }
}  // namespace encoding

// The decoded tree. Dict pairs are kept as written: a key written twice (which Python's pickler
// never does) appears twice, and find() returns the later value, as Python's dict would hold.
// A data-only pickle can still make a list that contains itself (through the memo): walkers
// that recurse over arbitrary values must bound their depth.
class Document {
 public:
  Value root() const { return root_; }

  Kind kind(Value value) const;
  bool is(Value value, Kind wanted) const { return kind(value) == wanted; }

  // Scalars; each requires the kind (callers check kind() first; another kind gives 0, false or
  // an empty view).
  bool as_bool(Value value) const { return encoding::code_of(word(value)) == encoding::kTrue; }
  int64_t as_int(Value value) const;              // integers of up to 64 bits (signed)
  double as_float(Value value) const;             // floats; integers are converted
  std::string_view as_string(Value value) const;  // str and bytes

  // Containers: list, tuple and dict (sets read as lists). A dict's size is its number of pairs.
  size_t size(Value container) const;
  Value item(Value list_or_tuple, size_t index) const;
  Value key(Value dict, size_t index) const;
  Value value(Value dict, size_t index) const;
  // The value under a str key, or false (linear: snapshot dicts have a handful of keys).
  bool find(Value dict, std::string_view key, Value* out) const;

  // Bytes held by the tree (for the memory bound's tests and the benchmark).
  size_t memory_bytes() const;

  // For decoders that read millions of dicts of the same few layouts. A dict's slots: `shape`
  // is the id of its key list, shared by every dict of the same keys in the same order, and
  // `slots` its values; or, for a dict that holds its keys itself, `shape` is kNoShape and
  // `slots` alternate key, value. `size` is the number of pairs.
  static constexpr uint32_t kNoShape = 0xFFFFFFFF;
  struct DictSlots {
    uint32_t shape = kNoShape;
    const uint32_t* slots = nullptr;
    size_t size = 0;
  };
  DictSlots dict_slots(Value dict) const;  // {} for a value that is not a dict
  size_t shape_count() const { return shapes_.size(); }
  Value shape_key(uint32_t shape, size_t index) const;  // index < the shape's size
  // Equal lists and tuples share their items' storage, and stored items never change: two
  // with the same content id hold the same items. 0 for empty ones and for other values.
  uint64_t content_id(Value list_or_tuple) const;

 private:
  friend class Parser;
  // The node word of a handle (None's for integers and handles outside the document).
  uint64_t word(Value value) const {
    if ((value.raw & 3) != 0 || (value.raw >> 2) >= nodes_.size()) return encoding::kNone;
    return nodes_[value.raw >> 2];
  }
  size_t dict_size(uint64_t word) const {
    return static_cast<size_t>(shapes_[encoding::field_of(word)] & 0xFFFFFFFF);
  }

  Value root_;
  // Storage (see `encoding`): dicts of the same keys in the same order share one key list (a
  // "shape", as JavaScript engines do), so a dict stores only its values.
  detail::PodArray<uint64_t> nodes_;
  detail::PodArray<uint32_t> children_;
  detail::PodArray<int64_t> numbers_;      // integers wider than 31 bits, float bit patterns
  detail::PodArray<char> text_;            // str and bytes: 4-byte length, then the bytes
  detail::PodArray<uint64_t> shapes_;      // offset into shape_keys_ << 32 | key count
  detail::PodArray<uint32_t> shape_keys_;  // key handles of every shape, one after another
};

// The accessors are inline: a snapshot's decoder calls them billions of times.
inline Kind Document::kind(Value value) const {
  using namespace encoding;
  if ((value.raw & 1) != 0 || (value.raw & 3) == kNumberTag) return Kind::integer;
  switch (code_of(word(value))) {
    case kFalse:
    case kTrue:
      return Kind::boolean;
    case kFloat:
      return Kind::floating;
    case kStr:
      return Kind::string;
    case kBytes:
      return Kind::bytes;
    case kList:
      return Kind::list;
    case kTuple:
      return Kind::tuple;
    case kDictPairs:
    case kDictShaped:
      return Kind::dict;
    default:
      return Kind::none;
  }
}

inline int64_t Document::as_int(Value value) const {
  if ((value.raw & 1) != 0) return static_cast<int32_t>(value.raw) >> 1;
  if ((value.raw & 3) == encoding::kNumberTag && (value.raw >> 2) < numbers_.size()) {
    return numbers_[value.raw >> 2];
  }
  return 0;
}

inline std::string_view Document::as_string(Value value) const {
  const uint64_t node = word(value);
  if (encoding::code_of(node) != encoding::kStr && encoding::code_of(node) != encoding::kBytes) {
    return {};
  }
  const auto offset = static_cast<size_t>(node >> 4);
  uint32_t length = 0;
  std::memcpy(&length, text_.data() + offset, sizeof length);
  return {text_.data() + offset + sizeof length, length};
}

inline size_t Document::size(Value container) const {
  using namespace encoding;
  const uint64_t node = word(container);
  switch (code_of(node)) {
    case kList:
    case kTuple:
      return field_of(node);
    case kDictPairs:
      return field_of(node) / 2;
    case kDictShaped:
      return dict_size(node);
    default:
      return 0;
  }
}

inline Value Document::item(Value list_or_tuple, size_t index) const {
  using namespace encoding;
  const uint64_t node = word(list_or_tuple);
  if ((code_of(node) != kList && code_of(node) != kTuple) || index >= field_of(node)) return {};
  return Value{children_[offset_of(node) + index]};
}

inline Value Document::key(Value dict, size_t index) const {
  using namespace encoding;
  const uint64_t node = word(dict);
  if (code_of(node) == kDictShaped && index < dict_size(node)) {
    return Value{shape_keys_[static_cast<size_t>(shapes_[field_of(node)] >> 32) + index]};
  }
  if (code_of(node) == kDictPairs && index < field_of(node) / 2) {
    return Value{children_[offset_of(node) + 2 * index]};
  }
  return {};
}

inline Value Document::value(Value dict, size_t index) const {
  using namespace encoding;
  const uint64_t node = word(dict);
  if (code_of(node) == kDictShaped && index < dict_size(node)) {
    return Value{children_[offset_of(node) + index]};
  }
  if (code_of(node) == kDictPairs && index < field_of(node) / 2) {
    return Value{children_[offset_of(node) + 2 * index + 1]};
  }
  return {};
}

inline Document::DictSlots Document::dict_slots(Value dict) const {
  using namespace encoding;
  const uint64_t node = word(dict);
  if (code_of(node) == kDictShaped) {
    return {field_of(node), children_.data() + offset_of(node), dict_size(node)};
  }
  if (code_of(node) == kDictPairs) {
    return {kNoShape, children_.data() + offset_of(node), field_of(node) / 2};
  }
  return {};
}

inline Value Document::shape_key(uint32_t shape, size_t index) const {
  return Value{shape_keys_[static_cast<size_t>(shapes_[shape] >> 32) + index]};
}

inline uint64_t Document::content_id(Value list_or_tuple) const {
  using namespace encoding;
  const uint64_t node = word(list_or_tuple);
  if ((code_of(node) != kList && code_of(node) != kTuple) || field_of(node) == 0) return 0;
  return uint64_t{offset_of(node)} << 32 | field_of(node);
}

// Bounds on what one pickle may make the reader hold (the fuzzer sets small ones).
struct Limits {
  // Values and child slots in the tree; also the most values on the stack at once.
  uint64_t max_nodes = uint64_t{1} << 31;
  uint64_t max_depth = 10'000;            // MARKs open at once
  uint64_t max_memo = uint64_t{1} << 31;  // memo entries
};

// Text from a pickle for a one-line error message: in single quotes, bytes outside printable
// ASCII as \xNN, cut after 40 bytes with "...".
std::string quote_text(std::string_view text);

// Reads a whole pickle from `file` (the caller's, read from its current position) or from
// memory. Errors are one line: "offset N: <what>" (N: of the opcode, from where reading
// began) — truncated, a refused opcode, an unknown opcode, a protocol above 5, a stack or memo
// misuse, an integer over 64 bits, a limit exceeded — or "not a pickle (first byte 0x..)".
// Protocol 0/1 text opcodes INT, LONG, FLOAT, PUT and GET are read too; STRING and UNICODE are
// not. str bytes are not checked to be UTF-8.
Result<Document> parse(std::FILE* file, const Limits& limits = {});
Result<Document> parse(std::string_view bytes, const Limits& limits = {});
// Opens `path` and parses it; the error names the path.
Result<Document> parse_file(const std::string& path, const Limits& limits = {});

}  // namespace memscope::pickle
