// BufferPool against plain in-memory storage (std::unordered_map of vectors) on buffers a
// training job keeps (issue 8): compression ratio, put and get throughput per codec, and the cost
// of spilling when the memory budget holds a quarter of the data.
//
// Data sets, deterministic (splitmix64):
//   cartpole  replay chunks of a simulated cart-pole (the classic control equations, random
//             actions, resets on failure): 512 steps x (4 observation floats, action, reward,
//             done) as float32, 14 KiB per buffer.
//   sensors   a 64-channel sensor array, correlated random walks (a shared drift plus each
//             channel's own), sampled to 12-bit precision, as float32: 256 steps, 64 KiB.
//   tokens    token id arrays: Zipf(1.1) ids over a 32,000 vocabulary as int32, 2048 tokens, 8 KiB.
//
// usage: buffer_pool_bench [--mib N] [--rounds R] [--spill-dir DIR]
//   (defaults: 32 MiB of each data set, 3 rounds (medians), spill dir $TMPDIR or /tmp)
#include <fmt/core.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "memscope/buffer_pool.hpp"

namespace {

using memscope::BufferPool;
using memscope::BufferPoolOptions;
using memscope::Compression;
using memscope::Status;
using Bytes = std::vector<uint8_t>;

class Rng {  // splitmix64
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double normal() {  // Box-Muller
    const double u = std::max(uniform(), 1e-300);
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * uniform());
  }

 private:
  uint64_t state_;
};

template <class T>
Bytes to_bytes(const std::vector<T>& values) {
  Bytes out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// Cart-pole (Barto, Sutton & Anderson 1983, as in Gym's CartPole-v1), random actions.
class CartPole {
 public:
  explicit CartPole(uint64_t seed) : rng_(seed) { reset(); }
  Bytes chunk(int steps) {
    std::vector<float> out;
    out.reserve(static_cast<size_t>(steps) * 7);
    for (int i = 0; i < steps; ++i) {
      const int action = static_cast<int>(rng_.next() & 1);
      const double force = action == 1 ? 10.0 : -10.0;
      const double cos_t = std::cos(theta_);
      const double sin_t = std::sin(theta_);
      const double temp = (force + 0.05 * theta_dot_ * theta_dot_ * sin_t) / 1.1;
      const double theta_acc = (9.8 * sin_t - cos_t * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos_t * cos_t / 1.1));
      const double x_acc = temp - 0.05 * theta_acc * cos_t / 1.1;
      x_ += 0.02 * x_dot_;
      x_dot_ += 0.02 * x_acc;
      theta_ += 0.02 * theta_dot_;
      theta_dot_ += 0.02 * theta_acc;
      const bool done = std::abs(x_) > 2.4 || std::abs(theta_) > 0.2095;
      for (double v : {x_, x_dot_, theta_, theta_dot_}) out.push_back(static_cast<float>(v));
      out.push_back(static_cast<float>(action));
      out.push_back(1.0F);
      out.push_back(done ? 1.0F : 0.0F);
      if (done) reset();
    }
    return to_bytes(out);
  }

 private:
  void reset() {
    x_ = 0.1 * (rng_.uniform() - 0.5);
    x_dot_ = 0.1 * (rng_.uniform() - 0.5);
    theta_ = 0.1 * (rng_.uniform() - 0.5);
    theta_dot_ = 0.1 * (rng_.uniform() - 0.5);
  }
  Rng rng_;
  double x_ = 0, x_dot_ = 0, theta_ = 0, theta_dot_ = 0;
};

Bytes sensor_chunk(Rng& rng, std::vector<double>& level, int steps) {
  std::vector<float> out;
  out.reserve(static_cast<size_t>(steps) * level.size());
  for (int i = 0; i < steps; ++i) {
    const double drift = 0.01 * rng.normal();
    for (double& v : level) {
      v += drift + 0.002 * rng.normal();
      out.push_back(static_cast<float>(std::round(v * 4096.0) / 4096.0));  // a 12-bit ADC
    }
  }
  return to_bytes(out);
}

// Zipf(s) over [0, n) by inverting the cumulative weights.
class Zipf {
 public:
  Zipf(size_t n, double s) : cumulative_(n) {
    double sum = 0;
    for (size_t k = 0; k < n; ++k) cumulative_[k] = sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
    for (double& c : cumulative_) c /= sum;
  }
  int32_t draw(Rng& rng) const {
    const auto it = std::lower_bound(cumulative_.begin(), cumulative_.end(), rng.uniform());
    return static_cast<int32_t>(std::min<ptrdiff_t>(it - cumulative_.begin(),
                                                    static_cast<ptrdiff_t>(cumulative_.size()) - 1));
  }

 private:
  std::vector<double> cumulative_;
};

struct DataSet {
  std::string name;
  std::vector<Bytes> buffers;
  uint64_t bytes = 0;
};

DataSet make_data(const std::string& name, uint64_t total) {
  DataSet data{name, {}, 0};
  Rng rng(42);
  CartPole pole(7);
  std::vector<double> level(64);
  for (double& v : level) v = rng.normal();
  const Zipf zipf(32000, 1.1);
  while (data.bytes < total) {
    Bytes buffer;
    if (name == "cartpole") {
      buffer = pole.chunk(512);
    } else if (name == "sensors") {
      buffer = sensor_chunk(rng, level, 256);
    } else {
      std::vector<int32_t> ids(2048);
      for (int32_t& id : ids) id = zipf.draw(rng);
      buffer = to_bytes(ids);
    }
    data.bytes += buffer.size();
    data.buffers.push_back(std::move(buffer));
  }
  return data;
}

// CPU seconds of this thread (user + system, the spill's file I/O included): the machine these
// numbers come from is shared, and wall time there measures the neighbours too.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double wall_seconds_total = 0;
double cpu_seconds_total = 0;

double seconds_of(const std::function<void()>& run) {
  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  run();
  const double cpu = thread_cpu_seconds() - cpu_start;
  wall_seconds_total += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  cpu_seconds_total += cpu;
  return cpu;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct Row {
  std::string store;
  double put_s = 0;
  double get_s = 0;
  double ratio = 1;
  uint64_t in_memory = 0;
  uint64_t on_disk = 0;
  uint64_t spills = 0;
  uint64_t promotions = 0;
  uint64_t evictions = 0;
};

// A random permutation of the keys: gets in an order unrelated to the puts.
std::vector<size_t> shuffled(size_t n) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  Rng rng(99);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.next() % i]);
  return order;
}

Row run_plain(const DataSet& data, int rounds) {
  std::vector<double> puts, gets;
  const std::vector<size_t> order = shuffled(data.buffers.size());
  uint64_t checksum = 0;
  for (int r = 0; r < rounds; ++r) {
    std::unordered_map<std::string, Bytes> store;
    puts.push_back(seconds_of([&] {
      for (size_t i = 0; i < data.buffers.size(); ++i) store[std::to_string(i)] = data.buffers[i];
    }));
    gets.push_back(seconds_of([&] {
      for (size_t i : order) {
        const auto it = store.find(std::to_string(i));
        const Bytes copy = it->second;  // what get() hands out: a copy
        checksum += copy[copy.size() / 2];
      }
    }));
  }
  if (checksum == 1) fmt::print(stderr, " ");  // keeps the copies
  return {"unordered_map (plain)", median(puts), median(gets), 1.0, data.bytes, 0, 0, 0, 0};
}

Row run_pool(const DataSet& data, const std::string& label, BufferPoolOptions options, int rounds) {
  std::vector<double> puts, gets;
  const std::vector<size_t> order = shuffled(data.buffers.size());
  Row row;
  row.store = label;
  for (int r = 0; r < rounds; ++r) {
    auto created = BufferPool::create(options);
    if (!created) {
      fmt::print(stderr, "buffer_pool_bench: {}\n", created.message());
      std::exit(1);
    }
    BufferPool& pool = **created;
    puts.push_back(seconds_of([&] {
      for (size_t i = 0; i < data.buffers.size(); ++i) {
        if (Status s = pool.put(std::to_string(i), data.buffers[i]); !s) {
          fmt::print(stderr, "buffer_pool_bench: {}\n", s.message());
          std::exit(1);
        }
      }
    }));
    const memscope::BufferPoolStats after_put = pool.stats();
    uint64_t misses = 0;
    gets.push_back(seconds_of([&] {
      for (size_t i : order) {
        const auto got = pool.get(std::to_string(i));
        if (!got) ++misses;
      }
    }));
    const memscope::BufferPoolStats stats = pool.stats();
    row.ratio = after_put.compression_ratio;
    row.in_memory = after_put.bytes_in_memory;
    row.on_disk = after_put.bytes_on_disk;
    row.spills = stats.spills;
    row.promotions = stats.promotions;
    row.evictions = stats.evictions;
    if (misses != stats.evictions) {
      fmt::print(stderr, "buffer_pool_bench: {} misses but {} evictions\n", misses, stats.evictions);
    }
  }
  row.put_s = median(puts);
  row.get_s = median(gets);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mib = 32;
  int rounds = 3;
  const char* tmp = std::getenv("TMPDIR");
  std::string spill_dir = tmp != nullptr ? tmp : "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--mib") {
      mib = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (flag == "--rounds") {
      rounds = std::max(1, std::atoi(argv[i + 1]));
    } else if (flag == "--spill-dir") {
      spill_dir = argv[i + 1];
    } else {
      fmt::print(stderr, "usage: buffer_pool_bench [--mib N] [--rounds R] [--spill-dir DIR]\n");
      return 2;
    }
  }
  fmt::print("BufferPool against std::unordered_map<std::string, std::vector<uint8_t>>, {} MiB per data set,\n"
             "single thread, medians of {} rounds; put = store every buffer, get = read every buffer back\n"
             "once in a shuffled order (a copy, as get() returns). MB/s are raw bytes (1 MB = 10^6 B) per\n"
             "second of the thread's CPU time (user + system). \"vs plain\": plain's time / this one's.\n\n",
             mib, rounds);
  fmt::print("| data | store | ratio | put MB/s | get MB/s | put vs plain | get vs plain | in memory MiB | on disk MiB | spills | promotions | evictions |\n");
  fmt::print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const std::string name : {"cartpole", "sensors", "tokens"}) {
    const DataSet data = make_data(name, mib << 20);
    const double mb = static_cast<double>(data.bytes) / 1e6;
    const std::string label = fmt::format("{} ({} x {} KiB)", name, data.buffers.size(),
                                          data.buffers.front().size() / 1024);
    const Row plain = run_plain(data, rounds);
    std::vector<Row> rows{plain};
    const auto pool_options = [&](Compression c, int level) {
      BufferPoolOptions o;
      o.memory_budget_bytes = 4 * data.bytes;  // everything fits: the codec's cost alone
      o.compression = c;
      o.compression_level = level;
      return o;
    };
    rows.push_back(run_pool(data, "pool, none", pool_options(Compression::kNone, 0), rounds));
    rows.push_back(run_pool(data, "pool, lz4", pool_options(Compression::kLz4, 0), rounds));
    rows.push_back(run_pool(data, "pool, lz4 HC 9", pool_options(Compression::kLz4, 9), rounds));
    rows.push_back(run_pool(data, "pool, zstd 1", pool_options(Compression::kZstd, 1), rounds));
    rows.push_back(run_pool(data, "pool, zstd 3", pool_options(Compression::kZstd, 3), rounds));
    const uint64_t zstd_bytes = rows.back().in_memory;
    BufferPoolOptions spill = pool_options(Compression::kZstd, 3);
    spill.memory_budget_bytes = zstd_bytes / 4;
    spill.spill_dir = spill_dir;
    rows.push_back(run_pool(data, "pool, zstd 3, budget 1/4, spill", spill, rounds));
    for (const Row& row : rows) {
      fmt::print("| {} | {} | {:.2f} | {:.0f} | {:.0f} | {:.2f} | {:.2f} | {:.1f} | {:.1f} | {} | {} | {} |\n", label,
                 row.store, row.ratio, mb / row.put_s, mb / row.get_s, plain.put_s / row.put_s,
                 plain.get_s / row.get_s, static_cast<double>(row.in_memory) / 1048576.0,
                 static_cast<double>(row.on_disk) / 1048576.0, row.spills, row.promotions, row.evictions);
    }
  }
  fmt::print("\nTimed sections: {:.1f} s of CPU in {:.1f} s of wall time (the rest: waiting for a core or the disk).\n",
             cpu_seconds_total, wall_seconds_total);
  return 0;
}
