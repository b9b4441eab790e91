// TSIG checks (zones/tsig.h) on messages signed by ldns: a good request
// verifies; a second TSIG, or one anywhere but last in the additional
// section, is found malformed (FORMERR) before ldns parses the message (RFC 8945 §5.1; ldns
// would keep the last TSIG and leak the others: ASan runs this).
#include <gtest/gtest.h>

#include <ctime>
#include <vector>

#include "dns/wire.h"
#include "tsig.h"

namespace vane::zones {
namespace {

const TsigKey kKey{"xfr", "hmac-sha256", "c2VjcmV0IG9mIHRoZSB0c2lnIHRlc3QsIDMyIGJ5dGVz", 0};

// An AXFR request for example.com, signed with kKey.
std::vector<uint8_t> signed_request() {
  std::vector<uint8_t> w = {0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (uint8_t c : std::string("\7example\3com")) w.push_back(c);
  w.insert(w.end(), {0, 0, 252, 0, 1});  // root, AXFR, IN
  TsigClient client(kKey);
  EXPECT_TRUE(client.sign_request(w));
  return w;
}

// An empty TSIG record (root owner, no rdata), as a malformed client sends it.
const std::vector<uint8_t> kBareTsig = {0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0};

TEST(Tsig, ASignedRequestVerifies) {
  TsigKeys keys{{"xfr", kKey}};
  auto w = signed_request();
  TsigCheck c = tsig_check(w, keys, uint64_t(time(nullptr)));
  EXPECT_TRUE(c.present);
  EXPECT_FALSE(c.malformed);
  EXPECT_EQ(c.error, TsigError::kNone);
  EXPECT_EQ(c.key, &keys.at("xfr"));
  EXPECT_EQ(c.key_name, "xfr");
}

TEST(Tsig, ASecondTsigOrOneNotLast_IsMalformedBeforeLdnsParsesIt) {
  TsigKeys keys{{"xfr", kKey}};
  uint64_t now = uint64_t(time(nullptr));
  auto bump = [](std::vector<uint8_t>& w, size_t count_at) { dns::put16(&w[count_at], dns::get16(&w[count_at]) + 1); };
  {  // a second TSIG after the real one
    auto w = signed_request();
    w.insert(w.end(), kBareTsig.begin(), kBareTsig.end());
    bump(w, 10);
    TsigCheck c = tsig_check(w, keys, now);
    EXPECT_TRUE(c.malformed);
    EXPECT_EQ(c.key, nullptr);
  }
  {  // before it: the real one is last, but it is not the only one
    auto w = signed_request();
    size_t question_end = 12 + 13 + 4;
    w.insert(w.begin() + question_end, kBareTsig.begin(), kBareTsig.end());
    bump(w, 10);
    EXPECT_TRUE(tsig_check(w, keys, now).malformed);
  }
  {  // the only TSIG, in the answer section
    std::vector<uint8_t> w = {0x12, 0x34, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};
    for (uint8_t c : std::string("\7example\3com")) w.push_back(c);
    w.insert(w.end(), {0, 0, 252, 0, 1});
    w.insert(w.end(), kBareTsig.begin(), kBareTsig.end());
    EXPECT_TRUE(tsig_check(w, keys, now).malformed);
  }
  {  // an answer stream's message with two TSIGs: the client refuses it
    TsigClient client(kKey);
    auto request = signed_request();
    auto w = request;
    w.insert(w.end(), kBareTsig.begin(), kBareTsig.end());
    bump(w, 10);
    EXPECT_FALSE(client.verify(w));
  }
}

}  // namespace
}  // namespace vane::zones
