// Python bindings of the classes with a background thread: OOMDetector, MemoryProfiler,
// MemoryLeakDetector, DistributedMemoryMonitor. Each is held by a wrapper that stops its thread
// with the GIL released (the thread may be waiting for the GIL to call back into Python), and
// every blocking call releases the GIL.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <unistd.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "memscope/distributed_monitor.hpp"
#include "memscope/leak_detector.hpp"
#include "memscope/memory_profiler.hpp"
#include "memscope/oom_detector.hpp"

namespace memscope::python {

namespace {

using release_gil = py::call_guard<py::gil_scoped_release>;

py::object parse_json(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

// Owns a native object with a thread; T has a stop method given as Stop.
// In a child forked from the owner (os.fork, fork-started multiprocessing) the thread does not
// exist: joining its handle would wait forever, so there the object is only let go of.
template <class T, void (T::*Stop)()>
class Owned final : public BackgroundThreadOwner {
 public:
  explicit Owned(std::unique_ptr<T> native) : native_(std::move(native)), owner_pid_(getpid()) {
    register_background_thread(this);
  }
  ~Owned() {
    {
      std::optional<py::gil_scoped_release> release;
      if (PyGILState_Check() != 0) release.emplace();
      unregister_background_thread(this);
      if (getpid() != owner_pid_) {
        static_cast<void>(native_.release());
        return;
      }
      ((*native_).*Stop)();
    }
    native_.reset();  // Python callbacks it holds take the GIL to drop their references
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  void stop_thread() override {
    if (getpid() == owner_pid_) ((*native_).*Stop)();
  }
  T& operator*() { return *native_; }
  T* operator->() { return native_.get(); }

 private:
  std::unique_ptr<T> native_;
  const pid_t owner_pid_;
};

using PyOOMDetector = Owned<OOMDetector, &OOMDetector::stop_monitoring>;
using PyMemoryProfiler = Owned<MemoryProfiler, &MemoryProfiler::stop_monitoring>;
using PyLeakDetector = Owned<MemoryLeakDetector, &MemoryLeakDetector::stop_monitoring>;
using PyDistributedMonitor = Owned<DistributedMemoryMonitor, &DistributedMemoryMonitor::stop>;

std::optional<uint64_t> positive_bytes(const std::optional<int64_t>& bytes, const char* name) {
  if (!bytes) return std::nullopt;
  if (*bytes <= 0) {
    throw py::value_error(std::string(name) + " must be > 0 (got " + std::to_string(*bytes) + ")");
  }
  return static_cast<uint64_t>(*bytes);
}

py::dict prediction_dict(const OomPrediction& p) {
  py::dict out;
  out["device_id"] = p.device_id;
  out["resource"] = p.resource;
  out["risk_level"] = p.risk_level;
  out["confidence"] = p.confidence;
  out["current_usage_percent"] = p.current_usage_percent;
  out["growth_rate_mb_per_sec"] = p.growth_rate_mb_per_sec;
  out["predicted_oom_time_seconds"] = p.predicted_oom_time_seconds;
  out["used_bytes"] = p.used_bytes;
  out["limit_bytes"] = p.limit_bytes;
  out["limit_source"] = p.limit_source;
  out["recommendation"] = p.recommendation;
  return out;
}

// `with X(...) as x:` starts monitoring and stops it at the end of the block.
template <class Class, class Start, class Stop>
void add_context_manager(Class& cls, Start start, Stop stop) {
  cls.def("__enter__", [start](py::object self) {
    start(self);
    return self;
  });
  cls.def("__exit__", [stop](py::object self, const py::args&) {
    stop(self);
    return false;
  });
}

void bind_oom_detector(py::module_& m) {
  py::class_<OomPrediction>(m, "OOMPrediction",
                            "One resource's OOM forecast (the fields of `memscope oom --json`).")
      .def_readonly("device_id", &OomPrediction::device_id)
      .def_readonly("resource", &OomPrediction::resource)
      .def_readonly("risk_level", &OomPrediction::risk_level)
      .def_readonly("confidence", &OomPrediction::confidence)
      .def_readonly("current_usage_percent", &OomPrediction::current_usage_percent)
      .def_readonly("growth_rate_mb_per_sec", &OomPrediction::growth_rate_mb_per_sec)
      .def_readonly("predicted_oom_time_seconds", &OomPrediction::predicted_oom_time_seconds)
      .def_readonly("used_bytes", &OomPrediction::used_bytes)
      .def_readonly("limit_bytes", &OomPrediction::limit_bytes)
      .def_readonly("limit_source", &OomPrediction::limit_source)
      .def_readonly("recommendation", &OomPrediction::recommendation)
      .def("to_dict", &prediction_dict)
      .def("__getitem__",
           [](const OomPrediction& p, const std::string& key) {
             py::dict fields = prediction_dict(p);
             if (!fields.contains(key)) throw py::key_error(key);
             return py::object(fields[key.c_str()]);
           })
      .def("__repr__", [](const OomPrediction& p) {
        return "OOMPrediction(" + py::repr(prediction_dict(p)).cast<std::string>() + ")";
      });

  auto detector_class = py::class_<PyOOMDetector>(m, "OOMDetector")
      .def(py::init([](double interval, double threshold, int pid,
                       std::optional<int64_t> limit_bytes, bool gpus, const std::string& warn_at,
                       const std::string& nvml_library) {
             OOMDetectorOptions options;
             options.interval_seconds = interval;
             options.threshold_percent = threshold;
             options.pid = pid;
             options.limit_bytes = positive_bytes(limit_bytes, "limit_bytes");
             options.gpus = gpus;
             options.nvml_library = nvml_library;
             const std::optional<RiskLevel> level = parse_risk_level_name(warn_at);
             if (!level) {
               throw py::value_error("warn_at must be medium, high or critical (got '" + warn_at +
                                     "')");
             }
             options.warn_at = *level;
             return std::make_unique<PyOOMDetector>(
                 value_or_value_error(OOMDetector::create(options)));
           }),
           py::kw_only(), py::arg("interval") = 1.0, py::arg("threshold") = 85.0,
           py::arg("pid") = 0, py::arg("limit_bytes") = py::none(), py::arg("gpus") = true,
           py::arg("warn_at") = "high", py::arg("nvml_library") = "")
      .def(
          "add_warning_callback",
          [](PyOOMDetector& self, const py::function& callback) {
            SharedCallable shared(callback);
            self->add_warning_callback([shared](int device_id, const OomPrediction& prediction) {
              py::gil_scoped_acquire gil;
              shared.call_with_gil(device_id, py::cast(prediction));
            });
          },
          py::arg("callback"))
      .def("start_monitoring",
           [](PyOOMDetector& self) {
             py::gil_scoped_release release;
             check_runtime(self->start_monitoring());
           })
      .def("stop_monitoring", [](PyOOMDetector& self) { self->stop_monitoring(); }, release_gil())
      .def_property_readonly("monitoring", [](PyOOMDetector& self) { return self->monitoring(); })
      .def("predictions", [](PyOOMDetector& self) { return self->predictions(); }, release_gil())
      .def_property_readonly("samples_taken",
                             [](PyOOMDetector& self) { return self->samples_taken(); })
      .def_property_readonly("callback_errors",
                             [](PyOOMDetector& self) { return self->callback_errors(); });
  add_context_manager(
      detector_class, [](const py::object& self) { self.attr("start_monitoring")(); },
      [](const py::object& self) { self.attr("stop_monitoring")(); });
}

// A hook's answer: a mapping name -> number, or an iterable of (name, number) pairs.
MemoryProfiler::Counters to_counters(const py::handle& answer) {
  MemoryProfiler::Counters counters;
  if (answer.is_none()) return counters;
  py::object pairs = py::isinstance<py::dict>(answer)
                         ? py::object(answer.attr("items")())
                         : py::reinterpret_borrow<py::object>(answer);
  for (const py::handle& pair : pairs) {
    auto item = pair.cast<std::pair<std::string, double>>();
    counters.push_back(std::move(item));
  }
  return counters;
}

void bind_memory_profiler(py::module_& m) {
  py::class_<ProfileDevicePeak>(m, "ProfileDevicePeak")
      .def_readonly("index", &ProfileDevicePeak::index)
      .def_readonly("peak_used_bytes", &ProfileDevicePeak::peak_used_bytes)
      .def_readonly("total_bytes", &ProfileDevicePeak::total_bytes);
  py::class_<ProfileSummary>(m, "ProfileSummary")
      .def_readonly("samples", &ProfileSummary::samples)
      .def_readonly("duration_seconds", &ProfileSummary::duration_seconds)
      .def_readonly("host_peak_used_bytes", &ProfileSummary::host_peak_used_bytes)
      .def_readonly("host_limit_bytes", &ProfileSummary::host_limit_bytes)
      .def_readonly("devices", &ProfileSummary::devices);

  auto profiler_class = py::class_<PyMemoryProfiler>(m, "MemoryProfiler")
      .def(py::init([](double interval, const std::optional<std::vector<int>>& devices, int pid,
                       bool gpus, const std::string& nvml_library) {
             MemoryProfilerOptions options;
             options.sampling_interval_seconds = interval;
             if (devices) options.devices = *devices;
             options.pid = pid;
             options.gpus = gpus;
             options.nvml_library = nvml_library;
             return std::make_unique<PyMemoryProfiler>(
                 value_or_value_error(MemoryProfiler::create(options)));
           }),
           py::kw_only(), py::arg("interval") = 1.0, py::arg("devices") = py::none(),
           py::arg("pid") = 0, py::arg("gpus") = true, py::arg("nvml_library") = "")
      .def("start_monitoring",
           [](PyMemoryProfiler& self) {
             py::gil_scoped_release release;
             check_runtime(self->start_monitoring());
           })
      .def("stop_monitoring", [](PyMemoryProfiler& self) { self->stop_monitoring(); },
           release_gil())
      .def_property_readonly("monitoring",
                             [](PyMemoryProfiler& self) { return self->monitoring(); })
      .def("sample_now", [](PyMemoryProfiler& self) { self->sample_now(); }, release_gil())
      .def(
          "record_counter",
          [](PyMemoryProfiler& self, const std::string& name, double value) {
            Status status;
            {
              py::gil_scoped_release release;
              status = self->record_counter(name, value);
            }
            check_value(status);
          },
          py::arg("name"), py::arg("value"))
      .def(
          "add_sample_hook",
          [](PyMemoryProfiler& self, const py::function& hook) {
            SharedCallable shared(hook);
            self->add_sample_hook([shared]() {
              py::gil_scoped_acquire gil;
              py::object answer = shared.call_with_gil();
              try {
                return to_counters(answer);
              } catch (const py::cast_error& error) {
                throw std::runtime_error(
                    std::string("a sample hook must return {name: number} or (name, number) "
                                "pairs: ") +
                    error.what());
              }
            });
          },
          py::arg("hook"))
      .def_property_readonly("samples_taken",
                             [](PyMemoryProfiler& self) { return self->samples_taken(); })
      .def_property_readonly("hook_errors",
                             [](PyMemoryProfiler& self) { return self->hook_errors(); })
      .def("summary", [](PyMemoryProfiler& self) { return self->summary(); }, release_gil())
      .def("report_json", [](PyMemoryProfiler& self) { return self->report_json(); },
           release_gil())
      .def("report",
           [](PyMemoryProfiler& self) {
             std::string text;
             {
               py::gil_scoped_release release;
               text = self->report_json();
             }
             return parse_json(text);
           })
      .def(
          "generate_report",
          [](PyMemoryProfiler& self, const std::string& path) {
            py::gil_scoped_release release;
            check_runtime(self->generate_report(path));
          },
          py::arg("path"));
  add_context_manager(
      profiler_class, [](const py::object& self) { self.attr("start_monitoring")(); },
      [](const py::object& self) { self.attr("stop_monitoring")(); });
}

void bind_leak_detector(py::module_& m) {
  py::class_<LeakVerdict>(m, "LeakVerdict")
      .def_readonly("pid", &LeakVerdict::pid)
      .def_readonly("name", &LeakVerdict::name)
      .def_readonly("memory", &LeakVerdict::memory)
      .def_readonly("verdict", &LeakVerdict::verdict)
      .def_readonly("reason", &LeakVerdict::reason)
      .def_readonly("growth_mb_per_min", &LeakVerdict::growth_mb_per_min)
      .def_readonly("recent_growth_mb_per_min", &LeakVerdict::recent_growth_mb_per_min)
      .def_readonly("confidence", &LeakVerdict::confidence)
      .def_readonly("first_bytes", &LeakVerdict::first_bytes)
      .def_readonly("current_bytes", &LeakVerdict::current_bytes)
      .def_readonly("peak_bytes", &LeakVerdict::peak_bytes)
      .def_readonly("first_seen_seconds", &LeakVerdict::first_seen_seconds)
      .def_readonly("last_seen_seconds", &LeakVerdict::last_seen_seconds)
      .def("__repr__", [](const LeakVerdict& v) {
        return "LeakVerdict(pid=" + std::to_string(v.pid) + ", memory='" + v.memory +
               "', verdict='" + v.verdict + "')";
      });

  auto leak_class = py::class_<PyLeakDetector>(m, "MemoryLeakDetector")
      .def(py::init([](double interval, double threshold_mb_per_min, double window,
                       double min_span, int pid, bool gpus, const std::string& nvml_library) {
             LeakDetectorOptions options;
             options.interval_seconds = interval;
             options.threshold_mb_per_min = threshold_mb_per_min;
             options.window_seconds = window;
             options.min_span_seconds = min_span;
             options.pid = pid;
             options.gpus = gpus;
             options.nvml_library = nvml_library;
             return std::make_unique<PyLeakDetector>(
                 value_or_value_error(MemoryLeakDetector::create(options)));
           }),
           py::kw_only(), py::arg("interval") = 1.0, py::arg("threshold_mb_per_min") = 1.0,
           py::arg("window") = 600.0, py::arg("min_span") = 20.0, py::arg("pid") = 0,
           py::arg("gpus") = true, py::arg("nvml_library") = "")
      .def("start_monitoring",
           [](PyLeakDetector& self) {
             py::gil_scoped_release release;
             check_runtime(self->start_monitoring());
           })
      .def("stop_monitoring", [](PyLeakDetector& self) { self->stop_monitoring(); },
           release_gil())
      .def_property_readonly("monitoring", [](PyLeakDetector& self) { return self->monitoring(); })
      .def("sample_now", [](PyLeakDetector& self) { self->sample_now(); }, release_gil())
      .def("verdicts", [](PyLeakDetector& self) { return self->verdicts(); }, release_gil())
      .def_property_readonly("leak_suspected",
                             [](PyLeakDetector& self) {
                               py::gil_scoped_release release;
                               return self->leak_suspected();
                             })
      .def_property_readonly("samples_taken",
                             [](PyLeakDetector& self) { return self->samples_taken(); })
      .def("report_json", [](PyLeakDetector& self) { return self->report_json(); }, release_gil())
      .def("report", [](PyLeakDetector& self) {
        std::string text;
        {
          py::gil_scoped_release release;
          text = self->report_json();
        }
        return parse_json(text);
      });
  add_context_manager(
      leak_class, [](const py::object& self) { self.attr("start_monitoring")(); },
      [](const py::object& self) { self.attr("stop_monitoring")(); });
}

void bind_distributed_monitor(py::module_& m) {
  py::class_<NodeMemory>(m, "NodeMemory")
      .def_readonly("endpoint", &NodeMemory::endpoint)
      .def_readonly("hostname", &NodeMemory::hostname)
      .def_readonly("up", &NodeMemory::up)
      .def_readonly("last_error", &NodeMemory::last_error)
      .def_readonly("host_used_bytes", &NodeMemory::host_used_bytes)
      .def_readonly("host_limit_bytes", &NodeMemory::host_limit_bytes)
      .def_readonly("gpu_used_bytes", &NodeMemory::gpu_used_bytes)
      .def_readonly("gpu_limit_bytes", &NodeMemory::gpu_limit_bytes)
      .def_readonly("time_to_oom_seconds", &NodeMemory::time_to_oom_seconds);
  py::class_<RankMemory>(m, "RankMemory")
      .def_readonly("rank", &RankMemory::rank)
      .def_readonly("endpoint", &RankMemory::endpoint)
      .def_readonly("hostname", &RankMemory::hostname)
      .def_readonly("host_bytes", &RankMemory::host_bytes)
      .def_readonly("gpu_bytes", &RankMemory::gpu_bytes)
      .def_readonly("used_bytes", &RankMemory::used_bytes)
      .def_readonly("limit_bytes", &RankMemory::limit_bytes)
      .def_readonly("stale", &RankMemory::stale)
      .def_readonly("growth_bytes_per_second", &RankMemory::growth_bytes_per_second)
      .def_readonly("time_to_oom_seconds", &RankMemory::time_to_oom_seconds);
  py::class_<ClusterSummary>(m, "ClusterSummary")
      .def_readonly("nodes", &ClusterSummary::nodes)
      .def_readonly("ranks", &ClusterSummary::ranks)
      .def_readonly("nodes_up", &ClusterSummary::nodes_up)
      .def_readonly("nodes_stale", &ClusterSummary::nodes_stale)
      .def_readonly("imbalance_max_over_mean", &ClusterSummary::imbalance_max_over_mean)
      .def_readonly("imbalance_coefficient_of_variation",
                    &ClusterSummary::imbalance_coefficient_of_variation)
      .def_readonly("bottleneck_endpoint", &ClusterSummary::bottleneck_endpoint)
      .def_readonly("bottleneck_resource", &ClusterSummary::bottleneck_resource)
      .def_readonly("bottleneck_reason", &ClusterSummary::bottleneck_reason)
      .def_readonly("time_to_oom_seconds", &ClusterSummary::time_to_oom_seconds)
      .def_readonly("divergent_ranks", &ClusterSummary::divergent_ranks)
      .def_readonly("json", &ClusterSummary::json)
      .def("to_dict", [](const ClusterSummary& s) { return parse_json(s.json); });

  auto distributed_class = py::class_<PyDistributedMonitor>(m, "DistributedMemoryMonitor")
      .def(py::init([](const std::vector<std::string>& agents, const std::string& master,
                       const std::string& token, double interval, double timeout,
                       int stale_after_intervals) {
             DistributedMonitorOptions options;
             options.agents = agents;
             options.master = master;
             options.token = token;
             options.interval_seconds = interval;
             options.timeout_seconds = timeout;
             options.stale_after_intervals = stale_after_intervals;
             return std::make_unique<PyDistributedMonitor>(
                 value_or_value_error(DistributedMemoryMonitor::create(options)));
           }),
           py::kw_only(), py::arg("agents") = std::vector<std::string>{},
           py::arg("master") = "", py::arg("token") = "", py::arg("interval") = 5.0,
           py::arg("timeout") = 5.0, py::arg("stale_after_intervals") = 3)
      .def("poll",
           [](PyDistributedMonitor& self) {
             std::optional<Result<ClusterSummary>> summary;
             {
               py::gil_scoped_release release;
               summary.emplace(self->poll());
             }
             if (!*summary) throw std::runtime_error(summary->message());
             return std::move(**summary);
           })
      .def(
          "start",
          [](PyDistributedMonitor& self, const std::optional<py::function>& callback) {
            DistributedMemoryMonitor::Callback native;
            if (callback) {
              SharedCallable shared(*callback);
              native = [shared](const ClusterSummary& summary) {
                py::gil_scoped_acquire gil;
                shared.call_with_gil(py::cast(summary));
              };
            }
            py::gil_scoped_release release;
            check_runtime(self->start(std::move(native)));
          },
          py::arg("callback") = py::none())
      .def("stop", [](PyDistributedMonitor& self) { self->stop(); }, release_gil())
      .def_property_readonly("running", [](PyDistributedMonitor& self) { return self->running(); })
      .def("latest", [](PyDistributedMonitor& self) { return self->latest(); }, release_gil())
      .def_property_readonly("rounds", [](PyDistributedMonitor& self) { return self->rounds(); })
      .def_property_readonly("callback_errors",
                             [](PyDistributedMonitor& self) { return self->callback_errors(); });
  add_context_manager(
      distributed_class, [](const py::object& self) { self.attr("start")(); },
      [](const py::object& self) { self.attr("stop")(); });
}

}  // namespace

void bind_monitors(py::module_& module) {
  bind_oom_detector(module);
  bind_memory_profiler(module);
  bind_leak_detector(module);
  bind_distributed_monitor(module);
}

}  // namespace memscope::python
