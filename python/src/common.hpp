// What every binding shares: turning Result/Status into Python exceptions, Python callables that
// C++ threads may copy and call, and the registry that stops every monitor thread before the
// interpreter finalizes.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>

#include "memscope/result.hpp"

namespace memscope::python {

namespace py = pybind11;

// Errors of create(): the options are wrong (the message names the bad one).
template <class T>
T value_or_value_error(Result<T> result) {
  if (!result) throw py::value_error(result.message());
  return std::move(*result);
}
inline void check_value(const Status& status) {
  if (!status) throw py::value_error(status.message());
}
inline void check_runtime(const Status& status) {
  if (!status) throw std::runtime_error(status.message());
}

// A Python callable that C++ code may copy on any thread without the GIL (the copies share one
// reference) and call from any thread: call() takes the GIL. When the callable raises, the
// exception is reported through sys.unraisablehook (a traceback on stderr by default) and
// rethrown as std::runtime_error, so the C++ monitor counts it and keeps running.
class SharedCallable {
 public:
  explicit SharedCallable(py::object callable)
      : holder_(new py::object(std::move(callable)), [](py::object* object) {
          py::gil_scoped_acquire gil;
          delete object;
        }) {}

  // With the GIL held by the caller.
  template <class... Args>
  py::object call_with_gil(Args&&... args) const {
    try {
      return (*holder_)(std::forward<Args>(args)...);
    } catch (py::error_already_set& error) {
      std::string message = error.what();
      error.discard_as_unraisable(*holder_);
      throw std::runtime_error(message);
    }
  }

 private:
  std::shared_ptr<py::object> holder_;
};

// A native object with a background thread. Registered ones are stopped (GIL released, thread
// joined) by an atexit handler: a thread that wants the GIL while Python finalizes would hang or
// be torn down in the middle of C++ code. Owners register at the end of their constructor and
// unregister, without the GIL, first thing in their destructor.
class BackgroundThreadOwner {
 public:
  virtual void stop_thread() = 0;  // joins the thread; called without the GIL

 protected:
  BackgroundThreadOwner() = default;
  ~BackgroundThreadOwner() = default;
  BackgroundThreadOwner(const BackgroundThreadOwner&) = default;
  BackgroundThreadOwner& operator=(const BackgroundThreadOwner&) = default;
};
void register_background_thread(BackgroundThreadOwner* owner);
void unregister_background_thread(BackgroundThreadOwner* owner);
// Stops every registered owner (GIL released meanwhile); registered with atexit at import.
void stop_all_background_threads();

void bind_monitors(py::module_& module);
void bind_training(py::module_& module);
void bind_analysis(py::module_& module);

}  // namespace memscope::python
