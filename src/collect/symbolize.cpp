#include "collect/symbolize.hpp"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace memscope::alloc {
namespace {

// Offline: the ELF files are read from disk (separate debug info found by build id or
// .gnu_debuglink), nothing is read from a live process.
char* no_debuginfo_path = nullptr;
const Dwfl_Callbacks kOfflineCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &no_debuginfo_path,
};

bool is_python_interpreter(std::string_view path) {
  const std::string_view name = file_name_of(path);
  return name.starts_with("python3") || name.starts_with("libpython3");
}

// The readable name of a symbol: without its version ("__libc_start_main@@GLIBC_2.34" names
// __libc_start_main), demangled when it is a C++ name.
std::string demangled(const char* symbol) {
  std::string_view name(symbol);
  if (const size_t at = name.find('@'); at != std::string_view::npos && at > 0) {
    name = name.substr(0, at);
  }
  if (!name.starts_with("_Z")) return std::string(name);
  const std::string mangled(name);
  int status = 0;
  char* readable = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  if (status != 0 || readable == nullptr) {
    std::free(readable);  // NOLINT(cppcoreguidelines-no-malloc): __cxa_demangle's contract
    return std::string(name);
  }
  std::string result(readable);
  std::free(readable);  // NOLINT(cppcoreguidelines-no-malloc)
  return result;
}

struct DwflEnd {
  void operator()(Dwfl* dwfl) const { dwfl_end(dwfl); }
};

// Which module covers each address: the modules' PT_LOAD ranges painted in trace order, so
// that a later module covering an address replaces the earlier one there.
class RangeTable {
 public:
  void paint(uint64_t start, uint64_t size, size_t module) {
    if (size == 0) return;
    const uint64_t end = size > std::numeric_limits<uint64_t>::max() - start
                             ? std::numeric_limits<uint64_t>::max()
                             : start + size;
    auto it = spans_.lower_bound(start);
    if (it != spans_.begin()) {  // a span starting before `start` may reach into it
      auto before = std::prev(it);
      if (before->second.end > start) {
        const Span whole = before->second;
        before->second.end = start;
        if (whole.end > end) spans_[end] = whole;
      }
    }
    it = spans_.lower_bound(start);
    while (it != spans_.end() && it->first < end) {
      if (it->second.end > end) {  // keep the part after `end`
        const Span rest = it->second;
        spans_.erase(it);
        spans_[end] = rest;
        break;
      }
      it = spans_.erase(it);
    }
    spans_[start] = Span{end, module};
  }

  // The module covering `address`, or false.
  bool find(uint64_t address, size_t& module) const {
    auto it = spans_.upper_bound(address);
    if (it == spans_.begin()) return false;
    --it;
    if (address >= it->second.end) return false;
    module = it->second.module;
    return true;
  }

 private:
  struct Span {
    uint64_t end = 0;
    size_t module = 0;
  };
  std::map<uint64_t, Span> spans_;  // by start; never overlapping
};

// A module's function symbols sorted by address: libdw's dwfl_module_addrinfo scans the whole
// symbol table on every lookup, which a stripped interpreter with thousands of symbols and tens
// of thousands of distinct return addresses turns into minutes.
class SymbolIndex {
 public:
  explicit SymbolIndex(Dwfl_Module* module) {
    const int count = dwfl_module_getsymtab(module);
    for (int i = 1; i < count; ++i) {
      GElf_Sym symbol;
      GElf_Addr address = 0;
      const char* name = dwfl_module_getsym_info(module, i, &symbol, &address, nullptr, nullptr,
                                                 nullptr);
      if (name == nullptr || name[0] == '\0' || address == 0) continue;
      const int type = GELF_ST_TYPE(symbol.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      const int binding = GELF_ST_BIND(symbol.st_info);
      const int rank = binding == STB_GLOBAL ? 2 : binding == STB_WEAK ? 1 : 0;
      symbols_.push_back(
          {address, address + std::max<GElf_Xword>(symbol.st_size, 1), name, rank});
    }
    // Where aliases start together the global name comes last, so find() meets it first (as
    // libdw prefers it: "__libc_start_main", not its local "__libc_start_main_impl").
    std::sort(symbols_.begin(), symbols_.end(), [](const Entry& a, const Entry& b) {
      return a.start != b.start ? a.start < b.start : a.rank < b.rank;
    });
  }

  // The function whose [start, start + size) holds `address`, or nullptr.
  const char* find(uint64_t address) const {
    auto it = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                               [](uint64_t value, const Entry& e) { return value < e.start; });
    // Aliases and nested symbols: look back over a few that start at or before the address.
    for (int looked = 0; it != symbols_.begin() && looked < 8; ++looked) {
      --it;
      if (address < it->end) return it->name;
    }
    return nullptr;
  }

 private:
  struct Entry {
    uint64_t start;
    uint64_t end;
    const char* name;  // in libdw's copy of the string table: lives as long as the Dwfl
    int rank;          // global 2, weak 1, local 0
  };
  std::vector<Entry> symbols_;
};

}  // namespace

struct Symbolizer::State {
  struct Loaded {
    Module module;
    Dwfl_Module* dwfl_module = nullptr;  // null when the file could not be read
    bool python = false;
  };

  std::unique_ptr<Dwfl, DwflEnd> dwfl;
  std::vector<Loaded> modules;
  RangeTable ranges;
  std::unordered_map<Dwfl_Module*, size_t> by_dwfl_module;  // the latest module with it
  std::unordered_map<uint64_t, Frame> frames;
  std::unordered_map<Dwfl_Module*, SymbolIndex> symbols;  // built on a module's first lookup

  bool module_for(uint64_t address, size_t& index) const;
  Frame symbolize(uint64_t ip);
};

bool Symbolizer::State::module_for(uint64_t address, size_t& index) const {
  if (ranges.find(address, index)) return true;
  // A MODULE without ranges: libdw knows the extent of the files it could read.
  if (!dwfl) return false;
  Dwfl_Module* found = dwfl_addrmodule(dwfl.get(), address);
  if (found == nullptr) return false;
  auto it = by_dwfl_module.find(found);
  if (it == by_dwfl_module.end()) return false;
  index = it->second;
  return true;
}

Frame Symbolizer::State::symbolize(uint64_t ip) {
  Frame frame;
  frame.ip = ip;
  const uint64_t address = ip == 0 ? 0 : ip - 1;  // inside the call instruction
  size_t index = 0;
  if (!module_for(address, index)) return frame;
  const Loaded& loaded = modules[index];
  frame.module = loaded.module.path;
  frame.module_offset = ip - loaded.module.base;
  frame.python_interpreter = loaded.python;
  Dwfl_Module* module = loaded.dwfl_module;
  if (module == nullptr) return frame;

  auto index_of = symbols.find(module);
  if (index_of == symbols.end()) index_of = symbols.emplace(module, SymbolIndex(module)).first;
  if (const char* name = index_of->second.find(address); name != nullptr) {
    frame.function = demangled(name);
  }
  if (Dwfl_Line* line = dwfl_module_getsrc(module, address); line != nullptr) {
    int line_number = 0;
    if (const char* file = dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr);
        file != nullptr) {
      frame.file = file;
      frame.line = line_number > 0 ? static_cast<uint32_t>(line_number) : 0;
    }
  }
  return frame;
}

Symbolizer::Symbolizer(const std::vector<Module>& modules) : state_(std::make_unique<State>()) {
  state_->dwfl.reset(dwfl_begin(&kOfflineCallbacks));
  if (state_->dwfl) dwfl_report_begin(state_->dwfl.get());
  // A module re-sent after dlopen is reported once: libdw takes a second report of the same
  // file at the same place for an overlap and drops the first.
  std::map<std::pair<std::string, uint64_t>, Dwfl_Module*> reported;
  state_->modules.reserve(modules.size());
  for (const Module& module : modules) {
    const size_t index = state_->modules.size();
    State::Loaded loaded{module, nullptr, is_python_interpreter(module.path)};
    if (state_->dwfl && !module.path.empty()) {
      const auto key = std::make_pair(module.path, module.base);
      if (auto it = reported.find(key); it != reported.end()) {
        loaded.dwfl_module = it->second;
      } else {
        // The path doubles as libdw's module name: unique, where basenames need not be.
        // add_p_vaddr: `base` is the load bias (dlpi_addr), as in the trace.
        loaded.dwfl_module = dwfl_report_elf(state_->dwfl.get(), module.path.c_str(),
                                             module.path.c_str(), -1, module.base, true);
        reported.emplace(key, loaded.dwfl_module);
      }
    }
    for (const auto& [start, size] : module.ranges) state_->ranges.paint(start, size, index);
    if (loaded.dwfl_module != nullptr) state_->by_dwfl_module[loaded.dwfl_module] = index;
    state_->modules.push_back(std::move(loaded));
  }
  if (state_->dwfl) dwfl_report_end(state_->dwfl.get(), nullptr, nullptr);
}

Symbolizer::~Symbolizer() = default;

const Frame& Symbolizer::resolve(uint64_t ip) {
  auto it = state_->frames.find(ip);
  if (it == state_->frames.end()) it = state_->frames.emplace(ip, state_->symbolize(ip)).first;
  return it->second;
}

}  // namespace memscope::alloc
