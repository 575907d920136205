// Package URIs as runtime environments name them: "gcs://_strata_pkg_<hex>.zip",
// "s3://bucket/pkg.zip", "https://host/pkg.tar.gz", ...
//
// ParseUri follows Ray's parse_uri: it tells the protocol and derives the
// package name used for the local cache directory of the URI. IsPath follows
// Ray's is_path: a string is a local path when Python's urlparse finds no
// scheme in it.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "util/result.h"

namespace strata::model {

enum class Protocol { kGcs, kConda, kPip, kUv, kHttp, kHttps, kS3, kGs, kAzure, kAbfss, kFile };

// The scheme as written in URIs: "gcs", "https", ...
std::string_view ProtocolScheme(Protocol protocol);

// Remote protocols point at an archive somewhere else; the others name
// packages in the cluster's store or environments built on a node.
bool IsRemoteProtocol(Protocol protocol);

// The scheme Python's urllib.parse.urlparse would report, lower-cased ("" if none).
std::string UrlScheme(std::string_view text);

// True if `path_or_uri` has no URL scheme (POSIX rule of Ray's is_path).
bool IsPath(std::string_view path_or_uri);

struct ParsedUri {
  Protocol protocol;
  // Name of the local cache entry: for remote URIs "<scheme>_<host><path>"
  // with '/', ':', '@', '+', ' ', '(', ')' and every dot but the extension's
  // replaced by '_' (".whl" files keep their own name); for the others the
  // URI's host part, e.g. "_strata_pkg_<hex>.zip".
  std::string package_name;
};

// ValueError "Expected URI but received path X" for paths, ValueError
// 'Invalid protocol for runtime_env URI "X". ...' for unknown schemes.
util::Result<ParsedUri> ParseUri(std::string_view uri);

// Archive extensions accepted for remote URIs.
inline constexpr std::string_view kRemoteArchiveExtensions[] = {".zip", ".whl", ".tar.gz", ".tgz",
                                                                ".tar.xz"};

}  // namespace strata::model
