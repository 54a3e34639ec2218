#include "net/http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <exception>

#include "net/text.hpp"

namespace memscope::net {
namespace {

struct AddrInfoList {
  addrinfo* head = nullptr;
  AddrInfoList() = default;
  AddrInfoList(const AddrInfoList&) = delete;
  AddrInfoList& operator=(const AddrInfoList&) = delete;
  ~AddrInfoList() {
    if (head != nullptr) freeaddrinfo(head);
  }
};

bool is_loopback(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::string format_endpoint(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    return fmt::format("[{}]:{}", text, ntohs(v6->sin6_port));
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
  inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
  return fmt::format("{}:{}", text, ntohs(v4->sin_port));
}

bool has_bearer_token(const HttpRequest& request, const std::string& token) {
  const std::string_view value = request.header("authorization");
  const size_t space = value.find(' ');
  std::string scheme(value.substr(0, space));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view given = space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  const bool match = equal_constant_time(given, token);
  return scheme == "bearer" && match;
}

// Reads and drops what the client still sent (bounded), so closing does not reset the
// connection before it has read our last answer (a close with unread input sends RST).
void discard_input(int fd) {
  char buffer[4096];
  for (int i = 0; i < 64; ++i) {
    if (recv(fd, buffer, sizeof buffer, MSG_DONTWAIT) <= 0) return;
  }
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress address;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(fmt::format("'{}' is not ADDR:PORT (IPv6: [ADDR]:PORT)", text));
    }
    address.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return make_error(fmt::format("'{}' is not ADDR:PORT (IPv6: [ADDR]:PORT)", text));
    }
    address.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (address.host.empty()) {
    return make_error(fmt::format("'{}' names no address (e.g. 127.0.0.1:9400)", text));
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error(fmt::format("'{}': the port must be a number 0..65535", text));
  }
  const unsigned long port = std::stoul(std::string(port_text));
  if (port > 65535) return make_error(fmt::format("'{}': the port must be 0..65535", text));
  address.port = static_cast<uint16_t>(port);
  return address;
}

bool is_loopback_host(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  AddrInfoList list;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &list.head) != 0 || list.head == nullptr) {
    return false;
  }
  for (const addrinfo* entry = list.head; entry != nullptr; entry = entry->ai_next) {
    if (!is_loopback(entry->ai_addr)) return false;
  }
  return true;
}

bool equal_constant_time(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() == expected.size() ? 0U : 1U;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char guess = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(guess ^ expected[i]);
  }
  return diff == 0;
}

struct HttpServer::Connection {
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_offset = 0;
  double deadline = 0;     // a complete request, or the answer fully written, by then
  bool close_after_write = false;
  uint64_t answered = 0;   // requests answered on this connection
  bool closing = false;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (fd >= 0) close(fd);
  }
  bool writing() const { return out_offset < out.size(); }
};

HttpServer::HttpServer(const ServerOptions& options) : options_(options) {}

HttpServer::~HttpServer() {
  connections_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ServerOptions& options) {
  auto address = parse_listen_address(options.listen);
  if (!address) return address.error();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  AddrInfoList list;
  const std::string port = std::to_string(address->port);
  if (const int rc = getaddrinfo(address->host.c_str(), port.c_str(), &hints, &list.head);
      rc != 0 || list.head == nullptr) {
    return make_error(fmt::format("cannot resolve '{}': {}", options.listen, gai_strerror(rc)));
  }
  std::unique_ptr<HttpServer> server(new HttpServer(options));
  const addrinfo* entry = list.head;
  const int fd = socket(entry->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return make_error(fmt::format("cannot listen on '{}': {}", options.listen,
                                  std::strerror(errno)));
  }
  server->listen_fd_ = fd;
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, entry->ai_addr, entry->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    return make_error(fmt::format("cannot listen on '{}': {}", options.listen,
                                  std::strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    return make_error(fmt::format("cannot listen on '{}': {}", options.listen,
                                  std::strerror(errno)));
  }
  server->port_ = ntohs(bound.ss_family == AF_INET6
                            ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                            : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  server->endpoint_ = format_endpoint(bound);
  return server;
}

void HttpServer::handle(const std::string& path, HttpHandler handler, Access access,
                        Methods methods) {
  routes_[path] = Route{std::move(handler), access, methods};
}

void HttpServer::accept_all(double now) {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors: the listening socket stays readable, so poll would return at once
      // and spin; it is left out of the poll for a moment while the rest wait in the backlog.
      if (errno == EMFILE || errno == ENFILE) accept_paused_until_ = now + kAcceptPauseSeconds;
      return;
    }
    if (!make_room()) {
      close(fd);
      ++stats_.connections_refused;
      continue;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    connection->deadline = now + options_.request_timeout_seconds;
    connections_.push_back(std::move(connection));
    ++stats_.connections_accepted;
  }
}

// At the connection limit, the connection that has waited longest without an answer being
// written (an idle keep-alive one, or a client that has not finished its request) makes room
// for the newcomer: clients that open connections and never finish them cannot lock everyone
// else out, they only push each other out. False when every slot is busy writing an answer.
bool HttpServer::make_room() {
  size_t open = 0;
  Connection* oldest = nullptr;
  for (const auto& connection : connections_) {
    if (connection->closing) continue;
    ++open;
    if (connection->writing()) continue;
    if (oldest == nullptr || connection->deadline < oldest->deadline) oldest = connection.get();
  }
  if (open < options_.max_connections) return true;
  if (oldest == nullptr) return false;
  oldest->closing = true;  // closed and removed at the end of this round
  ++stats_.connections_evicted;
  return true;
}

HttpResponse HttpServer::dispatch(const HttpRequest& request) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (!read && request.method != "POST") {
    return {405, "text/plain; charset=utf-8", "only GET, HEAD and POST are served\n",
            {{"Allow", "GET, HEAD, POST"}}};
  }
  const auto route = routes_.find(request.path);
  const bool open = route != routes_.end() && route->second.access == Access::kOpen;
  if (!open && !options_.bearer_token.empty() &&
      !has_bearer_token(request, options_.bearer_token)) {
    ++stats_.unauthorized;
    return {401, "text/plain; charset=utf-8", "unauthorized\n",
            {{"WWW-Authenticate", "Bearer"}}};
  }
  if (route == routes_.end()) return {404, "text/plain; charset=utf-8", "not found\n", {}};
  if (route->second.methods == Methods::kPost && request.method != "POST") {
    return {405, "text/plain; charset=utf-8", "only POST is served here\n", {{"Allow", "POST"}}};
  }
  if (route->second.methods == Methods::kGetHead && !read) {
    return {405, "text/plain; charset=utf-8", "only GET and HEAD are served here\n",
            {{"Allow", "GET, HEAD"}}};
  }
  try {
    return route->second.handler(request);
  } catch (const std::exception& e) {
    return {500, "text/plain; charset=utf-8", fmt::format("internal error: {}\n", e.what()), {}};
  }
}

void HttpServer::queue(Connection& connection, const HttpResponse& response, bool head,
                       bool keep_alive, double now) {
  std::string& out = connection.out;
  out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                    "Cache-Control: no-store\r\nConnection: {}\r\n",
                    response.status, reason_phrase(response.status), response.content_type,
                    response.body.size(), keep_alive ? "keep-alive" : "close");
  for (const auto& [name, value] : response.headers) out += fmt::format("{}: {}\r\n", name, value);
  out += "\r\n";
  if (!head) out += response.body;
  connection.out_offset = 0;
  connection.close_after_write = !keep_alive;
  connection.deadline = now + options_.request_timeout_seconds;
  ++connection.answered;
  ++stats_.requests;
}

// Answers the next complete request in the buffer, if any (one at a time: the next waits until
// this answer is written, so a client that pipelines without reading cannot grow `out`).
void HttpServer::serve_buffered(Connection& connection, double now) {
  if (connection.writing() || connection.close_after_write || connection.in.empty()) return;
  ParseResult parsed = parse_request(connection.in, options_.limits);
  if (parsed.state == ParseState::kIncomplete) return;
  if (parsed.state == ParseState::kError) {
    connection.in.clear();
    queue(connection, {parsed.error_status, "text/plain; charset=utf-8", parsed.error + "\n", {}},
          false, false, now);
    return;
  }
  connection.in.erase(0, parsed.consumed);
  const HttpResponse response = dispatch(parsed.request);
  queue(connection, response, parsed.request.method == "HEAD", parsed.request.keep_alive, now);
}

bool HttpServer::on_readable(Connection& connection, double now) {
  // Never buffer more than one bounded request (plus a read's worth) ahead.
  const ReadEnd read = read_available(
      connection.fd, connection.in,
      options_.limits.max_header_bytes + options_.limits.max_body_bytes);
  if (read.error != 0) return false;
  const bool eof = read.eof;
  serve_buffered(connection, now);
  if (eof) {
    if (!connection.writing()) return false;
    connection.close_after_write = true;
  }
  return !connection.writing() || on_writable(connection, now);
}

bool HttpServer::on_writable(Connection& connection, double now) {
  while (connection.writing()) {
    const ssize_t n = send(connection.fd, connection.out.data() + connection.out_offset,
                           connection.out.size() - connection.out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      connection.out_offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  if (connection.close_after_write) {
    discard_input(connection.fd);
    return false;
  }
  connection.out.clear();
  connection.out_offset = 0;
  connection.deadline = now + options_.request_timeout_seconds;
  serve_buffered(connection, now);  // a pipelined request already received
  return !connection.writing() || on_writable(connection, now);
}

void HttpServer::run_once(double timeout_seconds) {
  double now = monotonic_seconds();
  double wait = std::max(0.0, timeout_seconds);
  for (const auto& connection : connections_) {
    wait = std::min(wait, std::max(0.0, connection->deadline - now));
  }
  std::vector<pollfd> fds;
  fds.reserve(connections_.size() + 1);
  const bool accepting = now >= accept_paused_until_;
  if (!accepting) wait = std::min(wait, accept_paused_until_ - now);
  fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});  // a negative fd is not polled
  for (const auto& connection : connections_) {
    fds.push_back({connection->fd,
                   static_cast<short>(connection->writing() ? POLLOUT : POLLIN), 0});
  }
  const int timeout_ms = static_cast<int>(std::ceil(std::min(wait, 86400.0) * 1000.0));
  const int ready = poll(fds.data(), fds.size(), timeout_ms);
  now = monotonic_seconds();
  if (ready > 0) {
    // Connections accepted now are after the polled ones; they are looked at next time.
    const size_t polled = connections_.size();
    for (size_t i = 0; i < polled; ++i) {
      Connection& connection = *connections_[i];
      const short events = fds[i + 1].revents;
      bool keep = true;
      if ((events & POLLNVAL) != 0) {
        keep = false;
      } else if ((events & POLLOUT) != 0) {
        keep = on_writable(connection, now);
      } else if ((events & (POLLIN | POLLHUP | POLLERR)) != 0) {
        keep = on_readable(connection, now);
      }
      connection.closing = !keep;
    }
    if ((fds[0].revents & POLLIN) != 0) accept_all(now);
  }
  for (const auto& connection : connections_) {
    if (connection->closing || now < connection->deadline) continue;
    connection->closing = true;
    // An idle keep-alive connection is closed without a word; a client that began a request
    // (or never sent one) and did not finish it gets 408; one not reading its answer is dropped.
    if (connection->writing() || (connection->answered > 0 && connection->in.empty())) {
      if (connection->writing()) ++stats_.timeouts;
      continue;
    }
    ++stats_.timeouts;
    queue(*connection, {408, "text/plain; charset=utf-8", "request timeout\n", {}}, false, false,
          now);
    (void)send(connection->fd, connection->out.data(), connection->out.size(), MSG_NOSIGNAL);
    discard_input(connection->fd);
  }
  connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                    [](const auto& connection) { return connection->closing; }),
                     connections_.end());
}

void HttpServer::serve_until(const std::atomic<bool>& stop) {
  while (!stop.load()) run_once(0.1);
}

}  // namespace memscope::net
