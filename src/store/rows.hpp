// How each value type maps onto the columns of its table, in one place for the writer and the
// reader: every column list here is bound by a bind_* function and read back by the matching
// read_* function in the same order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/recording.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"
#include "store/sqlite.hpp"

namespace memscope::store::rows {

// "?, ?, ?" with one placeholder per column of a comma-separated column list.
std::string placeholders(std::string_view columns);

// samples: the time and the host-wide figures of one Sample.
extern const char* const kSampleColumns;
void bind_sample(sqlite::Binder& bind, const Sample& sample);
Status read_sample(sqlite::Columns& columns, Sample& sample);

// processes: what identifies a process and does not change from sample to sample.
extern const char* const kProcessColumns;
void bind_process(sqlite::Binder& bind, const ProcessSample& process);
void read_process(sqlite::Columns& columns, ProcessSample& process);
bool same_process_row(const ProcessSample& a, const ProcessSample& b);

// process_samples: one process's figures in one sample.
extern const char* const kProcessSampleColumns;
void bind_process_sample(sqlite::Binder& bind, const ProcessSample& process);
void read_process_sample(sqlite::Columns& columns, ProcessSample& process);

// devices: what identifies a GPU and does not change.
extern const char* const kDeviceColumns;
void bind_device(sqlite::Binder& bind, const DeviceSample& device);
void read_device(sqlite::Columns& columns, DeviceSample& device);
bool same_device_row(const DeviceSample& a, const DeviceSample& b);

// device_samples: one GPU's figures in one sample.
extern const char* const kDeviceSampleColumns;
void bind_device_sample(sqlite::Binder& bind, const DeviceSample& device);
Status read_device_sample(sqlite::Columns& columns, DeviceSample& device);

// gpu_processes: one process's use of one GPU in one sample.
extern const char* const kGpuProcessColumns;
void bind_gpu_process(sqlite::Binder& bind, const GpuProcess& process);
void read_gpu_process(sqlite::Columns& columns, GpuProcess& process);

// Lists of strings (notes, NVML errors, argv) are JSON arrays; an empty list is NULL. Invalid
// UTF-8 is replaced by U+FFFD.
std::string encode_strings(const std::vector<std::string>& strings);
Result<std::vector<std::string>> decode_strings(std::string_view json);
std::string encode_ints(const std::vector<int>& values);
Result<std::vector<int>> decode_ints(std::string_view json);

}  // namespace memscope::store::rows
