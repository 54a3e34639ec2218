// Our NVML declarations against the ABI: fixed sizes and offsets, and Debian's bindgen output
// of NVIDIA's nvml.h (nvml-wrapper-sys bindings.rs) when it is installed.
#include "collect/nvml/nvml_api.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::nvml {
namespace {

static_assert(sizeof(nvmlMemory_t) == 24);
static_assert(offsetof(nvmlMemory_t, total) == 0);
static_assert(offsetof(nvmlMemory_t, free) == 8);
static_assert(offsetof(nvmlMemory_t, used) == 16);
static_assert(sizeof(nvmlMemory_v2_t) == 40);
static_assert(offsetof(nvmlMemory_v2_t, version) == 0);
static_assert(offsetof(nvmlMemory_v2_t, total) == 8);
static_assert(offsetof(nvmlMemory_v2_t, reserved) == 16);
static_assert(offsetof(nvmlMemory_v2_t, free) == 24);
static_assert(offsetof(nvmlMemory_v2_t, used) == 32);
static_assert(nvmlMemory_v2 == 0x02000028U);
static_assert(sizeof(nvmlProcessInfo_v1_t) == 16);
static_assert(offsetof(nvmlProcessInfo_v1_t, usedGpuMemory) == 8);
static_assert(sizeof(nvmlProcessInfo_v2_t) == 24);
static_assert(offsetof(nvmlProcessInfo_v2_t, usedGpuMemory) == 8);
static_assert(offsetof(nvmlProcessInfo_v2_t, gpuInstanceId) == 16);
static_assert(offsetof(nvmlProcessInfo_v2_t, computeInstanceId) == 20);
static_assert(sizeof(nvmlProcessInfo_t) == 24);
static_assert(sizeof(nvmlUtilization_t) == 8);
static_assert(sizeof(nvmlReturn_t) == 4);
static_assert(sizeof(nvmlTemperatureSensors_t) == 4);
static_assert(NVML_VALUE_NOT_AVAILABLE == 0xFFFFFFFFFFFFFFFFULL);

// A struct's layout: its size and each field's offset, in declaration order.
struct Layout {
  size_t size = 0;
  std::vector<std::pair<std::string, size_t>> fields;
};

#define MEMSCOPE_FIELD(type, field) \
  std::pair<std::string, size_t> { #field, offsetof(type, field) }

// Ours, under the names bindgen gives the structs.
std::map<std::string, Layout> our_layouts() {
  return {
      {"nvmlMemory_st",
       {sizeof(nvmlMemory_t),
        {MEMSCOPE_FIELD(nvmlMemory_t, total), MEMSCOPE_FIELD(nvmlMemory_t, free),
         MEMSCOPE_FIELD(nvmlMemory_t, used)}}},
      {"nvmlMemory_v2_st",
       {sizeof(nvmlMemory_v2_t),
        {MEMSCOPE_FIELD(nvmlMemory_v2_t, version), MEMSCOPE_FIELD(nvmlMemory_v2_t, total),
         MEMSCOPE_FIELD(nvmlMemory_v2_t, reserved), MEMSCOPE_FIELD(nvmlMemory_v2_t, free),
         MEMSCOPE_FIELD(nvmlMemory_v2_t, used)}}},
      {"nvmlProcessInfo_v1_st",
       {sizeof(nvmlProcessInfo_v1_t),
        {MEMSCOPE_FIELD(nvmlProcessInfo_v1_t, pid),
         MEMSCOPE_FIELD(nvmlProcessInfo_v1_t, usedGpuMemory)}}},
      {"nvmlProcessInfo_v2_st",
       {sizeof(nvmlProcessInfo_v2_t),
        {MEMSCOPE_FIELD(nvmlProcessInfo_v2_t, pid),
         MEMSCOPE_FIELD(nvmlProcessInfo_v2_t, usedGpuMemory),
         MEMSCOPE_FIELD(nvmlProcessInfo_v2_t, gpuInstanceId),
         MEMSCOPE_FIELD(nvmlProcessInfo_v2_t, computeInstanceId)}}},
      {"nvmlProcessInfo_st",
       {sizeof(nvmlProcessInfo_t),
        {MEMSCOPE_FIELD(nvmlProcessInfo_t, pid), MEMSCOPE_FIELD(nvmlProcessInfo_t, usedGpuMemory),
         MEMSCOPE_FIELD(nvmlProcessInfo_t, gpuInstanceId),
         MEMSCOPE_FIELD(nvmlProcessInfo_t, computeInstanceId)}}},
      {"nvmlUtilization_st",
       {sizeof(nvmlUtilization_t),
        {MEMSCOPE_FIELD(nvmlUtilization_t, gpu), MEMSCOPE_FIELD(nvmlUtilization_t, memory)}}},
  };
}

#undef MEMSCOPE_FIELD

// The parameter types (Rust spelling) of each function we resolve, as bindgen declares them.
const std::map<std::string, std::vector<std::string>>& expected_signatures() {
  static const std::map<std::string, std::vector<std::string>> signatures = {
      {"nvmlInit_v2", {}},
      {"nvmlShutdown", {}},
      {"nvmlSystemGetDriverVersion", {"*mut raw::c_char", "raw::c_uint"}},
      {"nvmlDeviceGetCount_v2", {"*mut raw::c_uint"}},
      {"nvmlDeviceGetHandleByIndex_v2", {"raw::c_uint", "*mut nvmlDevice_t"}},
      {"nvmlDeviceGetName", {"nvmlDevice_t", "*mut raw::c_char", "raw::c_uint"}},
      {"nvmlDeviceGetUUID", {"nvmlDevice_t", "*mut raw::c_char", "raw::c_uint"}},
      {"nvmlDeviceGetMemoryInfo", {"nvmlDevice_t", "*mut nvmlMemory_t"}},
      {"nvmlDeviceGetMemoryInfo_v2", {"nvmlDevice_t", "*mut nvmlMemory_v2_t"}},
      {"nvmlDeviceGetComputeRunningProcesses",
       {"nvmlDevice_t", "*mut raw::c_uint", "*mut nvmlProcessInfo_v1_t"}},
      {"nvmlDeviceGetComputeRunningProcesses_v2",
       {"nvmlDevice_t", "*mut raw::c_uint", "*mut nvmlProcessInfo_v2_t"}},
      {"nvmlDeviceGetComputeRunningProcesses_v3",
       {"nvmlDevice_t", "*mut raw::c_uint", "*mut nvmlProcessInfo_t"}},
      {"nvmlDeviceGetGraphicsRunningProcesses",
       {"nvmlDevice_t", "*mut raw::c_uint", "*mut nvmlProcessInfo_v1_t"}},
      {"nvmlDeviceGetGraphicsRunningProcesses_v2",
       {"nvmlDevice_t", "*mut raw::c_uint", "*mut nvmlProcessInfo_v2_t"}},
      {"nvmlDeviceGetGraphicsRunningProcesses_v3",
       {"nvmlDevice_t", "*mut raw::c_uint", "*mut nvmlProcessInfo_t"}},
      {"nvmlDeviceGetUtilizationRates", {"nvmlDevice_t", "*mut nvmlUtilization_t"}},
      {"nvmlDeviceGetTemperature",
       {"nvmlDevice_t", "nvmlTemperatureSensors_t", "*mut raw::c_uint"}},
      {"nvmlDeviceGetPowerUsage", {"nvmlDevice_t", "*mut raw::c_uint"}},
  };
  return signatures;
}

std::string trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  const size_t end = text.find_last_not_of(" \t\r\n,");
  return std::string(text.substr(begin, end - begin + 1));
}

// Size and alignment of the C types bindgen uses in the structs we mirror (x86-64, aarch64).
std::optional<std::pair<size_t, size_t>> rust_type_size(const std::string& type) {
  if (type == "raw::c_uint" || type == "raw::c_int") return std::pair<size_t, size_t>{4, 4};
  if (type == "raw::c_ulonglong" || type == "raw::c_longlong") {
    return std::pair<size_t, size_t>{8, 8};
  }
  return std::nullopt;
}

// The layout C gives `pub struct NAME { pub field: type, ... }` under #[repr(C)].
std::optional<Layout> layout_from_struct(const std::string& source, const std::string& name) {
  const size_t start = source.find("pub struct " + name + " {");
  if (start == std::string::npos) return std::nullopt;
  const size_t end = source.find('}', start);
  std::istringstream body(source.substr(start, end - start));
  std::string line;
  std::getline(body, line);  // the "pub struct" line
  Layout layout;
  size_t offset = 0;
  size_t max_align = 1;
  while (std::getline(body, line)) {
    line = trim(line);
    if (line.rfind("pub ", 0) != 0) continue;
    const size_t colon = line.find(':');
    const std::string field = trim(std::string_view(line).substr(4, colon - 4));
    const auto size_align = rust_type_size(trim(std::string_view(line).substr(colon + 1)));
    if (!size_align) return std::nullopt;
    const auto [size, align] = *size_align;
    offset = (offset + align - 1) / align * align;
    layout.fields.emplace_back(field, offset);
    offset += size;
    max_align = std::max(max_align, align);
  }
  layout.size = (offset + max_align - 1) / max_align * max_align;
  return layout;
}

// The number written just before the first "usize" that follows a digit in `text`.
std::optional<size_t> first_usize_literal(std::string_view text) {
  for (size_t at = text.find("usize"); at != std::string_view::npos;
       at = text.find("usize", at + 1)) {
    size_t begin = at;
    while (begin > 0 && text[begin - 1] >= '0' && text[begin - 1] <= '9') --begin;
    if (begin < at) return std::stoul(std::string(text.substr(begin, at - begin)));
  }
  return std::nullopt;
}

// The layout bindgen's own test asserts (fn bindgen_test_layout_NAME), when it was generated.
std::optional<Layout> layout_from_assertions(const std::string& source, const std::string& name) {
  const size_t start = source.find("fn bindgen_test_layout_" + name + "()");
  if (start == std::string::npos) return std::nullopt;
  const size_t end = source.find("\n}", start);
  const std::string body = source.substr(start, end - start);
  Layout layout;
  for (size_t at = body.find("assert_eq!("); at != std::string::npos;) {
    const size_t next = body.find("assert_eq!(", at + 1);
    const std::string_view chunk = std::string_view(body).substr(at, next - at);
    const std::optional<size_t> number = first_usize_literal(chunk);
    if (number && chunk.find("size_of::<" + name + ">()") != std::string_view::npos) {
      layout.size = *number;
    } else if (number && chunk.find("Offset of field") != std::string_view::npos) {
      const size_t open = chunk.rfind("stringify!(") + 11;
      layout.fields.emplace_back(std::string(chunk.substr(open, chunk.find(')', open) - open)),
                                 *number);
    }
    at = next;
  }
  return layout;
}

// Parameter types of `pub NAME: Result<unsafe extern "C" fn(a: T, b: U) -> nvmlReturn_t, ...`.
std::optional<std::vector<std::string>> function_parameters(const std::string& source,
                                                            const std::string& name) {
  const size_t start = source.find("pub " + name + ": Result<");
  if (start == std::string::npos) return std::nullopt;
  const size_t open = source.find("fn(", start) + 3;
  const size_t close = source.find(") ->", open);
  std::vector<std::string> types;
  std::istringstream params(source.substr(open, close - open));
  std::string param;
  while (std::getline(params, param, ',')) {
    const size_t colon = param.find(':');
    if (colon == std::string::npos) continue;
    types.push_back(trim(std::string_view(param).substr(colon + 1)));
  }
  return types;
}

// `pub const PREFIXNAME: TYPE = VALUE;` entries, by NAME.
std::map<std::string, long long> constants(const std::string& source, const std::string& prefix) {
  std::map<std::string, long long> values;
  std::istringstream lines(source);
  std::string line;
  const std::string head = "pub const " + prefix;
  while (std::getline(lines, line)) {
    if (line.rfind(head, 0) != 0) continue;
    const size_t colon = line.find(':');
    const size_t equals = line.find('=');
    if (colon == std::string::npos || equals == std::string::npos) continue;
    const std::string value = trim(std::string_view(line).substr(equals + 1));
    if (value.empty() || (value[0] != '-' && (value[0] < '0' || value[0] > '9'))) continue;
    values[line.substr(head.size(), colon - head.size())] = std::stoll(value);
  }
  return values;
}

std::optional<std::string> read_bindings() {
  namespace fs = std::filesystem;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/usr/share/cargo/registry", error)) {
    if (entry.path().filename().string().rfind("nvml-wrapper-sys-", 0) != 0) continue;
    std::ifstream file(entry.path() / "src" / "bindings.rs");
    if (!file) continue;
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
  }
  return std::nullopt;
}

class NvmlBindingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const std::optional<std::string> source = read_bindings();
    if (!source)
      GTEST_SKIP() << "no nvml-wrapper-sys bindings.rs (Debian librust-nvml-wrapper-sys-dev)";
    bindings_ = &*source;
  }
  const std::string* bindings_ = nullptr;
};

TEST(NvmlApi, StructVersionIsSizeAndVersionByte) {
  EXPECT_EQ(nvml_struct_version(40, 2), 0x02000028U);
  EXPECT_EQ(nvmlMemory_v2, nvml_struct_version(sizeof(nvmlMemory_v2_t), 2));
}

TEST(NvmlApi, ReturnCodeTableIsConsistent) {
  EXPECT_STREQ(find_return_code(NVML_ERROR_NOT_SUPPORTED)->description, "Not Supported");
  EXPECT_STREQ(find_return_code(NVML_ERROR_GPU_IS_LOST)->identifier, "GPU_IS_LOST");
  EXPECT_EQ(find_return_code(12345), nullptr);
  for (const ReturnCodeInfo& info : kReturnCodes) {
    EXPECT_EQ(find_return_code(info.code), &info) << info.identifier;  // no duplicates
  }
}

TEST(NvmlApi, ParsesBindgenLayoutAssertions) {
  // The form bindgen emits when layout tests are on; Debian's bindings.rs has them off.
  const std::string source = R"(
#[test]
fn bindgen_test_layout_nvmlMemory_v2_st() {
    const UNINIT: ::std::mem::MaybeUninit<nvmlMemory_v2_st> = ::std::mem::MaybeUninit::uninit();
    let ptr = UNINIT.as_ptr();
    assert_eq!(
        ::std::mem::size_of::<nvmlMemory_v2_st>(),
        40usize,
        concat!("Size of: ", stringify!(nvmlMemory_v2_st))
    );
    assert_eq!(
        unsafe { ::std::ptr::addr_of!((*ptr).version) as usize - ptr as usize },
        0usize,
        concat!("Offset of field: ", stringify!(nvmlMemory_v2_st), "::", stringify!(version))
    );
    assert_eq!(
        unsafe { ::std::ptr::addr_of!((*ptr).total) as usize - ptr as usize },
        8usize,
        concat!("Offset of field: ", stringify!(nvmlMemory_v2_st), "::", stringify!(total))
    );
}
)";
  const std::optional<Layout> layout = layout_from_assertions(source, "nvmlMemory_v2_st");
  ASSERT_TRUE(layout.has_value());
  EXPECT_EQ(layout->size, 40U);
  ASSERT_EQ(layout->fields.size(), 2U);
  EXPECT_EQ(layout->fields[0], (std::pair<std::string, size_t>{"version", 0}));
  EXPECT_EQ(layout->fields[1], (std::pair<std::string, size_t>{"total", 8}));
}

TEST_F(NvmlBindingsTest, StructLayoutsMatchNvidiaHeader) {
  for (const auto& [name, ours] : our_layouts()) {
    SCOPED_TRACE(name);
    const std::optional<Layout> declared = layout_from_struct(*bindings_, name);
    ASSERT_TRUE(declared.has_value()) << "struct not found or has unknown field types";
    EXPECT_EQ(declared->size, ours.size);
    EXPECT_EQ(declared->fields, ours.fields);
    if (const std::optional<Layout> asserted = layout_from_assertions(*bindings_, name)) {
      EXPECT_EQ(asserted->size, ours.size);
      EXPECT_EQ(asserted->fields, ours.fields);
    }
  }
}

TEST_F(NvmlBindingsTest, FunctionSignaturesMatchNvidiaHeader) {
  for (const auto& [name, parameters] : expected_signatures()) {
    SCOPED_TRACE(name);
    const auto declared = function_parameters(*bindings_, name);
    ASSERT_TRUE(declared.has_value()) << "function not declared";
    EXPECT_EQ(*declared, parameters);
  }
  // nvmlProcessInfo_t, taken by the _v3 calls, is the 24-byte v2 layout.
  EXPECT_EQ(layout_from_struct(*bindings_, "nvmlProcessInfo_st")->fields,
            layout_from_struct(*bindings_, "nvmlProcessInfo_v2_st")->fields);
}

TEST_F(NvmlBindingsTest, ReturnCodesMatchNvidiaHeader) {
  const std::map<std::string, long long> codes = constants(*bindings_, "nvmlReturn_enum_NVML_");
  ASSERT_GT(codes.size(), 20U);
  for (const auto& [name, value] : codes) {
    SCOPED_TRACE(name);
    const ReturnCodeInfo* ours = find_return_code(static_cast<int>(value));
    ASSERT_NE(ours, nullptr);
    const std::string identifier = name.rfind("ERROR_", 0) == 0 ? name.substr(6) : name;
    EXPECT_EQ(identifier, ours->identifier);
  }
}

TEST_F(NvmlBindingsTest, ConstantsMatchNvidiaHeader) {
  const auto sensors = constants(*bindings_, "nvmlTemperatureSensors_enum_");
  ASSERT_EQ(sensors.count("NVML_TEMPERATURE_GPU"), 1U);
  EXPECT_EQ(sensors.at("NVML_TEMPERATURE_GPU"), NVML_TEMPERATURE_GPU);

  const auto nvml = constants(*bindings_, "NVML_");
  ASSERT_EQ(nvml.count("VALUE_NOT_AVAILABLE"), 1U);
  EXPECT_EQ(static_cast<unsigned long long>(nvml.at("VALUE_NOT_AVAILABLE")),
            NVML_VALUE_NOT_AVAILABLE);
  EXPECT_EQ(nvml.at("DEVICE_NAME_BUFFER_SIZE"),
            static_cast<long long>(NVML_DEVICE_NAME_BUFFER_SIZE));
  EXPECT_EQ(nvml.at("DEVICE_NAME_V2_BUFFER_SIZE"),
            static_cast<long long>(NVML_DEVICE_NAME_V2_BUFFER_SIZE));
  EXPECT_EQ(nvml.at("DEVICE_UUID_BUFFER_SIZE"),
            static_cast<long long>(NVML_DEVICE_UUID_BUFFER_SIZE));
  EXPECT_EQ(nvml.at("DEVICE_UUID_V2_BUFFER_SIZE"),
            static_cast<long long>(NVML_DEVICE_UUID_V2_BUFFER_SIZE));
  EXPECT_EQ(nvml.at("SYSTEM_DRIVER_VERSION_BUFFER_SIZE"),
            static_cast<long long>(NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE));
}

}  // namespace
}  // namespace memscope::nvml
