// FetchToFile: download a remote package URI (runtime_env `working_dir` /
// `py_modules` archives) to a local file.
//
// Schemes:
//   file://PATH         copy of PATH (the URI minus "file://").
//   http://, https://   libcurl; redirects followed (http/https only).
//   s3://BUCKET/KEY     S3 GetObject, signed with SigV4. KEY is everything after
//                       "BUCKET/", taken literally (no %-decoding), as boto3 does.
//     credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN),
//                  else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
//                  default ~/.aws/credentials; profile AWS_PROFILE, default
//                  "default"), else an unsigned (anonymous) request.
//     region:      AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
//     endpoint:    AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (path-style:
//                  ENDPOINT/BUCKET/KEY), else https://BUCKET.s3.REGION.amazonaws.com
//                  (path-style on s3.REGION.amazonaws.com for bucket names with
//                  dots, which the TLS wildcard certificate does not cover).
//   gs://BUCKET/OBJECT  Google Cloud Storage XML API, path-style on
//                       https://storage.googleapis.com or STRATA_GCS_ENDPOINT.
//     credentials: GS_ACCESS_KEY_ID + GS_SECRET_ACCESS_KEY (HMAC key, SigV4 with
//                  region "auto"), else GOOGLE_OAUTH_ACCESS_TOKEN (bearer token),
//                  else an anonymous request.
//   Anything else (gcs://, azure://, abfss://, ...) is rejected as unsupported.
//
// Transient failures (connection errors, timeouts, cut-off bodies, HTTP 5xx,
// 408, 429) are retried with exponential backoff; other HTTP errors fail at
// once. Error messages name the URI and the reason, e.g.
//   "Failed to download https://host/x.zip: HTTP 404 Not Found".
// Error kinds: kNotFound (404, missing file), kTimeout, kUnavailable (transient
// failures that outlived the retries), kValueError (bad or unsupported URI,
// bad credentials configuration), kIOError (other HTTP errors, local I/O).
//
// Thread-safety: FetchToFile may run concurrently in many threads, even for
// the same destination (each call has its own temporary file; the last rename
// wins and every version is complete). It reads the environment with getenv, so it must
// not race with setenv/unsetenv. The progress callback runs on the calling
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "util/result.h"

namespace strata::packaging {

struct FetchOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  // An attempt is abandoned when less than low_speed_limit bytes/s arrive for
  // low_speed_time (a stalled server), rather than after a fixed total time,
  // so large archives on slow links still complete. 0 s disables the check.
  // (libcurl averages the speed over ~5 s, so a stall right after a burst of
  // data is noticed up to that much later.)
  std::chrono::seconds low_speed_time{30};
  long low_speed_limit = 1;
  std::chrono::milliseconds attempt_timeout{0};  // cap on one attempt; 0 = none
  // Retries after the first attempt; the wait doubles from initial_backoff up
  // to max_backoff (with jitter; a server's Retry-After is honoured up to it).
  int max_retries = 3;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{10'000};
  long max_redirects = 10;
  // Called as bytes arrive: (bytes so far, total size or 0 if unknown). A
  // retry starts counting from 0 again.
  std::function<void(std::uint64_t received, std::uint64_t total)> progress;
};

// Downloads `uri` to `dest` atomically: the bytes go to a temporary file in
// dest's directory (created if missing) that is renamed over `dest` once
// complete. On failure nothing is left behind and an existing `dest` is
// untouched.
util::Status FetchToFile(std::string_view uri, const std::filesystem::path& dest,
                         const FetchOptions& options = {});

}  // namespace strata::packaging
