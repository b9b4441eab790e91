// yaml::Doc against yaml-cpp's own YAML::Load: the same nodes, scalars and
// marks for every config in the repository, the same answers and exceptions
// for what config.cpp asks, and the zones: hook handing over each item while
// the parse goes on.
#include "yaml_tree.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace vane::yaml {
namespace {

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Node by node: type, mark, scalar, size, keys and values in order.
void same(const YAML::Node& want, const Node& got, const std::string& where) {
  ASSERT_EQ(want.Type(), got.Type()) << where;
  EXPECT_EQ(want.Mark().line, got.Mark().line) << where;
  EXPECT_EQ(want.Mark().column, got.Mark().column) << where;
  EXPECT_EQ(want.size(), got.size()) << where;
  if (want.IsScalar()) {
    EXPECT_EQ(want.Scalar(), got.Scalar()) << where;
  }
  if (want.IsSequence()) {
    for (size_t i = 0; i < want.size(); ++i) same(want[i], got[i], where + "[" + std::to_string(i) + "]");
  }
  if (want.IsMap()) {
    auto w = want.begin();
    auto g = got.begin();
    for (; w != want.end(); ++w, ++g) {
      ASSERT_NE(g, got.end()) << where;
      Node::Entry e = *g;
      same(w->first, e.first, where + ".key");
      same(w->second, e.second, where + "." + w->first.Scalar());
      if (w->first.IsScalar()) {
        same(want[w->first.Scalar()], got[w->first.Scalar()], where + "[" + w->first.Scalar() + "]");
      }
    }
    EXPECT_EQ(g, got.end()) << where;
  }
}

TEST(YamlTree, EveryConfigInTheRepository_ReadsAsYamlCppReadsIt) {
  std::filesystem::path root = std::filesystem::path(VANE_TEST_DATA).parent_path().parent_path();
  size_t files = 0;
  for (const char* dir : {"tests/fuzz/corpus/config", "dist/prometheus", "tests/prometheus"})
    for (const auto& e : std::filesystem::directory_iterator(root / dir)) {
      std::string text = read(e.path()), where = e.path().string();
      std::optional<YAML::Node> want;
      int error_line = -1;
      try {
        want = YAML::Load(text);
      } catch (const YAML::ParserException& ex) {
        error_line = ex.mark.line;
      }
      Doc d;
      try {
        d.parse(text);
        ASSERT_TRUE(want) << where << ": yaml-cpp refused it";
        same(*want, d.root(), where);
      } catch (const YAML::ParserException& ex) {
        EXPECT_EQ(ex.mark.line, error_line) << where;
      }
      ++files;
    }
  EXPECT_GE(files, 5u);
}

TEST(YamlTree, HandWrittenCorners_ReadAsYamlCppReadsThem) {
  const char* text = R"(# a comment
plain: value
quoted: "a: b"
single: 'it''s'
empty:
tilde: ~
number: 0x1F
list: [1, 2, [3, 4], {k: v}]
block:
  - one
  - two: 2
    three: 3
  -
folded: >
  a
  b
literal: |
  x
  y
anchor: &a { x: 1, y: [2] }
alias: *a
dup: 1
dup: 2
"quoted key": q
? complex
: c
)";
  Doc d;
  d.parse(text);
  same(YAML::Load(text), d.root(), "corners");
}

TEST(YamlTree, AnswersAndExceptions_AreYamlCpps) {
  Doc d;
  d.parse("a: 1\nb: x\nn:\ns: [1]\nneg: -3\n");
  Node r = d.root();
  ASSERT_TRUE(r.IsMap());
  EXPECT_EQ(r["a"].as<uint64_t>(), 1u);
  EXPECT_EQ(r["a"].as<std::string>(), "1");
  EXPECT_EQ(r["n"].as<std::string>(), "null");  // yaml-cpp's answer for a null
  EXPECT_TRUE(r["n"].IsNull());
  EXPECT_TRUE(r["n"]);  // present, though null
  // A failed conversion carries the node's line.
  try {
    r["b"].as<uint64_t>();
    FAIL();
  } catch (const YAML::TypedBadConversion<uint64_t>& e) {
    EXPECT_EQ(e.mark.line, 1);
  }
  EXPECT_THROW(r["neg"].as<uint64_t>(), YAML::BadConversion);
  EXPECT_THROW(r["s"].as<std::string>(), YAML::BadConversion);
  // A missing key: false; anything more asked of it throws, as a zombie does.
  Node missing = r["nope"];
  EXPECT_FALSE(missing);
  EXPECT_THROW(missing.Mark(), YAML::InvalidNode);
  EXPECT_THROW(missing["deeper"], YAML::InvalidNode);
  EXPECT_THROW(missing.as<std::string>(), YAML::InvalidNode);
  EXPECT_EQ(missing.begin(), missing.end());
  // A scalar's subscript.
  EXPECT_THROW(r["a"]["x"], YAML::BadSubscript);
  // An empty document: a null root, as YAML::Load gives.
  Doc empty;
  empty.parse("");
  EXPECT_TRUE(empty.root().IsNull());
  EXPECT_FALSE(empty.root().IsMap());
}

TEST(YamlTree, ZonesHook_GetsEachItemAsItIsRead_EvenBeforeALaterSyntaxError) {
  std::vector<std::string> seen;
  Doc::ItemHook hook{"zones", [&](const Node& z) { seen.push_back(z["name"].Scalar() + "@" + std::to_string(z.Mark().line + 1)); }};
  Doc d;
  d.parse(R"(listen: ["127.0.0.1:0"]
records:
  - { name: a, zones: [{ name: not-me }] }
zones:
  - { name: z1.test, file: z1 }
  - name: z2.test
    file: z2
other: { zones: [{ name: nor-me }] }
)",
          &hook);
  EXPECT_EQ(seen, (std::vector<std::string>{"z1.test@5", "z2.test@6"}));

  seen.clear();
  Doc bad;
  try {
    bad.parse("zones:\n  - { name: a.test, file: a }\n  - { name: b.test, file: b }\n  - { name: c.test\n", &hook);
    FAIL() << "a syntax error must throw";
  } catch (const YAML::ParserException& e) {
    EXPECT_GE(e.mark.line, 3);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a.test@2", "b.test@3"}));
}

}  // namespace
}  // namespace vane::yaml
