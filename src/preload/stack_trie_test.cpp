#include "preload/stack_trie.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace memscope::track {
namespace {

class StackTrieTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(trie_.init(4)); }
  void TearDown() override { trie_.release(); }

  // Frames outermost first; returns each frame's node id.
  std::vector<uint32_t> insert(const std::vector<uint64_t>& frames, int* created_count) {
    std::vector<uint32_t> ids;
    uint32_t parent = 0;
    *created_count = 0;
    for (uint64_t ip : frames) {
      bool created = false;
      parent = trie_.child(parent, ip, &created);
      if (created) ++*created_count;
      ids.push_back(parent);
    }
    return ids;
  }

  StackTrie trie_;
};

TEST_F(StackTrieTest, SameStackGetsSameIds) {
  int created = 0;
  EXPECT_EQ(insert({0x1000, 0x2000, 0x3000}, &created), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(created, 3);
  EXPECT_EQ(insert({0x1000, 0x2000, 0x3000}, &created), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(created, 0);
  EXPECT_EQ(trie_.node_count(), 3u);
}

TEST_F(StackTrieTest, SharedPrefixSharesNodes) {
  int created = 0;
  insert({0x1000, 0x2000, 0x3000}, &created);
  EXPECT_EQ(insert({0x1000, 0x2000, 0x4000}, &created), (std::vector<uint32_t>{1, 2, 4}));
  EXPECT_EQ(created, 1);
  EXPECT_EQ(insert({0x1000, 0x5000}, &created), (std::vector<uint32_t>{1, 5}));
  EXPECT_EQ(created, 1);
}

TEST_F(StackTrieTest, SameIpUnderDifferentParentsIsDifferentNode) {
  int created = 0;
  EXPECT_EQ(insert({0x1000, 0x9000}, &created), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(insert({0x2000, 0x9000}, &created), (std::vector<uint32_t>{3, 4}));
  EXPECT_EQ(insert({0x9000}, &created), (std::vector<uint32_t>{5}));
  EXPECT_EQ(created, 1);
}

TEST_F(StackTrieTest, IdsAreSequentialAndParentsComeFirstWhileGrowing) {
  // 16 slots at first: many doublings on the way to 20000 nodes.
  uint32_t expected_id = 0;
  for (uint64_t outer = 0; outer < 100; ++outer) {
    uint32_t parent = 0;
    for (uint64_t depth = 0; depth < 200; ++depth) {
      bool created = false;
      const uint32_t id = trie_.child(parent, 0x400000 + outer * 4096 + depth, &created);
      ASSERT_TRUE(created);
      ASSERT_EQ(id, ++expected_id);
      ASSERT_LT(parent, id);
      parent = id;
    }
  }
  EXPECT_EQ(trie_.node_count(), 20000u);
  // Everything is still found after the table grew.
  uint32_t check_id = 0;
  for (uint64_t outer = 0; outer < 100; ++outer) {
    uint32_t parent = 0;
    for (uint64_t depth = 0; depth < 200; ++depth) {
      bool created = true;
      parent = trie_.child(parent, 0x400000 + outer * 4096 + depth, &created);
      ASSERT_FALSE(created);
      ASSERT_EQ(parent, ++check_id);
    }
  }
}

TEST(StackTrieUninitialized, ReturnsZero) {
  StackTrie trie;
  bool created = true;
  EXPECT_EQ(trie.child(0, 0x1000, &created), 0u);
  EXPECT_FALSE(created);
}

}  // namespace
}  // namespace memscope::track
