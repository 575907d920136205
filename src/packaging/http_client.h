// One HTTP(S) GET through libcurl, streaming a successful body to a callback.
// Retrying, signing and files are the caller's business (see fetch.h); this
// layer only reports what happened precisely enough to decide on a retry.
//
// Thread-safety: HttpGet may be called concurrently from any number of
// threads (each call uses its own curl handle; global init happens once).
// Callbacks run on the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::packaging {

struct HttpGetRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::chrono::milliseconds connect_timeout{10'000};
  // Abort when fewer than low_speed_limit bytes/s arrive for low_speed_time.
  std::chrono::seconds low_speed_time{30};
  long low_speed_limit = 1;
  std::chrono::milliseconds total_timeout{0};  // 0: no limit
  long max_redirects = 10;
};

struct HttpGetResponse {
  enum class Outcome {
    kOk,              // 2xx; the body went to on_body
    kHttpError,       // the server answered with a non-2xx status
    kTransportError,  // no complete answer: connect, TLS, timeout, cut-off body, ...
    kAborted,         // on_body returned false
  };
  Outcome outcome = Outcome::kTransportError;
  long status = 0;
  std::string reason;      // reason phrase, e.g. "Not Found" (a standard one for HTTP/2)
  std::string error_body;  // first bytes of a non-2xx body (S3 puts its XML error here)
  std::optional<std::chrono::seconds> retry_after;
  std::string transport_error;  // curl's message
  bool timed_out = false;
  bool transient = false;  // worth retrying: transport hiccup, 5xx, 408, 429
};

// body chunk, total size from Content-Length (0 when unknown). Return false to abort.
using HttpBodyCallback = std::function<bool(std::string_view chunk, std::uint64_t total)>;

HttpGetResponse HttpGet(const HttpGetRequest& request, const HttpBodyCallback& on_body);

// "Not Found" for 404, "" for unknown codes.
std::string_view HttpReasonPhrase(long status);

}  // namespace strata::packaging
