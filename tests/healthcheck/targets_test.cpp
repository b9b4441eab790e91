// What agents are sent to probe (GET /v1/targets): both forms of the
// document read back to the same targets, checks shared; bad documents are
// refused with what is wrong.
#include <gtest/gtest.h>

#include "checker.h"

namespace vane::healthcheck {
namespace {

std::vector<Target> two_checks() {
  auto web = std::make_shared<CheckSpec>();
  web->name = "web";
  web->type = "http";
  web->path = "/health";
  web->expect_status = {200, 204};
  web->interval_ms = 500;
  web->fall = 3;
  auto dns = std::make_shared<CheckSpec>();
  dns->name = "dns";
  dns->type = "dns";
  dns->qname = "example.com.";
  std::vector<Target> out;
  for (int i = 0; i < 3; ++i)
    out.push_back({"r" + std::to_string(i) + ".example.com./A/a", web, "192.0.2." + std::to_string(i + 1), 8080, i != 1});
  out.push_back({"ns.example.com./A/b", dns, "2001:db8::53", 53, true});
  return out;
}

TEST(Targets, BothFormsReadBackTheSameTargets_ChecksShared) {
  auto targets = two_checks();
  for (bool shared : {false, true}) {
    auto doc = nlohmann::json::parse(targets_document(targets, shared, "v1"));
    EXPECT_EQ(doc["version"], "v1");
    EXPECT_EQ(doc.contains("checks"), shared);
    if (shared) {
      EXPECT_EQ(doc["checks"].size(), 2u);
      EXPECT_EQ(doc["targets"][0]["check"], "web");
    }
    std::string error;
    auto back = targets_from_json(doc, error);
    ASSERT_TRUE(back) << error;
    ASSERT_EQ(back->size(), targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      const Target &a = targets[i], &b = (*back)[i];
      EXPECT_EQ(b.key, a.key);
      EXPECT_EQ(b.address, a.address);
      EXPECT_EQ(b.port, a.port);
      EXPECT_EQ(b.initial_up, a.initial_up);
      EXPECT_EQ(b.check->name, a.check->name);
      EXPECT_EQ(b.check->type, a.check->type);
      EXPECT_EQ(b.check->path, a.check->path);
      EXPECT_EQ(b.check->qname, a.check->qname);
      EXPECT_EQ(b.check->expect_status, a.check->expect_status);
      EXPECT_EQ(b.check->interval_ms, a.check->interval_ms);
      EXPECT_EQ(b.check->fall, a.check->fall);
    }
    EXPECT_EQ((*back)[0].check.get(), (*back)[2].check.get()) << "one copy of a check per document";
    EXPECT_NE((*back)[0].check.get(), (*back)[3].check.get());
  }
}

TEST(Targets, BadDocumentsAreRefusedWithWhatIsWrong) {
  auto doc = nlohmann::json::parse(targets_document(two_checks(), true, ""));
  std::string error;
  auto missing = doc;
  missing["checks"].erase("dns");
  EXPECT_FALSE(targets_from_json(missing, error));
  EXPECT_NE(error.find("not a targets document"), std::string::npos) << error;

  auto odd = doc;
  odd["checks"]["web"]["type"] = "icmp";
  error.clear();
  EXPECT_FALSE(targets_from_json(odd, error));
  EXPECT_EQ(error, "target r0.example.com./A/a: check 'web': unknown type 'icmp'");

  auto inline_doc = nlohmann::json::parse(targets_document(two_checks(), false, ""));
  inline_doc["targets"][3]["check"]["type"] = "ping";
  error.clear();
  EXPECT_FALSE(targets_from_json(inline_doc, error));
  EXPECT_EQ(error, "target ns.example.com./A/b: check 'dns': unknown type 'ping'");
}

}  // namespace
}  // namespace vane::healthcheck
