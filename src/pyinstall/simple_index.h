// The simple repository API's project pages, as pip reads them
// (pip._internal.index.collector.parse_links, models.link.Link): PEP 503 HTML
// and PEP 691 JSON, with PEP 592 (yanked), PEP 658/714 (core metadata) and
// data-requires-python. Parsing only; fetching is the caller's.
//
// HTML: a small tokenizer that keeps the first `<base href>` and every `<a>`,
// tolerant the way Python's html.parser is: tag and attribute names in any
// case, values double-, single- or un-quoted, character references in values
// unescaped (numeric ones; &amp; &lt; &gt; &quot; &apos; &nbsp; and the
// uppercase AMP, LT, GT, QUOT; all but apos also without ';', as HTML's legacy
// names; other named references are left as written, where Python's
// html.unescape knows all of HTML5's),
// comments, <!...>/<?...> and <script>/<style> content skipped. A repeated
// attribute keeps its last value. As in pip, an attribute written without a
// value counts as absent: `<a href=x data-yanked>` is not yanked.
//
// Links: the anchor's href (anchors without one, or with an empty one, are
// skipped) resolved against the base (the `<base href>`, itself resolved
// against the page URL, else the page URL) by RFC 3986, then its path
// re-quoted as pip does (unquote, then quote all but unreserved characters
// and '/', keeping '@' and "%2F"). pip resolves against a relative
// `<base href>` as written; here it is resolved first, as browsers do.
//
// Hashes: PEP 691 "hashes" (every string entry), then the first
// `[#&]<alg>=<value>` in the URL for alg in sha512, sha384, sha256, sha224,
// sha1, md5, which overrides the same name (pip's LinkHash).
//
// Thread-safety: pure functions and value types.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyinstall/version.h"
#include "pyinstall/wheel_tags.h"
#include "util/result.h"

namespace strata::pyinstall {

// PEP 691's JSON content type; anything else is read as HTML.
inline constexpr std::string_view kSimpleJsonContentType = "application/vnd.pypi.simple.v1+json";

struct DistributionLink {
  std::string filename;                        // last path segment of the URL, unquoted
  std::string url;                             // absolute, quoted, fragment kept
  std::map<std::string, std::string> hashes;   // algorithm -> hex, as given
  std::optional<std::string> requires_python;  // specifier text; empty counts as absent
  std::optional<std::string> yanked;           // reason ("" when none given)
  // PEP 658 metadata file: absent when not offered; present with the hashes
  // pip supports (possibly none) when offered.
  std::optional<std::map<std::string, std::string>> core_metadata;
};

// The links of one project page. `content_type` is the response's
// Content-Type (parameters allowed); JSON when it starts, in any case, with
// kSimpleJsonContentType. `page_url` is the URL the page came from (after
// redirects). ValueError for JSON that does not parse or whose "files" is not
// a list of objects; HTML never fails. JSON files without a string "url" are
// skipped, as pip does.
util::Result<std::vector<DistributionLink>> ParseProjectPage(std::string_view content,
                                                             std::string_view content_type,
                                                             std::string_view page_url);

// RFC 3986 reference resolution, as urllib.parse.urljoin for http(s) and
// file URLs: an absolute `reference` is returned as is.
std::string ResolveUrl(std::string_view base, std::string_view reference);

// `<index_url>/<normalized-name>/`, as pip builds a project page URL.
std::string ProjectPageUrl(std::string_view index_url, std::string_view project);

enum class DistributionKind { kWheel, kSdist };

struct DistributionFile {
  DistributionKind kind;
  std::string name;  // PEP 503 normalised
  Version version;
  std::optional<WheelFilename> wheel;  // for wheels
};

// What a link's filename offers for `project` (any spelling): a wheel
// (WheelFilename::Parse) or a source distribution `<name>-<version>.tar.gz`
// or `.zip` whose name part normalises to the project's, as pip splits it
// (the name may contain '-'). nullopt for other files, other projects and
// versions that are not PEP 440.
std::optional<DistributionFile> ClassifyFilename(std::string_view filename,
                                                 std::string_view project);

}  // namespace strata::pyinstall
