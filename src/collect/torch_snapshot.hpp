// PyTorch memory snapshots: the pickle (collect/pickle) decoded into core/torch_snapshot's
// types, for every layout in ../shared/specs/pytorch-memory.md: 2.0 (blocks without addresses,
// optional `history`), 2.1+ (addresses, frames), 2.3+ `allocator_settings`, 2.5+
// `external_annotations`, and a bare segment list. Unknown fields and trace actions are counted
// and ignored; a known field of the wrong type is an error naming its path
// ("segments[3].blocks[2].size: expected int, got str").
#pragma once

#include <string>

#include "collect/pickle.hpp"
#include "core/result.hpp"
#include "core/torch_snapshot.hpp"

namespace memscope::torch {

Result<Snapshot> decode_snapshot(const pickle::Document& document);
// parse_file + decode_snapshot; errors name the file.
Result<Snapshot> read_snapshot(const std::string& path);

}  // namespace memscope::torch
