#include "packaging/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

namespace strata::packaging {
namespace {

// Enough of a non-2xx body to quote S3/GCS XML error codes and messages.
constexpr std::size_t kMaxErrorBody = 16 * 1024;

void EnsureCurlInitialized() {
  // curl_global_init is not thread-safe in every libcurl build; a function
  // static makes it run exactly once.
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)init;
}

struct TransferState {
  CURL* curl = nullptr;
  const HttpBodyCallback* on_body = nullptr;
  long status = 0;
  std::string reason;
  std::optional<std::chrono::seconds> retry_after;
  std::string error_body;
  bool aborted = false;
};

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view TrimLine(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// Called once per header line, for every response (redirects, 100 Continue):
// a status line starts a new response, so the state is reset there.
std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    state->status = 0;
    state->reason.clear();
    state->retry_after.reset();
    state->error_body.clear();
    // "HTTP/1.1 404 Not Found"; HTTP/2 has no reason phrase.
    auto space = line.find(' ');
    if (space != std::string_view::npos) {
      std::string_view rest = line.substr(space + 1);
      std::from_chars(rest.data(), rest.data() + rest.size(), state->status);
      auto reason_start = rest.find(' ');
      if (reason_start != std::string_view::npos) {
        state->reason = std::string(TrimLine(rest.substr(reason_start + 1)));
      }
    }
  } else if (StartsWithIgnoreCase(line, "retry-after:")) {
    // Only the delay-seconds form; an HTTP date falls back to our backoff.
    std::string_view value = TrimLine(line.substr(12));
    long seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && end == value.data() + value.size() && seconds >= 0) {
      state->retry_after = std::chrono::seconds(seconds);
    }
  }
  return size * count;
}

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  std::size_t bytes = size * count;
  if (state->status < 200 || state->status >= 300) {
    // Error bodies never reach the caller's file.
    std::size_t room = kMaxErrorBody - std::min(kMaxErrorBody, state->error_body.size());
    state->error_body.append(data, std::min(room, bytes));
    return bytes;
  }
  curl_off_t length = -1;
  curl_easy_getinfo(state->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  std::uint64_t total = length > 0 ? static_cast<std::uint64_t>(length) : 0;
  if (!(*state->on_body)(std::string_view(data, bytes), total)) {
    state->aborted = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return bytes;
}

bool IsTransientCurlError(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view HttpReasonPhrase(long status) {
  switch (status) {
    case 200:
      return "OK";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

HttpGetResponse HttpGet(const HttpGetRequest& request, const HttpBodyCallback& on_body) {
  EnsureCurlInitialized();
  HttpGetResponse response;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    response.transport_error = "curl_easy_init failed";
    return response;
  }
  curl_slist* raw_headers = nullptr;
  for (const std::string& header : request.headers) {
    raw_headers = curl_slist_append(raw_headers, header.c_str());
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(raw_headers,
                                                                      curl_slist_free_all);

  TransferState state;
  state.curl = curl.get();
  state.on_body = &on_body;
  char error_buffer[CURL_ERROR_SIZE] = {};

  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, "strata/0.1");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, request.max_redirects);
  // A redirect must not be able to turn a download into a local file read.
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // S3 keys may contain "/../" or "//"; they must reach the server (and match
  // the signature) verbatim.
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, request.low_speed_limit);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.low_speed_time.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.total_timeout.count()));
  // Signals do not mix with threads; libcurl then ignores SIGPIPE itself.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &state);

  CURLcode code = curl_easy_perform(h);
  response.reason = state.reason;
  response.error_body = std::move(state.error_body);
  response.retry_after = state.retry_after;
  if (state.aborted) {
    response.outcome = HttpGetResponse::Outcome::kAborted;
    return response;
  }
  if (code != CURLE_OK) {
    response.outcome = HttpGetResponse::Outcome::kTransportError;
    response.transport_error = error_buffer[0] ? error_buffer : curl_easy_strerror(code);
    response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    response.transient = IsTransientCurlError(code);
    return response;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  if (response.reason.empty()) response.reason = std::string(HttpReasonPhrase(response.status));
  if (response.status >= 200 && response.status < 300) {
    response.outcome = HttpGetResponse::Outcome::kOk;
  } else {
    response.outcome = HttpGetResponse::Outcome::kHttpError;
    response.transient = response.status >= 500 || response.status == 408 || response.status == 429;
  }
  return response;
}

}  // namespace strata::packaging
