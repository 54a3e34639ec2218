#include "core/torch_snapshot.hpp"

#include <gtest/gtest.h>

#include <string>

namespace memscope::torch {
namespace {

TEST(FrameTable, InternsFramesAndStacksOnce) {
  FrameTable table;
  EXPECT_EQ(table.stack_count(), 1u) << "stack 0: no frames";
  const uint32_t a = table.intern_frame({"train.py", 10, "forward"});
  const uint32_t b = table.intern_frame({"train.py", 11, "forward"});
  const uint32_t c = table.intern_frame({"model.py", 10, "forward"});
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(table.intern_frame({"train.py", 10, "forward"}), a);
  EXPECT_EQ(table.intern_stack({}), 0u);
  const uint32_t ab = table.intern_stack({a, b});
  EXPECT_NE(ab, 0u);
  EXPECT_NE(table.intern_stack({b, a}), ab) << "order matters";
  EXPECT_EQ(table.intern_stack({a, b}), ab);
  const auto [ids, count] = table.stack(ab);
  ASSERT_EQ(count, 2u);
  EXPECT_EQ(table.frame(ids[0]).line, 10);
  EXPECT_EQ(table.frame(ids[1]).line, 11);
}

// "f<n>.py" (built in steps: GCC 12's -Wrestrict misfires on "literal" + std::string).
std::string file_name(int n) {
  std::string name = "f";
  name += std::to_string(n % 7);
  name += ".py";
  return name;
}

TEST(FrameTable, StaysCorrectAcrossGrowth) {
  FrameTable table;
  std::vector<uint32_t> frames;
  for (int i = 0; i < 5000; ++i) {
    frames.push_back(table.intern_frame({file_name(i), i, "fn"}));
  }
  EXPECT_EQ(table.frame_count(), 5000u);
  std::vector<uint32_t> stacks;
  for (uint32_t i = 0; i + 1 < frames.size(); ++i) {
    stacks.push_back(table.intern_stack({frames[i], frames[i + 1]}));
  }
  for (uint32_t i = 0; i + 1 < frames.size(); ++i) {
    ASSERT_EQ(table.intern_frame({file_name(static_cast<int>(i)), static_cast<int64_t>(i), "fn"}),
              frames[i]);
    ASSERT_EQ(table.intern_stack({frames[i], frames[i + 1]}), stacks[i]);
  }
  EXPECT_EQ(table.stack_count(), 5000u);
}

TEST(SnapshotNames, ActionsAndStates) {
  EXPECT_EQ(trace_action_name(TraceAction::free_completed), "free_completed");
  EXPECT_EQ(trace_action_name(TraceAction::segment_unmap), "segment_unmap");
  EXPECT_EQ(block_state_name(BlockState::active_pending_free), "active_pending_free");
}

}  // namespace
}  // namespace memscope::torch
