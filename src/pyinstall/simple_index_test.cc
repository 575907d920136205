#include "pyinstall/simple_index.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "pyinstall/reference_python_testing.h"
#include "util/pyjson.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

using testing::Capture;
using testing::ReferencePython;
using Hashes = std::map<std::string, std::string>;

constexpr std::string_view kPage = "https://example.org/simple/demo/";

std::vector<DistributionLink> Html(std::string_view html, std::string_view url = kPage) {
  auto links = ParseProjectPage(html, "text/html; charset=utf-8", url);
  EXPECT_TRUE(links) << links.error().message;
  return links ? *links : std::vector<DistributionLink>{};
}

TEST(SimpleIndexHtml, ReadsAnchorsHashesAndData) {
  auto links = Html(R"(<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1"><title>Links for demo</title></head>
<body><h1>Links for demo</h1>
<a href="../../packages/demo-1.0.tar.gz#sha256=abc123" data-requires-python="&gt;=3.8">demo-1.0.tar.gz</a><br/>
<a href="https://files.example.org/demo-1.1-py3-none-any.whl#md5=ffff" data-yanked="broken &amp; bad"
   data-core-metadata="sha256=beef">demo-1.1-py3-none-any.whl</a>
<a href="demo-1.2-py3-none-any.whl" data-yanked="" data-dist-info-metadata="true">x</a>
</body></html>)");
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0].url, "https://example.org/packages/demo-1.0.tar.gz#sha256=abc123");
  EXPECT_EQ(links[0].filename, "demo-1.0.tar.gz");
  EXPECT_EQ(links[0].hashes, (Hashes{{"sha256", "abc123"}}));
  EXPECT_EQ(links[0].requires_python, ">=3.8");
  EXPECT_FALSE(links[0].yanked);
  EXPECT_FALSE(links[0].core_metadata);
  EXPECT_EQ(links[1].url, "https://files.example.org/demo-1.1-py3-none-any.whl#md5=ffff");
  EXPECT_EQ(links[1].hashes, (Hashes{{"md5", "ffff"}}));
  EXPECT_EQ(links[1].yanked, "broken & bad");
  EXPECT_EQ(links[1].core_metadata, (Hashes{{"sha256", "beef"}}));
  EXPECT_EQ(links[2].url, "https://example.org/simple/demo/demo-1.2-py3-none-any.whl");
  EXPECT_EQ(links[2].yanked, "");
  EXPECT_EQ(links[2].core_metadata, Hashes{});
  EXPECT_FALSE(links[2].requires_python);
}

TEST(SimpleIndexHtml, ToleratesMessyMarkup) {
  auto links = Html(
      "<A HREF=a-1.0.zip DATA-REQUIRES-PYTHON='&lt;4,&#62;=3'>x</A>"
      "<!-- <a href=\"commented-1.0.zip\"> -->"
      "<script>var s = '<a href=\"scripted-1.0.zip\">';</script>"
      "<a\nhref = \"b-1.0.zip?x=1&amp;y=2\" >b</a>"
      "<a href='c%20d-1.0.zip'>c</a>"
      "<a href=\"sp ace-1.0.zip\">"
      "<a href=\"&#x27;q&#39;-1.0.zip\">"
      "<a name=anchor>no href</a><a href=\"\">empty</a><a href>valueless</a>"
      "<a href=\"x.zip\" href=\"last.zip\">"
      "<a href=\"unfinished.zip\"");
  ASSERT_EQ(links.size(), 6u);
  EXPECT_EQ(links[0].filename, "a-1.0.zip");
  EXPECT_EQ(links[0].requires_python, "<4,>=3");
  EXPECT_EQ(links[1].url, "https://example.org/simple/demo/b-1.0.zip?x=1&y=2");
  EXPECT_EQ(links[2].url, "https://example.org/simple/demo/c%20d-1.0.zip");
  EXPECT_EQ(links[2].filename, "c d-1.0.zip");
  EXPECT_EQ(links[3].url, "https://example.org/simple/demo/sp%20ace-1.0.zip");
  EXPECT_EQ(links[4].url, "https://example.org/simple/demo/%27q%27-1.0.zip");
  EXPECT_EQ(links[4].filename, "'q'-1.0.zip");
  EXPECT_EQ(links[5].filename, "last.zip");
}

TEST(SimpleIndexHtml, ValuelessAttributesCountAsAbsentLikePip) {
  auto links = Html("<a href=a-1.whl data-yanked data-requires-python data-core-metadata>");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_FALSE(links[0].yanked);
  EXPECT_FALSE(links[0].requires_python);
  EXPECT_FALSE(links[0].core_metadata);
}

TEST(SimpleIndexHtml, FirstBaseHrefWinsAndIsResolvedAgainstThePage) {
  auto links = Html(
      "<base href=\"https://mirror.example.com/files/\"><base href=\"https://ignored/\">"
      "<a href=\"demo-1.0.zip\">");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].url, "https://mirror.example.com/files/demo-1.0.zip");
  links = Html("<base href=\"/other/\"><a href=\"demo-1.0.zip\">");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].url, "https://example.org/other/demo-1.0.zip");
}

TEST(SimpleIndexHtml, HashFragmentsFollowPip) {
  auto links = Html(
      "<a href=\"a.whl#sha512=aa&sha256=bb\"><a href=\"b.whl#blake2b=cc\">"
      "<a href=\"c.whl?sha1=dd\"><a href=\"d.whl#egg=d&sha384=ee\">");
  ASSERT_EQ(links.size(), 4u);
  EXPECT_EQ(links[0].hashes, (Hashes{{"sha512", "aa"}}));  // the first one only
  EXPECT_EQ(links[1].hashes, Hashes{});                    // pip knows no blake2b
  EXPECT_EQ(links[2].hashes, Hashes{});                    // '?' is not '#' or '&'
  EXPECT_EQ(links[3].hashes, (Hashes{{"sha384", "ee"}}));
}

TEST(SimpleIndexJson, ReadsPep691Files) {
  auto links = ParseProjectPage(R"({"meta": {"api-version": "1.1"}, "name": "demo", "files": [
    {"filename": "demo-1.0.tar.gz", "url": "../../packages/demo-1.0.tar.gz",
     "hashes": {"sha256": "aa", "blake2b": "bb"}, "requires-python": ">=3.8",
     "yanked": "bad build", "core-metadata": {"sha256": "cc", "blake2b": "dd"}},
    {"filename": "demo-1.1-py3-none-any.whl", "url": "https://f.example/demo-1.1-py3-none-any.whl#sha256=ff",
     "hashes": {"sha256": "ee"}, "yanked": true, "dist-info-metadata": true},
    {"filename": "demo-1.2-py3-none-any.whl", "url": "demo 1.2.whl", "hashes": {},
     "requires-python": "", "yanked": false, "core-metadata": false},
    {"filename": "no-url.whl"}
  ]})",
                                "application/vnd.pypi.simple.v1+json", kPage);
  ASSERT_TRUE(links) << links.error().message;
  ASSERT_EQ(links->size(), 3u);
  const DistributionLink& a = (*links)[0];
  EXPECT_EQ(a.url, "https://example.org/packages/demo-1.0.tar.gz");
  EXPECT_EQ(a.filename, "demo-1.0.tar.gz");
  EXPECT_EQ(a.hashes, (Hashes{{"blake2b", "bb"}, {"sha256", "aa"}}));
  EXPECT_EQ(a.requires_python, ">=3.8");
  EXPECT_EQ(a.yanked, "bad build");
  EXPECT_EQ(a.core_metadata, (Hashes{{"sha256", "cc"}}));
  const DistributionLink& b = (*links)[1];
  EXPECT_EQ(b.hashes, (Hashes{{"sha256", "ff"}}));  // the URL's fragment wins
  EXPECT_EQ(b.yanked, "");
  EXPECT_EQ(b.core_metadata, Hashes{});
  const DistributionLink& c = (*links)[2];
  EXPECT_EQ(c.url, "https://example.org/simple/demo/demo%201.2.whl");
  EXPECT_FALSE(c.requires_python);
  EXPECT_FALSE(c.yanked);
  EXPECT_FALSE(c.core_metadata);
}

TEST(SimpleIndexJson, RejectsMalformedDocuments) {
  EXPECT_FALSE(ParseProjectPage("{", "application/vnd.pypi.simple.v1+json", kPage));
  EXPECT_FALSE(ParseProjectPage(R"({"files": 3})", "Application/Vnd.PyPI.Simple.v1+JSON", kPage));
  auto empty = ParseProjectPage(R"({"name": "x"})", "application/vnd.pypi.simple.v1+json", kPage);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  // Any other content type is HTML, which never fails.
  EXPECT_TRUE(ParseProjectPage("{", "application/vnd.pypi.simple.v1+html", kPage));
}

TEST(ResolveUrl, FollowsUrljoin) {
  EXPECT_EQ(ResolveUrl("https://h/a/b/", "c"), "https://h/a/b/c");
  EXPECT_EQ(ResolveUrl("https://h/a/b", "c"), "https://h/a/c");
  EXPECT_EQ(ResolveUrl("https://h/a/b/", "../../../../c"), "https://h/c");
  EXPECT_EQ(ResolveUrl("https://h/a/b/", "/c/./d/../e"), "https://h/c/e");
  EXPECT_EQ(ResolveUrl("https://h/a/b/", "//other/x"), "https://other/x");
  EXPECT_EQ(ResolveUrl("https://h/a/b/", "file:///tmp/x"), "file:///tmp/x");
  EXPECT_EQ(ResolveUrl("https://h/a/b/?q", "#frag"), "https://h/a/b/?q#frag");
  EXPECT_EQ(ResolveUrl("https://h/a/b/", "?q"), "https://h/a/b/?q");
  EXPECT_EQ(ResolveUrl("https://h/a/b/", ".."), "https://h/a/");
  EXPECT_EQ(ResolveUrl("file:///srv/index/demo/", "demo-1.0.zip"),
            "file:///srv/index/demo/demo-1.0.zip");
}

TEST(ProjectPageUrl, NormalisesTheName) {
  EXPECT_EQ(ProjectPageUrl("https://pypi.org/simple", "Typing_Extensions"),
            "https://pypi.org/simple/typing-extensions/");
  EXPECT_EQ(ProjectPageUrl("https://pypi.org/simple/", "zope.interface"),
            "https://pypi.org/simple/zope-interface/");
}

TEST(ClassifyFilename, WheelsAndSdistsOfTheProject) {
  auto wheel = ClassifyFilename("Demo_Pkg-1.0-py3-none-any.whl", "demo.pkg");
  ASSERT_TRUE(wheel);
  EXPECT_EQ(wheel->kind, DistributionKind::kWheel);
  EXPECT_EQ(wheel->name, "demo-pkg");
  EXPECT_EQ(wheel->version.ToString(), "1.0");
  ASSERT_TRUE(wheel->wheel);
  auto sdist = ClassifyFilename("demo-pkg-2.0rc1.tar.gz", "Demo_Pkg");
  ASSERT_TRUE(sdist);
  EXPECT_EQ(sdist->kind, DistributionKind::kSdist);
  EXPECT_EQ(sdist->version.ToString(), "2.0rc1");
  EXPECT_FALSE(sdist->wheel);
  auto zip = ClassifyFilename("demo_pkg-3.zip", "demo-pkg");
  ASSERT_TRUE(zip);
  EXPECT_EQ(zip->version.ToString(), "3");
  EXPECT_FALSE(ClassifyFilename("demo-1.0-py3-none-any.whl", "other"));
  EXPECT_FALSE(ClassifyFilename("demo-pkg-1.0.tar.bz2", "demo-pkg"));
  EXPECT_FALSE(ClassifyFilename("demo-pkg-1.0.exe", "demo-pkg"));
  EXPECT_FALSE(ClassifyFilename("demo-pkg-not.a.version.tar.gz", "demo-pkg"));
  EXPECT_FALSE(ClassifyFilename("demo-pkg.tar.gz", "demo-pkg"));
  EXPECT_FALSE(ClassifyFilename("demo-1.0-bad.whl", "demo"));
}

constexpr const char* kParseLinksScript = R"(import json, sys
from pip._internal.index.collector import IndexContent, parse_links
out = []
for page in json.load(open(sys.argv[1])):
    links = []
    # Uncached: parse_links caches by page URL, and two pages here share one.
    content = IndexContent(page["content"].encode(), page["type"], "utf-8", page["url"],
                           cache_link_parsing=False)
    for link in parse_links(content):
        meta = link.metadata_file_data
        links.append({"url": link.url, "filename": link.filename, "hashes": link._hashes,
                      "requires_python": link.requires_python, "yanked": link.yanked_reason,
                      "metadata": None if meta is None else (meta.hashes or {})})
    out.append(links)
print(json.dumps(out))
)";

util::Json ToJson(const std::optional<std::string>& value) {
  return value ? util::Json(*value) : util::Json(nullptr);
}

TEST(SimpleIndexDifferentialTest, AgreesWithPipsParseLinks) {
  std::string python = ReferencePython();
  if (python.empty()) GTEST_SKIP() << "no Python with pip";
  struct Page {
    std::string content;
    std::string type;
    std::string url;
  };
  std::vector<Page> pages = {
      {R"(<html><body>
<a href="../../packages/ab/cd/demo-1.0.tar.gz#sha256=0123" data-requires-python="&gt;=3.7, &lt;4">demo-1.0.tar.gz</a>
<A HREF=demo-1.1-py3-none-any.whl data-yanked='reason &amp; more' data-core-metadata="sha256=ab">x</A>
<a href="demo-1.2-py3-none-any.whl" data-yanked="" data-dist-info-metadata="true">
<a href="demo-1.3.zip" data-core-metadata="md5" data-requires-python="">
<a href="demo-1.4.zip" data-core-metadata="blake2b=00">
<a href="https://other.example/x/demo%2B1-1.5.zip#sha1=aa&sha256=bb">
<a href="sp ace/%7Euser/ünï-1.0.zip?a=1&amp;b=2">
<a href="/abs/path/demo-1.6.tar.gz#md5=cc" data-yanked>
<a href="./x/../demo-1.7.zip#egg=demo">
<!-- <a href="hidden.zip"> -->
<a href="">empty</a><a>none</a>
<a href='demo;p-1.8.zip'>
<a href="demo@1.9.zip">
</body></html>)",
       "text/html", "https://example.org/simple/demo/"},
      {R"(<base href="https://mirror.example.com/files/"><a href="demo-1.0.zip"><a href="//cdn.example/x.whl">)",
       "text/html; charset=utf-8", "https://example.org/simple/demo/"},
      {"<a href=\"demo-1.0.zip\"><a href=\"sub/demo-2.0.zip\">", "text/html",
       "file:///srv/index/demo/index.html"},
      {"<A HREF=a-1.0.zip DATA-REQUIRES-PYTHON='&lt;4,&#62;=3'>x</A>"
       "<script>var s = '<a href=\"scripted-1.0.zip\">';</script>"
       "<a\nhref = \"b-1.0.zip?x=1&amp;y=2&quot\" >b</a><a href=/root/c-1.0.zip/>"
       "<a href=\"&#x27;q&#39;-1.0.zip\" data-yanked=\"&#x1F600; &#0; &AMP;\">"
       "<a href=\"x.zip\" href=\"last.zip\"><a href=\"https://h/%e2%82%ac/a%2fb.zip\">"
       "<a href=\"unfinished.zip\"",
       "text/html", "https://example.org/simple/demo/"},
      {R"({"meta": {"api-version": "1.0"}, "name": "demo", "files": [
  {"filename": "demo-1.0.tar.gz", "url": "../../packages/demo-1.0.tar.gz",
   "hashes": {"sha256": "aa", "blake2b": "bb"}, "requires-python": ">=3.8",
   "yanked": "bad", "core-metadata": {"sha256": "cc", "blake2b": "dd"}},
  {"filename": "demo-1.1-py3-none-any.whl", "url": "https://f.example/demo-1.1-py3-none-any.whl#sha256=ff",
   "hashes": {"sha256": "ee"}, "yanked": true, "dist-info-metadata": true},
  {"filename": "demo-1.2.zip", "url": "demo 1.2.zip", "hashes": {}, "requires-python": "",
   "yanked": false, "core-metadata": false, "dist-info-metadata": true},
  {"filename": "demo-1.3.zip", "url": "demo-1.3.zip", "hashes": {"md5": "11"}, "yanked": "",
   "core-metadata": {"blake2b": "22"}},
  {"filename": "x"}
]})",
       "application/vnd.pypi.simple.v1+json", "https://example.org/simple/demo/"},
  };
  util::Json input = util::Json::array();
  for (const Page& page : pages) {
    input.push_back({{"content", page.content}, {"type", page.type}, {"url", page.url}});
  }
  util::testing::TempDir dir;
  std::ofstream(dir.path() / "in.json") << input.dump();
  std::ofstream(dir.path() / "check.py") << kParseLinksScript;
  util::Result<util::Json> output =
      util::ParseJson(Capture("'" + python + "' " + (dir.path() / "check.py").string() + " " +
                              (dir.path() / "in.json").string()));
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->size(), pages.size());
  for (std::size_t i = 0; i < pages.size(); ++i) {
    auto links = ParseProjectPage(pages[i].content, pages[i].type, pages[i].url);
    ASSERT_TRUE(links) << links.error().message;
    const util::Json& want = (*output)[i];
    ASSERT_EQ(links->size(), want.size()) << "page " << i;
    for (std::size_t k = 0; k < want.size(); ++k) {
      const DistributionLink& link = (*links)[k];
      const util::Json& expected = want[k];
      std::string where = "page " + std::to_string(i) + " link " + std::to_string(k);
      EXPECT_EQ(link.url, expected["url"].get<std::string>()) << where;
      EXPECT_EQ(link.filename, expected["filename"].get<std::string>()) << where;
      EXPECT_EQ(link.hashes, expected["hashes"].get<Hashes>()) << where;
      EXPECT_EQ(ToJson(link.requires_python), expected["requires_python"]) << where;
      EXPECT_EQ(ToJson(link.yanked), expected["yanked"]) << where;
      std::optional<Hashes> metadata;
      if (!expected["metadata"].is_null()) metadata = expected["metadata"].get<Hashes>();
      EXPECT_EQ(link.core_metadata, metadata) << where;
    }
  }
}

}  // namespace
}  // namespace strata::pyinstall
