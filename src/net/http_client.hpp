// A small HTTP/1.1 client for the distributed master: many requests at once on non-blocking
// sockets driven by poll, like the server, so one slow or dead worker never delays the others
// nor the master's own serving. Bounded: connect timeout, whole-exchange timeout, answer size.
// Connections are kept alive per host:port and reused (a master pulling 1,000 workers every
// second would otherwise open 1,000 connections a second); a request on a reused connection
// that the peer had closed meanwhile is retried once on a fresh one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memscope::net {

struct ClientRequest {
  std::string host;  // name or address, IPv6 without brackets
  uint16_t port = 0;
  std::string method = "GET";
  std::string path = "/";
  std::string body;  // sent with Content-Length when not empty (or when method is POST)
  std::string content_type = "application/json";
  std::string bearer_token;  // empty: no Authorization header
};

struct ClientResponse {
  int status = 0;  // 0: no answer; `error` says why
  std::string body;
  std::string error;  // one line: "connection refused", "timed out after 2 s", ...
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

struct ClientOptions {
  double connect_timeout_seconds = 2;
  double timeout_seconds = 5;           // from submit to the whole answer
  size_t max_response_bytes = 4 << 20;  // headers + body; larger answers fail
  size_t max_connections = 512;         // in flight at once; the rest wait their turn
  size_t max_idle = 4096;               // kept-alive connections kept at most (then closed)
  bool keep_alive = true;
};

// What parse_response makes of the bytes received so far.
struct ParsedResponse {
  enum class State { kIncomplete, kComplete, kError } state = State::kIncomplete;
  int status = 0;
  std::string body;
  bool keep_alive = false;  // the connection may carry another request
  std::string error;        // kError
};
// `eof`: the peer closed, so an answer without Content-Length ends here. Pure; tested alone.
ParsedResponse parse_response(std::string_view bytes, bool eof, size_t max_bytes);

class HttpClient {
 public:
  using Id = uint64_t;
  explicit HttpClient(ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Queues a request; it starts on the next run_once.
  Id submit(ClientRequest request);
  // Starts what is queued, waits up to timeout_seconds for I/O, progresses every exchange and
  // finishes those that completed, failed or timed out.
  void run_once(double timeout_seconds);
  // The finished exchanges since the last call, in no particular order.
  std::vector<std::pair<Id, ClientResponse>> take_finished();
  size_t in_flight() const { return queued_.size() + active_.size(); }
  size_t idle_connections() const;
  // Closes the kept-alive connections to host:port (a peer that went away: its socket would
  // otherwise stay open, in CLOSE_WAIT, until that address is asked again).
  void drop_idle(const std::string& host, uint16_t port);

 private:
  struct Exchange;
  void start(std::unique_ptr<Exchange> exchange, double now);
  void finish(Exchange& exchange, ClientResponse response);
  bool progress(Exchange& exchange, short events, double now);  // false: finished
  int take_idle(const std::string& key);

  ClientOptions options_;
  Id next_id_ = 1;
  std::vector<std::unique_ptr<Exchange>> queued_;
  std::vector<std::unique_ptr<Exchange>> active_;
  std::multimap<std::string, int> idle_;  // host:port -> connected socket
  std::vector<std::pair<Id, ClientResponse>> finished_;
};

// Sends all requests at once and waits for every answer (each bounded by the timeouts).
std::vector<ClientResponse> fetch_all(const std::vector<ClientRequest>& requests,
                                      const ClientOptions& options = {});

}  // namespace memscope::net
