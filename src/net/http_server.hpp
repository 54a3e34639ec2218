// A small HTTP/1.1 server for the agent's endpoints: one thread, non-blocking sockets and poll,
// driven by its caller (run_once between samples), so serving never blocks sampling and a
// scrape only ever reads state the caller has already computed.
//
// Bounded on every side: request line + headers (431), body (413), concurrent connections
// (past the limit the connection waiting longest without an answer is closed to make room, or
// the newcomer when every slot is busy answering), and time: a client that has not sent a complete
// request within request_timeout_seconds gets 408 and is closed (an idle keep-alive connection
// is closed without an answer); one that does not read its answer within the same time is
// dropped. GET and HEAD, and POST on the paths registered for it (405 otherwise, with Allow);
// unknown paths 404. A POST body is bounded like any other (413 past limits.max_body_bytes).
//
// Access: with a bearer token configured, every path except those registered as open needs
// `Authorization: Bearer <token>` (compared in constant time); otherwise 401 with
// `WWW-Authenticate: Bearer` and a body that says only that. The token is checked before the
// path is looked up, so an unauthenticated client cannot even learn which paths exist.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "net/http_request.hpp"

namespace memscope::net {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// An address to listen on: "127.0.0.1:9400", "[::1]:9400", "0.0.0.0:9400", "localhost:9400".
struct ListenAddress {
  std::string host;  // as given, without brackets
  uint16_t port = 0;
};
// The one-line error names the text and what is wrong with it.
Result<ListenAddress> parse_listen_address(std::string_view text);
// Whether every address the host resolves to is a loopback one (127.0.0.0/8, ::1,
// ::ffff:127.x). A name that does not resolve is not loopback.
bool is_loopback_host(const std::string& host);
// Constant-time comparison (in the length of `expected`): a token check that does not leak how
// much of a guess was right through its timing.
bool equal_constant_time(std::string_view given, std::string_view expected);

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  std::string bearer_token;  // empty: no token needed anywhere
  HttpLimits limits;
  size_t max_connections = 64;
  double request_timeout_seconds = 5;
};

class HttpServer {
 public:
  // Binds and listens (SO_REUSEADDR); the error names the address.
  static Result<std::unique_ptr<HttpServer>> start(const ServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  enum class Access { kToken, kOpen };
  enum class Methods { kGetHead, kPost };
  // Registers the handler of an exact path. kOpen: served without the token. kPost: the path
  // takes POST only (its handler reads request.body); kGetHead: GET and HEAD only.
  void handle(const std::string& path, HttpHandler handler, Access access = Access::kToken,
              Methods methods = Methods::kGetHead);

  // Waits up to timeout_seconds for clients, serves what is ready, drops what timed out.
  void run_once(double timeout_seconds);
  // run_once until `stop` is set (checked at least every 100 ms).
  void serve_until(const std::atomic<bool>& stop);

  uint16_t port() const { return port_; }
  // The bound address as "127.0.0.1:9400" or "[::1]:9400" (the real port when 0 was asked).
  const std::string& endpoint() const { return endpoint_; }

  struct Stats {
    uint64_t connections_accepted = 0;
    uint64_t connections_refused = 0;  // over max_connections, every slot busy answering
    uint64_t connections_evicted = 0;  // closed to make room (the longest waiting)
    uint64_t requests = 0;             // answered, errors included
    uint64_t unauthorized = 0;         // 401
    uint64_t timeouts = 0;             // 408 or dropped while writing
  };
  const Stats& stats() const { return stats_; }
  size_t open_connections() const { return connections_.size(); }

 private:
  struct Connection;
  explicit HttpServer(const ServerOptions& options);
  void accept_all(double now);
  bool make_room();
  // Reads what is there and answers complete requests; false: close the connection.
  bool on_readable(Connection& connection, double now);
  bool on_writable(Connection& connection, double now);
  void serve_buffered(Connection& connection, double now);
  HttpResponse dispatch(const HttpRequest& request);
  void queue(Connection& connection, const HttpResponse& response, bool head, bool keep_alive,
             double now);

  ServerOptions options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::string endpoint_;
  struct Route {
    HttpHandler handler;
    Access access = Access::kToken;
    Methods methods = Methods::kGetHead;
  };
  std::map<std::string, Route, std::less<>> routes_;
  static constexpr double kAcceptPauseSeconds = 0.1;
  double accept_paused_until_ = 0;  // after accept failed for want of descriptors
  std::vector<std::unique_ptr<Connection>> connections_;
  Stats stats_;
};

}  // namespace memscope::net
