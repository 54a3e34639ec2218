#include "collect/pickle.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.hpp"

namespace memscope::pickle {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Pickles assembled by hand, opcode by opcode.
std::string op(int code) { return std::string(1, static_cast<char>(code)); }
std::string le(uint64_t value, int bytes) {
  std::string out;
  // Past 8 bytes (a LONG1 wider than any uint64_t) the value's higher bytes are 0.
  for (int i = 0; i < bytes; ++i) out += static_cast<char>(i < 8 ? (value >> (8 * i)) & 0xff : 0);
  return out;
}
const std::string kProto4 = op(0x80) + op(4);
const std::string kStop = op(0x2e);
const std::string kMark = op(0x28);
const std::string kMemoize = op(0x94);
std::string str(std::string_view text) {  // SHORT_BINUNICODE
  return op(0x8c) + op(static_cast<int>(text.size())) + std::string(text);
}
std::string int1(int value) { return op(0x4b) + op(value); }  // BININT1
std::string binget(int index) { return op(0x68) + op(index); }
std::string long_binget(uint32_t index) { return op(0x6a) + le(index, 4); }
std::string pickled(const std::string& body) { return kProto4 + body + kStop; }
template <size_t N>
std::string bytes_of(const char (&literal)[N]) {  // NOLINT: a literal with NULs inside
  return std::string(literal, N - 1);
}

Document parse_ok(std::string_view bytes, const Limits& limits = {}) {
  auto document = parse(bytes, limits);
  EXPECT_TRUE(document.ok()) << document.message();
  return document.ok() ? std::move(*document) : Document{};
}
std::string parse_error(std::string_view bytes, const Limits& limits = {}) {
  auto document = parse(bytes, limits);
  EXPECT_FALSE(document.ok());
  return document.ok() ? std::string() : document.message();
}

std::vector<int64_t> ints_of(const Document& doc, Value list) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < doc.size(list); ++i) out.push_back(doc.as_int(doc.item(list, i)));
  return out;
}

TEST(PickleScalars, NoneTrueFalse) {
  const Document doc = parse_ok(pickled(kMark + op(0x4e) + op(0x88) + op(0x89) + op(0x74)));
  ASSERT_EQ(doc.kind(doc.root()), Kind::tuple);
  ASSERT_EQ(doc.size(doc.root()), 3u);
  EXPECT_EQ(doc.kind(doc.item(doc.root(), 0)), Kind::none);
  EXPECT_EQ(doc.kind(doc.item(doc.root(), 1)), Kind::boolean);
  EXPECT_TRUE(doc.as_bool(doc.item(doc.root(), 1)));
  EXPECT_FALSE(doc.as_bool(doc.item(doc.root(), 2)));
}

TEST(PickleScalars, BinaryIntegersOfEveryWidth) {
  const std::string body = op(0x5d) + kMark + int1(255) + op(0x4d) + le(65535, 2) +  // BININT2
                           op(0x4a) + le(0xFFFFFFFD, 4) +                            // BININT -3
                           op(0x4a) + le(0x7FFFFFFF, 4) +                            // 2^31 - 1
                           op(0x8a) + op(0) +                                        // LONG1 0
                           op(0x8a) + op(6) + le(0x7f5a00000000, 6) +                // an address
                           op(0x8a) + op(5) + le(0xFF00000000, 5) +                  // -2^32
                           op(0x8a) + op(8) + le(0x8000000000000000, 8) +            // INT64_MIN
                           op(0x8b) + le(3, 4) + le(0x800000, 3) +                   // LONG4 -2^23
                           op(0x65);
  const Document doc = parse_ok(pickled(body));
  EXPECT_EQ(ints_of(doc, doc.root()),
            (std::vector<int64_t>{255, 65535, -3, 2147483647, 0, 0x7f5a00000000,
                                  -(int64_t{1} << 32), INT64_MIN, -(int64_t{1} << 23)}));
  for (size_t i = 0; i < doc.size(doc.root()); ++i) {
    EXPECT_EQ(doc.kind(doc.item(doc.root(), i)), Kind::integer);
  }
}

TEST(PickleScalars, FloatsAreBigEndianDoubles) {
  // 1.5 = 0x3FF8000000000000; ints read as floats too.
  const Document doc = parse_ok(pickled(op(0x5d) + kMark + op(0x47) + "\x3f\xf8" +
                                        std::string(6, '\0') + int1(7) + op(0x65)));
  EXPECT_EQ(doc.kind(doc.item(doc.root(), 0)), Kind::floating);
  EXPECT_DOUBLE_EQ(doc.as_float(doc.item(doc.root(), 0)), 1.5);
  EXPECT_DOUBLE_EQ(doc.as_float(doc.item(doc.root(), 1)), 7.0);
}

TEST(PickleScalars, StringsOfEveryOpcode) {
  const std::string body = op(0x5d) + kMark + str("short") + op(0x58) + le(4, 4) + "four" +
                           op(0x8d) + le(5, 8) + "eight" + op(0x55) + op(2) +
                           "py" +                                   // SHORT_BINSTRING
                           op(0x54) + le(3, 4) + "py2" + op(0x65);  // BINSTRING
  const Document doc = parse_ok(pickled(body));
  std::vector<std::string> texts;
  for (size_t i = 0; i < doc.size(doc.root()); ++i) {
    EXPECT_EQ(doc.kind(doc.item(doc.root(), i)), Kind::string);
    texts.emplace_back(doc.as_string(doc.item(doc.root(), i)));
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"short", "four", "eight", "py", "py2"}));
}

TEST(PickleScalars, BytesOfEveryOpcode) {
  const std::string body = op(0x5d) + kMark + op(0x43) + op(2) + std::string("\0\1", 2) + op(0x42) +
                           le(1, 4) + "b" + op(0x8e) + le(3, 8) + "b8!" + op(0x96) + le(2, 8) +
                           "ba" + op(0x65);
  const Document doc = parse_ok(pickled(body));
  ASSERT_EQ(doc.size(doc.root()), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(doc.kind(doc.item(doc.root(), i)), Kind::bytes);
  EXPECT_EQ(doc.as_string(doc.item(doc.root(), 0)), std::string_view("\0\1", 2));
  EXPECT_EQ(doc.as_string(doc.item(doc.root(), 3)), "ba");
}

TEST(PickleScalars, ProtocolZeroTextOpcodes) {
  // INT, LONG, FLOAT, PUT, GET as protocol 0 writes them (no PROTO).
  const std::string bytes = "(I42\nI01\nL-12345678901234L\nF2.5\np7\ng7\nt.";
  const Document doc = parse_ok(bytes);
  ASSERT_EQ(doc.size(doc.root()), 5u);
  EXPECT_EQ(doc.as_int(doc.item(doc.root(), 0)), 42);
  EXPECT_EQ(doc.kind(doc.item(doc.root(), 1)), Kind::boolean);
  EXPECT_EQ(doc.as_int(doc.item(doc.root(), 2)), -12345678901234);
  EXPECT_DOUBLE_EQ(doc.as_float(doc.item(doc.root(), 3)), 2.5);
  EXPECT_EQ(doc.item(doc.root(), 4), doc.item(doc.root(), 3));
  EXPECT_THAT(parse_error("(Ixyz\nt."), HasSubstr("INT argument 'xyz' is not an integer"));
}

TEST(PickleContainers, TuplesOfEveryOpcode) {
  const std::string body = op(0x5d) + kMark + op(0x29) + int1(1) + op(0x85) + int1(1) + int1(2) +
                           op(0x86) + int1(1) + int1(2) + int1(3) + op(0x87) + kMark + int1(4) +
                           int1(5) + int1(6) + int1(7) + op(0x74) + kMark + op(0x74) + op(0x65);
  const Document doc = parse_ok(pickled(body));
  ASSERT_EQ(doc.size(doc.root()), 6u);
  std::vector<size_t> sizes;
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(doc.kind(doc.item(doc.root(), i)), Kind::tuple);
    sizes.push_back(doc.size(doc.item(doc.root(), i)));
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{0, 1, 2, 3, 4, 0}));
  EXPECT_EQ(ints_of(doc, doc.item(doc.root(), 4)), (std::vector<int64_t>{4, 5, 6, 7}));
}

TEST(PickleContainers, ListsDictsAndSets) {
  // [[1, 2, 3], {'a': 1, 'b': 2, 'c': 3}, {'x': 1}, set {5, 6}, frozenset {7}, [8], {'d': 4}]
  const std::string body = op(0x5d) + kMark + op(0x5d) + int1(1) + op(0x61) + kMark + int1(2) +
                           int1(3) + op(0x65) + op(0x7d) + str("a") + int1(1) + op(0x73) + kMark +
                           str("b") + int1(2) + str("c") + int1(3) + op(0x75) + kMark + str("x") +
                           int1(1) + op(0x64) + op(0x8f) + kMark + int1(5) + int1(6) + op(0x90) +
                           kMark + int1(7) + op(0x91) + kMark + int1(8) + op(0x6c) + op(0x7d) +
                           kMark + str("d") + int1(4) + op(0x75) + op(0x65);
  const Document doc = parse_ok(pickled(body));
  const Value root = doc.root();
  ASSERT_EQ(doc.size(root), 7u);
  EXPECT_EQ(ints_of(doc, doc.item(root, 0)), (std::vector<int64_t>{1, 2, 3}));
  const Value dict = doc.item(root, 1);
  ASSERT_EQ(doc.kind(dict), Kind::dict);
  ASSERT_EQ(doc.size(dict), 3u);
  EXPECT_EQ(doc.as_string(doc.key(dict, 0)), "a");
  EXPECT_EQ(doc.as_string(doc.key(dict, 2)), "c");
  EXPECT_EQ(doc.as_int(doc.value(dict, 1)), 2);
  Value found;
  ASSERT_TRUE(doc.find(dict, "c", &found));
  EXPECT_EQ(doc.as_int(found), 3);
  EXPECT_FALSE(doc.find(dict, "z", &found));
  EXPECT_EQ(doc.size(doc.item(root, 2)), 1u);
  EXPECT_EQ(doc.kind(doc.item(root, 3)), Kind::list);  // sets read as lists
  EXPECT_EQ(ints_of(doc, doc.item(root, 3)), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(ints_of(doc, doc.item(root, 4)), (std::vector<int64_t>{7}));
  EXPECT_EQ(ints_of(doc, doc.item(root, 5)), (std::vector<int64_t>{8}));
  ASSERT_TRUE(doc.find(doc.item(root, 6), "d", &found));
  EXPECT_EQ(doc.as_int(found), 4);
  // Accessors of the wrong kind answer empty, never out of bounds.
  EXPECT_EQ(doc.size(doc.item(dict, 0)), 0u);
  EXPECT_EQ(doc.kind(doc.item(root, 99)), Kind::none);
  EXPECT_EQ(doc.kind(doc.key(dict, 3)), Kind::none);
  EXPECT_EQ(doc.as_string(doc.item(root, 0)), "");
}

TEST(PickleContainers, DictOfManyKeysKeepsOrderAndLaterDuplicateWins) {
  // 100 keys (past the 64 of a shared key list) set in batches of 25.
  std::string body = op(0x7d);
  for (int batch = 0; batch < 4; ++batch) {
    body += kMark;
    for (int i = batch * 25; i < (batch + 1) * 25; ++i)
      body += str(fmt::format("k{}", i)) + int1(i);
    body += op(0x75);
  }
  const Document doc = parse_ok(pickled(body));
  ASSERT_EQ(doc.size(doc.root()), 100u);
  EXPECT_EQ(doc.as_string(doc.key(doc.root(), 0)), "k0");
  EXPECT_EQ(doc.as_string(doc.key(doc.root(), 99)), "k99");
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_EQ(fmt::format("k{}", doc.as_int(doc.value(doc.root(), i))),
              doc.as_string(doc.key(doc.root(), i)));
  }
  const Document again = parse_ok(pickled(op(0x7d) + kMark + str("a") + int1(1) + str("b") +
                                          int1(2) + str("a") + int1(3) + op(0x75)));
  Value found;
  ASSERT_TRUE(again.find(again.root(), "a", &found));
  EXPECT_EQ(again.as_int(found), 3);
  EXPECT_EQ(again.size(again.root()), 3u);  // pairs as written
}

TEST(PickleContainers, ManyDifferentKeySetsStayCorrect) {
  // 70,000 dicts with keys of their own: past the limit of shared key lists.
  std::string body = op(0x5d) + kMark;
  for (int i = 0; i < 70000; ++i) {
    body += op(0x7d) + kMark + str(fmt::format("key{}", i)) + op(0x4a) +
            le(static_cast<uint32_t>(i), 4) + str("common") + int1(1) + op(0x75);
  }
  body += op(0x65);
  const Document doc = parse_ok(pickled(body));
  ASSERT_EQ(doc.size(doc.root()), 70000u);
  for (size_t i = 0; i < 70000; i += 997) {
    const Value dict = doc.item(doc.root(), i);
    ASSERT_EQ(doc.size(dict), 2u);
    EXPECT_EQ(doc.as_string(doc.key(dict, 0)), fmt::format("key{}", i));
    EXPECT_EQ(doc.as_int(doc.value(dict, 0)), static_cast<int64_t>(i));
    EXPECT_EQ(doc.as_string(doc.key(dict, 1)), "common");
  }
}

TEST(PickleContainers, BigListInBatchesBetweenChildren) {
  // A list of 5,000 dicts appended 1,000 at a time (as Python's pickler batches), each dict's
  // values written between: the list's slots are moved as it grows, never lost.
  std::string body = op(0x5d) + kMemoize;
  for (int batch = 0; batch < 5; ++batch) {
    body += kMark;
    for (int i = batch * 1000; i < (batch + 1) * 1000; ++i) {
      body += op(0x7d) + kMark + str("i") + op(0x4a) + le(static_cast<uint32_t>(i), 4) + str("l") +
              op(0x5d) + int1(i % 7) + op(0x61) + op(0x75);
    }
    body += op(0x65);
  }
  const Document doc = parse_ok(pickled(body));
  ASSERT_EQ(doc.size(doc.root()), 5000u);
  for (size_t i = 0; i < 5000; ++i) {
    const Value dict = doc.item(doc.root(), i);
    Value found;
    ASSERT_TRUE(doc.find(dict, "i", &found));
    ASSERT_EQ(doc.as_int(found), static_cast<int64_t>(i));
    ASSERT_TRUE(doc.find(dict, "l", &found));
    ASSERT_EQ(ints_of(doc, found), (std::vector<int64_t>{static_cast<int64_t>(i % 7)}));
  }
}

TEST(PickleContainers, AppendsToSharedAndInterleavedListsStayApart) {
  // Two lists of equal content (which share storage), then appends to each in turn through
  // the memo, and a third list holding both.
  const std::string three = kMark + int1(1) + int1(2) + int1(3) + op(0x65);
  std::string body = op(0x5d) + kMemoize + three + op(0x30) +  // memo 0
                     op(0x5d) + kMemoize + three + op(0x30);   // memo 1
  for (int i = 0; i < 50; ++i) {
    body += binget(i % 2) + int1(10 + i) + op(0x61) + op(0x30);
  }
  body += kMark + binget(0) + binget(1) + op(0x6c);
  const Document doc = parse_ok(pickled(body));
  std::vector<int64_t> first{1, 2, 3};
  std::vector<int64_t> second{1, 2, 3};
  for (int i = 0; i < 50; ++i) (i % 2 == 0 ? first : second).push_back(10 + i);
  EXPECT_EQ(ints_of(doc, doc.item(doc.root(), 0)), first);
  EXPECT_EQ(ints_of(doc, doc.item(doc.root(), 1)), second);
}

TEST(PickleMemo, MemoizedValuesAreTheSameHandle) {
  // MEMOIZE, BINPUT, LONG_BINPUT (dense and far ahead), BINGET, LONG_BINGET.
  const std::string body = op(0x5d) + kMark + str("frame") + kMemoize + op(0x7d) + op(0x71) +
                           op(1) + op(0x5d) + op(0x72) + le(100000, 4) + binget(0) + binget(1) +
                           long_binget(100000) + op(0x4a) + le(123456, 4) + kMemoize + op(0x65);
  const Document doc = parse_ok(pickled(body));
  const Value root = doc.root();
  ASSERT_EQ(doc.size(root), 7u);
  EXPECT_EQ(doc.item(root, 3), doc.item(root, 0));
  EXPECT_EQ(doc.item(root, 4), doc.item(root, 1));
  EXPECT_EQ(doc.item(root, 5), doc.item(root, 2));
  EXPECT_EQ(doc.kind(doc.item(root, 5)), Kind::list);
}

TEST(PickleMemo, EqualStringsShareOneCopy) {
  std::string body = op(0x5d) + kMark;
  for (int i = 0; i < 1000; ++i) body += str("active_allocated") + str(fmt::format("unique{}", i));
  body += op(0x65);
  const Document doc = parse_ok(pickled(body));
  EXPECT_EQ(doc.item(doc.root(), 0), doc.item(doc.root(), 1998));
  EXPECT_NE(doc.item(doc.root(), 1), doc.item(doc.root(), 3));
  // 1,001 distinct strings: far below 2,000 copies' worth of text.
  EXPECT_LT(doc.memory_bytes(), 2000u * 20u);
}

TEST(PickleMemo, UnsetIndexIsAnError) {
  EXPECT_EQ(parse_error(pickled(str("a") + kMemoize + binget(1))),
            "offset 6: BINGET of memo index 1, which was never stored");
  EXPECT_THAT(parse_error(pickled(long_binget(70000))), HasSubstr("memo index 70000"));
  EXPECT_THAT(parse_error("g5\n."), HasSubstr("GET of memo index 5"));
}

// The same value pickled by Python 3.11 (pickle.dumps(v, protocol=p)):
// {'a': [1, 2**40, -3, -2**40, 1.5, 'x', b'y', None, True, False, (1, 2), (), 255, 65535,
//        2**31, -1], 'b': {'k': 'x'}}  (protocol 2 without b'y': it writes bytes as a call)
const std::string kPython2 = bytes_of(
    "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x8a\x06\x00"
    "\x00"
    "\x00\x00\x00\x01\x4a\xfd\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\xff\x47\x3f\xf8\x00\x00\x00"
    "\x00"
    "\x00\x00\x58\x01\x00\x00\x00\x78\x71\x03\x4e\x88\x89\x4b\x01\x4b\x02\x86\x71\x04\x29\x4b\xff"
    "\x4d"
    "\xff\xff\x8a\x05\x00\x00\x00\x80\x00\x4a\xff\xff\xff\xff\x65\x58\x01\x00\x00\x00\x62\x71\x05"
    "\x7d"
    "\x71\x06\x58\x01\x00\x00\x00\x6b\x71\x07\x68\x03\x73\x75\x2e");
const std::string kPython3 = bytes_of(
    "\x80\x03\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x8a\x06\x00"
    "\x00"
    "\x00\x00\x00\x01\x4a\xfd\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\xff\x47\x3f\xf8\x00\x00\x00"
    "\x00"
    "\x00\x00\x58\x01\x00\x00\x00\x78\x71\x03\x43\x01\x79\x71\x04\x4e\x88\x89\x4b\x01\x4b\x02\x86"
    "\x71"
    "\x05\x29\x4b\xff\x4d\xff\xff\x8a\x05\x00\x00\x00\x80\x00\x4a\xff\xff\xff\xff\x65\x58\x01\x00"
    "\x00"
    "\x00\x62\x71\x06\x7d\x71\x07\x58\x01\x00\x00\x00\x6b\x71\x08\x68\x03\x73\x75\x2e");
const std::string kPython4 = bytes_of(
    "\x80\x04\x95\x5d\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b\x01"
    "\x8a"
    "\x06\x00\x00\x00\x00\x00\x01\x4a\xfd\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\xff\x47\x3f\xf8"
    "\x00"
    "\x00\x00\x00\x00\x00\x8c\x01\x78\x94\x43\x01\x79\x94\x4e\x88\x89\x4b\x01\x4b\x02\x86\x94\x29"
    "\x4b"
    "\xff\x4d\xff\xff\x8a\x05\x00\x00\x00\x80\x00\x4a\xff\xff\xff\xff\x65\x8c\x01\x62\x94\x7d\x94"
    "\x8c"
    "\x01\x6b\x94\x68\x03\x73\x75\x2e");

void expect_python_value(const Document& doc, bool with_bytes) {
  const Value root = doc.root();
  ASSERT_EQ(doc.kind(root), Kind::dict);
  Value list;
  ASSERT_TRUE(doc.find(root, "a", &list));
  ASSERT_EQ(doc.size(list), with_bytes ? 16u : 15u);
  size_t i = 0;
  auto next = [&] { return doc.item(list, i++); };
  EXPECT_EQ(doc.as_int(next()), 1);
  EXPECT_EQ(doc.as_int(next()), int64_t{1} << 40);
  EXPECT_EQ(doc.as_int(next()), -3);
  EXPECT_EQ(doc.as_int(next()), -(int64_t{1} << 40));
  EXPECT_DOUBLE_EQ(doc.as_float(next()), 1.5);
  const Value x = next();
  EXPECT_EQ(doc.as_string(x), "x");
  if (with_bytes) {
    const Value y = next();
    EXPECT_EQ(doc.kind(y), Kind::bytes);
    EXPECT_EQ(doc.as_string(y), "y");
  }
  EXPECT_EQ(doc.kind(next()), Kind::none);
  EXPECT_TRUE(doc.as_bool(next()));
  EXPECT_EQ(doc.kind(next()), Kind::boolean);
  const Value pair = next();
  EXPECT_EQ(doc.kind(pair), Kind::tuple);
  EXPECT_EQ(ints_of(doc, pair), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(doc.size(next()), 0u);
  EXPECT_EQ(doc.as_int(next()), 255);
  EXPECT_EQ(doc.as_int(next()), 65535);
  EXPECT_EQ(doc.as_int(next()), int64_t{1} << 31);
  EXPECT_EQ(doc.as_int(next()), -1);
  Value inner;
  ASSERT_TRUE(doc.find(root, "b", &inner));
  Value k;
  ASSERT_TRUE(doc.find(inner, "k", &k));
  EXPECT_EQ(k, x);  // the memo's BINGET gives the very same string
}

TEST(PicklePython, ProtocolsTwoToFive) {
  expect_python_value(parse_ok(kPython2), false);
  expect_python_value(parse_ok(kPython3), true);
  expect_python_value(parse_ok(kPython4), true);
  std::string protocol5 = kPython4;
  protocol5[1] = 5;  // Python 3.8+ writes the same opcodes for this value with protocol 5
  expect_python_value(parse_ok(protocol5), true);
}

TEST(PicklePython, ProtocolTwoBytesAreACallAndRefused) {
  // pickle.dumps(b'y', protocol=2): _codecs.encode('y', 'latin1')
  const std::string bytes = bytes_of(
      "\x80\x02\x63\x5f\x63\x6f\x64\x65\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a\x71\x00\x58\x01\x00"
      "\x00"
      "\x00\x79\x71\x01\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31\x71\x02\x86\x71\x03\x52\x71\x04"
      "\x2e");
  EXPECT_EQ(parse_error(bytes),
            "offset 2: refused opcode GLOBAL (0x63): it would call code; memscope reads data-only "
            "pickles");
}

TEST(PickleErrors, RefusedOpcodesByNameAndOffset) {
  const std::vector<std::pair<int, std::string>> refused{
      {0x63, "GLOBAL"}, {0x93, "STACK_GLOBAL"}, {0x52, "REDUCE"},         {0x62, "BUILD"},
      {0x69, "INST"},   {0x6f, "OBJ"},          {0x81, "NEWOBJ"},         {0x92, "NEWOBJ_EX"},
      {0x50, "PERSID"}, {0x51, "BINPERSID"},    {0x82, "EXT1"},           {0x83, "EXT2"},
      {0x84, "EXT4"},   {0x97, "NEXT_BUFFER"},  {0x98, "READONLY_BUFFER"}};
  for (const auto& [code, name] : refused) {
    EXPECT_EQ(parse_error(kProto4 + str("ab") + str("cd") + op(code) + kStop),
              fmt::format("offset 10: refused opcode {} (0x{:02x}): it would call code; memscope "
                          "reads data-only pickles",
                          name, code));
  }
}

TEST(PickleErrors, UnknownAndUnsupportedOpcodes) {
  EXPECT_EQ(parse_error(kProto4 + op(0x4e) + op(0xff)), "offset 3: unknown opcode 0xff");
  EXPECT_EQ(parse_error(kProto4 + op(0x41)), "offset 2: unknown opcode 0x41");
  EXPECT_THAT(parse_error(kProto4 + "S'abc'\n."), HasSubstr("unsupported opcode STRING (0x53)"));
}

TEST(PickleErrors, NotAPickle) {
  EXPECT_EQ(parse_error("{\"segments\": []}"), "not a pickle (first byte 0x7b)");
  EXPECT_EQ(parse_error(""), "not a pickle (the input is empty)");
  EXPECT_EQ(parse_error(std::string("\x89PNG", 4)), "not a pickle (first byte 0x89)");
  EXPECT_EQ(parse_error(pickled(op(0x4e)).replace(1, 1, 1, '\x06')),
            "offset 0: pickle protocol 6: memscope reads protocols up to 5");
}

TEST(PickleErrors, TruncationAtEveryPrefixIsAnError) {
  // A small snapshot-like pickle with strings, long ints, floats, a FRAME and the memo.
  const std::string full = std::string("\x80\x04\x95") + le(60, 8) + op(0x7d) + kMemoize + kMark +
                           str("segments") + kMemoize + op(0x5d) + kMark + op(0x7d) + kMark +
                           str("address") + op(0x8a) + op(6) + le(0x7f5a00000000, 6) + str("f") +
                           op(0x47) + std::string(8, '\x01') + op(0x58) + le(3, 4) + "abc" +
                           binget(1) + op(0x75) + op(0x65) + op(0x75) + kStop;
  ASSERT_TRUE(parse(full).ok());
  for (size_t length = 1; length < full.size(); ++length) {
    const std::string message = parse_error(std::string_view(full).substr(0, length));
    EXPECT_THAT(message, HasSubstr("truncated (the file ends ")) << "prefix of " << length;
  }
  EXPECT_EQ(parse_error(kProto4 + op(0x8a) + op(6) + "\x01\x02"),
            "offset 2: truncated (the file ends inside LONG1)");
  EXPECT_EQ(parse_error(kProto4 + op(0x4e)), "offset 3: truncated (the file ends before STOP)");
  // A length far past the input is the input's end, not an allocation of that size.
  EXPECT_EQ(parse_error(kProto4 + op(0x8d) + le(uint64_t{1} << 40, 8) + "abc"),
            "offset 2: BINUNICODE8 of 1099511627776 bytes: memscope reads strings of up to 4 GiB");
  EXPECT_EQ(parse_error(kProto4 + op(0x58) + le(0xFFFFFFF0, 4) + "abc"),
            "offset 2: truncated (the file ends inside BINUNICODE)");
}

TEST(PickleErrors, StackAndMarkMisuse) {
  EXPECT_EQ(parse_error(pickled(op(0x61))),
            "offset 2: stack underflow (APPEND needs 2 values above the last MARK, has 0)");
  EXPECT_EQ(parse_error(kProto4 + kStop),
            "offset 2: stack underflow (STOP needs 1 value above the last MARK, has 0)");
  EXPECT_EQ(parse_error(pickled(op(0x5d) + kMark + op(0x61))),
            "offset 4: stack underflow (APPEND needs 2 values above the last MARK, has 0)");
  EXPECT_EQ(parse_error(pickled(op(0x5d) + int1(1) + op(0x65))),
            "offset 5: APPENDS without a MARK");
  EXPECT_EQ(parse_error(pickled(op(0x31))), "offset 2: POP_MARK without a MARK");
  EXPECT_EQ(parse_error(pickled(kMark + int1(1) + op(0x65))),
            "offset 5: APPENDS with nothing below its MARK to add to");
  EXPECT_EQ(parse_error(pickled(op(0x7d) + kMark + int1(1) + op(0x75))),
            "offset 6: SETITEMS with an odd number of values (1)");
  EXPECT_EQ(parse_error(pickled(kMark + int1(1) + op(0x64))),
            "offset 5: DICT with an odd number of values (1)");
  EXPECT_EQ(parse_error(pickled(op(0x7d) + int1(1) + op(0x61))),
            "offset 5: APPEND to a value that is not a list");
  EXPECT_EQ(parse_error(pickled(op(0x5d) + int1(1) + int1(2) + op(0x73))),
            "offset 7: SETITEM to a value that is not a dict");
  EXPECT_EQ(parse_error(pickled(op(0x29) + kMark + int1(1) + op(0x65))),
            "offset 6: APPENDS to a value that is not a list");
  // POP of a MARK with nothing above it drops the MARK, as Python does.
  const Document doc = parse_ok(pickled(int1(3) + kMark + op(0x30)));
  EXPECT_EQ(doc.as_int(doc.root()), 3);
}

TEST(PickleErrors, IntegersWiderThan64Bits) {
  EXPECT_EQ(parse_error(pickled(op(0x8a) + op(9) + le(0, 8) + op(1))),  // 2**64
            "offset 2: integer too large (LONG1 of 9 bytes; memscope reads up to 64 bits)");
  EXPECT_EQ(parse_error(pickled(op(0x8b) + le(16, 4) + std::string(16, '\x01'))),
            "offset 2: integer too large (LONG4 of 16 bytes; memscope reads up to 64 bits)");
  EXPECT_EQ(parse_error(pickled(op(0x8b) + le(0xFFFFFFFF, 4))),
            "offset 2: LONG4 of negative length -1");
  EXPECT_THAT(parse_error("L123456789012345678901234567890L\n."), HasSubstr("integer too large"));
}

TEST(PickleErrors, LimitsAreErrorsNotCrashes) {
  Limits limits;
  limits.max_depth = 100;
  EXPECT_TRUE(parse(pickled(std::string(100, '(') + int1(1)), limits).ok());
  EXPECT_EQ(parse_error(pickled(std::string(101, '(') + int1(1)), limits),
            "offset 102: more than 100 MARKs open");
  // Deep nesting without MARKs: 100,000 lists each appended into the one below.
  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += op(0x5d);
  for (int i = 0; i < 99999; ++i) nested += op(0x61);
  const Document deep = parse_ok(pickled(nested));
  EXPECT_EQ(deep.size(deep.root()), 1u);

  limits = Limits{};
  limits.max_nodes = 1000;
  std::string many = op(0x5d) + kMark;
  for (int i = 0; i < 600; ++i) many += op(0x5d);
  many += op(0x65);
  EXPECT_THAT(parse_error(pickled(many), limits), HasSubstr("more than 1000 values"));
  limits = Limits{};
  limits.max_memo = 10;
  std::string memo;
  for (int i = 0; i < 11; ++i) memo += int1(i) + kMemoize;
  EXPECT_EQ(parse_error(pickled(memo), limits), "offset 34: more than 10 memo entries");
}

TEST(PickleFile, StreamsFromAFileWithStringsLargerThanTheBuffer) {
  testing::TempDir dir;
  const std::string big(3 << 20, 'q');
  const std::string bytes =
      pickled(op(0x5d) + kMark + op(0x58) + le(big.size(), 4) + big + str("after") + op(0x65));
  testing::write_file(dir.file("big.pickle"), std::string("leading junk") + bytes);
  std::FILE* file = std::fopen(dir.file("big.pickle").c_str(), "rb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(std::fseek(file, 12, SEEK_SET), 0);  // parses from the file's current position
  auto doc = parse(file);
  std::fclose(file);
  ASSERT_TRUE(doc.ok()) << doc.message();
  EXPECT_EQ(doc->as_string(doc->item(doc->root(), 0)), big);
  EXPECT_EQ(doc->as_string(doc->item(doc->root(), 1)), "after");

  testing::write_file(dir.file("cut.pickle"), bytes.substr(0, 2 << 20));
  auto cut = parse_file(dir.file("cut.pickle"));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.message(),
            dir.file("cut.pickle") + ": offset 4: truncated (the file ends inside BINUNICODE)");
  auto missing = parse_file(dir.file("missing.pickle"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), dir.file("missing.pickle") + ": No such file or directory");
}

TEST(PickleErrors, QuotedTextStaysOnOneLine) {
  EXPECT_EQ(quote_text("active"), "'active'");
  EXPECT_EQ(quote_text(std::string_view("a\n'b\\\0", 6)), "'a\\x0a\\x27b\\x5c\\x00'");
  EXPECT_EQ(quote_text(std::string(50, 'x')), fmt::format("'{}'...", std::string(40, 'x')));
  EXPECT_THAT(parse_error("(I1\r2\nt."), HasSubstr("INT argument '1\\x0d2' is not an integer"));
}

TEST(PickleDocument, CopiesAndMovesAreValues) {
  Document doc = parse_ok(pickled(op(0x5d) + kMark + str("a") + int1(1) + op(0x65)));
  Document copy = doc;
  Document moved = std::move(doc);
  EXPECT_EQ(copy.as_string(copy.item(copy.root(), 0)), "a");
  EXPECT_EQ(moved.as_int(moved.item(moved.root(), 1)), 1);
  const Document empty;
  EXPECT_EQ(empty.kind(empty.root()), Kind::none);
  EXPECT_EQ(empty.size(empty.root()), 0u);
}

TEST(PickleDocument, DictSlotsByShapeOrByPairs) {
  // Two dicts of keys a, b (one shape), one of 100 keys (it holds its keys), and an int.
  std::string body = op(0x5d) + kMark;
  body += op(0x7d) + kMark + str("a") + kMemoize + int1(1) + str("b") + kMemoize + int1(2) + op(0x75);
  body += op(0x7d) + kMark + binget(0) + int1(3) + binget(1) + int1(4) + op(0x75);
  body += op(0x7d) + kMark;
  for (int i = 0; i < 100; ++i) body += str(fmt::format("k{}", i)) + int1(i);
  body += op(0x75) + int1(7) + op(0x65);
  const Document doc = parse_ok(pickled(body));
  const Document::DictSlots first = doc.dict_slots(doc.item(doc.root(), 0));
  const Document::DictSlots second = doc.dict_slots(doc.item(doc.root(), 1));
  ASSERT_NE(first.shape, Document::kNoShape);
  EXPECT_EQ(first.shape, second.shape);
  ASSERT_EQ(first.size, 2u);
  ASSERT_LT(first.shape, doc.shape_count());
  EXPECT_EQ(doc.as_string(doc.shape_key(first.shape, 0)), "a");
  EXPECT_EQ(doc.as_string(doc.shape_key(first.shape, 1)), "b");
  EXPECT_EQ(doc.as_int(Value{first.slots[1]}), 2);
  EXPECT_EQ(doc.as_int(Value{second.slots[0]}), 3);
  const Document::DictSlots pairs = doc.dict_slots(doc.item(doc.root(), 2));
  EXPECT_EQ(pairs.shape, Document::kNoShape);
  ASSERT_EQ(pairs.size, 100u);
  EXPECT_EQ(doc.as_string(Value{pairs.slots[2 * 99]}), "k99");
  EXPECT_EQ(doc.as_int(Value{pairs.slots[2 * 99 + 1]}), 99);
  const Document::DictSlots none = doc.dict_slots(doc.item(doc.root(), 3));
  EXPECT_EQ(none.shape, Document::kNoShape);
  EXPECT_EQ(none.size, 0u);
}

TEST(PickleDocument, ListsOfEqualItemsShareAContentId) {
  // Memo 0 and 1 are two strings; lists [0, 1], [0, 1], [1, 0], [0], [] and a tuple (0, 1).
  std::string body = str("x") + kMemoize + str("y") + kMemoize + op(0x30) + op(0x30);
  body += op(0x5d) + kMark;
  for (const std::string& items : {binget(0) + binget(1), binget(0) + binget(1),
                                   binget(1) + binget(0), binget(0)}) {
    body += op(0x5d) + kMark + items + op(0x65);
  }
  body += op(0x5d) + binget(0) + binget(1) + op(0x86) + op(0x65);
  const Document doc = parse_ok(pickled(body));
  const Value root = doc.root();
  ASSERT_EQ(doc.size(root), 6u);
  const uint64_t same = doc.content_id(doc.item(root, 0));
  EXPECT_NE(same, 0u);
  EXPECT_EQ(doc.content_id(doc.item(root, 1)), same);
  EXPECT_NE(doc.content_id(doc.item(root, 2)), same);
  EXPECT_NE(doc.content_id(doc.item(root, 3)), same);
  EXPECT_NE(doc.content_id(doc.item(root, 3)), 0u);
  EXPECT_EQ(doc.content_id(doc.item(root, 4)), 0u);  // empty
  EXPECT_EQ(doc.content_id(doc.item(root, 5)), same);  // a tuple of the same items
  EXPECT_EQ(doc.content_id(Value{3}), 0u);  // an int
}

TEST(PickleArray, GrowsPastTheMappedSizeKeepingItsValues) {
  detail::PodArray<uint32_t> values;
  constexpr uint32_t kCount = 3'000'000;  // 12 MB: its own mapping from 4 MB on
  for (uint32_t i = 0; i < kCount; ++i) values.push_back(i * 7);
  ASSERT_EQ(values.size(), kCount);
  EXPECT_GE(values.capacity_bytes(), kCount * sizeof(uint32_t));
  bool kept = true;
  for (uint32_t i = 0; i < kCount; ++i) kept = kept && values[i] == i * 7;
  EXPECT_TRUE(kept);
  detail::PodArray<uint32_t> copy = values;
  values.shrink_to_fit();
  EXPECT_EQ(values.capacity_bytes(), kCount * sizeof(uint32_t));
  detail::PodArray<uint32_t> moved = std::move(values);
  EXPECT_EQ(moved[kCount - 1], (kCount - 1) * 7);
  EXPECT_EQ(copy[kCount / 2], kCount / 2 * 7);
  moved.resize(100);  // a mapping shrinks in place and stays one
  moved.shrink_to_fit();
  EXPECT_EQ(moved[99], 99u * 7);
  moved = std::move(copy);
  EXPECT_EQ(moved.size(), kCount);
  moved.clear();
  EXPECT_EQ(moved.size(), 0u);
  moved.push_back(5);
  EXPECT_EQ(moved[0], 5u);
}

TEST(PickleErrors, TheCommonOpcodesStillCheckTheirLimits) {
  // BINGET, LONG_BINGET, BININT1, BININT2 and BININT push without step() while within bounds.
  Limits limits;
  limits.max_nodes = 1000;
  for (const std::string& push : {binget(0), long_binget(0), int1(1), op(0x4d) + le(300, 2),
                                  op(0x4a) + le(70000, 4)}) {
    std::string body = str("a") + kMemoize + op(0x5d) + kMark;
    for (int i = 0; i < 999; ++i) body += push;
    EXPECT_THAT(parse_error(pickled(body), limits), HasSubstr("stack holds over 1000 values"));
  }
  // LONG1 and EMPTY_DICT count as values: the error names the opcode that went past the limit
  // (each LONG1 is 7 bytes from offset 4, each EMPTY_DICT 1).
  std::string longs = op(0x5d) + kMark;
  for (int i = 0; i < 1000; ++i) longs += op(0x8a) + op(5) + le(uint64_t{1} << 35, 5);
  EXPECT_EQ(parse_error(pickled(longs), limits), "offset 6997: more than 1000 values");
  std::string dicts = op(0x5d) + kMark;
  for (int i = 0; i < 1000; ++i) dicts += op(0x7d);
  EXPECT_EQ(parse_error(pickled(dicts), limits), "offset 1003: more than 1000 values");
  EXPECT_THAT(parse_error(pickled(op(0x8a) + op(9) + le(1, 9))), HasSubstr("integer too large"));
  // MEMOIZE with nothing above the last MARK, MARK past the depth limit.
  EXPECT_THAT(parse_error(pickled(int1(1) + kMark + kMemoize)), HasSubstr("stack underflow"));
  limits = Limits{};
  limits.max_depth = 2;
  EXPECT_EQ(parse_error(pickled(kMark + kMark + kMark), limits),
            "offset 4: more than 2 MARKs open");
  // Integers of 31 bits and more are stored aside, not in the handle.
  const Document wide =
      parse_ok(pickled(kMark + op(0x4a) + le(0x40000000, 4) + op(0x4a) + le(0xBFFFFFFF, 4) +
                       op(0x4a) + le(0x3FFFFFFF, 4) + op(0x74)));
  EXPECT_EQ(ints_of(wide, wide.root()),
            (std::vector<int64_t>{int64_t{1} << 30, -(int64_t{1} << 30) - 1, (1 << 30) - 1}));
}

// A snapshot-shaped pickle as Python writes one (protocol 4, memo for every str, dict and list;
// frame dicts shared through the memo; stacks written afresh), of about `target_bytes`.
std::string snapshot_like_pickle(size_t target_bytes) {
  std::string out = kProto4;
  uint32_t memo = 0;
  auto memoize = [&] {
    out += kMemoize;
    return memo++;
  };
  auto get = [&](uint32_t index) {
    out += index < 256 ? binget(static_cast<int>(index)) : long_binget(index);
  };
  std::vector<uint32_t> keys;
  auto key = [&](size_t k, std::string_view name) {
    if (keys.size() <= k) keys.resize(k + 1, UINT32_MAX);
    if (keys[k] == UINT32_MAX) {
      out += str(name);
      keys[k] = memoize();
    } else {
      get(keys[k]);
    }
  };
  auto long1 = [&](uint64_t value) { out += op(0x8a) + op(8) + le(value, 8); };
  std::vector<uint32_t> frames;
  auto frames_list = [&](uint64_t seed) {
    out += op(0x5d);
    memoize();
    out += kMark;
    for (uint64_t f = 0; f < 12; ++f) {
      const uint64_t which = (seed * 7 + f * 13) % 600;
      if (which < frames.size() && frames[which] != UINT32_MAX) {
        get(frames[which]);
        continue;
      }
      if (frames.size() <= which) frames.resize(which + 1, UINT32_MAX);
      out += op(0x7d);
      frames[which] = memoize();
      out += kMark;
      key(20, "filename");
      out +=
          str(fmt::format("/opt/conda/lib/python3.11/site-packages/torch/module{}.py", which % 40));
      memoize();
      key(21, "line");
      out += op(0x4d) + le(which * 3, 2);
      key(22, "name");
      out += str(fmt::format("forward_{}", which));
      memoize();
      out += op(0x75);
    }
    out += op(0x65);
  };
  out += op(0x7d);
  memoize();
  out += kMark;
  key(0, "segments");
  out += op(0x5d);
  memoize();
  uint64_t n = 0;
  for (; out.size() < target_bytes / 5; ++n) {
    if (n % 1000 == 0) out += (n == 0 ? "" : op(0x65)) + kMark;
    out += op(0x7d);
    memoize();
    out += kMark;
    key(1, "device");
    out += int1(0);
    key(2, "address");
    long1(0x7f0000000000 + n * (20 << 20));
    key(3, "total_size");
    out += op(0x4a) + le(20 << 20, 4);
    key(4, "blocks");
    out += op(0x5d);
    memoize();
    out += kMark;
    for (int b = 0; b < 3; ++b) {
      out += op(0x7d);
      memoize();
      out += kMark;
      key(5, "address");
      long1(0x7f0000000000 + n * (20 << 20) + static_cast<uint64_t>(b) * 4096);
      key(6, "size");
      out += op(0x4a) + le(4096, 4);
      key(7, "state");
      out += str(b == 2 ? "inactive" : "active_allocated");
      memoize();
      key(8, "frames");
      frames_list(n + static_cast<uint64_t>(b));
      out += op(0x75);
    }
    out += op(0x65) + op(0x75);
  }
  out += op(0x65);
  key(9, "device_traces");
  out += op(0x5d);
  memoize();
  out += op(0x5d);
  memoize();
  for (uint64_t e = 0; out.size() < target_bytes; ++e) {
    if (e % 1000 == 0) out += (e == 0 ? "" : op(0x65)) + kMark;
    out += op(0x7d);
    memoize();
    out += kMark;
    key(10, "action");
    out += str(e % 2 == 0 ? "alloc" : "free_completed");
    memoize();
    key(11, "addr");
    long1(0x7f0000000000 + e * 512);
    key(12, "size");
    out += op(0x4a) + le(static_cast<uint32_t>(e % 100000), 4);
    key(13, "stream");
    out += int1(0);
    key(14, "time_us");
    long1(1700000000000000 + e);
    key(15, "frames");
    frames_list(e);
    out += op(0x75);
  }
  out += op(0x65) + op(0x61) + op(0x75) + kStop;
  return out;
}

TEST(PickleMemory, TreeOfASnapshotIsSmallerThanItsFile) {
  testing::TempDir dir;
  const std::string bytes = snapshot_like_pickle(20 << 20);
  testing::write_file(dir.file("snapshot.pickle"), bytes);
  auto doc = parse_file(dir.file("snapshot.pickle"));
  ASSERT_TRUE(doc.ok()) << doc.message();
  Value traces;
  ASSERT_TRUE(doc->find(doc->root(), "device_traces", &traces));
  const Value entries = doc->item(traces, 0);
  ASSERT_GT(doc->size(entries), 50000u);
  const Value last = doc->item(entries, doc->size(entries) - 1);
  Value time;
  ASSERT_TRUE(doc->find(last, "time_us", &time));
  EXPECT_EQ(doc->as_int(time), 1700000000000000 + static_cast<int64_t>(doc->size(entries)) - 1);
  // The bound of issue #5: well under the file's size (here about 0.6 of it).
  EXPECT_LT(doc->memory_bytes(), bytes.size());
  EXPECT_LT(doc->memory_bytes(), bytes.size() * 3 / 4);
  std::printf("tree %zu bytes for a pickle of %zu bytes (%.2f)\n", doc->memory_bytes(),
              bytes.size(),
              static_cast<double>(doc->memory_bytes()) / static_cast<double>(bytes.size()));
}

}  // namespace
}  // namespace memscope::pickle

namespace memscope::pickle {
namespace {

TEST(PickleErrors, MemoIndicesFarAheadNeitherGrowTheMemoNorLastForever) {
  // None, then LONG_BINPUT at indices beyond the dense part: each would have bought up to
  // 4096 dense slots.
  std::string p = std::string("\x80\x04N", 3);
  for (uint32_t i = 0; i < (1u << 20) + 2; ++i) {
    const uint32_t index = 8192 + 3 * i;
    p += 'r';
    for (int b = 0; b < 4; ++b) p += static_cast<char>((index >> (8 * b)) & 0xff);
  }
  p += '.';
  auto document = parse(p);
  ASSERT_FALSE(document.ok());
  EXPECT_NE(document.message().find("far ahead"), std::string::npos) << document.message();
}

}  // namespace
}  // namespace memscope::pickle
