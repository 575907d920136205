#include "pyinstall/simple_index.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "pyinstall/requirement.h"
#include "util/pyjson.h"

namespace strata::pyinstall {
namespace {

constexpr std::array<std::string_view, 6> kSupportedHashes = {"sha512", "sha384", "sha256",
                                                              "sha224", "sha1",   "md5"};

bool IsAsciiAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsHtmlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
char ToLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ToLower);
  return out;
}
bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && Lower(text.substr(0, prefix.size())) == prefix;
}

bool Contains(std::initializer_list<std::string_view> list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// urllib.parse's scheme lists, for the schemes pip meets.
bool UsesRelative(std::string_view scheme) {
  return Contains({"", "ftp", "http", "gopher", "nntp", "imap", "wais", "file", "https", "shttp",
                   "mms", "prospero", "rtsp", "rtspu", "sftp", "svn", "svn+ssh", "ws", "wss"},
                  scheme);
}
bool UsesNetloc(std::string_view scheme) {
  return Contains(
      {"",        "ftp",   "http",  "gopher", "nntp",     "telnet", "imap",  "wais",  "file",
       "mms",     "https", "shttp", "snews",  "prospero", "rtsp",   "rtspu", "rsync", "svn",
       "svn+ssh", "sftp",  "nfs",   "git",    "git+ssh",  "ws",     "wss"},
      scheme);
}
bool UsesParams(std::string_view scheme) {
  return Contains({"", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu",
                   "sip", "sips", "mms", "sftp", "tel"},
                  scheme);
}

struct SplitUrl {
  std::string scheme;
  std::string netloc;
  std::string path;
  std::optional<std::string> query;
  std::optional<std::string> fragment;
};

// urllib.parse.urlsplit: surrounding spaces/controls stripped, tabs and
// newlines removed.
SplitUrl Split(std::string_view text, std::string_view default_scheme = "") {
  std::string url;
  for (char c : text) {
    if (c != '\t' && c != '\r' && c != '\n') url += c;
  }
  auto is_strip = [](char c) { return static_cast<unsigned char>(c) <= ' '; };
  while (!url.empty() && is_strip(url.front())) url.erase(url.begin());
  while (!url.empty() && is_strip(url.back())) url.pop_back();
  SplitUrl out;
  out.scheme = default_scheme;
  std::string_view rest = url;
  std::size_t colon = rest.find(':');
  if (colon != std::string_view::npos && colon > 0 && IsAsciiAlpha(rest[0])) {
    bool scheme_chars = std::all_of(rest.begin(), rest.begin() + colon, [](char c) {
      return IsAsciiAlpha(c) || IsDigit(c) || c == '+' || c == '-' || c == '.';
    });
    if (scheme_chars) {
      out.scheme = Lower(rest.substr(0, colon));
      rest.remove_prefix(colon + 1);
    }
  }
  if (rest.substr(0, 2) == "//") {
    std::size_t end = rest.find_first_of("/?#", 2);
    if (end == std::string_view::npos) end = rest.size();
    out.netloc = std::string(rest.substr(2, end - 2));
    rest.remove_prefix(end);
  }
  if (std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    out.fragment = std::string(rest.substr(hash + 1));
    rest = rest.substr(0, hash);
  }
  if (std::size_t question = rest.find('?'); question != std::string_view::npos) {
    out.query = std::string(rest.substr(question + 1));
    rest = rest.substr(0, question);
  }
  out.path = std::string(rest);
  return out;
}

// urllib.parse.urlunsplit (empty query and fragment are dropped).
std::string Join(const SplitUrl& url) {
  std::string path = url.path;
  if (!url.netloc.empty() ||
      (!url.scheme.empty() && UsesNetloc(url.scheme) && path.substr(0, 2) != "//")) {
    if (!path.empty() && path[0] != '/') path = "/" + path;
    path = "//" + url.netloc + path;
  }
  std::string out = url.scheme.empty() ? path : url.scheme + ":" + path;
  if (url.query && !url.query->empty()) out += "?" + *url.query;
  if (url.fragment && !url.fragment->empty()) out += "#" + *url.fragment;
  return out;
}

std::vector<std::string> SplitOn(std::string_view text, char separator) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(separator, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  c = ToLower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string Unquote(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// urllib.parse.quote(text, safe="/").
std::string Quote(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (IsAsciiAlpha(c) || IsDigit(c) || c == '_' || c == '.' || c == '-' || c == '~' || c == '/') {
      out += c;
    } else {
      auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += kDigits[byte >> 4];
      out += kDigits[byte & 0xF];
    }
  }
  return out;
}

// pip's _clean_url_path: each part between '@' and "%2F" unquoted and
// quoted again, the separators kept (uppercased).
std::string CleanPath(std::string_view path) {
  std::string out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    std::size_t reserved = 0;
    if (i < path.size() && path[i] == '@') reserved = 1;
    if (i + 3 <= path.size() && StartsWithNoCase(path.substr(i), "%2f")) reserved = 3;
    if (reserved == 0 && i < path.size()) continue;
    out += Quote(Unquote(path.substr(start, i - start)));
    if (reserved != 0) {
      std::string separator(path.substr(i, reserved));
      std::transform(separator.begin(), separator.end(), separator.begin(),
                     [](char c) { return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c; });
      out += separator;
      i += reserved - 1;
      start = i + 1;
    }
  }
  return out;
}

// pip's _ensure_quoted_url. urlparse keeps ";params" of the last path
// segment apart for some schemes; those stay as written.
std::string EnsureQuoted(std::string_view url) {
  SplitUrl split = Split(url);
  std::string params;
  if (UsesParams(split.scheme)) {
    std::size_t last_slash = split.path.rfind('/');
    std::size_t semicolon = split.path.find(';', last_slash == std::string::npos ? 0 : last_slash);
    if (semicolon != std::string::npos) {
      params = split.path.substr(semicolon);
      split.path.resize(semicolon);
    }
  }
  split.path = CleanPath(split.path) + params;
  return Join(split);
}

std::map<std::string, std::string> SupportedOnly(const std::map<std::string, std::string>& hashes) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : hashes) {
    if (std::find(kSupportedHashes.begin(), kSupportedHashes.end(), name) !=
        kSupportedHashes.end()) {
      out[name] = value;
    }
  }
  return out;
}

// pip's LinkHash.find_hash_url_fragment: the first `[#&]<alg>=<value>`.
std::optional<std::pair<std::string, std::string>> FragmentHash(std::string_view url) {
  for (std::size_t i = 0; i < url.size(); ++i) {
    if (url[i] != '#' && url[i] != '&') continue;
    for (std::string_view name : kSupportedHashes) {
      std::string_view rest = url.substr(i + 1);
      if (rest.substr(0, name.size()) != name || rest.substr(name.size(), 1) != "=") continue;
      rest.remove_prefix(name.size() + 1);
      return std::make_pair(std::string(name), std::string(rest.substr(0, rest.find('&'))));
    }
  }
  return std::nullopt;
}

std::string Filename(std::string_view url) {
  SplitUrl split = Split(url);
  std::string path = Unquote(split.path);
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  return name.empty() ? split.netloc : name;
}

DistributionLink MakeLink(std::string url) {
  DistributionLink link;
  link.url = std::move(url);
  link.filename = Filename(link.url);
  if (auto fragment = FragmentHash(link.url)) link.hashes[fragment->first] = fragment->second;
  return link;
}

void AppendUtf8(std::string& out, std::uint32_t code) {
  if (code == 0 || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) code = 0xFFFD;
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// A subset of html.unescape; see the header.
std::string Unescape(std::string_view text) {
  struct Named {
    std::string_view name;
    std::string_view value;
    bool legacy;  // also recognised without ';'
  };
  static constexpr std::array<Named, 10> kNamed = {{{"amp", "&", true},
                                                    {"lt", "<", true},
                                                    {"gt", ">", true},
                                                    {"quot", "\"", true},
                                                    {"apos", "'", false},
                                                    {"nbsp", "\xC2\xA0", true},
                                                    {"AMP", "&", true},
                                                    {"LT", "<", true},
                                                    {"GT", ">", true},
                                                    {"QUOT", "\"", true}}};
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '&') {
      out += text[i++];
      continue;
    }
    std::string_view rest = text.substr(i + 1);
    if (!rest.empty() && rest[0] == '#') {
      bool hex = rest.size() > 1 && (rest[1] == 'x' || rest[1] == 'X');
      std::size_t start = hex ? 2 : 1;
      std::size_t end = start;
      std::uint32_t code = 0;
      while (end < rest.size() && (hex ? HexValue(rest[end]) >= 0 : IsDigit(rest[end]))) {
        if (code <= 0x10FFFF) code = code * (hex ? 16 : 10) + HexValue(rest[end]);
        ++end;
      }
      if (end > start) {
        AppendUtf8(out, code);
        if (end < rest.size() && rest[end] == ';') ++end;
        i += 1 + end;
        continue;
      }
    } else {
      bool done = false;
      for (const Named& named : kNamed) {
        if (rest.substr(0, named.name.size()) != named.name) continue;
        bool semicolon = rest.substr(named.name.size(), 1) == ";";
        if (!semicolon && !named.legacy) continue;
        out += named.value;
        i += 1 + named.name.size() + (semicolon ? 1 : 0);
        done = true;
        break;
      }
      if (done) continue;
    }
    out += text[i++];
  }
  return out;
}

using Attributes = std::map<std::string, std::optional<std::string>>;

struct HtmlLinks {
  std::optional<std::string> base;
  std::vector<Attributes> anchors;
};

// The start tags of an HTML page as Python's html.parser finds them, keeping
// what pip's HTMLLinkParser keeps.
HtmlLinks ScanHtml(std::string_view html) {
  HtmlLinks out;
  std::size_t i = 0;
  while ((i = html.find('<', i)) != std::string_view::npos) {
    std::string_view rest = html.substr(i);
    if (rest.substr(0, 4) == "<!--") {
      std::size_t end = html.find("-->", i + 4);
      if (end == std::string_view::npos) break;
      i = end + 3;
      continue;
    }
    if (rest.substr(0, 2) == "<!" || rest.substr(0, 2) == "<?" || rest.substr(0, 2) == "</") {
      std::size_t end = html.find('>', i + 2);
      if (end == std::string_view::npos) break;
      i = end + 1;
      continue;
    }
    if (rest.size() < 2 || !IsAsciiAlpha(rest[1])) {
      ++i;
      continue;
    }
    std::size_t p = i + 1;
    std::size_t name_start = p;
    while (p < html.size() && !IsHtmlSpace(html[p]) && html[p] != '/' && html[p] != '>' &&
           html[p] != '\0') {
      ++p;
    }
    std::string tag = Lower(html.substr(name_start, p - name_start));
    Attributes attributes;
    bool closed = false;
    while (p < html.size()) {
      while (p < html.size() && (IsHtmlSpace(html[p]) || html[p] == '/')) ++p;
      if (p >= html.size()) break;
      if (html[p] == '>') {
        closed = true;
        ++p;
        break;
      }
      std::size_t attr_start = p++;
      while (p < html.size() && !IsHtmlSpace(html[p]) && html[p] != '/' && html[p] != '=' &&
             html[p] != '>') {
        ++p;
      }
      std::string name = Lower(html.substr(attr_start, p - attr_start));
      std::size_t after_name = p;
      while (p < html.size() && IsHtmlSpace(html[p])) ++p;
      if (p >= html.size() || html[p] != '=') {
        p = after_name;
        attributes[name] = std::nullopt;
        continue;
      }
      while (p < html.size() && html[p] == '=') ++p;
      while (p < html.size() && IsHtmlSpace(html[p])) ++p;
      std::string value;
      if (p < html.size() && (html[p] == '"' || html[p] == '\'')) {
        std::size_t end = html.find(html[p], p + 1);
        if (end == std::string_view::npos) break;
        value = std::string(html.substr(p + 1, end - p - 1));
        p = end + 1;
      } else {
        std::size_t value_start = p;
        while (p < html.size() && html[p] != '>' && !IsHtmlSpace(html[p])) ++p;
        value = std::string(html.substr(value_start, p - value_start));
      }
      attributes[name] = Unescape(value);
    }
    if (!closed) break;  // an unfinished tag at the end is dropped, as by feed()
    i = p;
    if (tag == "a") {
      out.anchors.push_back(std::move(attributes));
    } else if (tag == "base" && !out.base) {
      auto href = attributes.find("href");
      if (href != attributes.end() && href->second) out.base = *href->second;
    } else if (tag == "script" || tag == "style") {
      std::size_t end = i;
      while ((end = html.find("</", end)) != std::string_view::npos &&
             !StartsWithNoCase(html.substr(end + 2), tag)) {
        end += 2;
      }
      if (end == std::string_view::npos) break;
      i = end;
    }
  }
  return out;
}

std::optional<std::string> Attribute(const Attributes& attributes, const std::string& name) {
  auto it = attributes.find(name);
  if (it == attributes.end()) return std::nullopt;
  return it->second;
}

std::vector<DistributionLink> ParseHtml(std::string_view content, std::string_view page_url) {
  HtmlLinks html = ScanHtml(content);
  std::string base = html.base ? ResolveUrl(page_url, *html.base) : std::string(page_url);
  std::vector<DistributionLink> links;
  for (const Attributes& anchor : html.anchors) {
    std::optional<std::string> href = Attribute(anchor, "href");
    if (!href || href->empty()) continue;
    DistributionLink link = MakeLink(EnsureQuoted(ResolveUrl(base, *href)));
    std::optional<std::string> requires_python = Attribute(anchor, "data-requires-python");
    if (requires_python && !requires_python->empty()) link.requires_python = requires_python;
    link.yanked = Attribute(anchor, "data-yanked");
    std::optional<std::string> metadata = Attribute(anchor, "data-core-metadata");
    if (!metadata) metadata = Attribute(anchor, "data-dist-info-metadata");
    if (metadata) {
      link.core_metadata.emplace();
      std::size_t equals = metadata->find('=');
      if (*metadata != "true" && equals != std::string::npos) {
        link.core_metadata =
            SupportedOnly({{metadata->substr(0, equals), metadata->substr(equals + 1)}});
      }
    }
    links.push_back(std::move(link));
  }
  return links;
}

// Python truthiness of a JSON value.
bool Truthy(const util::Json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number_float()) return value.get<double>() != 0;
  if (value.is_number()) return value.get<std::int64_t>() != 0;
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  return !value.empty();  // arrays and objects
}

std::map<std::string, std::string> StringEntries(const util::Json& object) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : object.items()) {
    if (value.is_string()) out[name] = value.get<std::string>();
  }
  return out;
}

util::Result<std::vector<DistributionLink>> ParseJson(std::string_view content,
                                                      std::string_view page_url) {
  util::Result<util::Json> json = util::ParseJson(content);
  if (!json) return util::ValueError("Invalid simple API JSON page: " + json.error().message);
  std::vector<DistributionLink> links;
  if (!json->is_object() || !json->contains("files")) return links;
  const util::Json& files = (*json)["files"];
  if (!files.is_array())
    return util::ValueError("Invalid simple API JSON page: files is not a list");
  for (const util::Json& file : files) {
    if (!file.is_object()) {
      return util::ValueError("Invalid simple API JSON page: a file is not an object");
    }
    auto url = file.find("url");
    if (url == file.end() || !url->is_string()) continue;
    std::map<std::string, std::string> given;
    if (auto hashes = file.find("hashes"); hashes != file.end() && hashes->is_object()) {
      given = StringEntries(*hashes);
    }
    DistributionLink link = MakeLink(EnsureQuoted(ResolveUrl(page_url, url->get<std::string>())));
    for (const auto& [name, value] : link.hashes) given[name] = value;  // the fragment wins
    link.hashes = std::move(given);
    if (auto requires_python = file.find("requires-python");
        requires_python != file.end() && requires_python->is_string() &&
        !requires_python->get<std::string>().empty()) {
      link.requires_python = requires_python->get<std::string>();
    }
    if (auto yanked = file.find("yanked"); yanked != file.end() && Truthy(*yanked)) {
      link.yanked = yanked->is_string() ? yanked->get<std::string>() : "";
    }
    auto metadata = file.find("core-metadata");
    if (metadata == file.end() || metadata->is_null()) metadata = file.find("dist-info-metadata");
    if (metadata != file.end() && metadata->is_object()) {
      link.core_metadata = SupportedOnly(StringEntries(*metadata));
    } else if (metadata != file.end() && Truthy(*metadata)) {
      link.core_metadata.emplace();
    }
    links.push_back(std::move(link));
  }
  return links;
}

}  // namespace

std::string ResolveUrl(std::string_view base, std::string_view reference) {
  if (base.empty()) return std::string(reference);
  if (reference.empty()) return std::string(base);
  SplitUrl b = Split(base);
  SplitUrl r = Split(reference, b.scheme);
  if (r.scheme != b.scheme || !UsesRelative(r.scheme)) return std::string(reference);
  if (UsesNetloc(r.scheme)) {
    if (!r.netloc.empty()) return Join(r);
    r.netloc = b.netloc;
  }
  if (r.path.empty()) {
    r.path = b.path;
    if (!r.query) r.query = b.query;
    return Join(r);
  }
  std::vector<std::string> base_parts = SplitOn(b.path, '/');
  if (!base_parts.back().empty()) base_parts.pop_back();
  std::vector<std::string> segments;
  if (r.path[0] == '/') {
    segments = SplitOn(r.path, '/');
  } else {
    segments = base_parts;
    for (std::string& part : SplitOn(r.path, '/')) segments.push_back(std::move(part));
    // urljoin drops empty inner segments so the join has no doubled '/'.
    std::vector<std::string> filtered = {segments.front()};
    for (std::size_t k = 1; k + 1 < segments.size(); ++k) {
      if (!segments[k].empty()) filtered.push_back(segments[k]);
    }
    if (segments.size() > 1) filtered.push_back(segments.back());
    segments = std::move(filtered);
  }
  std::vector<std::string> resolved;
  for (const std::string& segment : segments) {
    if (segment == "..") {
      if (!resolved.empty()) resolved.pop_back();
    } else if (segment != ".") {
      resolved.push_back(segment);
    }
  }
  if (segments.back() == "." || segments.back() == "..") resolved.emplace_back();
  std::string path;
  for (std::size_t k = 0; k < resolved.size(); ++k) path += (k ? "/" : "") + resolved[k];
  r.path = path.empty() ? "/" : path;
  return Join(r);
}

std::string ProjectPageUrl(std::string_view index_url, std::string_view project) {
  std::string url(index_url);
  if (url.empty() || url.back() != '/') url += '/';
  url += Quote(NormalizeName(project));
  if (url.back() != '/') url += '/';
  return url;
}

util::Result<std::vector<DistributionLink>> ParseProjectPage(std::string_view content,
                                                             std::string_view content_type,
                                                             std::string_view page_url) {
  if (StartsWithNoCase(content_type, kSimpleJsonContentType)) return ParseJson(content, page_url);
  return ParseHtml(content, page_url);
}

std::optional<DistributionFile> ClassifyFilename(std::string_view filename,
                                                 std::string_view project) {
  std::string wanted = NormalizeName(project);
  if (filename.ends_with(".whl")) {
    util::Result<WheelFilename> wheel = WheelFilename::Parse(filename);
    if (!wheel || wheel->name != wanted) return std::nullopt;
    return DistributionFile{DistributionKind::kWheel, wheel->name, wheel->version, *wheel};
  }
  std::string_view stem;
  for (std::string_view extension : {".tar.gz", ".zip"}) {
    if (filename.ends_with(extension))
      stem = filename.substr(0, filename.size() - extension.size());
  }
  // pip's _find_name_version_sep: the first '-' whose prefix names the project.
  for (std::size_t dash = stem.find('-'); dash != std::string_view::npos;
       dash = stem.find('-', dash + 1)) {
    if (NormalizeName(stem.substr(0, dash)) != wanted) continue;
    util::Result<Version> version = Version::Parse(stem.substr(dash + 1));
    if (!version) return std::nullopt;
    return DistributionFile{DistributionKind::kSdist, wanted, *version, std::nullopt};
  }
  return std::nullopt;
}

}  // namespace strata::pyinstall
