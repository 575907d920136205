#include "head/head_client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "util/version.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using util::Json;

constexpr std::string_view kTokenVariable = "STRATA_AUTH_TOKEN";

constexpr time_t kConnectTimeoutSeconds = 5;
// Job submission validates the env and commit assembles a package on the
// head; both may take a while for large inputs.
constexpr time_t kReadTimeoutSeconds = 300;
// A tail waits for a job's next output, which may be hours away; a head
// that goes away closes the connection, so only a silent network hangs it.
constexpr time_t kTailReadTimeoutSeconds = 24 * 3600;
constexpr std::size_t kUploadChunkBytes = 256 * 1024;

struct ParsedUrl {
  std::string url;  // http://<authority>, as normalised
  std::string host;
  int port = 80;
};

util::Error BadAddress(std::string_view address, std::string_view origin) {
  return util::ValueError("invalid head address '" + std::string(address) + "'" +
                          std::string(origin) + ": expected http://host[:port]");
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// `origin` (" (from STRATA_ADDRESS)" or "") tells the user where a bad
// address came from.
util::Result<ParsedUrl> ParseHttpUrl(std::string_view address, std::string_view origin = "") {
  std::string_view text = address.substr(0, address.find_first_of("?#"));
  while (text.ends_with('/')) text.remove_suffix(1);
  if (StartsWithNoCase(text, "https://")) {
    return util::ValueError("TLS to the head is not supported yet: use http:// instead of '" +
                            std::string(address) + "'" + std::string(origin));
  }
  constexpr std::string_view kScheme = "http://";
  if (!StartsWithNoCase(text, kScheme)) return BadAddress(address, origin);
  std::string_view authority = text.substr(kScheme.size());
  ParsedUrl parsed;
  std::string_view port_text;
  if (authority.starts_with('[')) {  // [IPv6]
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return BadAddress(address, origin);
    parsed.host = authority.substr(1, close - 1);
    if (!std::all_of(parsed.host.begin(), parsed.host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':';
        }))
      return BadAddress(address, origin);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return BadAddress(address, origin);
    if (!rest.empty()) port_text = rest.substr(1);
    if (!rest.empty() && port_text.empty()) return BadAddress(address, origin);
  } else {
    std::size_t colon = authority.find(':');
    parsed.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return BadAddress(address, origin);
    }
    if (parsed.host.empty() || !std::all_of(parsed.host.begin(), parsed.host.end(), IsHostChar))
      return BadAddress(address, origin);
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return BadAddress(address, origin);
    }
    parsed.port = std::stoi(std::string(port_text));
    if (parsed.port < 1 || parsed.port > 65535) return BadAddress(address, origin);
  }
  parsed.url = std::string(kScheme) + std::string(authority);
  return parsed;
}

// Percent-encodes one path segment (ids and names come from users).
std::string EncodeSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string JobPath(std::string_view id, std::string_view suffix = "") {
  return "/api/jobs/" + EncodeSegment(id) + std::string(suffix);
}

constexpr std::string_view kClusterEnvRoot = "/api/cluster_environments";

std::string ClusterEnvPath(std::string_view name, std::string_view suffix = "") {
  return std::string(kClusterEnvRoot) + "/" + EncodeSegment(name) + std::string(suffix);
}

// What every request needs to know about the head.
struct Target {
  const std::string& url;
  const std::string& host;
  int port;
  const std::string& token;
};

std::unique_ptr<httplib::Client> NewClient(const Target& target, time_t read_timeout) {
  auto client = std::make_unique<httplib::Client>(target.host, target.port);
  client->set_connection_timeout(kConnectTimeoutSeconds);
  client->set_read_timeout(read_timeout);
  // Headers and body go out in separate writes; without NODELAY the reply
  // waits for a delayed ACK.
  client->set_tcp_nodelay(true);
  // Paths are encoded here, segment by segment.
  client->set_url_encode(false);
  if (!target.token.empty()) client->set_bearer_token_auth(target.token);
  return client;
}

httplib::Headers RequestHeaders() {
  // Only this; browser headers (Origin, Referer, Sec-Fetch-*) would make the
  // head refuse state-changing requests.
  return {{"User-Agent", "strata/" + std::string(util::kStrataVersion)}};
}

// httplib's own names for these ("Connection", "Read") say little.
std::string Describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "connection refused or timed out";
    case httplib::Error::Read:
      return "the connection broke or timed out while reading the reply";
    case httplib::Error::Write:
      return "the connection broke while sending the request";
    default:
      return httplib::to_string(error);
  }
}

util::Error TransportError(const Target& target, std::string_view method, const std::string& path,
                           httplib::Error error) {
  if (error == httplib::Error::Connection) {
    return {util::ErrorKind::kUnavailable, "Could not reach the Strata head at " + target.url +
                                               ": " + Describe(error) +
                                               ". Is it running? (strata start --head)"};
  }
  return {util::ErrorKind::kUnavailable,
          std::string(method) + " " + target.url + path + " failed: " + Describe(error)};
}

util::Error HttpError(const Target& target, int status, const std::string& reason,
                      std::string body) {
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.pop_back();
  if (body.empty()) body = reason;
  switch (status) {
    case 400:
      return util::ValueError(std::move(body));
    case 401:
    case 403:
      return util::ValueError(
          body + (target.token.empty()
                      ? " (the head requires a token: set " + std::string(kTokenVariable) + ")"
                      : " (check " + std::string(kTokenVariable) + ")"));
    case 404:
      return util::NotFoundError(std::move(body));
    default:
      return util::IOError(std::to_string(status) + " " + reason + ": " + body);
  }
}

bool IsSuccess(int status) {
  return status >= 200 && status < 300;
}

using Send = std::function<httplib::Result(httplib::Client&, const httplib::Headers&)>;

// Runs one request; the body of a 2xx reply, or the error it maps to.
util::Result<std::string> Exchange(const Target& target, std::string_view method,
                                   const std::string& path, const Send& send) {
  if (target.host.empty()) return std::move(ParseHttpUrl(target.url)).error();
  auto client = NewClient(target, kReadTimeoutSeconds);
  httplib::Result res = send(*client, RequestHeaders());
  if (!res) return TransportError(target, method, path, res.error());
  if (!IsSuccess(res->status)) return HttpError(target, res->status, res->reason, res->body);
  return std::move(res->body);
}

util::Result<std::string> Get(const Target& target, const std::string& path) {
  return Exchange(target, "GET", path,
                  [&](httplib::Client& c, const httplib::Headers& h) { return c.Get(path, h); });
}

util::Result<std::string> PostJson(const Target& target, const std::string& path,
                                   const Json& body) {
  return Exchange(target, "POST", path, [&](httplib::Client& c, const httplib::Headers& h) {
    return c.Post(path, h, util::DumpsSorted(body), "application/json");
  });
}

util::Result<Json> ParseReply(util::Result<std::string> body, const std::string& path) {
  if (!body) return std::move(body).error();
  auto json = util::ParseJson(*body);
  if (!json)
    return util::IOError("invalid JSON from the head for " + path + ": " + json.error().message);
  return json;
}

// A string field of a reply object; IOError naming it when absent.
util::Result<std::string> StringField(const Json& reply, std::string_view key,
                                      const std::string& path) {
  if (reply.is_object()) {
    auto it = reply.find(key);
    if (it != reply.end() && it->is_string()) return it->get<std::string>();
  }
  return util::IOError("reply of the head for " + path + " lacks \"" + std::string(key) + "\"");
}

// PUT of a file's bytes, read as httplib sends them so that a large
// package never sits in memory whole.
util::Status PutFile(const Target& target, const std::string& path, const fs::path& file) {
  std::error_code ec;
  const std::uint64_t size = fs::file_size(file, ec);
  std::ifstream in(file, std::ios::binary);
  if (ec || !in) {
    return util::IOError("cannot read " + file.string() + (ec ? ": " + ec.message() : ""));
  }
  std::vector<char> buffer(kUploadChunkBytes);
  bool short_read = false;
  httplib::ContentProvider provider = [&](std::size_t offset, std::size_t length,
                                          httplib::DataSink& sink) {
    if (static_cast<std::uint64_t>(in.tellg()) != offset) in.seekg(offset);
    in.read(buffer.data(), std::min(length, buffer.size()));
    std::streamsize got = in.gcount();
    if (got <= 0) {
      short_read = true;
      return false;
    }
    return sink.write(buffer.data(), static_cast<std::size_t>(got));
  };
  auto reply = Exchange(target, "PUT", path, [&](httplib::Client& c, const httplib::Headers& h) {
    return c.Put(path, h, size, provider, "application/octet-stream");
  });
  if (short_read) return util::IOError(file.string() + " shrank while it was being uploaded");
  if (!reply) return std::move(reply).error();
  return {};
}

// GET of a chunked text stream (log tails), each chunk handed to `on_chunk`
// until the head ends the response.
util::Status Stream(const Target& target, const std::string& path,
                    const std::function<void(std::string_view chunk)>& on_chunk) {
  if (target.host.empty()) return std::move(ParseHttpUrl(target.url)).error();
  auto client = NewClient(target, kTailReadTimeoutSeconds);
  // With a content receiver httplib keeps no body, so an error reply's
  // message is collected here.
  int status = 0;
  std::string error_body;
  httplib::Result res = client->Get(
      path, RequestHeaders(),
      [&](const httplib::Response& response) {
        status = response.status;
        return true;
      },
      [&](const char* data, std::size_t length) {
        if (IsSuccess(status)) {
          on_chunk(std::string_view(data, length));
        } else {
          error_body.append(data, length);
        }
        return true;
      });
  if (!res) return TransportError(target, "GET", path, res.error());
  if (!IsSuccess(res->status)) return HttpError(target, res->status, res->reason, error_body);
  return {};
}

}  // namespace

std::optional<std::string> ClusterEnvFromAddress(const std::optional<std::string>& flag) {
  std::string address;
  if (flag) {
    address = *flag;
  } else if (const char* env = std::getenv("STRATA_ADDRESS")) {
    address = env;
  }
  std::size_t query = address.find('?');
  if (query == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(address).substr(query + 1);
  rest = rest.substr(0, rest.find('#'));
  while (!rest.empty()) {
    std::string_view pair = rest.substr(0, rest.find('&'));
    rest.remove_prefix(std::min(rest.size(), pair.size() + 1));
    constexpr std::string_view kKey = "cluster_env=";
    if (pair.starts_with(kKey) && pair.size() > kKey.size()) {
      return std::string(pair.substr(kKey.size()));
    }
  }
  return std::nullopt;
}

util::Result<std::string> ResolveHeadAddress(const std::optional<std::string>& flag) {
  if (flag) {
    auto parsed = ParseHttpUrl(*flag);
    if (!parsed) return std::move(parsed).error();
    return std::move(parsed->url);
  }
  const char* env = std::getenv("STRATA_ADDRESS");
  if (env != nullptr && *env != '\0') {
    auto parsed = ParseHttpUrl(env, " (from STRATA_ADDRESS)");
    if (!parsed) return std::move(parsed).error();
    return std::move(parsed->url);
  }
  return std::string(kDefaultHeadAddress);
}

HeadClient::HeadClient(std::string url, std::optional<std::string> token) : url_(std::move(url)) {
  if (token) {
    token_ = std::move(*token);
  } else if (const char* env = std::getenv(kTokenVariable.data())) {
    token_ = env;
  }
  // A bad url leaves host_ empty; every call then returns the parse error.
  if (auto parsed = ParseHttpUrl(url_)) {
    url_ = parsed->url;
    host_ = parsed->host;
    port_ = parsed->port;
  }
}

util::Result<Json> HeadClient::Version() {
  const std::string path = "/api/version";
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<std::string> HeadClient::SubmitJob(const Json& request) {
  const std::string path = "/api/jobs/";
  auto reply = ParseReply(PostJson({url_, host_, port_, token_}, path, request), path);
  if (!reply) return std::move(reply).error();
  return StringField(*reply, "submission_id", path);
}

util::Result<Json> HeadClient::GetJob(std::string_view id) {
  const std::string path = JobPath(id);
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<Json> HeadClient::ListJobs() {
  const std::string path = "/api/jobs/";
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<bool> HeadClient::StopJob(std::string_view id) {
  const std::string path = JobPath(id, "/stop");
  auto reply = ParseReply(PostJson({url_, host_, port_, token_}, path, Json::object()), path);
  if (!reply) return std::move(reply).error();
  return reply->is_object() && reply->value("stopped", false);
}

util::Status HeadClient::DeleteJob(std::string_view id) {
  const std::string path = JobPath(id);
  auto reply =
      Exchange({url_, host_, port_, token_}, "DELETE", path,
               [&](httplib::Client& c, const httplib::Headers& h) { return c.Delete(path, h); });
  if (!reply) return std::move(reply).error();
  return {};
}

util::Result<std::string> HeadClient::GetJobLogs(std::string_view id) {
  const std::string path = JobPath(id, "/logs");
  auto reply = ParseReply(Get({url_, host_, port_, token_}, path), path);
  if (!reply) return std::move(reply).error();
  return StringField(*reply, "logs", path);
}

util::Status HeadClient::TailJobLogs(std::string_view id,
                                     const std::function<void(std::string_view chunk)>& on_chunk) {
  return Stream({url_, host_, port_, token_}, JobPath(id, "/logs/tail"), on_chunk);
}

util::Result<Json> HeadClient::StartClusterEnvBuild(std::string_view name, const Json& spec) {
  const std::string path = ClusterEnvPath(name, "/builds");
  return ParseReply(PostJson({url_, host_, port_, token_}, path, Json::object({{"spec", spec}})),
                    path);
}

util::Result<Json> HeadClient::ListClusterEnvs(bool include_archived) {
  const std::string path =
      std::string(kClusterEnvRoot) + (include_archived ? "?include_archived=1" : "");
  auto reply = ParseReply(Get({url_, host_, port_, token_}, path), path);
  if (!reply) return std::move(reply).error();
  return reply->value("cluster_environments", Json::array());
}

util::Result<Json> HeadClient::GetClusterEnv(std::string_view name) {
  const std::string path = ClusterEnvPath(name);
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<Json> HeadClient::GetClusterEnvBuild(std::string_view name, int version) {
  const std::string path = ClusterEnvPath(name, "/builds/" + std::to_string(version));
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<std::string> HeadClient::GetClusterEnvBuildLogs(std::string_view name, int version) {
  const std::string path = ClusterEnvPath(name, "/builds/" + std::to_string(version) + "/logs");
  auto reply = ParseReply(Get({url_, host_, port_, token_}, path), path);
  if (!reply) return std::move(reply).error();
  return StringField(*reply, "logs", path);
}

util::Status HeadClient::TailClusterEnvBuildLogs(
    std::string_view name, int version,
    const std::function<void(std::string_view chunk)>& on_chunk) {
  return Stream({url_, host_, port_, token_},
                ClusterEnvPath(name, "/builds/" + std::to_string(version) + "/logs/tail"),
                on_chunk);
}

util::Status HeadClient::ArchiveClusterEnv(std::string_view name) {
  const std::string path = ClusterEnvPath(name, "/archive");
  auto reply = PostJson({url_, host_, port_, token_}, path, Json::object());
  if (!reply) return std::move(reply).error();
  return {};
}

util::Result<Json> HeadClient::Nodes() {
  const std::string path = "/api/nodes";
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<Json> HeadClient::RuntimeEnvs() {
  const std::string path = "/api/runtime_envs";
  return ParseReply(Get({url_, host_, port_, token_}, path), path);
}

util::Result<std::string> HeadClient::Metrics() {
  return Get({url_, host_, port_, token_}, "/metrics");
}

util::Result<bool> HeadClient::HasPackage(std::string_view name) {
  auto reply = Get({url_, host_, port_, token_}, "/api/packages/gcs/" + EncodeSegment(name));
  if (reply) return true;
  if (reply.error().kind == util::ErrorKind::kNotFound) return false;
  return std::move(reply).error();
}

util::Status HeadClient::PutPackageArchive(std::string_view name, const fs::path& archive) {
  return PutFile({url_, host_, port_, token_}, "/api/packages/gcs/" + EncodeSegment(name), archive);
}

util::Result<std::vector<std::string>> HeadClient::MissingBlobs(
    const packaging::Manifest& manifest) {
  const std::string path = "/api/packages/manifest";
  auto reply = ParseReply(
      PostJson({url_, host_, port_, token_}, path, Json::object({{"manifest", manifest.ToJson()}})),
      path);
  if (!reply) return std::move(reply).error();
  if (!reply->is_object() || !reply->contains("missing") || !(*reply)["missing"].is_array()) {
    return util::IOError("reply of the head for " + path + " lacks \"missing\"");
  }
  std::vector<std::string> missing;
  for (const Json& digest : (*reply)["missing"]) {
    if (!digest.is_string()) {
      return util::IOError("reply of the head for " + path + " has a non-string digest");
    }
    missing.push_back(digest.get<std::string>());
  }
  return missing;
}

util::Status HeadClient::PutBlobFromFile(std::string_view sha256, const fs::path& source) {
  return PutFile({url_, host_, port_, token_}, "/api/blobs/" + EncodeSegment(sha256), source);
}

util::Result<std::string> HeadClient::CommitPackage(const packaging::Manifest& manifest) {
  const std::string path = "/api/packages/commit";
  auto reply = ParseReply(
      PostJson({url_, host_, port_, token_}, path, Json::object({{"manifest", manifest.ToJson()}})),
      path);
  if (!reply) return std::move(reply).error();
  return StringField(*reply, "uri", path);
}

}  // namespace strata::head
