// Python bindings of the training helpers: BatchSizeController (and run_with_oom_retry) and
// BufferPool. The Pythonic layer (memscope/__init__.py) turns out-of-memory exceptions of a step
// into the "out of memory" outcome the C++ retry loop expects.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "common.hpp"
#include "memscope/batch_size_controller.hpp"
#include "memscope/buffer_pool.hpp"

namespace memscope::python {

namespace {

OomRisk risk_from(const std::string& name) {
  const std::optional<OomRisk> risk = parse_oom_risk(name);
  if (!risk) {
    throw py::value_error("risk must be low, medium, high or critical (got '" + name + "')");
  }
  return *risk;
}

// A Python step for the retry loop: step(batch_size) returns None when it worked, or a message
// (str) when it ran out of memory. Exceptions propagate to the caller unchanged.
StepFunction native_step(const py::function& step) {
  return [step](int64_t batch_size) {
    py::object outcome = step(batch_size);
    if (outcome.is_none()) return StepResult::ok();
    return StepResult::out_of_memory(py::str(outcome).cast<std::string>());
  };
}

OomRetryReport report_or_runtime_error(Result<OomRetryReport> report) {
  if (!report) throw std::runtime_error(report.message());
  return *report;
}

void bind_batch_size(py::module_& m) {
  py::class_<BatchRecommendation>(m, "BatchRecommendation")
      .def_readonly("batch_size", &BatchRecommendation::batch_size)
      .def_property_readonly("action",
                             [](const BatchRecommendation& r) { return to_string(r.action); })
      .def_property_readonly("risk", [](const BatchRecommendation& r) { return to_string(r.risk); })
      .def_readonly("reason", &BatchRecommendation::reason)
      .def("__repr__", [](const BatchRecommendation& r) {
        return "BatchRecommendation(batch_size=" + std::to_string(r.batch_size) + ", action='" +
               to_string(r.action) + "', risk='" + to_string(r.risk) + "')";
      });
  py::class_<OomRetryReport>(m, "OomRetryReport")
      .def_readonly("batch_size", &OomRetryReport::batch_size)
      .def_readonly("attempts", &OomRetryReport::attempts)
      .def_readonly("out_of_memory", &OomRetryReport::out_of_memory)
      .def("__repr__", [](const OomRetryReport& r) {
        return "OomRetryReport(batch_size=" + std::to_string(r.batch_size) +
               ", attempts=" + std::to_string(r.attempts) +
               ", out_of_memory=" + std::to_string(r.out_of_memory) + ")";
      });

  py::class_<BatchSizeController>(m, "BatchSizeController")
      .def(py::init([](int64_t initial, int64_t min, int64_t max, double shrink_factor_high,
                       double shrink_factor_critical, double grow_factor, int64_t grow_step,
                       double grow_headroom, int grow_after, int cooldown,
                       double high_usage_fraction, double critical_usage_fraction) {
             BatchSizeControllerOptions options;
             options.initial = initial;
             options.min = min;
             options.max = max;
             options.shrink_factor_high = shrink_factor_high;
             options.shrink_factor_critical = shrink_factor_critical;
             options.grow_factor = grow_factor;
             options.grow_step = grow_step;
             options.grow_headroom = grow_headroom;
             options.grow_after = grow_after;
             options.cooldown = cooldown;
             options.high_usage_fraction = high_usage_fraction;
             options.critical_usage_fraction = critical_usage_fraction;
             return value_or_value_error(BatchSizeController::create(options));
           }),
           py::kw_only(), py::arg("initial") = 32, py::arg("min") = 1, py::arg("max") = 1024,
           py::arg("shrink_factor_high") = 0.5, py::arg("shrink_factor_critical") = 0.25,
           py::arg("grow_factor") = 1.1, py::arg("grow_step") = 1, py::arg("grow_headroom") = 0.25,
           py::arg("grow_after") = 3, py::arg("cooldown") = 5,
           py::arg("high_usage_fraction") = 0.85, py::arg("critical_usage_fraction") = 0.95)
      .def(
          "recommend",
          [](BatchSizeController& self, int64_t used_bytes, int64_t limit_bytes,
             std::optional<double> headroom_fraction, const std::string& risk) {
            if (used_bytes < 0 || limit_bytes < 0) {
              throw py::value_error("used_bytes and limit_bytes must be >= 0");
            }
            if (headroom_fraction && !(*headroom_fraction >= 0 && *headroom_fraction <= 1)) {
              throw py::value_error("headroom_fraction must be in [0, 1]");
            }
            MemoryObservation observation;
            observation.used_bytes = static_cast<uint64_t>(used_bytes);
            observation.limit_bytes = static_cast<uint64_t>(limit_bytes);
            observation.headroom_fraction = headroom_fraction;
            observation.risk = risk_from(risk);
            return self.recommend(observation);
          },
          py::kw_only(), py::arg("used_bytes") = 0, py::arg("limit_bytes") = 0,
          py::arg("headroom_fraction") = py::none(), py::arg("risk") = "low")
      .def("record_out_of_memory", &BatchSizeController::record_out_of_memory)
      .def(
          "_run_step",
          [](BatchSizeController& self, const py::function& step) {
            return report_or_runtime_error(self.run_step(native_step(step)));
          },
          py::arg("step"))
      .def_property_readonly("current", &BatchSizeController::current)
      .def_property_readonly("min", [](const BatchSizeController& c) { return c.options().min; })
      .def_property_readonly("max", [](const BatchSizeController& c) { return c.options().max; })
      .def("reset", &BatchSizeController::reset, py::arg("batch_size"));

  m.def(
      "_run_with_oom_retry",
      [](int64_t batch_size, const py::function& step, int64_t min, double shrink_factor,
         int max_attempts) {
        OomRetryOptions options;
        options.min = min;
        options.shrink_factor = shrink_factor;
        options.max_attempts = max_attempts;
        return report_or_runtime_error(run_with_oom_retry(batch_size, native_step(step), options));
      },
      py::arg("batch_size"), py::arg("step"), py::kw_only(), py::arg("min") = 1,
      py::arg("shrink_factor") = 0.5, py::arg("max_attempts") = 0);
}

// A contiguous read-only view of any bytes-like object (bytes, bytearray, memoryview, numpy).
class BytesView {
 public:
  explicit BytesView(const py::handle& object) {
    if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~BytesView() { PyBuffer_Release(&view_); }
  BytesView(const BytesView&) = delete;
  BytesView& operator=(const BytesView&) = delete;
  std::span<const uint8_t> bytes() const {
    return {static_cast<const uint8_t*>(view_.buf), static_cast<size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
};

py::dict stats_dict(const BufferPoolStats& s) {
  py::dict out;
  out["hits"] = s.hits;
  out["misses"] = s.misses;
  out["hit_rate"] = s.hit_rate;
  out["compression_ratio"] = s.compression_ratio;
  out["buffers"] = s.buffers;
  out["buffers_in_memory"] = s.buffers_in_memory;
  out["buffers_on_disk"] = s.buffers_on_disk;
  out["raw_bytes"] = s.raw_bytes;
  out["bytes_in_memory"] = s.bytes_in_memory;
  out["bytes_on_disk"] = s.bytes_on_disk;
  out["evictions"] = s.evictions;
  out["spills"] = s.spills;
  out["spill_errors"] = s.spill_errors;
  out["promotions"] = s.promotions;
  out["read_errors"] = s.read_errors;
  return out;
}

void put(BufferPool& pool, const std::string& key, const py::handle& data) {
  if (py::isinstance<py::str>(data)) {
    throw py::type_error("BufferPool stores bytes-like objects, not str (encode it first)");
  }
  const BytesView view(data);
  Status status;
  {
    py::gil_scoped_release release;
    status = pool.put(key, view.bytes());
  }
  check_value(status);
}

py::object get(BufferPool& pool, const std::string& key) {
  std::optional<BufferPool::Bytes> bytes;
  {
    py::gil_scoped_release release;
    bytes = pool.get(key);
  }
  if (!bytes) return py::none();
  return py::bytes(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

void bind_buffer_pool(py::module_& m) {
  py::class_<BufferPool>(m, "BufferPool")
      .def(py::init([](int64_t memory_budget_bytes, const std::string& compression,
                       int compression_level, const std::optional<std::string>& spill_dir,
                       int64_t disk_budget_bytes, double frequency_half_life) {
             if (memory_budget_bytes <= 0) {
               throw py::value_error("memory_budget_bytes must be > 0 (got " +
                                     std::to_string(memory_budget_bytes) + ")");
             }
             if (disk_budget_bytes < 0) {
               throw py::value_error("disk_budget_bytes must be >= 0 (got " +
                                     std::to_string(disk_budget_bytes) + ")");
             }
             const std::optional<Compression> codec = parse_compression(compression);
             if (!codec) {
               throw py::value_error("compression must be none, lz4 or zstd (got '" +
                                     compression + "')");
             }
             BufferPoolOptions options;
             options.memory_budget_bytes = static_cast<uint64_t>(memory_budget_bytes);
             options.compression = *codec;
             options.compression_level = compression_level;
             if (spill_dir) options.spill_dir = *spill_dir;
             options.disk_budget_bytes = static_cast<uint64_t>(disk_budget_bytes);
             options.frequency_half_life = frequency_half_life;
             return value_or_value_error(BufferPool::create(options));
           }),
           py::arg("memory_budget_bytes"), py::kw_only(), py::arg("compression") = "lz4",
           py::arg("compression_level") = 0, py::arg("spill_dir") = py::none(),
           py::arg("disk_budget_bytes") = 0, py::arg("frequency_half_life") = 1024.0)
      .def("put", &put, py::arg("key"), py::arg("data"))
      .def("__setitem__", &put)
      .def(
          "get",
          [](BufferPool& pool, const std::string& key, const py::object& fallback) {
            py::object found = get(pool, key);
            return found.is_none() ? fallback : found;
          },
          py::arg("key"), py::arg("default") = py::none())
      .def("__getitem__",
           [](BufferPool& pool, const std::string& key) {
             py::object found = get(pool, key);
             if (found.is_none()) throw py::key_error(key);
             return found;
           })
      .def("__contains__", [](const BufferPool& pool, const std::string& key) {
        return pool.contains(key);
      })
      .def("contains", &BufferPool::contains, py::arg("key"))
      .def("erase", &BufferPool::erase, py::arg("key"), py::call_guard<py::gil_scoped_release>())
      .def("__delitem__",
           [](BufferPool& pool, const std::string& key) {
             if (!pool.erase(key)) throw py::key_error(key);
           })
      .def("clear", &BufferPool::clear, py::call_guard<py::gil_scoped_release>())
      .def("__len__", &BufferPool::size)
      .def("stats", [](const BufferPool& pool) { return stats_dict(pool.stats()); });
}

}  // namespace

void bind_training(py::module_& module) {
  bind_batch_size(module);
  bind_buffer_pool(module);
}

}  // namespace memscope::python
