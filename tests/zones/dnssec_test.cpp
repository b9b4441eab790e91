// Keys and signatures, checked by an independent verifier: ldns's own
// RRSIG validation over the same RRset.
#include "dnssec.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "dns/name.h"
#include "dns/wire.h"
#include "ldns_ptr.h"
#include "process.h"

namespace vane::zones {
namespace {

using test::TempDir;

DnssecConfig cfg_in(const TempDir& d, uint8_t alg = kAlgEcdsaP256) {
  return DnssecConfig{true, alg, d.path() + "/keys"};
}

// Signs `rrset_text` (one RRset, presentation form) with vane and checks
// the RRSIG with ldns_verify_rrsig_keylist.
ldns_status verify_with_ldns(const KeySet& keys, const std::vector<std::string>& rrset_text, uint8_t labels,
                             const std::string& signed_owner) {
  ldns_rr_list* rrset = ldns_rr_list_new();
  std::vector<std::vector<uint8_t>> rdatas;
  uint16_t type = 0;
  uint32_t ttl = 0;
  for (const auto& t : rrset_text) {
    ldns_rr* rr = nullptr;
    EXPECT_EQ(ldns_rr_new_frm_str(&rr, t.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK) << t;
    type = ldns_rr_get_type(rr);
    ttl = ldns_rr_ttl(rr);
    ldns_buffer* b = ldns_buffer_new(512);
    ldns_rr_rdata2buffer_wire(b, rr);
    rdatas.emplace_back(ldns_buffer_begin(b), ldns_buffer_begin(b) + ldns_buffer_position(b));
    ldns_buffer_free(b);
    ldns_rr_list_push_rr(rrset, rr);
  }
  std::vector<RdataRef> refs;
  for (const auto& r : rdatas) refs.push_back({r.data(), uint16_t(r.size())});
  const DnssecKey* key = keys.signer_for(type);
  EXPECT_NE(key, nullptr);
  uint32_t now = uint32_t(time(nullptr));
  SigHeader h{type, key->algorithm, labels, ttl, now + 3600, now - 3600, key->tag};
  dns::NameBuf owner;
  dns::from_text(signed_owner, owner);
  uint8_t sig[kSigLen];
  EXPECT_TRUE(sign_rrset(*key, keys.signer, h, owner.wire(), refs, sig));
  // The RRSIG as presentation text, parsed back by ldns.
  char b64[128];
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64), sig, kSigLen);
  ldns_rdf* exp = ldns_native2rdf_int32(LDNS_RDF_TYPE_TIME, h.expiration);
  ldns_rdf* inc = ldns_native2rdf_int32(LDNS_RDF_TYPE_TIME, h.inception);
  char* exp_s = ldns_rdf2str(exp);
  char* inc_s = ldns_rdf2str(inc);
  std::string owner_text = rrset_text[0].substr(0, rrset_text[0].find(' '));
  char* type_s = ldns_rr_type2str(ldns_rr_type(type));
  std::string sig_text = owner_text + " " + std::to_string(ttl) + " IN RRSIG " + type_s + " " +
                         std::to_string(key->algorithm) + " " + std::to_string(labels) + " " + std::to_string(ttl) +
                         " " + exp_s + " " + inc_s + " " + std::to_string(key->tag) + " example.com. " + b64;
  free(type_s);
  free(exp_s);
  free(inc_s);
  ldns_rdf_deep_free(exp);
  ldns_rdf_deep_free(inc);
  ldns_rr* rrsig = nullptr;
  EXPECT_EQ(ldns_rr_new_frm_str(&rrsig, sig_text.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK) << sig_text;
  ldns_rr_list* sigs = ldns_rr_list_new();
  ldns_rr_list_push_rr(sigs, rrsig);
  ldns_rr_list* dnskeys = ldns_rr_list_new();
  for (const auto& k : keys.keys) {
    ldns_rr* rr = nullptr;
    ldns_rr_new_frm_str(&rr, dnskey_text("example.com", k, 3600).c_str(), 0, nullptr, nullptr);
    ldns_rr_list_push_rr(dnskeys, rr);
  }
  ldns_rr_list* good = ldns_rr_list_new();
  ldns_status st = ldns_verify_rrsig_keylist(rrset, rrsig, dnskeys, good);
  ldns_rr_list_free(good);
  ldns_rr_list_deep_free(dnskeys);
  ldns_rr_list_deep_free(sigs);
  ldns_rr_list_deep_free(rrset);
  return st;
}

TEST(DnssecKeys, MadeWhenMissing_LoadedBack_SignaturesVerifyWithLdns) {
  TempDir d;
  std::string made;
  auto keys = load_keys("example.com", cfg_in(d), true, &made);
  ASSERT_TRUE(keys) << keys.error().to_string();
  ASSERT_EQ((*keys)->keys.size(), 1u);
  EXPECT_NE(made.find("/keys/Kexample.com.+013+"), std::string::npos) << made;
  struct stat sb {};
  ASSERT_EQ(stat((made + ".private").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u) << "the private key is the owner's alone";
  const DnssecKey& k = (*keys)->keys[0];
  EXPECT_EQ(k.flags, 257);
  EXPECT_EQ(k.role, KeyRole::kCsk);
  auto again = load_keys("example.com", cfg_in(d), true);
  ASSERT_TRUE(again);
  ASSERT_EQ((*again)->keys.size(), 1u);
  EXPECT_EQ((*again)->keys[0].tag, k.tag);
  EXPECT_NE((*again)->id, (*keys)->id);
  // Names in rdata of any case sign in canonical form; RRs in any order.
  EXPECT_EQ(verify_with_ldns(**keys, {"www.example.com. 600 IN A 192.0.2.11", "www.example.com. 600 IN A 192.0.2.10"},
                             3, "www.example.com."),
            LDNS_STATUS_OK);
  EXPECT_EQ(verify_with_ldns(**keys, {"_s._tcp.example.com. 60 IN SRV 1 2 3 Target.Example.COM."}, 4,
                             "_s._tcp.example.com."),
            LDNS_STATUS_OK);
  EXPECT_EQ(verify_with_ldns(**keys, {"x.example.com. 60 IN MX 10 Mail.Example.com.", "x.example.com. 60 IN MX 5 a."},
                             3, "x.example.com."),
            LDNS_STATUS_OK);
}

TEST(DnssecKeys, Ed25519) {
  TempDir d;
  auto keys = load_keys("example.com", cfg_in(d, kAlgEd25519), true);
  ASSERT_TRUE(keys) << keys.error().to_string();
  EXPECT_EQ((*keys)->keys[0].algorithm, kAlgEd25519);
  EXPECT_EQ(verify_with_ldns(**keys, {"www.example.com. 600 IN A 192.0.2.10"}, 3, "www.example.com."), LDNS_STATUS_OK);
}

TEST(DnssecKeys, KskAndZskSplit_KeysWithoutStateFiles) {
  TempDir d;
  std::string dir = d.path() + "/keys";
  auto ksk = generate_key("example.com", dir, kAlgEcdsaP256, KeyRole::kKsk, KeyState::kActive);
  auto zsk = generate_key("example.com", dir, kAlgEcdsaP256, KeyRole::kZsk, KeyState::kActive);
  ASSERT_TRUE(ksk && zsk);
  // As ldns-keygen leaves them: no .state; 257 beside 256 is then a KSK.
  unlink((ksk->base + ".state").c_str());
  unlink((zsk->base + ".state").c_str());
  auto keys = load_keys("example.com", cfg_in(d), false);
  ASSERT_TRUE(keys) << keys.error().to_string();
  ASSERT_EQ((*keys)->keys.size(), 2u);
  EXPECT_EQ((*keys)->signer_for(dns::kTypeDNSKEY)->tag, ksk->tag);
  EXPECT_EQ((*keys)->signer_for(dns::kTypeA)->tag, zsk->tag);
  EXPECT_EQ(verify_with_ldns(**keys, {"www.example.com. 600 IN A 192.0.2.10"}, 3, "www.example.com."), LDNS_STATUS_OK);
  EVP_PKEY_free(ksk->pkey);
  EVP_PKEY_free(zsk->pkey);
}

TEST(DnssecKeys, BrokenFilesAreNamed) {
  TempDir d;
  std::string dir = d.path() + "/keys";
  auto k = generate_key("example.com", dir, kAlgEcdsaP256, KeyRole::kCsk, KeyState::kActive);
  ASSERT_TRUE(k);
  EVP_PKEY_free(k->pkey);
  {
    std::ofstream(k->base + ".private") << "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: !!\n";
  }
  auto keys = load_keys("example.com", cfg_in(d), true);
  ASSERT_FALSE(keys);
  EXPECT_NE(keys.error().to_string().find(k->base + ".private"), std::string::npos) << keys.error().to_string();
  // A key of another zone in the dir is not ours: not loaded.
  TempDir other;
  auto o = generate_key("example.org", other.path() + "/keys", kAlgEcdsaP256, KeyRole::kCsk, KeyState::kActive);
  ASSERT_TRUE(o);
  EVP_PKEY_free(o->pkey);
  auto none = load_keys("example.com", cfg_in(other), false);
  ASSERT_TRUE(none);
  EXPECT_TRUE((*none)->keys.empty());
  // Keys present but none active.
  auto p = generate_key("example.com", other.path() + "/keys", kAlgEcdsaP256, KeyRole::kCsk, KeyState::kPublished);
  ASSERT_TRUE(p);
  EVP_PKEY_free(p->pkey);
  auto inactive = load_keys("example.com", cfg_in(other), true);
  ASSERT_FALSE(inactive);
  EXPECT_NE(inactive.error().to_string().find("no active key for example.com."), std::string::npos);
}

TEST(DnssecKeys, DsIsSha256OfTheDnskey) {
  TempDir d;
  auto keys = load_keys("example.com", cfg_in(d), true);
  ASSERT_TRUE(keys);
  std::string ds = ds_text("example.com", (*keys)->keys[0], 3600);
  EXPECT_EQ(ds.rfind("example.com. 3600 IN DS " + std::to_string((*keys)->keys[0].tag) + " 13 2 ", 0), 0u) << ds;
  EXPECT_EQ(ds.size() - ds.rfind(' ') - 1, 64u) << ds;
  // The same DS as ldns makes it (the CDS's rdata and this text are ours, with OpenSSL).
  RrPtr dnskey;
  {
    ldns_rr* raw = nullptr;
    ASSERT_EQ(ldns_rr_new_frm_str(&raw, dnskey_text("example.com", (*keys)->keys[0], 3600).c_str(), 0, nullptr,
                                  nullptr),
              LDNS_STATUS_OK);
    dnskey.reset(raw);
  }
  RrPtr reference(ldns_key_rr2ds(dnskey.get(), LDNS_SHA256));
  ASSERT_TRUE(reference);
  char* t = ldns_rr2str(reference.get());
  std::string text = t;
  free(t);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::replace(text.begin(), text.end(), '\t', ' ');
  EXPECT_EQ(ds, text);
  const uint8_t owner[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  std::vector<uint8_t> rd = ds_rdata(owner, (*keys)->keys[0]);
  ASSERT_EQ(rd.size(), 36u);
  BufferPtr wire(ldns_buffer_new(64));
  ASSERT_EQ(ldns_rr_rdata2buffer_wire(wire.get(), reference.get()), LDNS_STATUS_OK);
  std::vector<uint8_t> ref_rd(ldns_buffer_begin(wire.get()), ldns_buffer_begin(wire.get()) + ldns_buffer_position(wire.get()));
  EXPECT_EQ(rd, ref_rd);
}

TEST(DnssecCache, BoundedAndRefreshedByAge) {
  SigCache c;
  EXPECT_EQ(c.find(5, 1000), nullptr);
  auto& e = c.insert(5, 1000);
  e.inception = 1000 - SigCache::kBackdate;
  EXPECT_NE(c.find(5, 1000 + SigCache::kRefresh - 1), nullptr);
  EXPECT_EQ(c.find(5, 1000 + SigCache::kRefresh), nullptr) << "made anew once a week old";
  for (uint64_t k = 1; k < 200000; ++k) c.insert(k * 0x9E3779B97F4A7C15ULL | 1, 1000);
  EXPECT_LE(c.size(), SigCache::kDefaultSlots);
  SigCache small;
  small.set_capacity(1000);
  EXPECT_EQ(small.capacity(), 1024u);
  for (uint64_t k = 1; k < 5000; ++k) small.insert(k * 0x9E3779B97F4A7C15ULL | 1, 1000);
  EXPECT_LE(small.size(), 1024u);
}

}  // namespace
}  // namespace vane::zones
