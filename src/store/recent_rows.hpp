// The writer's memory of which `processes`/`devices` row holds a process's or a GPU's unchanging
// data. It remembers only what the previous and the current sample contain, so it stays as
// large as one sample however long the recording runs; a process that vanishes and comes back
// later simply gets a fresh row.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

namespace memscope::store {

template <class Key, class Row>
class RecentRows {
 public:
  struct Entry {
    int64_t row_id = 0;
    Row row;  // what was stored under row_id
  };

  // The entry for `key` if the previous or the current sample had it; it now counts as seen in
  // the current one.
  Entry* find(const Key& key) {
    if (auto it = current_.find(key); it != current_.end()) return &it->second;
    auto node = previous_.extract(key);
    if (node.empty()) return nullptr;
    return &current_.insert(std::move(node)).position->second;
  }

  void remember(const Key& key, int64_t row_id, const Row& row) {
    current_.insert_or_assign(key, Entry{row_id, row});
  }

  // The current sample is complete: forget whatever it no longer contained.
  void next_sample() {
    std::swap(previous_, current_);
    current_.clear();
  }

  // After a rollback, remembered row ids may no longer exist.
  void forget_all() {
    previous_.clear();
    current_.clear();
  }

  size_t size() const { return previous_.size() + current_.size(); }

 private:
  std::map<Key, Entry> previous_;
  std::map<Key, Entry> current_;
};

}  // namespace memscope::store
