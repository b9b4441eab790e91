// DNSSEC keys and signatures. Key files are BIND's format, read and written
// by ldns (so `ldns-keygen` keys load too); the crypto is OpenSSL's.
#include "dnssec.h"

#include <dirent.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "dns/name.h"
#include "dns/wire.h"
#include "ldns_ptr.h"

namespace vane::zones {

namespace {

std::atomic<uint64_t> g_keyset_ids{1};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct FileClose {
  void operator()(FILE* f) const { fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileClose>;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(dns::ascii_lower(static_cast<uint8_t>(c)));
  return s;
}

std::string fqdn(const std::string& origin) {
  std::string o = lower(origin);
  if (o.empty() || o.back() != '.') o += '.';
  return o;
}

std::vector<uint8_t> rdata_wire(const ldns_rr* rr) {
  std::vector<uint8_t> out;
  ldns_buffer* b = ldns_buffer_new(512);
  if (ldns_rr_rdata2buffer_wire(b, rr) == LDNS_STATUS_OK)
    out.assign(ldns_buffer_begin(b), ldns_buffer_begin(b) + ldns_buffer_position(b));
  ldns_buffer_free(b);
  return out;
}

// .state: "role: csk\nstate: active\ncreated: 1764150000\n".
void read_state(const std::string& path, DnssecKey& k, bool& found) {
  std::ifstream in(path);
  found = bool(in);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), val = line.substr(colon + 1);
    val.erase(0, val.find_first_not_of(' '));
    if (key == "role") k.role = val == "ksk" ? KeyRole::kKsk : val == "zsk" ? KeyRole::kZsk : KeyRole::kCsk;
    if (key == "state")
      k.state = val == "published" ? KeyState::kPublished : val == "retired" ? KeyState::kRetired : KeyState::kActive;
    if (key == "created") k.created = std::strtoll(val.c_str(), nullptr, 10);
  }
}

// Writes `text` to `path` and fsyncs it (and, by the caller, the dir).
std::optional<Error> write_file(const std::string& path, const std::string& text, mode_t mode, bool exclusive) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Error{path, 0, std::string("cannot write: ") + strerror(errno)};
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && fsync(fd) == 0;
  close(fd);
  if (ok && exclusive && access(path.c_str(), F_OK) == 0) ok = (errno = EEXIST, false);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return Error{path, 0, std::string("cannot write: ") + strerror(e)};
  }
  return std::nullopt;
}

void sync_dir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

std::optional<Error> make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
      return Error{dir, 0, std::string("cannot create the key directory: ") + strerror(errno)};
  }
  return std::nullopt;
}

// Loads one key from its base path ("<dir>/K<zone>.+NNN+TTTTT").
Result<DnssecKey> read_key(const std::string& base, const std::string& origin) {
  FilePtr pf(fopen((base + ".private").c_str(), "r"));
  if (!pf) return Error{base + ".private", 0, std::string("cannot open: ") + strerror(errno)};
  ldns_key* raw = nullptr;
  int line = 0;
  if (ldns_key_new_frm_fp_l(&raw, pf.get(), &line) != LDNS_STATUS_OK || !raw)
    return Error{base + ".private", line, "not a private key ldns can read (BIND format)"};
  LdnsKeyPtr lk(raw);
  FilePtr kf(fopen((base + ".key").c_str(), "r"));
  if (!kf) return Error{base + ".key", 0, std::string("cannot open: ") + strerror(errno)};
  ldns_rr* rr_raw = nullptr;
  uint32_t ttl = 3600;
  ldns_rdf* prev = nullptr;
  ldns_rdf* orig = ldns_dname_new_frm_str(origin.c_str());
  ldns_status st;
  do {  // skip comments and blank lines
    st = ldns_rr_new_frm_fp_l(&rr_raw, kf.get(), &ttl, &orig, &prev, &line);
  } while (st == LDNS_STATUS_SYNTAX_EMPTY || st == LDNS_STATUS_SYNTAX_TTL || st == LDNS_STATUS_SYNTAX_ORIGIN);
  ldns_rdf_deep_free(orig);
  ldns_rdf_deep_free(prev);
  if (st != LDNS_STATUS_OK || !rr_raw) return Error{base + ".key", line, "not a DNSKEY record"};
  RrPtr rr(rr_raw);
  char* owner = ldns_rdf2str(ldns_rr_owner(rr.get()));
  bool same_owner = owner && lower(owner) == origin;
  free(owner);
  if (ldns_rr_get_type(rr.get()) != LDNS_RR_TYPE_DNSKEY || !same_owner)
    return Error{base + ".key", line, "not a DNSKEY record for " + origin};
  DnssecKey k;
  k.base = base;
  k.dnskey = rdata_wire(rr.get());
  if (k.dnskey.size() < 4) return Error{base + ".key", line, "DNSKEY without a key"};
  k.flags = dns::get16(k.dnskey.data());
  k.algorithm = k.dnskey[3];
  k.tag = ldns_calc_keytag(rr.get());
  if (k.algorithm != kAlgEcdsaP256 && k.algorithm != kAlgEd25519)
    return Error{base + ".key", line,
                 "algorithm " + std::to_string(k.algorithm) + " is not supported (13 ecdsap256sha256, 15 ed25519)"};
  // The public key must be the private key's.
  ldns_key_set_flags(lk.get(), k.flags);
  ldns_key_set_pubkey_owner(lk.get(), ldns_rdf_clone(ldns_rr_owner(rr.get())));
  RrPtr derived(ldns_key2rr(lk.get()));
  if (!derived || rdata_wire(derived.get()) != k.dnskey)
    return Error{base + ".key", line, "this DNSKEY does not belong to " + base + ".private"};
  k.pkey = ldns_key_evp_key(lk.get());
  if (!k.pkey || EVP_PKEY_up_ref(k.pkey) != 1) return Error{base + ".private", 0, "no usable key in it"};
  k.role = k.flags & 1 ? KeyRole::kCsk : KeyRole::kZsk;
  bool found = false;
  read_state(base + ".state", k, found);
  if (!found) {
    struct stat sb {};
    if (stat((base + ".private").c_str(), &sb) == 0) k.created = sb.st_mtime;
  }
  return k;
}

}  // namespace

const char* role_name(KeyRole r) {
  return r == KeyRole::kKsk ? "ksk" : r == KeyRole::kZsk ? "zsk" : "csk";
}
const char* state_name(KeyState s) {
  return s == KeyState::kPublished ? "published" : s == KeyState::kRetired ? "retired" : "active";
}
const char* algorithm_name(uint8_t alg) {
  return alg == kAlgEd25519 ? "ed25519" : alg == kAlgEcdsaP256 ? "ecdsap256sha256" : "unsupported";
}
bool algorithm_from_name(const std::string& name, uint8_t& alg) {
  std::string n = lower(name);
  if (n == "ecdsap256sha256" || n == "13") return alg = kAlgEcdsaP256, true;
  if (n == "ed25519" || n == "15") return alg = kAlgEd25519, true;
  return false;
}

KeySet::~KeySet() {
  for (auto& k : keys) EVP_PKEY_free(k.pkey);
}

const DnssecKey* KeySet::signer_for(uint16_t type) const {
  bool sep_type = type == dns::kTypeDNSKEY || type == dns::kTypeCDS || type == dns::kTypeCDNSKEY;
  // The split key for the duty, else a CSK, else whatever is active.
  const DnssecKey* best = nullptr;
  int best_rank = 3;
  for (const auto& k : keys) {
    if (k.state != KeyState::kActive) continue;
    int rank = k.role == (sep_type ? KeyRole::kKsk : KeyRole::kZsk) ? 0 : k.role == KeyRole::kCsk ? 1 : 2;
    if (rank < best_rank) best = &k, best_rank = rank;
  }
  return best;
}

bool KeySet::has_active() const {
  return std::any_of(keys.begin(), keys.end(), [](const DnssecKey& k) { return k.state == KeyState::kActive; });
}

Result<DnssecKey> generate_key(const std::string& origin_text, const std::string& dir, uint8_t algorithm, KeyRole role,
                               KeyState state) {
  std::string origin = fqdn(origin_text);
  if (auto e = make_dirs(dir)) return *e;
  ldns_signing_algorithm a = algorithm == kAlgEd25519 ? LDNS_SIGN_ED25519 : LDNS_SIGN_ECDSAP256SHA256;
  LdnsKeyPtr lk(ldns_key_new_frm_algorithm(a, 256));
  if (!lk) return Error{dir, 0, std::string("cannot generate a ") + algorithm_name(algorithm) + " key"};
  uint16_t flags = role == KeyRole::kZsk ? 256 : 257;
  ldns_key_set_flags(lk.get(), flags);
  ldns_key_set_pubkey_owner(lk.get(), ldns_dname_new_frm_str(origin.c_str()));
  RrPtr rr(ldns_key2rr(lk.get()));
  if (!rr) return Error{dir, 0, "cannot make the DNSKEY record"};
  ldns_rr_set_ttl(rr.get(), 3600);
  uint16_t tag = ldns_calc_keytag(rr.get());
  char name[300];
  snprintf(name, sizeof name, "K%s+%03u+%05u", origin.c_str(), unsigned(algorithm), unsigned(tag));
  std::string base = dir + "/" + name;
  char* rr_text = ldns_rr2str(rr.get());
  std::string key_text = std::string("; ") + role_name(role) + " for " + origin + ", made by vane\n" + rr_text;
  free(rr_text);
  char* priv = nullptr;
  size_t priv_len = 0;
  FILE* mem = open_memstream(&priv, &priv_len);
  ldns_key_print(mem, lk.get());
  fclose(mem);
  std::string priv_text(priv, priv_len);
  OPENSSL_cleanse(priv, priv_len);
  free(priv);
  DnssecKey k;
  k.role = role;
  k.state = state;
  k.created = unix_now();
  k.base = base;
  if (auto e = write_file(base + ".private", priv_text, 0600, true)) return *e;
  OPENSSL_cleanse(priv_text.data(), priv_text.size());
  if (auto e = write_file(base + ".key", key_text, 0644, true)) return *e;
  if (auto e = write_key_state(k)) return *e;
  sync_dir(dir);
  return read_key(base, origin);
}

std::optional<Error> write_key_state(const DnssecKey& k) {
  std::string text = std::string("role: ") + role_name(k.role) + "\nstate: " + state_name(k.state) +
                     "\ncreated: " + std::to_string(k.created) + "\n";
  auto e = write_file(k.base + ".state", text, 0644, false);
  sync_dir(k.base.substr(0, k.base.rfind('/')));
  return e;
}

Result<std::shared_ptr<const KeySet>> load_keys(const std::string& origin_text, const DnssecConfig& cfg, bool create,
                                                std::string* made) {
  std::string origin = fqdn(origin_text);
  auto set = std::make_shared<KeySet>();
  set->id = g_keyset_ids.fetch_add(1);
  dns::NameBuf nb;
  dns::from_text(origin, nb);
  set->signer.assign(nb.data, nb.data + nb.len);
  std::string prefix = "k" + origin + "+";  // compared with the lowercased file name
  std::vector<std::string> bases;
  if (DIR* d = opendir(cfg.key_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      const std::string suffix = ".private";
      if (n.size() > prefix.size() + suffix.size() && lower(n.substr(0, prefix.size())) == prefix &&
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
        bases.push_back(cfg.key_dir + "/" + n.substr(0, n.size() - suffix.size()));
    }
    closedir(d);
  } else if (errno != ENOENT || !create) {
    if (errno == ENOENT) return std::shared_ptr<const KeySet>(set);  // a config check: no key yet
    return Error{cfg.key_dir, 0, std::string("cannot read the key directory: ") + strerror(errno)};
  }
  std::sort(bases.begin(), bases.end());
  for (const auto& b : bases) {
    auto k = read_key(b, origin);
    if (!k) return k.error();
    set->keys.push_back(k.take());
  }
  // Without .state files (ldns-keygen keys), 257 beside 256 is a KSK.
  bool has_zsk = std::any_of(set->keys.begin(), set->keys.end(), [](auto& k) { return k.role == KeyRole::kZsk; });
  for (auto& k : set->keys)
    if (has_zsk && k.role == KeyRole::kCsk && access((k.base + ".state").c_str(), F_OK) != 0) k.role = KeyRole::kKsk;
  if (set->keys.empty() && create) {
    auto k = generate_key(origin, cfg.key_dir, cfg.algorithm, KeyRole::kCsk, KeyState::kActive);
    if (!k) return k.error();
    if (made) *made = k->base;
    set->keys.push_back(k.take());
  }
  if (!set->keys.empty() && !set->has_active())
    return Error{cfg.key_dir, 0,
                 "no active key for " + origin + " (" + std::to_string(set->keys.size()) +
                     " published or retired): make one active with vanectl dnssec activate"};
  return std::shared_ptr<const KeySet>(set);
}

std::string dnskey_text(const std::string& origin_text, const DnssecKey& k, uint32_t ttl) {
  std::string b64(4 * ((k.dnskey.size() - 4 + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), k.dnskey.data() + 4, int(k.dnskey.size() - 4));
  b64.resize(n > 0 ? size_t(n) : 0);
  return fqdn(origin_text) + " " + std::to_string(ttl) + " IN DNSKEY " + std::to_string(k.flags) + " 3 " +
         std::to_string(k.algorithm) + " " + b64;
}

std::vector<uint8_t> ds_rdata(std::span<const uint8_t> owner, const DnssecKey& k) {
  // RFC 4034 §5.1.4: digest = SHA-256(owner | DNSKEY rdata).
  std::vector<uint8_t> rd{uint8_t(k.tag >> 8), uint8_t(k.tag), k.algorithm, 2};
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(md, owner.data(), owner.size()) == 1 &&
            EVP_DigestUpdate(md, k.dnskey.data(), k.dnskey.size()) == 1 && EVP_DigestFinal_ex(md, digest, &len) == 1;
  EVP_MD_CTX_free(md);
  if (!ok) return {};
  rd.insert(rd.end(), digest, digest + len);
  return rd;
}

std::string ds_text(const std::string& origin_text, const DnssecKey& k, uint32_t ttl) {
  dns::NameBuf owner;
  if (!dns::from_text(fqdn(origin_text), owner)) return {};
  std::vector<uint8_t> rd = ds_rdata(owner.wire(), k);
  if (rd.size() < 4) return {};
  std::string s = fqdn(origin_text) + " " + std::to_string(ttl) + " IN DS " + std::to_string(rd[0] << 8 | rd[1]) +
                  " " + std::to_string(rd[2]) + " " + std::to_string(rd[3]) + " ";
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 4; i < rd.size(); ++i) s += {kHex[rd[i] >> 4], kHex[rd[i] & 15]};
  return s;
}

// ---- signing -------------------------------------------------------------

namespace {

// Lowercases, in place, the names RFC 4034 §6.2 (as amended by RFC 6840
// §5.1) puts in canonical form. `rd` is one RR's rdata.
void canonical_rdata(uint16_t type, uint8_t* rd, size_t len) {
  auto name_at = [&](size_t off) -> size_t {
    if (off >= len) return len;
    size_t n = dns::wire_name_len({rd + off, len - off});
    for (size_t i = 0; i < n; ++i) rd[off + i] = dns::ascii_lower(rd[off + i]);
    return off + n;
  };
  auto skip_string = [&](size_t off) -> size_t { return off < len ? off + 1 + rd[off] : len; };
  switch (type) {
    case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12: case 39:  // NS MD MF CNAME MB MG MR PTR DNAME
      name_at(0);
      break;
    case 6: case 14: case 17:  // SOA MINFO RP
      name_at(name_at(0));
      break;
    case 15: case 18: case 21: case 36:  // MX AFSDB RT KX
      name_at(2);
      break;
    case 26:  // PX
      name_at(name_at(2));
      break;
    case 33:  // SRV
      name_at(6);
      break;
    case 35:  // NAPTR: order, preference, flags, services, regexp, replacement
      name_at(skip_string(skip_string(skip_string(4))));
      break;
    default:
      break;
  }
}

struct SignScratch {
  std::vector<uint8_t> data;
  std::vector<uint8_t> rdatas;
  std::vector<std::pair<uint32_t, uint16_t>> order;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~SignScratch() { EVP_MD_CTX_free(md); }
};

}  // namespace

bool sign_rrset(const DnssecKey& key, std::span<const uint8_t> signer, const SigHeader& h,
                std::span<const uint8_t> owner, std::span<const RdataRef> rdatas, uint8_t* sig) {
  thread_local SignScratch s;
  // Canonical rdata, sorted, duplicates dropped (RFC 4034 §6.3).
  s.rdatas.clear();
  s.order.clear();
  for (const RdataRef& r : rdatas) {
    uint32_t off = static_cast<uint32_t>(s.rdatas.size());
    s.rdatas.insert(s.rdatas.end(), r.data, r.data + r.len);
    canonical_rdata(h.type, s.rdatas.data() + off, r.len);
    s.order.push_back({off, r.len});
  }
  auto less = [&](const std::pair<uint32_t, uint16_t>& a, const std::pair<uint32_t, uint16_t>& b) {
    int c = std::memcmp(s.rdatas.data() + a.first, s.rdatas.data() + b.first, std::min(a.second, b.second));
    return c != 0 ? c < 0 : a.second < b.second;
  };
  std::sort(s.order.begin(), s.order.end(), less);
  s.data.clear();
  uint8_t fixed[18];
  dns::put16(fixed, h.type);
  fixed[2] = h.algorithm;
  fixed[3] = h.labels;
  dns::put32(fixed + 4, h.original_ttl);
  dns::put32(fixed + 8, h.expiration);
  dns::put32(fixed + 12, h.inception);
  dns::put16(fixed + 16, h.key_tag);
  s.data.insert(s.data.end(), fixed, fixed + 18);
  s.data.insert(s.data.end(), signer.begin(), signer.end());
  for (size_t i = 0; i < s.order.size(); ++i) {
    if (i > 0 && !less(s.order[i - 1], s.order[i])) continue;  // duplicate
    s.data.insert(s.data.end(), owner.begin(), owner.end());
    uint8_t rr[10];
    dns::put16(rr, h.type);
    dns::put16(rr + 2, dns::kClassIN);
    dns::put32(rr + 4, h.original_ttl);
    dns::put16(rr + 8, s.order[i].second);
    s.data.insert(s.data.end(), rr, rr + 10);
    s.data.insert(s.data.end(), s.rdatas.data() + s.order[i].first,
                  s.rdatas.data() + s.order[i].first + s.order[i].second);
  }
  EVP_MD_CTX_reset(s.md);  // a context used for the other algorithm does not re-initialise cleanly
  if (key.algorithm == kAlgEd25519) {
    size_t len = kSigLen;
    return EVP_DigestSignInit(s.md, nullptr, nullptr, nullptr, key.pkey) == 1 &&
           EVP_DigestSign(s.md, sig, &len, s.data.data(), s.data.size()) == 1 && len == kSigLen;
  }
  uint8_t der[80];
  size_t der_len = sizeof der;
  if (EVP_DigestSignInit(s.md, nullptr, EVP_sha256(), nullptr, key.pkey) != 1 ||
      EVP_DigestSign(s.md, der, &der_len, s.data.data(), s.data.size()) != 1)
    return false;
  const uint8_t* p = der;
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, long(der_len));
  if (!es) return false;
  const BIGNUM *r = nullptr, *sv = nullptr;
  ECDSA_SIG_get0(es, &r, &sv);
  bool ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(sv, sig + 32, 32) == 32;  // RFC 6605 §4: r || s
  ECDSA_SIG_free(es);
  return ok;
}

// ---- cache ---------------------------------------------------------------

uint64_t hash_bytes(uint64_t h, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = hash_mix(h, v);
    p += 8;
    n -= 8;
  }
  uint64_t tail = n;
  for (size_t i = 0; i < n; ++i) tail = tail << 8 | p[i];
  return hash_mix(h, tail);
}

const SigCache::Entry* SigCache::find(uint64_t key, uint32_t now) {
  if (!slots_) return nullptr;
  Entry* b = &slots_[(key >> 20) & (slots_n_ - 2)];
  for (int i = 0; i < 2; ++i)
    if (b[i].key == key && now < b[i].inception + kBackdate + kRefresh) {
      b[i].used = now;
      return &b[i];
    }
  return nullptr;
}

SigCache::Entry& SigCache::insert(uint64_t key, uint32_t now) {
  if (!slots_) slots_.reset(new Entry[slots_n_]());  // once per thread, on its first signed answer
  Entry* b = &slots_[(key >> 20) & (slots_n_ - 2)];
  Entry* e = b[0].key == key || b[0].key == 0 ? &b[0] : b[1].key == key || b[1].key == 0 ? &b[1]
             : b[0].used <= b[1].used                                                   ? &b[0]
                                                                                        : &b[1];
  if (e->key == 0) ++live_;
  e->key = key;
  e->used = now;
  return *e;
}

}  // namespace vane::zones
