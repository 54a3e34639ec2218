#include "collect/symbolize.hpp"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <link.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.hpp"

// A function with a name to find: not inlined, called through a volatile pointer so that the
// compiler keeps it as it is (no clone with a constant argument).
namespace probe {
constexpr uint32_t kDeepFunctionLine = __LINE__ + 1;
__attribute__((noinline)) int deep_function(int depth) {
  volatile int sum = depth;
  for (int i = 0; i < depth; ++i) sum = sum + i * 3;
  return sum;
}
}  // namespace probe

namespace memscope::alloc {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

int (*volatile probe_pointer)(int) = &probe::deep_function;

uint64_t probe_return_address() {
  EXPECT_EQ(probe_pointer(3), 12);
  // A return address lands after a call; the first instruction + 1 is inside the function.
  return reinterpret_cast<uintptr_t>(&probe::deep_function) + 1;
}

std::string self_path() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// The modules of this process, as the tracker records them.
std::vector<Module> loaded_modules() {
  std::vector<Module> modules;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        Module module;
        module.path = info->dlpi_name != nullptr && info->dlpi_name[0] != '\0' ? info->dlpi_name
                                                                               : self_path();
        module.base = info->dlpi_addr;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& header = info->dlpi_phdr[i];
          if (header.p_type == PT_LOAD) {
            module.ranges.emplace_back(info->dlpi_addr + header.p_vaddr, header.p_memsz);
          }
        }
        static_cast<std::vector<Module>*>(data)->push_back(module);
        return 0;
      },
      &modules);
  return modules;
}

Module main_program() {
  for (const Module& module : loaded_modules()) {
    if (module.path == self_path()) return module;
  }
  ADD_FAILURE() << "no module for " << self_path();
  return {};
}

void expect_probe_frame(const Frame& frame, uint64_t ip) {
  EXPECT_EQ(frame.ip, ip);
  EXPECT_EQ(frame.function, "probe::deep_function(int)");
  // Release builds have no -g: file and line only where there is line info.
  if (!frame.file.empty()) {
    EXPECT_THAT(frame.file, EndsWith("symbolize_test.cpp"));
    EXPECT_GE(frame.line, probe::kDeepFunctionLine);
    EXPECT_LE(frame.line, probe::kDeepFunctionLine + 4);
  } else {
    EXPECT_EQ(frame.line, 0u);
  }
}

TEST(Symbolizer, FunctionOfTheTestProgram) {
  const Module self = main_program();
  Symbolizer symbolizer(loaded_modules());
  const uint64_t ip = probe_return_address();
  const Frame& frame = symbolizer.resolve(ip);
  expect_probe_frame(frame, ip);
  EXPECT_EQ(frame.module, self.path);
  EXPECT_EQ(frame.module_offset, ip - self.base);
  EXPECT_FALSE(frame.python_interpreter);
}

TEST(Symbolizer, FunctionOfLibc) {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr);
  void* strlen_address = dlsym(libc, "strlen");
  dlclose(libc);
  ASSERT_NE(strlen_address, nullptr);
  Symbolizer symbolizer(loaded_modules());
  const uint64_t ip = reinterpret_cast<uintptr_t>(strlen_address) + 1;
  const Frame& frame = symbolizer.resolve(ip);
  EXPECT_THAT(frame.function, HasSubstr("strlen"));  // the IFUNC's pick, e.g. __strlen_avx2
  EXPECT_EQ(std::filesystem::path(frame.module).filename(), "libc.so.6");
  EXPECT_FALSE(frame.python_interpreter);
}

TEST(Symbolizer, VersionedSymbolIsNamedWithoutItsVersion) {
  // libc's .symtab/.dynsym name it "__libc_start_main@@GLIBC_2.34".
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr);
  void* address = dlsym(libc, "__libc_start_main");
  dlclose(libc);
  ASSERT_NE(address, nullptr);
  Symbolizer symbolizer(loaded_modules());
  const Frame& frame = symbolizer.resolve(reinterpret_cast<uintptr_t>(address) + 1);
  EXPECT_EQ(frame.function, "__libc_start_main");
}

TEST(Symbolizer, AddressOutsideEveryModuleHasOnlyTheIp) {
  Symbolizer symbolizer(loaded_modules());
  const Frame& frame = symbolizer.resolve(0x10);
  EXPECT_EQ(frame.ip, 0x10u);
  EXPECT_EQ(frame.function, "");
  EXPECT_EQ(frame.file, "");
  EXPECT_EQ(frame.line, 0u);
  EXPECT_EQ(frame.module, "");
  EXPECT_EQ(frame.module_offset, 0u);
  EXPECT_FALSE(frame.python_interpreter);
}

TEST(Symbolizer, ResolvesEachIpOnce) {
  Symbolizer symbolizer(loaded_modules());
  const uint64_t ip = probe_return_address();
  const Frame* first = &symbolizer.resolve(ip);
  symbolizer.resolve(0x10);
  symbolizer.resolve(ip + 1);
  EXPECT_EQ(&symbolizer.resolve(ip), first);
}

TEST(Symbolizer, LaterModuleCoveringAnAddressWins) {
  const uint64_t ip = probe_return_address();
  const Module self = main_program();
  // A file that cannot be read: frames get its path and offset only.
  const Module unreadable{"/nonexistent/libcover.so", ip - 0x100, {{ip - 0x10, 0x20}}};

  std::vector<Module> later_unreadable = loaded_modules();
  later_unreadable.push_back(unreadable);
  Symbolizer covered(later_unreadable);
  const Frame& inside = covered.resolve(ip);
  EXPECT_EQ(inside.module, "/nonexistent/libcover.so");
  EXPECT_EQ(inside.module_offset, 0x100u);
  EXPECT_EQ(inside.function, "");
  EXPECT_EQ(inside.file, "");
  // Beyond the later module's range the program is still there.
  const Frame& outside = covered.resolve(ip + 0x20);
  EXPECT_EQ(outside.module, self.path);

  std::vector<Module> later_self = {unreadable};
  for (const Module& module : loaded_modules()) later_self.push_back(module);
  Symbolizer uncovered(later_self);
  const Frame& frame = uncovered.resolve(ip);
  expect_probe_frame(frame, ip);
  EXPECT_EQ(frame.module, self.path);
}

TEST(Symbolizer, ModuleSentTwiceStillResolves) {
  std::vector<Module> modules = loaded_modules();
  modules.push_back(main_program());  // as after a dlopen: everything is re-sent
  Symbolizer symbolizer(modules);
  const uint64_t ip = probe_return_address();
  expect_probe_frame(symbolizer.resolve(ip), ip);
}

TEST(Symbolizer, ModuleWithoutRangesIsFoundThroughItsFile) {
  Module self = main_program();
  self.ranges.clear();
  Symbolizer symbolizer({self});
  const uint64_t ip = probe_return_address();
  const Frame& frame = symbolizer.resolve(ip);
  expect_probe_frame(frame, ip);
  EXPECT_EQ(frame.module, self.path);
  EXPECT_EQ(frame.module_offset, ip - self.base);
}

TEST(Symbolizer, FlagsThePythonInterpreter) {
  testing::TempDir dir;
  const std::string python = dir.file("python3.11");
  std::filesystem::create_symlink(self_path(), python);
  Module interpreter = main_program();
  interpreter.path = python;
  Symbolizer symbolizer({interpreter});
  const uint64_t ip = probe_return_address();
  const Frame& frame = symbolizer.resolve(ip);
  expect_probe_frame(frame, ip);
  EXPECT_EQ(frame.module, python);
  EXPECT_TRUE(frame.python_interpreter);

  const std::vector<std::pair<std::string, bool>> names = {
      {"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", true},
      {"/opt/conda/bin/python3", true},
      {"/usr/bin/python2.7", false},
      {"/opt/mypython3", false},
      {"/usr/lib/python3.11/lib-dynload/_ssl.so", false},
  };
  std::vector<Module> modules;
  for (size_t i = 0; i < names.size(); ++i) {
    const uint64_t base = 0x100000 * (i + 1);
    modules.push_back(Module{names[i].first, base, {{base, 0x1000}}});
  }
  Symbolizer flags(modules);
  for (size_t i = 0; i < names.size(); ++i) {
    const Frame& named = flags.resolve(0x100000 * (i + 1) + 0x10);
    EXPECT_EQ(named.module, names[i].first);
    EXPECT_EQ(named.module_offset, 0x10u);
    EXPECT_EQ(named.python_interpreter, names[i].second) << names[i].first;
  }
}

}  // namespace
}  // namespace memscope::alloc
