#include "packaging/fetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "packaging/aws_sigv4.h"
#include "packaging/http_client.h"

namespace strata::packaging {
namespace {

using util::Error;
using util::ErrorKind;
using util::Status;

// SHA-256 of an empty body: what a GET request signs as its payload.
constexpr char kEmptyPayloadSha256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kDefaultGcsEndpoint[] = "https://storage.googleapis.com";

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string ErrnoMessage(int error) {
  return std::strerror(error);
}

// "http://user:secret@host/..." -> "http://***@host/...": URIs end up in logs
// and error messages, passwords must not. (In abfss://container@account the
// "user" part is not a secret.)
std::string RedactUri(std::string_view uri) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return std::string(uri);
  std::string scheme(uri.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return std::string(uri);
  std::size_t authority_start = scheme_end + 3;
  std::size_t authority_end = uri.find_first_of("/?#", authority_start);
  if (authority_end == std::string_view::npos) authority_end = uri.size();
  std::size_t at = uri.rfind('@', authority_end);
  if (at == std::string_view::npos || at < authority_start) return std::string(uri);
  return std::string(uri.substr(0, authority_start)) + "***" + std::string(uri.substr(at));
}

// A temporary file next to the destination, so that the final rename is
// atomic (same filesystem) and readers never see a partial archive. Removed
// on destruction unless committed.
class TempFile {
 public:
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  Status Create(const std::filesystem::path& dest) {
    std::filesystem::path dir = dest.parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return util::IOError("cannot create directory " + dir.string() + ": " + ec.message());
    thread_local std::mt19937_64 random{std::random_device{}()};
    for (int attempt = 0; attempt < 100; ++attempt) {
      char suffix[17];
      std::snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(random()));
      std::filesystem::path candidate = dir / ("." + dest.filename().string() + ".part-" + suffix);
      // 0666 filtered by the umask: the file ends up as a normal download would.
      int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        fd_ = fd;
        path_ = candidate;
        return Status::Ok();
      }
      if (errno != EEXIST) {
        return util::IOError("cannot create a temporary file in " + dir.string() + ": " +
                             ErrnoMessage(errno));
      }
    }
    return util::IOError("cannot create a temporary file in " + dir.string());
  }

  // false with errno set on failure.
  bool Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t written = ::write(fd_, data.data(), data.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(written));
    }
    return true;
  }

  // Drops what an abandoned attempt wrote.
  Status Reset() {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
      return util::IOError("cannot truncate " + path_.string() + ": " + ErrnoMessage(errno));
    }
    return Status::Ok();
  }

  Status Commit(const std::filesystem::path& dest) {
    // fsync first: after a crash the rename must not expose an empty file.
    if (::fsync(fd_) != 0) {
      return util::IOError("cannot write " + path_.string() + ": " + ErrnoMessage(errno));
    }
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      return util::IOError("cannot write " + path_.string() + ": " + ErrnoMessage(errno));
    }
    if (::rename(path_.c_str(), dest.c_str()) != 0) {
      return util::IOError("cannot rename " + path_.string() + " to " + dest.string() + ": " +
                           ErrnoMessage(errno));
    }
    path_.clear();
    return Status::Ok();
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

Error Failure(ErrorKind kind, std::string_view uri, const std::string& reason) {
  return Error{kind, "Failed to download " + RedactUri(uri) + ": " + reason};
}

Status CopyLocalFile(std::string_view uri, const std::filesystem::path& dest,
                     const FetchOptions& options) {
  std::string source(uri.substr(std::string_view("file://").size()));
  if (source.empty()) return Failure(ErrorKind::kValueError, uri, "the URI has no path");
  int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      return Failure(ErrorKind::kNotFound, uri, source + " does not exist");
    }
    return Failure(ErrorKind::kIOError, uri, "cannot open " + source + ": " + ErrnoMessage(error));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{in};
  struct stat info {};
  if (::fstat(in, &info) != 0 || !S_ISREG(info.st_mode)) {
    return Failure(ErrorKind::kIOError, uri, source + " is not a regular file");
  }
  TempFile tmp;
  if (Status status = tmp.Create(dest); !status.ok()) {
    return Failure(ErrorKind::kIOError, uri, status.error().message);
  }
  std::uint64_t total = static_cast<std::uint64_t>(info.st_size);
  std::uint64_t copied = 0;
  std::vector<char> buffer(1 << 20);
  while (true) {
    ssize_t got = ::read(in, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return Failure(ErrorKind::kIOError, uri,
                     "cannot read " + source + ": " + ErrnoMessage(errno));
    }
    if (got == 0) break;
    if (!tmp.Write(std::string_view(buffer.data(), static_cast<std::size_t>(got)))) {
      return Failure(ErrorKind::kIOError, uri,
                     "cannot write " + tmp.path().string() + ": " + ErrnoMessage(errno));
    }
    copied += static_cast<std::uint64_t>(got);
    if (options.progress) options.progress(copied, total);
  }
  if (Status status = tmp.Commit(dest); !status.ok()) {
    return Failure(ErrorKind::kIOError, uri, status.error().message);
  }
  return Status::Ok();
}

// What to send for one attempt; rebuilt per attempt so signatures carry the
// current time even after long backoffs.
struct PreparedRequest {
  std::string url;
  std::vector<std::string> headers;
};

// Extra context for error messages about cloud objects.
struct ObjectContext {
  std::string description;     // "bucket 'b', key 'k'"; empty for plain URLs
  std::string anonymous_hint;  // set when the request went out unsigned
  std::string redirect_hint;   // for a 301 from AWS: the bucket is in another region
};

std::string XmlElement(std::string_view xml, std::string_view name) {
  std::string open = "<" + std::string(name) + ">";
  std::string close = "</" + std::string(name) + ">";
  auto start = xml.find(open);
  if (start == std::string_view::npos) return {};
  start += open.size();
  auto end = xml.find(close, start);
  if (end == std::string_view::npos) return {};
  return std::string(xml.substr(start, end - start));
}

std::string DescribeHttpError(const HttpGetResponse& response, const ObjectContext& object) {
  // The standard phrase where there is one: servers differ ("NOT FOUND").
  std::string_view phrase = HttpReasonPhrase(response.status);
  if (phrase.empty()) phrase = response.reason;
  std::string reason = "HTTP " + std::to_string(response.status);
  if (!phrase.empty()) reason += " " + std::string(phrase);
  // S3 and GCS explain themselves in an XML body: <Code>NoSuchKey</Code>...
  std::string code = XmlElement(response.error_body, "Code");
  std::string message = XmlElement(response.error_body, "Message");
  if (!code.empty() || !message.empty()) {
    reason += " (" + code + (code.empty() || message.empty() ? "" : ": ") + message + ")";
  }
  if (!object.description.empty()) reason += " for " + object.description;
  if ((response.status == 401 || response.status == 403) && !object.anonymous_hint.empty()) {
    reason += "; " + object.anonymous_hint;
  }
  if (response.status == 301 && !object.redirect_hint.empty()) {
    reason += "; " + object.redirect_hint;
  }
  return reason;
}

std::chrono::milliseconds BackoffDelay(int retry, const FetchOptions& options,
                                       const std::optional<std::chrono::seconds>& retry_after) {
  using std::chrono::milliseconds;
  milliseconds cap = std::max(options.max_backoff, milliseconds(0));
  if (retry_after) return std::min<milliseconds>(*retry_after, cap);
  milliseconds delay = std::max(options.initial_backoff, milliseconds(0));
  for (int i = 0; i < retry && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  // Jitter in [50%, 100%] so that many nodes fetching the same package after
  // an outage do not retry in lockstep.
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.5, 1.0);
  return milliseconds(static_cast<long long>(static_cast<double>(delay.count()) * factor(random)));
}

Status DownloadWithRetries(std::string_view uri, const std::filesystem::path& dest,
                           const FetchOptions& options,
                           const std::function<PreparedRequest()>& prepare,
                           const ObjectContext& object) {
  TempFile tmp;
  if (Status status = tmp.Create(dest); !status.ok()) {
    return Failure(ErrorKind::kIOError, uri, status.error().message);
  }
  int attempts = 1 + std::max(0, options.max_retries);
  for (int attempt = 1;; ++attempt) {
    if (attempt > 1) {
      if (Status status = tmp.Reset(); !status.ok()) {
        return Failure(ErrorKind::kIOError, uri, status.error().message);
      }
    }
    PreparedRequest prepared = prepare();
    HttpGetRequest request;
    request.url = std::move(prepared.url);
    request.headers = std::move(prepared.headers);
    request.connect_timeout = options.connect_timeout;
    request.low_speed_time = options.low_speed_time;
    request.low_speed_limit = options.low_speed_limit;
    request.total_timeout = options.attempt_timeout;
    request.max_redirects = options.max_redirects;

    std::uint64_t received = 0;
    int write_errno = 0;
    HttpGetResponse response = HttpGet(request, [&](std::string_view chunk, std::uint64_t total) {
      if (!tmp.Write(chunk)) {
        write_errno = errno;
        return false;
      }
      received += chunk.size();
      if (options.progress) options.progress(received, total);
      return true;
    });

    using Outcome = HttpGetResponse::Outcome;
    switch (response.outcome) {
      case Outcome::kOk:
        if (Status status = tmp.Commit(dest); !status.ok()) {
          return Failure(ErrorKind::kIOError, uri, status.error().message);
        }
        return Status::Ok();
      case Outcome::kAborted:
        return Failure(ErrorKind::kIOError, uri,
                       "cannot write " + tmp.path().string() + ": " + ErrnoMessage(write_errno));
      case Outcome::kHttpError:
      case Outcome::kTransportError:
        break;
    }

    std::string reason = response.outcome == Outcome::kHttpError
                             ? DescribeHttpError(response, object)
                             : response.transport_error;
    if (!response.transient) {
      ErrorKind kind = ErrorKind::kIOError;
      if (response.outcome == Outcome::kHttpError &&
          (response.status == 404 || response.status == 410)) {
        kind = ErrorKind::kNotFound;
      }
      return Failure(kind, uri, reason);
    }
    if (attempt >= attempts) {
      ErrorKind kind = response.timed_out ? ErrorKind::kTimeout : ErrorKind::kUnavailable;
      return Failure(kind, uri,
                     reason + " (gave up after " + std::to_string(attempts) +
                         (attempts == 1 ? " attempt)" : " attempts)"));
    }
    std::this_thread::sleep_for(BackoffDelay(attempt - 1, options, response.retry_after));
  }
}

// The parts of an endpoint URL the signer needs.
struct Endpoint {
  std::string base;         // "http://127.0.0.1:9000/prefix", no trailing '/'
  std::string host_header;  // "127.0.0.1:9000" as libcurl will send it
  std::string path_prefix;  // "/prefix" or ""
};

util::Result<Endpoint> ParseEndpoint(std::string_view url, std::string_view setting) {
  auto scheme_end = url.find("://");
  std::string scheme =
      scheme_end == std::string_view::npos ? std::string() : std::string(url.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") {
    return util::ValueError(std::string(setting) + "=" + std::string(url) +
                            " is not an http:// or https:// URL");
  }
  std::size_t authority_start = scheme_end + 3;
  while (url.size() > authority_start && url.ends_with('/')) url.remove_suffix(1);
  std::size_t path_start = url.find('/', authority_start);
  std::string_view authority = url.substr(authority_start, path_start == std::string_view::npos
                                                               ? std::string_view::npos
                                                               : path_start - authority_start);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.empty()) {
    return util::ValueError(std::string(setting) + "=" + std::string(url) + " has no host");
  }
  Endpoint endpoint;
  endpoint.base = std::string(url);
  endpoint.path_prefix =
      path_start == std::string_view::npos ? std::string() : std::string(url.substr(path_start));
  // libcurl leaves the default port out of the Host header; the signature
  // must cover exactly what is sent.
  std::string host(authority);
  std::string default_port = scheme == "https" ? ":443" : ":80";
  if (host.ends_with(default_port)) host.resize(host.size() - default_port.size());
  endpoint.host_header = host;
  return endpoint;
}

struct BucketObject {
  std::string bucket;
  std::string key;
};

util::Result<BucketObject> SplitBucketObject(std::string_view uri, std::string_view scheme,
                                             std::string_view key_word) {
  std::string_view rest = uri.substr(scheme.size() + 3);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return Failure(ErrorKind::kValueError, uri,
                   "expected " + std::string(scheme) + "://BUCKET/" + std::string(key_word));
  }
  return BucketObject{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
}

std::string DescribeObject(const BucketObject& object, std::string_view key_word) {
  return "bucket '" + object.bucket + "', " + std::string(key_word) + " '" + object.key + "'";
}

// A request builder signing with SigV4 at call time (or not at all without
// credentials).
std::function<PreparedRequest()> SigV4RequestBuilder(Endpoint endpoint, std::string encoded_path,
                                                     std::optional<AwsCredentials> credentials,
                                                     std::string region) {
  return [endpoint = std::move(endpoint), encoded_path = std::move(encoded_path),
          credentials = std::move(credentials), region = std::move(region)]() {
    PreparedRequest prepared;
    prepared.url =
        endpoint.base.substr(0, endpoint.base.size() - endpoint.path_prefix.size()) + encoded_path;
    if (!credentials) return prepared;
    SigV4Request request;
    request.host = endpoint.host_header;
    request.encoded_path = encoded_path;
    request.payload_hash = kEmptyPayloadSha256;
    request.headers.emplace_back("x-amz-content-sha256", kEmptyPayloadSha256);
    SigV4Signature signature =
        SignV4(request, *credentials, region, "s3", std::chrono::system_clock::now());
    for (const auto& [name, value] : request.headers)
      prepared.headers.push_back(name + ": " + value);
    for (const auto& [name, value] : signature.headers) {
      prepared.headers.push_back(name + ": " + value);
    }
    return prepared;
  };
}

Status FetchS3(std::string_view uri, const std::filesystem::path& dest,
               const FetchOptions& options) {
  auto object = SplitBucketObject(uri, "s3", "KEY");
  if (!object) return object.error();
  auto credentials = LoadAwsCredentials();
  if (!credentials) return Failure(ErrorKind::kValueError, uri, credentials.error().message);

  std::string region = GetEnv("AWS_REGION");
  if (region.empty()) region = GetEnv("AWS_DEFAULT_REGION");
  if (region.empty()) region = "us-east-1";

  const char* setting = "AWS_ENDPOINT_URL_S3";
  std::string endpoint_url = GetEnv(setting);
  if (endpoint_url.empty()) {
    setting = "AWS_ENDPOINT_URL";
    endpoint_url = GetEnv(setting);
  }
  std::string key_path = AwsUriEncode(object->key, /*keep_slash=*/true);
  std::string bucket_path = AwsUriEncode(object->bucket, false);
  std::string encoded_path;
  Endpoint endpoint;
  if (!endpoint_url.empty()) {
    auto parsed = ParseEndpoint(endpoint_url, setting);
    if (!parsed) return Failure(ErrorKind::kValueError, uri, parsed.error().message);
    endpoint = std::move(*parsed);
    encoded_path = endpoint.path_prefix + "/" + bucket_path + "/" + key_path;
  } else if (object->bucket.find('.') != std::string::npos) {
    endpoint.host_header = "s3." + region + ".amazonaws.com";
    endpoint.base = "https://" + endpoint.host_header;
    encoded_path = "/" + bucket_path + "/" + key_path;
  } else {
    endpoint.host_header = object->bucket + ".s3." + region + ".amazonaws.com";
    endpoint.base = "https://" + endpoint.host_header;
    encoded_path = "/" + key_path;
  }

  ObjectContext context;
  context.description = DescribeObject(*object, "key");
  if (endpoint_url.empty()) {
    // S3 answers a request to the wrong regional endpoint with a bare 301.
    context.redirect_hint =
        "the bucket is probably not in " + region + " (set AWS_REGION to its region)";
  }
  if (!credentials->has_value()) {
    context.anonymous_hint =
        "no AWS credentials were found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
        "~/.aws/credentials), so the request was sent unsigned";
  }
  return DownloadWithRetries(uri, dest, options,
                             SigV4RequestBuilder(std::move(endpoint), std::move(encoded_path),
                                                 std::move(*credentials), std::move(region)),
                             context);
}

Status FetchGcs(std::string_view uri, const std::filesystem::path& dest,
                const FetchOptions& options) {
  auto object = SplitBucketObject(uri, "gs", "OBJECT");
  if (!object) return object.error();
  std::string endpoint_url = GetEnv("STRATA_GCS_ENDPOINT");
  if (endpoint_url.empty()) endpoint_url = kDefaultGcsEndpoint;
  auto endpoint = ParseEndpoint(endpoint_url, "STRATA_GCS_ENDPOINT");
  if (!endpoint) return Failure(ErrorKind::kValueError, uri, endpoint.error().message);
  std::string encoded_path = endpoint->path_prefix + "/" + AwsUriEncode(object->bucket, false) +
                             "/" + AwsUriEncode(object->key, /*keep_slash=*/true);

  ObjectContext context;
  context.description = DescribeObject(*object, "object");
  std::string key_id = GetEnv("GS_ACCESS_KEY_ID");
  std::string secret = GetEnv("GS_SECRET_ACCESS_KEY");
  if (key_id.empty() != secret.empty()) {
    return Failure(ErrorKind::kValueError, uri,
                   "GS_ACCESS_KEY_ID and GS_SECRET_ACCESS_KEY must be set together");
  }
  if (!key_id.empty()) {
    // GCS's XML API accepts AWS SigV4 with HMAC keys ("interoperability").
    return DownloadWithRetries(uri, dest, options,
                               SigV4RequestBuilder(std::move(*endpoint), std::move(encoded_path),
                                                   AwsCredentials{key_id, secret, ""}, "auto"),
                               context);
  }
  std::string token = GetEnv("GOOGLE_OAUTH_ACCESS_TOKEN");
  if (token.empty()) {
    context.anonymous_hint =
        "no GCS credentials were found (GS_ACCESS_KEY_ID/GS_SECRET_ACCESS_KEY or "
        "GOOGLE_OAUTH_ACCESS_TOKEN), so the request was sent unsigned";
  }
  std::string url =
      endpoint->base.substr(0, endpoint->base.size() - endpoint->path_prefix.size()) + encoded_path;
  return DownloadWithRetries(
      uri, dest, options,
      [url = std::move(url), token = std::move(token)]() {
        PreparedRequest prepared{url, {}};
        if (!token.empty()) prepared.headers.push_back("Authorization: Bearer " + token);
        return prepared;
      },
      context);
}

}  // namespace

Status FetchToFile(std::string_view uri, const std::filesystem::path& dest,
                   const FetchOptions& options) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return util::ValueError("Invalid package URI '" + RedactUri(uri) +
                            "': expected SCHEME://..., e.g. https://host/pkg.zip");
  }
  std::string scheme(uri.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (dest.empty()) return Failure(ErrorKind::kValueError, uri, "empty destination path");

  if (scheme == "file") return CopyLocalFile(uri, dest, options);
  if (scheme == "http" || scheme == "https") {
    std::string url(uri);
    return DownloadWithRetries(
        uri, dest, options,
        [&url]() {
          return PreparedRequest{url, {}};
        },
        ObjectContext{});
  }
  if (scheme == "s3") return FetchS3(uri, dest, options);
  if (scheme == "gs") return FetchGcs(uri, dest, options);
  return Failure(ErrorKind::kValueError, uri,
                 "the " + scheme +
                     ":// scheme is not supported (supported: file://, http://, https://, s3://, "
                     "gs://)");
}

}  // namespace strata::packaging
