// memscope._memscope: the native half of the Python module `memscope` (python/memscope/ holds the
// Pythonic half). Each bind_*.cpp binds one group of the C++ API (include/memscope/).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "common.hpp"

namespace memscope::python {

namespace {

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}
std::vector<BackgroundThreadOwner*>& registry() {
  static std::vector<BackgroundThreadOwner*> owners;
  return owners;
}

}  // namespace

void register_background_thread(BackgroundThreadOwner* owner) {
  std::lock_guard lock(registry_mutex());
  registry().push_back(owner);
}

void unregister_background_thread(BackgroundThreadOwner* owner) {
  std::lock_guard lock(registry_mutex());
  auto& owners = registry();
  owners.erase(std::remove(owners.begin(), owners.end(), owner), owners.end());
}

void stop_all_background_threads() {
  py::gil_scoped_release release;
  // Held while stopping: a destructor on another thread waits (without the GIL) in unregister.
  std::lock_guard lock(registry_mutex());
  for (BackgroundThreadOwner* owner : registry()) owner->stop_thread();
}

}  // namespace memscope::python

PYBIND11_MODULE(_memscope, module) {
  namespace py = pybind11;
  using namespace memscope::python;
  module.doc() = "memscope native bindings (use the `memscope` package, not this module)";
  module.attr("__version__") = MEMSCOPE_PYTHON_VERSION;
  bind_monitors(module);
  bind_training(module);
  bind_analysis(module);
  module.def("_stop_all_background_threads", &stop_all_background_threads,
             "Stops every profiler, detector and monitor thread (run at interpreter exit).");
  py::module_::import("atexit").attr("register")(module.attr("_stop_all_background_threads"));
}
