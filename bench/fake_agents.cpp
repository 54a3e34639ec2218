// fake_agents: serves N fake memscope agents from one process, each on its own loopback port,
// and registers them with a distributed master, to measure what following 1,000 workers costs
// the master (bench/master_load.sh).
//
//   fake_agents --count N --master-port P [--master-host H] [--duration S]
//               [--silence-after S --silence-count K] [--token T]
//
// Each agent answers GET /api/v1/snapshot with a plausible `memscope-agent-snapshot`: one GPU,
// two ranks, figures that drift slowly (agent 0 leaks a little). After --silence-after seconds
// the last --silence-count agents stop answering (their sockets are closed), so the master's
// staleness handling can be watched. Keep-alive; one epoll loop for all sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "net/http_client.hpp"

namespace {

struct Options {
  int count = 1000;
  std::string master_host = "127.0.0.1";
  int master_port = 0;
  double duration = 60;
  double silence_after = 0;  // 0: never
  int silence_count = 0;
  std::string token;
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string snapshot(int agent, uint16_t port, double t) {
  constexpr uint64_t kGiB = 1ULL << 30;
  const auto drift = static_cast<uint64_t>(std::fabs(std::sin(t / 30.0 + agent)) * 200e6);
  const uint64_t leak = agent == 0 ? static_cast<uint64_t>(t * 2e6) : 0;
  const uint64_t rank_host = 3 * kGiB + drift + leak;
  const uint64_t gpu_used = 40 * kGiB + drift * 10;
  const auto ms = static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  std::string processes;
  for (int local = 0; local < 2; ++local) {
    processes += fmt::format(
        R"({}{{"pid":{},"ppid":1,"comm":"python3","cmdline":"python3 train.py","rank":{},"local_rank":{},"world_size":{},"rss_bytes":{},"pss_bytes":{},"uss_bytes":{},"swap_bytes":0,"gpu_bytes":{}}})",
        local == 0 ? "" : ",", 1000 + local, agent * 2 + local, local, 2000, rank_host + kGiB,
        rank_host, rank_host, gpu_used / 2);
  }
  return fmt::format(
      R"({{"report":"memscope-agent-snapshot","schema_version":1,"hostname":"fake-{}","endpoint":"127.0.0.1:{}","memscope_version":"0.1.0","time":null,"time_unix_ms":{},"started":null,"interval_seconds":1,"samples_taken":{},)"
      R"("host":{{"total_bytes":{},"available_bytes":{},"used_bytes":{},"limit_bytes":{},"limit_source":"MemTotal","swap_total_bytes":0,"swap_used_bytes":0,"cgroup":null,"pressure":null,"oom_kills":0}},)"
      R"("gpus":[{{"index":0,"uuid":"GPU-fake-{}","name":"Fake H100","ok":true,"used_bytes":{},"free_bytes":{},"total_bytes":{},"processes":[{{"pid":1000,"used_bytes":{},"graphics":false}},{{"pid":1001,"used_bytes":{},"graphics":false}}]}}],)"
      R"("processes":[{}],)"
      R"("oom":[{{"resource":"host","kind":"host","level":"low","risk_level":0,"used_bytes":{},"limit_bytes":{},"limit_source":"MemTotal","usage_percent":{:.1f},"growth_bytes_per_second":{},"growing":{},"predicted_oom_seconds":{},"confidence":0.5,"reason":"","recommendation":""}},)"
      R"({{"resource":"gpu0","kind":"gpu","level":"medium","risk_level":1,"used_bytes":{},"limit_bytes":{},"limit_source":"NVML","usage_percent":50,"growth_bytes_per_second":0,"growing":false,"predicted_oom_seconds":null,"confidence":0.5,"reason":"","recommendation":""}}],)"
      R"("leaks":[],"notes":[]}})",
      agent, port, ms, static_cast<int64_t>(t), 512 * kGiB, 400 * kGiB, 112 * kGiB + drift,
      512 * kGiB, agent, gpu_used, 80 * kGiB - gpu_used, 80 * kGiB, gpu_used / 2, gpu_used / 2,
      processes, 112 * kGiB + drift + leak, 512 * kGiB, 22.0, agent == 0 ? 2e6 : 0.0,
      agent == 0 ? "true" : "false", agent == 0 ? fmt::format("{:.0f}", 400e9 / 2e6) : "null",
      gpu_used, 80 * kGiB);
}

struct Socket {
  int agent = -1;
  bool listening = false;
  std::string in;
};

int usage() {
  std::fprintf(stderr,
               "usage: fake_agents --count N --master-port P [--master-host H] [--duration S] "
               "[--silence-after S --silence-count K] [--token T]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--count") {
      options.count = std::atoi(value.c_str());
    } else if (flag == "--master-host") {
      options.master_host = value;
    } else if (flag == "--master-port") {
      options.master_port = std::atoi(value.c_str());
    } else if (flag == "--duration") {
      options.duration = std::atof(value.c_str());
    } else if (flag == "--silence-after") {
      options.silence_after = std::atof(value.c_str());
    } else if (flag == "--silence-count") {
      options.silence_count = std::atoi(value.c_str());
    } else if (flag == "--token") {
      options.token = value;
    } else {
      return usage();
    }
  }
  if (options.count <= 0 || options.master_port <= 0 || argc % 2 == 0) return usage();

  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  std::map<int, Socket> sockets;
  std::vector<int> listeners;
  std::vector<uint16_t> ports;
  for (int agent = 0; agent < options.count; ++agent) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(fd, 64) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      std::fprintf(stderr, "fake_agents: agent %d: %s\n", agent, std::strerror(errno));
      return 1;
    }
    listeners.push_back(fd);
    ports.push_back(ntohs(address.sin_port));
    sockets[fd] = {agent, true, {}};
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
  }
  std::fprintf(stderr, "fake_agents: %d agents on 127.0.0.1:%u..%u\n", options.count, ports.front(),
               ports.back());

  memscope::net::ClientOptions client_options;
  client_options.keep_alive = false;
  memscope::net::HttpClient client(client_options);
  const double start = now_seconds();
  double next_register = 0;
  bool silenced = false;
  uint64_t served = 0;
  std::vector<epoll_event> events(256);
  for (;;) {
    const double t = now_seconds() - start;
    if (t >= options.duration) break;
    if (t >= next_register) {  // like a worker: every two intervals
      for (int agent = 0; agent < options.count; ++agent) {
        if (silenced && agent >= options.count - options.silence_count) continue;
        memscope::net::ClientRequest request;
        request.host = options.master_host;
        request.port = static_cast<uint16_t>(options.master_port);
        request.method = "POST";
        request.path = "/api/v1/register";
        request.bearer_token = options.token;
        request.body = fmt::format(R"({{"endpoint":"127.0.0.1:{}","hostname":"fake-{}","pid":{}}})",
                                   ports[static_cast<size_t>(agent)], agent, 100000 + agent);
        client.submit(std::move(request));
      }
      next_register = t + 2;
    }
    if (!silenced && options.silence_after > 0 && t >= options.silence_after) {
      silenced = true;
      std::vector<int> closing;
      for (const auto& [fd, s] : sockets) {
        if (s.agent >= options.count - options.silence_count) closing.push_back(fd);
      }
      for (int fd : closing) {
        close(fd);  // also leaves the epoll set
        sockets.erase(fd);
      }
      std::fprintf(stderr, "fake_agents: t=%.0fs %d agents stop answering\n", t,
                   options.silence_count);
    }
    client.run_once(0);
    (void)client.take_finished();
    const int ready = epoll_wait(epoll, events.data(), static_cast<int>(events.size()),
                                 client.in_flight() > 0 ? 5 : 50);
    for (int i = 0; i < ready; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      auto it = sockets.find(fd);
      if (it == sockets.end()) continue;
      if (it->second.listening) {
        for (;;) {
          const int connection = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (connection < 0) break;
          sockets[connection] = {it->second.agent, false, {}};
          epoll_event event{};
          event.events = EPOLLIN;
          event.data.fd = connection;
          epoll_ctl(epoll, EPOLL_CTL_ADD, connection, &event);
        }
        continue;
      }
      Socket& s = it->second;
      char buffer[8192];
      bool closed = false;
      for (;;) {
        const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n > 0) {
          s.in.append(buffer, static_cast<size_t>(n));
          continue;
        }
        closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
      }
      size_t end;
      while ((end = s.in.find("\r\n\r\n")) != std::string::npos) {
        s.in.erase(0, end + 4);
        const std::string body =
            snapshot(s.agent, ports[static_cast<size_t>(s.agent)], now_seconds() - start);
        const std::string answer = fmt::format(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            body.size(), body);
        (void)send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);  // fits the socket buffer
        ++served;
      }
      if (closed) {
        close(fd);
        sockets.erase(it);
      }
    }
  }
  std::fprintf(stderr, "fake_agents: served %llu snapshots in %.0f s\n",
               static_cast<unsigned long long>(served), now_seconds() - start);
  return 0;
}
