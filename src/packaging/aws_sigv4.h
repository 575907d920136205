// AWS Signature Version 4 request signing and AWS credential lookup, used by
// the s3:// and gs:// (HMAC interoperability) downloads in fetch.cc.
//
// The signer follows S3's rules: the path is used exactly as sent on the wire
// (already URI-encoded, not normalised or encoded a second time), which is
// also what the generic AWS test suite expects for plain paths like "/".
//
// Thread-safety: SignV4 and the parsers are pure functions, safe to call from
// any thread. LoadAwsCredentials reads the process environment with getenv,
// so it must not race with setenv/unsetenv in another thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace strata::packaging {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

struct SigV4Request {
  std::string method = "GET";
  // Value of the Host header as sent: "host" or "host:port" (a non-default port).
  std::string host;
  // Path as sent on the wire, already URI-encoded (see AwsUriEncode).
  std::string encoded_path = "/";
  // Query parameters, not encoded.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign besides host and x-amz-date (which SignV4 adds), e.g.
  // x-amz-content-sha256 or range. They must be sent as given.
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
  std::string payload_hash;
};

struct SigV4Signature {
  std::string canonical_request;  // kept for tests and debugging
  std::string string_to_sign;
  std::string signature;  // lowercase hex
  // Headers to add to the request on top of SigV4Request::headers:
  // X-Amz-Date, X-Amz-Security-Token (with a session token), Authorization.
  std::vector<std::pair<std::string, std::string>> headers;
};

SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      std::string_view region, std::string_view service,
                      std::chrono::system_clock::time_point now);

// AWS URI encoding: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX
// (uppercase hex); '/' is kept when keep_slash is true.
std::string AwsUriEncode(std::string_view text, bool keep_slash);

// Lowercase hex SHA-256 of data.
std::string Sha256Hex(std::string_view data);

// Credentials for `profile` from the text of an AWS shared credentials file
// (INI: "[profile]" sections with aws_access_key_id, aws_secret_access_key and
// optional aws_session_token). nullopt if the profile is absent or lacks keys.
std::optional<AwsCredentials> ParseAwsCredentialsFile(std::string_view text,
                                                      std::string_view profile);

// The standard lookup order, as botocore does it:
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//   2. the shared credentials file AWS_SHARED_CREDENTIALS_FILE, else
//      ~/.aws/credentials, profile AWS_PROFILE, else "default".
// nullopt when nothing is configured (callers then send anonymous requests).
// Errors: only one of the two env keys set; AWS_PROFILE names a profile that
// is not in the file.
util::Result<std::optional<AwsCredentials>> LoadAwsCredentials();

}  // namespace strata::packaging
