#include "net/http_client.hpp"

#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>

#include "net/text.hpp"

namespace memscope::net {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;

// A header line's value: without surrounding blanks and a stray carriage return.
std::string_view trim_value(std::string_view text) {
  while (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return trim(text);
}

ParsedResponse parse_error(std::string message) {
  ParsedResponse parsed;
  parsed.state = ParsedResponse::State::kError;
  parsed.error = std::move(message);
  return parsed;
}

std::string format_seconds(double seconds) { return fmt::format("{:g} s", seconds); }

}  // namespace

ParsedResponse parse_response(std::string_view bytes, bool eof, size_t max_bytes) {
  const size_t header_end = bytes.find("\r\n\r\n");
  if (header_end == std::string_view::npos) {
    if (bytes.size() > kMaxHeaderBytes) return parse_error("answer headers too large");
    if (eof) {
      return parse_error(bytes.empty() ? "connection closed without an answer"
                                       : "connection closed in the middle of the answer");
    }
    return {};
  }
  const std::string_view head = bytes.substr(0, header_end);
  const size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      !std::all_of(status_line.begin() + 9, status_line.begin() + 12,
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return parse_error("not an HTTP/1.x answer");
  }
  ParsedResponse parsed;
  parsed.status = std::stoi(std::string(status_line.substr(9, 3)));
  bool keep_alive = status_line[7] == '1';
  bool has_length = false;
  uint64_t length = 0;
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return parse_error("malformed answer header");
    const std::string name = lower(trim_value(line.substr(0, colon)));
    const std::string_view value = trim_value(line.substr(colon + 1));
    if (name == "content-length") {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return parse_error("malformed Content-Length in the answer");
      }
      length = std::stoull(std::string(value));
      has_length = true;
    } else if (name == "transfer-encoding" && lower(value) != "identity") {
      return parse_error("chunked answers are not supported");
    } else if (name == "connection" && lower(value).find("close") != std::string::npos) {
      keep_alive = false;
    }
  }
  const size_t body_start = header_end + 4;
  if (has_length) {
    if (body_start + length > max_bytes) {
      return parse_error(fmt::format("answer of {} bytes exceeds the limit of {} bytes",
                                     body_start + length, max_bytes));
    }
    if (bytes.size() - body_start < length) {
      if (eof) return parse_error("connection closed in the middle of the answer");
      return {};
    }
    parsed.body = bytes.substr(body_start, static_cast<size_t>(length));
  } else {
    if (bytes.size() > max_bytes) {
      return parse_error(fmt::format("answer exceeds the limit of {} bytes", max_bytes));
    }
    if (!eof) return {};
    parsed.body = bytes.substr(body_start);
    keep_alive = false;
  }
  parsed.keep_alive = keep_alive;
  parsed.state = ParsedResponse::State::kComplete;
  return parsed;
}

struct HttpClient::Exchange {
  Id id = 0;
  ClientRequest request;
  std::string key;  // host:port
  int fd = -1;
  bool connecting = false;
  bool reused = false;  // on a kept-alive connection: retried once if the peer had closed it
  bool retried = false;
  std::string out;
  size_t out_offset = 0;
  std::string in;
  double started = 0;
  double connect_deadline = 0;
  double deadline = 0;

  Exchange() = default;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;
  ~Exchange() {
    if (fd >= 0) close(fd);
  }
};

HttpClient::HttpClient(ClientOptions options) : options_(options) {}

HttpClient::~HttpClient() {
  for (const auto& [key, fd] : idle_) close(fd);
}

size_t HttpClient::idle_connections() const { return idle_.size(); }

void HttpClient::drop_idle(const std::string& host, uint16_t port) {
  const std::string key = fmt::format("{}:{}", host, port);
  for (auto it = idle_.find(key); it != idle_.end() && it->first == key;) {
    close(it->second);
    it = idle_.erase(it);
  }
}

HttpClient::Id HttpClient::submit(ClientRequest request) {
  auto exchange = std::make_unique<Exchange>();
  exchange->id = next_id_++;
  exchange->key = fmt::format("{}:{}", request.host, request.port);
  exchange->started = monotonic_seconds();
  exchange->deadline = exchange->started + options_.timeout_seconds;
  std::string& out = exchange->out;
  out = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: memscope\r\nAccept: */*\r\n",
                    request.method, request.path,
                    request.host.find(':') != std::string::npos
                        ? fmt::format("[{}]:{}", request.host, request.port)
                        : exchange->key);
  if (!options_.keep_alive) out += "Connection: close\r\n";
  if (!request.bearer_token.empty()) {
    out += fmt::format("Authorization: Bearer {}\r\n", request.bearer_token);
  }
  if (!request.body.empty() || request.method == "POST") {
    out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", request.content_type,
                       request.body.size());
  }
  out += "\r\n";
  out += request.body;
  exchange->request = std::move(request);
  const Id id = exchange->id;
  queued_.push_back(std::move(exchange));
  return id;
}

int HttpClient::take_idle(const std::string& key) {
  for (auto it = idle_.find(key); it != idle_.end() && it->first == key;) {
    const int fd = it->second;
    it = idle_.erase(it);
    char byte = 0;
    const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return fd;  // open and quiet
    close(fd);  // closed by the peer (0), or it sent something unasked: not reusable
  }
  return -1;
}

void HttpClient::finish(Exchange& exchange, ClientResponse response) {
  finished_.emplace_back(exchange.id, std::move(response));
}

void HttpClient::start(std::unique_ptr<Exchange> exchange, double now) {
  Exchange& ex = *exchange;
  ex.in.clear();
  ex.out_offset = 0;
  ex.connect_deadline = now + options_.connect_timeout_seconds;
  if (options_.keep_alive && !ex.retried) {
    ex.fd = take_idle(ex.key);
    ex.reused = ex.fd >= 0;
  }
  if (ex.fd < 0) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    const std::string port = std::to_string(ex.request.port);
    const int rc = getaddrinfo(ex.request.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0 || list == nullptr) {
      finish(ex,
             {0, {}, fmt::format("cannot resolve '{}': {}", ex.request.host, gai_strerror(rc))});
      if (list != nullptr) freeaddrinfo(list);
      return;
    }
    ex.fd = socket(list->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int connected = ex.fd < 0 ? -1 : connect(ex.fd, list->ai_addr, list->ai_addrlen);
    const int error = errno;
    freeaddrinfo(list);
    if (ex.fd < 0 || (connected != 0 && error != EINPROGRESS)) {
      finish(ex, {0, {}, fmt::format("cannot connect: {}", std::strerror(error))});
      return;
    }
    ex.connecting = connected != 0;
    ex.reused = false;
  }
  active_.push_back(std::move(exchange));
}

bool HttpClient::progress(Exchange& ex, short events, double now) {
  if (ex.connecting) {
    if ((events & (POLLOUT | POLLERR | POLLHUP)) == 0) return true;
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(ex.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      finish(ex, {0, {}, fmt::format("cannot connect: {}", std::strerror(error))});
      return false;
    }
    ex.connecting = false;
  }
  while (ex.out_offset < ex.out.size()) {
    const ssize_t n =
        send(ex.fd, ex.out.data() + ex.out_offset, ex.out.size() - ex.out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      ex.out_offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (ex.reused) return false;  // the caller retries on a fresh connection
    finish(ex, {0, {}, fmt::format("cannot send: {}", std::strerror(errno))});
    return false;
  }
  const ReadEnd read = read_available(ex.fd, ex.in, options_.max_response_bytes + kMaxHeaderBytes);
  if (read.error != 0) {
    if (ex.reused && ex.in.empty()) return false;
    finish(ex, {0, {}, fmt::format("cannot read the answer: {}", std::strerror(read.error))});
    return false;
  }
  const bool eof = read.eof;
  if (eof && ex.in.empty() && ex.reused) return false;
  ParsedResponse parsed = parse_response(ex.in, eof, options_.max_response_bytes);
  if (parsed.state == ParsedResponse::State::kIncomplete) return true;
  if (parsed.state == ParsedResponse::State::kError) {
    finish(ex, {parsed.status, {}, parsed.error});
    return false;
  }
  if (parsed.keep_alive && options_.keep_alive && !eof && idle_.size() < options_.max_idle) {
    idle_.emplace(ex.key, ex.fd);
    ex.fd = -1;
  }
  (void)now;
  finish(ex, {parsed.status, std::move(parsed.body), {}});
  return false;
}

void HttpClient::run_once(double timeout_seconds) {
  double now = monotonic_seconds();
  while (!queued_.empty() && active_.size() < options_.max_connections) {
    std::unique_ptr<Exchange> next = std::move(queued_.front());
    queued_.erase(queued_.begin());
    if (now >= next->deadline) {
      finish(*next, {0,
                     {},
                     fmt::format("timed out after {} (queued)",
                                 format_seconds(options_.timeout_seconds))});
      continue;
    }
    start(std::move(next), now);
  }
  double wait = std::max(0.0, timeout_seconds);
  std::vector<pollfd> fds;
  fds.reserve(active_.size());
  for (const auto& ex : active_) {
    const bool sending = ex->connecting || ex->out_offset < ex->out.size();
    fds.push_back({ex->fd, static_cast<short>(sending ? POLLOUT : POLLIN), 0});
    wait =
        std::min(wait, std::max(0.0, (ex->connecting ? std::min(ex->connect_deadline, ex->deadline)
                                                     : ex->deadline) -
                                         now));
  }
  if (fds.empty()) return;
  const int ready =
      poll(fds.data(), fds.size(), static_cast<int>(std::ceil(std::min(wait, 86400.0) * 1000.0)));
  now = monotonic_seconds();
  std::vector<std::unique_ptr<Exchange>> still;
  std::vector<std::unique_ptr<Exchange>> retry;
  still.reserve(active_.size());
  for (size_t i = 0; i < active_.size(); ++i) {
    std::unique_ptr<Exchange>& ex = active_[i];
    const short events = ready > 0 ? fds[i].revents : 0;
    const size_t finished_before = finished_.size();
    bool keep = true;
    if ((events & POLLNVAL) != 0) {
      finish(*ex, {0, {}, "connection lost"});
      keep = false;
    } else if (events != 0) {
      keep = progress(*ex, events, now);
    }
    if (!keep) {
      if (finished_.size() == finished_before) {  // a reused connection the peer had closed
        close(ex->fd);
        ex->fd = -1;
        ex->retried = true;
        retry.push_back(std::move(ex));
      }
      continue;
    }
    if (ex->connecting && now >= ex->connect_deadline) {
      finish(*ex, {0,
                   {},
                   fmt::format("cannot connect: timed out after {}",
                               format_seconds(options_.connect_timeout_seconds))});
    } else if (now >= ex->deadline) {
      finish(*ex,
             {0, {}, fmt::format("timed out after {}", format_seconds(options_.timeout_seconds))});
    } else {
      still.push_back(std::move(ex));
    }
  }
  active_ = std::move(still);
  for (auto& ex : retry) start(std::move(ex), now);
}

std::vector<std::pair<HttpClient::Id, ClientResponse>> HttpClient::take_finished() {
  std::vector<std::pair<Id, ClientResponse>> out;
  out.swap(finished_);
  return out;
}

std::vector<ClientResponse> fetch_all(const std::vector<ClientRequest>& requests,
                                      const ClientOptions& options) {
  HttpClient client(options);
  std::map<HttpClient::Id, size_t> index;
  for (size_t i = 0; i < requests.size(); ++i) index[client.submit(requests[i])] = i;
  std::vector<ClientResponse> responses(requests.size());
  while (client.in_flight() > 0) {
    client.run_once(0.5);
    for (auto& [id, response] : client.take_finished()) responses[index[id]] = std::move(response);
  }
  return responses;
}

}  // namespace memscope::net
