#include "packaging/aws_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace strata::packaging {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string ToHex(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kHexDigits[data[i] >> 4];
    out += kHexDigits[data[i] & 0xf];
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &out_len);
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// SigV4 canonical header values: trimmed, inner runs of spaces collapsed.
std::string CanonicalHeaderValue(std::string_view value) {
  value = Trim(value);
  std::string out;
  bool in_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string HomeDirectory() {
  std::string home = GetEnv("HOME");
  if (!home.empty()) return home;
  // Services started without HOME still have a passwd entry.
  struct passwd pwd {};
  struct passwd* result = nullptr;
  char buffer[4096];
  if (getpwuid_r(getuid(), &pwd, buffer, sizeof(buffer), &result) == 0 && result) {
    return result->pw_dir;
  }
  return {};
}

// "~/x" -> "$HOME/x", as botocore expands AWS_SHARED_CREDENTIALS_FILE.
std::filesystem::path ExpandUser(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) return HomeDirectory() + path.substr(1);
  return path;
}

}  // namespace

std::string AwsUriEncode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += static_cast<char>(std::toupper(kHexDigits[c >> 4]));
      out += static_cast<char>(std::toupper(kHexDigits[c & 0xf]));
    }
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return ToHex(digest, len);
}

SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      std::string_view region, std::string_view service,
                      std::chrono::system_clock::time_point now) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char amz_date[17];
  std::strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &utc);
  std::string date(amz_date, 8);

  SigV4Signature result;
  result.headers.emplace_back("X-Amz-Date", amz_date);
  if (!credentials.session_token.empty()) {
    result.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }

  // Lowercased name -> values; a std::map keeps them sorted as SigV4 requires.
  std::map<std::string, std::vector<std::string>> canonical_headers;
  canonical_headers["host"].push_back(CanonicalHeaderValue(request.host));
  for (const auto& [name, value] : request.headers) {
    canonical_headers[ToLower(name)].push_back(CanonicalHeaderValue(value));
  }
  for (const auto& [name, value] : result.headers) {
    canonical_headers[ToLower(name)].push_back(CanonicalHeaderValue(value));
  }

  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [name, value] : request.query) {
    query.emplace_back(AwsUriEncode(name, false), AwsUriEncode(value, false));
  }
  std::sort(query.begin(), query.end());

  std::string canonical = request.method + "\n" + request.encoded_path + "\n";
  for (std::size_t i = 0; i < query.size(); ++i) {
    if (i) canonical += '&';
    canonical += query[i].first + "=" + query[i].second;
  }
  canonical += '\n';
  std::string signed_headers;
  for (const auto& [name, values] : canonical_headers) {
    canonical += name + ":";
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) canonical += ',';
      canonical += values[i];
    }
    canonical += '\n';
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += name;
  }
  canonical += "\n" + signed_headers + "\n" + request.payload_hash;

  std::string scope =
      date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  result.string_to_sign =
      std::string("AWS4-HMAC-SHA256\n") + amz_date + "\n" + scope + "\n" + Sha256Hex(canonical);
  result.canonical_request = std::move(canonical);

  std::string key = HmacSha256("AWS4" + credentials.secret_access_key, date);
  key = HmacSha256(key, region);
  key = HmacSha256(key, service);
  key = HmacSha256(key, "aws4_request");
  std::string raw_signature = HmacSha256(key, result.string_to_sign);
  result.signature =
      ToHex(reinterpret_cast<const unsigned char*>(raw_signature.data()), raw_signature.size());

  result.headers.emplace_back(
      "Authorization", "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
                           ", SignedHeaders=" + signed_headers + ", Signature=" + result.signature);
  return result;
}

std::optional<AwsCredentials> ParseAwsCredentialsFile(std::string_view text,
                                                      std::string_view profile) {
  AwsCredentials credentials;
  bool in_profile = false;
  bool found = false;
  std::istringstream lines{std::string(text)};
  std::string raw_line;
  while (std::getline(lines, raw_line)) {
    std::string_view line = Trim(raw_line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      auto close = line.find(']');
      std::string_view name = Trim(
          line.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
      in_profile = name == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    auto equals = line.find('=');
    if (equals == std::string_view::npos) continue;
    std::string key = ToLower(Trim(line.substr(0, equals)));
    std::string value(Trim(line.substr(equals + 1)));
    if (key == "aws_access_key_id") {
      credentials.access_key_id = value;
    } else if (key == "aws_secret_access_key") {
      credentials.secret_access_key = value;
    } else if (key == "aws_session_token") {
      credentials.session_token = value;
    }
  }
  if (!found || credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return std::nullopt;
  }
  return credentials;
}

util::Result<std::optional<AwsCredentials>> LoadAwsCredentials() {
  std::string key_id = GetEnv("AWS_ACCESS_KEY_ID");
  std::string secret = GetEnv("AWS_SECRET_ACCESS_KEY");
  if (!key_id.empty() || !secret.empty()) {
    if (key_id.empty() || secret.empty()) {
      return util::ValueError(
          "Partial AWS credentials in the environment: AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY must be set together");
    }
    return std::optional<AwsCredentials>(
        AwsCredentials{key_id, secret, GetEnv("AWS_SESSION_TOKEN")});
  }

  std::string explicit_profile = GetEnv("AWS_PROFILE");
  std::string profile = explicit_profile.empty() ? "default" : explicit_profile;
  std::string file_setting = GetEnv("AWS_SHARED_CREDENTIALS_FILE");
  std::filesystem::path file = file_setting.empty()
                                   ? std::filesystem::path(HomeDirectory()) / ".aws" / "credentials"
                                   : ExpandUser(file_setting);
  std::ifstream in(file);
  std::optional<AwsCredentials> credentials;
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    credentials = ParseAwsCredentialsFile(text.str(), profile);
  }
  // A profile the user asked for by name must exist: falling back to an
  // anonymous request would turn a typo into a confusing 403.
  if (!credentials && !explicit_profile.empty()) {
    return util::ValueError("AWS profile '" + explicit_profile + "' (from AWS_PROFILE) has no " +
                            "credentials in " + file.string());
  }
  return credentials;
}

}  // namespace strata::packaging
