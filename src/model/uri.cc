#include "model/uri.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace strata::model {
namespace {

struct ProtocolInfo {
  Protocol protocol;
  std::string_view scheme;
  bool remote;
};

// Order is Ray's enum order; it is visible in the "Supported protocols" message.
constexpr std::array<ProtocolInfo, 11> kProtocols = {{
    {Protocol::kGcs, "gcs", false},
    {Protocol::kConda, "conda", false},
    {Protocol::kPip, "pip", false},
    {Protocol::kUv, "uv", false},
    {Protocol::kHttp, "http", true},
    {Protocol::kHttps, "https", true},
    {Protocol::kS3, "s3", true},
    {Protocol::kGs, "gs", true},
    {Protocol::kAzure, "azure", true},
    {Protocol::kAbfss, "abfss", true},
    {Protocol::kFile, "file", true},
}};

const ProtocolInfo& Info(Protocol protocol) {
  return *std::find_if(kProtocols.begin(), kProtocols.end(),
                       [&](const ProtocolInfo& info) { return info.protocol == protocol; });
}

bool IsSchemeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// urlsplit first drops leading C0 controls and spaces and removes tabs and
// newlines anywhere.
std::string CleanUrl(std::string_view text) {
  size_t start = 0;
  while (start < text.size() && static_cast<unsigned char>(text[start]) <= ' ') ++start;
  std::string out;
  for (char c : text.substr(start)) {
    if (c != '\t' && c != '\r' && c != '\n') out += c;
  }
  return out;
}

struct SplitUrl {
  std::string scheme;
  std::string netloc;
  std::string path;
};

SplitUrl Split(std::string_view text) {
  SplitUrl out;
  std::string url = CleanUrl(text);
  size_t colon = url.find(':');
  if (colon != std::string::npos && colon > 0 && std::isalpha(static_cast<unsigned char>(url[0])) &&
      std::all_of(url.begin(), url.begin() + colon, IsSchemeChar)) {
    out.scheme = url.substr(0, colon);
    std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    url = url.substr(colon + 1);
  }
  if (url.starts_with("//")) {
    size_t end = url.find_first_of("/?#", 2);
    if (end == std::string::npos) end = url.size();
    out.netloc = url.substr(2, end - 2);
    url = url.substr(end);
  }
  size_t end = url.find_first_of("?#");
  out.path = url.substr(0, end);
  return out;
}

std::string RemotePackageName(const SplitUrl& url) {
  if (url.path.ends_with(".whl")) {
    return url.path.substr(url.path.rfind('/') + 1);
  }
  std::string name = url.scheme + "_" + url.netloc + url.path;
  for (char& c : name) {
    if (c == '/' || c == ':' || c == '@' || c == '+' || c == ' ' || c == '(' || c == ')') c = '_';
  }
  // Keep the extension's dots (compound ones included) so the archive kind
  // stays recognisable; every other dot becomes '_'.
  size_t keep_from = name.rfind('.');
  for (std::string_view compound : {".tar.gz", ".tar.bz2", ".tar.xz"}) {
    if (name.ends_with(compound)) keep_from = name.size() - compound.size();
  }
  if (keep_from == std::string::npos) keep_from = name.size();
  std::replace(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(keep_from), '.', '_');
  return name;
}

}  // namespace

std::string_view ProtocolScheme(Protocol protocol) {
  return Info(protocol).scheme;
}

bool IsRemoteProtocol(Protocol protocol) {
  return Info(protocol).remote;
}

std::string UrlScheme(std::string_view text) {
  return Split(text).scheme;
}

bool IsPath(std::string_view path_or_uri) {
  return UrlScheme(path_or_uri).empty();
}

util::Result<ParsedUri> ParseUri(std::string_view uri) {
  if (IsPath(uri)) {
    return util::ValueError("Expected URI but received path " + std::string(uri));
  }
  SplitUrl url = Split(uri);
  auto found = std::find_if(kProtocols.begin(), kProtocols.end(),
                            [&](const ProtocolInfo& info) { return info.scheme == url.scheme; });
  if (found == kProtocols.end()) {
    std::string names;
    for (const ProtocolInfo& info : kProtocols) {
      std::string upper(info.scheme);
      std::transform(upper.begin(), upper.end(), upper.begin(),
                     [](unsigned char c) { return std::toupper(c); });
      names += (names.empty() ? "'" : ", '") + upper + "'";
    }
    return util::ValueError("Invalid protocol for runtime_env URI \"" + std::string(uri) +
                            "\". Supported protocols: [" + names + "]. Original error: '" +
                            url.scheme + "' is not a valid Protocol");
  }
  ParsedUri parsed{found->protocol, found->remote ? RemotePackageName(url) : url.netloc};
  return parsed;
}

}  // namespace strata::model
