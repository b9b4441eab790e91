// Master-file loading: the file is mapped and cut into logical records by
// RecordCutter, ldns parses each record (ldns_rr_new_frm_str, so $INCLUDE
// can be honoured, which ldns' own zone reader refuses) in chunks on every
// core; ZoneBuilder compiles records into a Zone's flat vectors. Off the hot
// path; never holds a whole ldns_zone in memory.
#include "zone_loader.h"

#include <fcntl.h>
#include <ldns/ldns.h>
#include <malloc.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "ldns_ptr.h"

namespace vane::zones {

// ---------------------------------------------------------------------------
// ZoneBuilder: records in, compiled Zone out.

static RdataNames rdata_names_of(uint16_t type) {
  switch (type) {
    case dns::kTypeNS:
    case dns::kTypeCNAME:
    case dns::kTypePTR:
      return RdataNames::kOne;
    case dns::kTypeMX:
      return RdataNames::kMx;
    case dns::kTypeSOA:
      return RdataNames::kSoa;
    default:
      return RdataNames::kNone;
  }
}

// Gives back the whole pages of [base, base + done) not given back yet
// (`released` bytes of it): memory that will not be read again.
void release_pages(const void* base, size_t done, size_t& released) {
  const uintptr_t page = 4096;
  uintptr_t start = (reinterpret_cast<uintptr_t>(base) + page - 1) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(base) + done) & ~(page - 1);
  uintptr_t from = std::max(start, reinterpret_cast<uintptr_t>(base) + released);
  from = (from + page - 1) & ~(page - 1);
  if (end <= from) return;
  madvise(reinterpret_cast<void*>(from), end - from, MADV_DONTNEED);
  released = end - reinterpret_cast<uintptr_t>(base);
}

class ZoneBuilder {
 public:
  ZoneBuilder(const dns::NameBuf& origin, std::string origin_text) : z_(std::make_unique<Zone>()) {
    z_->origin_text_ = std::move(origin_text);
    z_->origin_labels_ = origin.labels;
    origin_.assign(origin.data, origin.data + origin.len);
    // Small to start (it doubles at half full): a hosting server's zones
    // have a dozen names each, and 1 024 slots were 8 KiB a zone — 164 MB
    // of 20 000 small zones' 240.
    grow_index(32);
    z_->apex_ = intern(origin.wire(), dns::hash_name(origin.wire()));
  }

  std::span<const uint8_t> origin() const { return origin_; }

  // Checks one record and lowercases the names in its rdata that the encoder
  // compresses, so they can match earlier names byte for byte (DNS names
  // compare case-insensitively). Reads nothing but `origin`: any thread may
  // call it. Returns an error text or "".
  static std::string check(std::span<const uint8_t> origin, std::span<const uint8_t> owner, uint16_t type,
                           std::span<uint8_t> rdata) {
    if (!dns::is_subdomain(owner, origin))
      return "record for " + dns::to_text(owner) + " is outside the zone " + dns::to_text(origin);
    if (type == dns::kTypeOPT || (type >= dns::kTypeIXFR && type <= dns::kTypeANY))
      return "meta type " + std::to_string(type) + " cannot appear in a zone";
    auto lower_name = [&](size_t off) {
      size_t n = off < rdata.size() ? dns::wire_name_len(rdata.subspan(off)) : 0;
      for (size_t i = 0; i < n; ++i) rdata[off + i] = dns::ascii_lower(rdata[off + i]);
      return off + n;
    };
    switch (rdata_names_of(type)) {
      case RdataNames::kNone:
        break;
      case RdataNames::kOne:
        lower_name(0);
        break;
      case RdataNames::kMx:
        lower_name(2);
        break;
      case RdataNames::kSoa:
        lower_name(lower_name(0));
        break;
    }
    return {};
  }

  // Adds one checked record; `owner` is lowercase wire, `hash` its hash_name.
  void add(std::span<const uint8_t> owner, uint64_t hash, uint16_t type, uint32_t ttl,
           std::span<const uint8_t> rdata, uint16_t file_idx, int line) {
    uint32_t node = intern(owner, hash);
    recs_.push_back(Pending{node, type, static_cast<uint16_t>(rdata.size()), ttl,
                            static_cast<uint32_t>(tmp_rdata_.size()), static_cast<uint32_t>(line), file_idx, false});
    tmp_rdata_.insert(tmp_rdata_.end(), rdata.begin(), rdata.end());
  }

  // Adds a steered RRset. Conflicts with static data are found in finish().
  std::string add_steered(const SteeredInput& in, uint16_t file_idx) {
    if (!dns::is_subdomain(in.owner, origin_))
      return "record " + dns::to_text(in.owner) + " is outside the zone " + z_->origin_text_;
    uint32_t node = intern(in.owner, dns::hash_name(in.owner));
    SteeredRecord rec = in.record;
    rec.ep_begin = static_cast<uint32_t>(z_->steered_eps_.size());
    rec.ep_count = static_cast<uint16_t>(in.endpoints.size());
    rec.info = static_cast<uint32_t>(z_->steered_info_.size());
    uint32_t base = static_cast<uint32_t>(z_->steered_rdata_.size());
    for (SteeredEndpoint ep : in.endpoints) {
      ep.rdata_off += base;
      z_->steered_eps_.push_back(ep);
    }
    z_->steered_rdata_.insert(z_->steered_rdata_.end(), in.rdata.begin(), in.rdata.end());
    z_->steered_info_.push_back(in.info);
    recs_.push_back(Pending{node, rec.type, 0, rec.ttl, static_cast<uint32_t>(z_->steered_.size()),
                            static_cast<uint32_t>(in.line), file_idx, true});
    z_->steered_.push_back(rec);
    return {};
  }

  // Sizes the builder for about `lines` records in `bytes` of text, so its
  // vectors never grow by copying (a copy holds both halves at once). Room
  // reserved and not used is never written, so it costs address space only.
  void expect(size_t lines, size_t bytes) {
    recs_.reserve(lines);
    tmp_rdata_.reserve(std::min(bytes, lines * 16));
    z_->nodes_.reserve(lines + 16);
    z_->names_.reserve(std::min(bytes, lines * 32) + 256);
  }

  // Sizes the zone's steered tables for `steered`, exactly: they live as long as the zone.
  void expect_steered(const std::vector<SteeredInput>& steered) {
    size_t eps = 0, rdata = 0;
    for (const SteeredInput& in : steered) {
      eps += in.endpoints.size();
      rdata += in.rdata.size();
    }
    z_->steered_.reserve(steered.size());
    z_->steered_info_.reserve(steered.size());
    z_->steered_eps_.reserve(eps);
    z_->steered_rdata_.reserve(rdata);
  }

  uint16_t add_file(const std::string& name) {
    if (!files_.empty() && files_.back() == name) return static_cast<uint16_t>(files_.size() - 1);
    files_.push_back(name);
    return static_cast<uint16_t>(files_.size() - 1);
  }

  Result<std::unique_ptr<Zone>> finish();

 private:
  struct Pending {
    uint32_t node;
    uint16_t type;
    uint16_t rdlen;
    uint32_t ttl;
    uint32_t rdata_off;
    uint32_t line;
    uint16_t file;
    bool steered = false;  // rdata_off is a SteeredRecord index
  };

  Error error_at(const Pending& p, std::string msg) const { return Error{files_[p.file], int(p.line), std::move(msg)}; }

  void grow_index(size_t cap) {
    z_->index_.assign(cap, kNone);
    z_->index_hash_.assign(cap, 0);
    z_->index_mask_ = static_cast<uint32_t>(cap - 1);
    for (uint32_t id = 0; id < z_->nodes_.size(); ++id) place(id, dns::hash_name(z_->name_of(id)));
  }

  void place(uint32_t id, uint64_t h) {
    uint32_t slot = static_cast<uint32_t>(h) & z_->index_mask_;
    while (z_->index_[slot] != kNone) slot = (slot + 1) & z_->index_mask_;
    z_->index_[slot] = id;
    z_->index_hash_[slot] = static_cast<uint32_t>(h >> 32);
  }

  // Finds or adds the node for `name` with one probe sequence.
  uint32_t intern(std::span<const uint8_t> name, uint64_t h, uint8_t flags = 0) {
    if (name.size() == last_name_.size() && std::equal(name.begin(), name.end(), last_name_.begin()))
      return last_id_;  // records of one owner usually come together
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    uint32_t slot = static_cast<uint32_t>(h) & z_->index_mask_;
    for (; z_->index_[slot] != kNone; slot = (slot + 1) & z_->index_mask_) {
      if (z_->index_hash_[slot] != tag) continue;
      const Node& n = z_->nodes_[z_->index_[slot]];
      if (n.name_len == name.size() && std::memcmp(z_->names_.data() + n.name_off, name.data(), name.size()) == 0)
        return remember(name, z_->index_[slot]);
    }
    uint32_t id = static_cast<uint32_t>(z_->nodes_.size());
    z_->nodes_.push_back(
        Node{static_cast<uint32_t>(z_->names_.size()), static_cast<uint8_t>(name.size()), flags, 0, 0, kNone});
    z_->names_.insert(z_->names_.end(), name.begin(), name.end());
    z_->index_[slot] = id;
    z_->index_hash_[slot] = tag;
    if (z_->nodes_.size() * 2 > z_->index_.size()) grow_index(z_->index_.size() * 2);
    return remember(name, id);
  }

  uint32_t remember(std::span<const uint8_t> name, uint32_t id) {
    last_name_.assign(name.begin(), name.end());
    last_id_ = id;
    return id;
  }

  void add_empty_non_terminals();
  std::optional<Error> build_rrsets();
  void mark_cuts();
  void link_additional();

  std::unique_ptr<Zone> z_;
  std::vector<uint8_t> origin_;
  std::vector<Pending> recs_;
  std::vector<uint8_t> tmp_rdata_;
  std::vector<std::string> files_;
  std::vector<uint8_t> last_name_;
  uint32_t last_id_ = kNone;
};

void ZoneBuilder::add_empty_non_terminals() {
  dns::NameBuf nb;
  // New nodes are appended and visited too, so whole chains get filled in.
  for (uint32_t id = 0; id < z_->nodes_.size(); ++id) {
    auto name = z_->name_of(id);
    std::memcpy(nb.data, name.data(), name.size());
    dns::index_name(nb);
    size_t below = nb.labels - z_->origin_labels_;
    if (below == 0) continue;
    // Siblings come together, so the parent is usually the name interned last.
    auto parent = nb.suffix(1);
    uint32_t pid = intern(parent, dns::hash_name(parent), kNodeEmpty);
    if (nb.data[0] == 1 && nb.data[1] == '*') z_->nodes_[pid].flags |= kNodeWildcardChild;
  }
}

std::optional<Error> ZoneBuilder::build_rrsets() {
  auto by_node_type = [](const Pending& a, const Pending& b) {
    return a.node != b.node ? a.node < b.node : a.type < b.type;
  };
  // Zone files mostly come in owner order (each owner's records together,
  // owners in the order first seen): then only each owner's few records
  // are sorted by type, in place, not the whole list into a copy.
  auto by_node = [](const Pending& a, const Pending& b) { return a.node < b.node; };
  bool in_file_order = std::is_sorted(recs_.begin(), recs_.end(), by_node);
  if (in_file_order) {
    for (size_t b = 0, e; b < recs_.size(); b = e) {
      for (e = b + 1; e < recs_.size() && recs_[e].node == recs_[b].node;) ++e;
      if (e - b > 1 && !std::is_sorted(recs_.begin() + long(b), recs_.begin() + long(e), by_node_type))
        std::stable_sort(recs_.begin() + long(b), recs_.begin() + long(e), by_node_type);
    }
  } else {
    std::stable_sort(recs_.begin(), recs_.end(), by_node_type);
  }
  // In file order, the records and their rdata are read front to back once:
  // the pages behind are given back as we go, so the pending list and the
  // RRsets built from it are never resident in full at the same time.
  size_t released_recs = 0, released_rdata = 0, next_release = 65536;
  auto release_behind = [&](size_t i) {  // i: a node's first record
    if (!in_file_order || i == recs_.size()) return;
    release_pages(recs_.data(), i * sizeof(Pending), released_recs);
    // This node's records are in type order, not file order: its lowest
    // staging offset (steered records have none there).
    uint32_t first_rdata = UINT32_MAX;
    for (size_t k = i; k < recs_.size() && recs_[k].node == recs_[i].node; ++k)
      if (!recs_[k].steered) first_rdata = std::min(first_rdata, recs_[k].rdata_off);
    if (first_rdata != UINT32_MAX) release_pages(tmp_rdata_.data(), first_rdata, released_rdata);
  };
  z_->rrsets_.reserve(recs_.size());
  z_->rdata_.reserve(tmp_rdata_.size() + recs_.size() * 2);
  size_t i = 0;
  while (i < recs_.size()) {
    if (i >= next_release) {  // every 64k records or so, at a node's first
      release_behind(i);
      next_release = i + 65536;
    }
    uint32_t node = recs_[i].node;
    Node& n = z_->nodes_[node];
    n.rrset_begin = static_cast<uint32_t>(z_->rrsets_.size());
    const Pending* cname = nullptr;
    size_t types = 0;
    for (; i < recs_.size() && recs_[i].node == node;) {
      const Pending& first = recs_[i];
      RRset rs{first.type, 0, first.ttl, static_cast<uint32_t>(z_->rdata_.size()), 0, 0, 0, rdata_names_of(first.type),
               false};
      size_t begin = i;
      size_t end = i;
      const Pending* steered = nullptr;
      for (; end < recs_.size() && recs_[end].node == node && recs_[end].type == first.type; ++end)
        if (recs_[end].steered) steered = &recs_[end];
      if (steered) {
        // A steered RRset stands alone: static data of its type at its name is a conflict.
        if (end - i > 1) {
          const Pending& other = first.steered ? recs_[i + 1] : first;
          return error_at(*steered, "steered record " + dns::to_text(z_->name_of(node)) + " conflicts with static " +
                                        "data of the same type at " + files_[other.file] + ":" +
                                        std::to_string(other.line));
        }
        rs.steered = true;
        rs.count = 1;
        rs.rdata_off = first.rdata_off;
        rs.names = RdataNames::kNone;
        ++z_->record_count_;
        ++i;
        if (first.type == dns::kTypeCNAME) cname = &first;
        ++types;
        z_->rrsets_.push_back(rs);
        if (first.type == dns::kTypeA || first.type == dns::kTypeAAAA) n.flags |= kNodeAddress;
        continue;
      }
      for (; i < recs_.size() && recs_[i].node == node && recs_[i].type == first.type; ++i) {
        const Pending& p = recs_[i];
        const uint8_t* data = tmp_rdata_.data() + p.rdata_off;
        bool dup = false;  // RFC 2181 §5: an RRset is a set
        for (size_t j = begin; j < i && !dup; ++j)
          dup = recs_[j].rdlen == p.rdlen &&
                (p.rdlen == 0 || std::memcmp(tmp_rdata_.data() + recs_[j].rdata_off, data, p.rdlen) == 0);
        if (dup) continue;
        if (rs.count == UINT16_MAX) return error_at(p, "RRset has more than 65535 records");
        uint8_t len[2];
        dns::put16(len, p.rdlen);
        z_->rdata_.insert(z_->rdata_.end(), len, len + 2);
        z_->rdata_.insert(z_->rdata_.end(), data, data + p.rdlen);
        ++rs.count;
        ++z_->record_count_;
      }
      rs.rdata_size = static_cast<uint32_t>(z_->rdata_.size() - rs.rdata_off);
      if (first.type == dns::kTypeCNAME) {
        cname = &first;
        if (rs.count > 1)
          return error_at(recs_[begin + 1], "more than one CNAME at " + dns::to_text(z_->name_of(node)));
      }
      if (first.type == dns::kTypeSOA) {
        if (node != z_->apex_)
          return error_at(first, "SOA record at " + dns::to_text(z_->name_of(node)) + ", not at the zone apex");
        if (rs.count > 1) return error_at(recs_[begin + 1], "more than one SOA record at the zone apex");
      }
      if (first.type != dns::kTypeRRSIG && first.type != dns::kTypeNSEC) ++types;
      z_->rrsets_.push_back(rs);
      if (first.type == dns::kTypeA || first.type == dns::kTypeAAAA) n.flags |= kNodeAddress;
      if (first.type == dns::kTypeNS && node != z_->apex_) n.flags |= kNodeDelegation;
    }
    // RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME owner has no other data.
    if (cname && types > 1) return error_at(*cname, "CNAME and other data at " + dns::to_text(z_->name_of(node)));
    n.rrset_count = static_cast<uint16_t>(z_->rrsets_.size() - n.rrset_begin);
  }
  std::vector<Pending>().swap(recs_);
  std::vector<uint8_t>().swap(tmp_rdata_);
  return std::nullopt;
}

void ZoneBuilder::mark_cuts() {
  dns::NameBuf nb;
  for (uint32_t id = 0; id < z_->nodes_.size(); ++id) {
    auto name = z_->name_of(id);
    std::memcpy(nb.data, name.data(), name.size());
    dns::index_name(nb);
    size_t below = nb.labels - z_->origin_labels_;
    // Topmost cut wins: the parent's NS is the only authority for what lies
    // under it. Nodes at or below a DNAME are marked for the resolver.
    for (size_t k = below + 1; k-- > 0;) {
      uint32_t anc = k == 0 ? id : z_->find(nb.suffix(k));
      if (anc == kNone) continue;
      if (z_->find_rrset(anc, dns::kTypeDNAME)) z_->nodes_[id].flags |= kNodeDnameScope;
      if (k != below && (z_->nodes_[anc].flags & kNodeDelegation) && z_->nodes_[id].cut == kNone)
        z_->nodes_[id].cut = anc;
    }
  }
}

void ZoneBuilder::link_additional() {
  dns::NameBuf target;
  for (RRset& rs : z_->rrsets_) {
    size_t skip;
    switch (rs.type) {
      case dns::kTypeNS:
        skip = 0;
        break;
      case dns::kTypeMX:
        skip = 2;
        break;
      case dns::kTypeSRV:
        skip = 6;
        break;
      default:
        continue;
    }
    rs.extra_off = static_cast<uint32_t>(z_->extra_.size());
    const uint8_t* p = z_->rdata_.data() + rs.rdata_off;
    for (uint16_t k = 0; k < rs.count; ++k) {
      uint16_t len = dns::get16(p);
      if (len > skip) {
        std::span<const uint8_t> rd{p + 2 + skip, size_t(len - skip)};
        size_t n = dns::wire_name_len(rd);
        if (n) {
          for (size_t b = 0; b < n; ++b) target.data[b] = dns::ascii_lower(rd[b]);
          uint32_t id = z_->find({target.data, n});
          bool seen = false;
          for (uint32_t e = rs.extra_off; e < z_->extra_.size(); ++e) seen |= z_->extra_[e] == id;
          if (id != kNone && (z_->nodes_[id].flags & kNodeAddress) && !seen) z_->extra_.push_back(id);
        }
      }
      p += 2 + len;
    }
    rs.extra_count = static_cast<uint16_t>(std::min<size_t>(z_->extra_.size() - rs.extra_off, UINT16_MAX));
  }
}

Result<std::unique_ptr<Zone>> ZoneBuilder::finish() {
  add_empty_non_terminals();
  if (auto err = build_rrsets()) return *err;
  Node& apex = z_->nodes_[z_->apex_];
  apex.flags |= kNodeApex;
  const RRset* soa = z_->find_rrset(z_->apex_, dns::kTypeSOA);
  if (!soa)
    return Error{files_.empty() ? "" : files_[0], 0, "zone " + z_->origin_text_ + " has no SOA record at its apex"};
  // SOA rdata: mname, rname, serial, refresh, retry, expire, minimum.
  const uint8_t* rd = z_->rdata_.data() + soa->rdata_off;
  uint16_t len = dns::get16(rd);
  if (len < 22) return Error{files_[0], 0, "malformed SOA rdata"};
  z_->serial_ = dns::get32(rd + 2 + len - 20);
  z_->negative_ttl_ = std::min(soa->ttl, dns::get32(rd + 2 + len - 4));  // RFC 2308 §5
  mark_cuts();
  link_additional();
  // No shrink_to_fit: the capacity past the end was never written (not
  // resident), and shrinking copies, holding both at once.
  return std::move(z_);
}

// ---------------------------------------------------------------------------
// Master-file reading with ldns.

namespace {

// A read-only mapping of a zone file: the text is scanned once, in place.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      id_ = Zone::file_id(st);
      size_ = static_cast<size_t>(st.st_size);
      const bool racy = time(nullptr) - int64_t(st.st_mtim.tv_sec) < Zone::kRacySeconds;
      if (size_ == 0) {
        ok_ = true;
      } else if (size_ <= kReadBelow) {
        // A small file is read: mapping it costs two system calls, a page
        // fault and a TLB shootdown on unmap — most of a 20-record zone's
        // load when a server has 20 000 of them.
        copy_.resize(size_);
        size_t got = 0;
        for (ssize_t n; got < size_; got += size_t(n))
          if ((n = read(fd, copy_.data() + got, size_ - got)) <= 0) break;
        copy_.resize(got);  // a file that shrank meanwhile: what was there
        size_ = got;
        ok_ = true;
      } else if (void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0); p != MAP_FAILED) {
        data_ = static_cast<const char*>(p);
        madvise(p, size_, MADV_SEQUENTIAL);
        ok_ = true;
      }
      // Just written: the bytes read are hashed. A mapping's are not (a
      // write could change them between the hash and the parse, and a
      // large file is not copied): it is marked racy alone.
      racy_ = ok_ && racy;
      if (racy_ && !data_) contents_ = hash_text(text());
    } else if (fstat(fd, &st) == 0) {
      errno = EINVAL;  // a directory or device is not a zone file
    }
    int saved = errno;
    close(fd);
    errno = saved;
  }
  ~MappedFile() {
    if (data_) munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  bool ok() const { return ok_; }
  // What a zone read from it records (see Zone::Source).
  Zone::Source source(std::string path) const { return {std::move(path), id_, racy_, contents_}; }
  bool mapped() const { return data_ != nullptr; }
  std::string_view text() const { return data_ ? std::string_view(data_, size_) : std::string_view(copy_); }

 private:
  static constexpr size_t kReadBelow = 64 * 1024;
  const char* data_ = nullptr;  // mapped
  std::string copy_;            // or read
  Zone::FileId id_{};
  bool racy_ = false;                 // written within Zone::kRacySeconds of the open
  std::optional<uint64_t> contents_;  // then, of the text read (not of a mapping)
  size_t size_ = 0;
  bool ok_ = false;
};

// Cuts master-file text into logical records (RFC 1035 §5.1): parentheses
// join lines, comments are dropped, quotes and backslash escapes are kept for
// ldns to interpret. Leading blanks are kept, they mean "same owner".
// ldns_fget_token_l does this with a locked getc per character, and
// ldns_bget_token joins the line after a comment onto it, so we cut ourselves
// and hand each record to ldns_rr_new_frm_str.
class RecordCutter {
 public:
  explicit RecordCutter(std::string_view text, size_t pos = 0, int line = 1) : text_(text), pos_(pos), line_(line) {}

  // Where the next call starts: cutting again from here gives the same records.
  size_t pos() const { return pos_; }
  int line() const { return line_; }

  // Fills `out` with the next record and `line` with the line it starts on.
  // Returns false at end of input; `error` is set if the input is malformed.
  bool next(std::string& out, int& line, std::string& error) {
    out.clear();
    int depth = 0;
    bool quoted = false, content = false;
    int quote_line = 0, paren_line = 0;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '\\' && pos_ < text_.size()) {
        if (!content) line = line_;
        content = true;
        out += c;
        c = text_[pos_++];
        if (c == '\n') ++line_;
        out += c;
        continue;
      }
      if (quoted) {
        if (c == '"') quoted = false;
        if (c == '\n') ++line_;
        out += c;
        continue;
      }
      switch (c) {
        case ';':
          while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
          continue;
        case '(':
          if (depth++ == 0) paren_line = line_;
          c = ' ';
          break;
        case ')':
          if (depth == 0) {
            error = "unbalanced ')'";
            line = line_;
            return false;
          }
          --depth;
          c = ' ';
          break;
        case '"':
          quoted = true;
          quote_line = line_;
          break;
        case '\r':
          c = ' ';
          break;
        case '\n':
          ++line_;
          if (depth > 0) {
            c = ' ';
            break;
          }
          if (content) return true;
          out.clear();  // a blank or comment-only line
          continue;
        default:
          break;
      }
      if (!content && c != ' ' && c != '\t') {
        content = true;
        line = line_;
      }
      out += c;
    }
    if (quoted) {
      error = "unterminated quoted string";
      line = quote_line;
      return false;
    }
    if (depth > 0) {
      error = "unbalanced '(' (no closing parenthesis)";
      line = paren_line;
      return false;
    }
    return content;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

constexpr int kMaxIncludeDepth = 8;

// Reading is a pipeline. This thread cuts every file into records and
// follows the directives ($ORIGIN, $TTL, $INCLUDE) in order, closing a chunk
// every few thousand records and at every directive: a chunk is where its
// records start in a file, with the origin and default TTL in force and the
// last record before it that named its owner (for a first record that
// starts with a blank). Helpers, one per core the process may run on, cut
// the chunk again and hand its records to ldns; this thread merges finished
// chunks into the builder in file order as they come, so only a window of
// chunks is ever held in wire form and the first error by position is the
// one reported, as if read one record at a time.
class MasterReader {
 public:
  MasterReader(ZoneBuilder& b, size_t chunk) : b_(b), chunk_(chunk), origin_(b.origin()) {}
  ~MasterReader() { stop(); }

  // `mapped`: `text` is a file mapping whose pages may be dropped once read.
  std::optional<Error> read(std::string_view text, const std::string& name, RdfPtr origin, bool mapped);
  // The files $INCLUDE brought in, in the order they were read.
  const std::vector<Zone::Source>& included() const { return included_sources_; }

 private:
  struct Where {  // a record's start, to cut it again
    std::string_view text;
    size_t pos = 0;
    int line = 0;
    const ldns_rdf* origin = nullptr;
    uint32_t ttl = 0;
  };
  struct Parsed {  // one checked record in wire form, in its chunk's bytes
    uint64_t hash;   // of the owner
    uint32_t off;
    uint32_t line;
    uint16_t olen, rdlen, type;
    uint32_t ttl;
  };
  struct Chunk {
    Where start;                  // the first record
    std::optional<Where> owner;   // the record that last named an owner before it
    const std::string* file = nullptr;
    uint16_t file_idx = 0;
    size_t count = 0;
    std::vector<uint8_t> bytes;
    std::vector<Parsed> recs;
    std::optional<Error> error;   // after recs, when set
    bool done = false;            // parsed (guarded by mu_)
  };

  std::optional<Error> collect(std::string_view text, const std::string& name, const ldns_rdf* origin, int depth);
  std::optional<Error> directive(const char* line, const std::string& name, int line_nr, const ldns_rdf*& origin,
                                 int depth);
  const ldns_rdf* add_origin(RdfPtr o);
  void close_chunk();
  void start_helpers();
  std::optional<Error> merge(bool wait);
  void parse(Chunk& c) const;
  void helper();
  void stop();

  ZoneBuilder& b_;
  size_t chunk_;                      // records per chunk; 0: by file size and cores
  std::span<const uint8_t> origin_;  // the zone's, lowercase wire
  uint32_t default_ttl_ = 3600;
  std::string rec_;
  std::vector<RdfPtr> origins_;
  std::deque<std::string> names_;      // file names (stable addresses)
  std::vector<std::unique_ptr<MappedFile>> included_;
  std::vector<Zone::Source> included_sources_;
  std::optional<Where> last_owner_;
  std::unique_ptr<Chunk> open_;        // being collected
  // Shared with the helpers.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  size_t next_ = 0, merged_ = 0, window_ = 0, cores_ = 1;
  bool collected_ = false, abort_ = false;
  std::vector<std::thread> helpers_;
  std::string_view main_text_;  // the zone's file mapping, when it is one
  size_t released_ = 0;         // bytes of it given back
};

std::string trim(const char* s) {
  std::string t(s);
  size_t a = t.find_first_not_of(" \t");
  size_t e = t.find_last_not_of(" \t");
  return a == std::string::npos ? "" : t.substr(a, e - a + 1);
}

// Makes a presentation name absolute against `origin` (RFC 1035 §5.1).
RdfPtr absolute_name(const std::string& text, const ldns_rdf* origin) {
  ldns_rdf* r = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_DNAME, text.c_str());
  if (!r) return nullptr;
  RdfPtr name(r);
  if (text == "@") return RdfPtr(ldns_rdf_clone(origin));
  if (!text.empty() && text.back() != '.' && origin) {
    if (ldns_dname_cat(name.get(), origin) != LDNS_STATUS_OK) return nullptr;
  }
  return name;
}

const ldns_rdf* MasterReader::add_origin(RdfPtr o) {
  origins_.push_back(std::move(o));
  return origins_.back().get();
}

std::optional<Error> MasterReader::directive(const char* line, const std::string& name, int line_nr,
                                             const ldns_rdf*& origin, int depth) {
  // The directive's word, then the rest (never past the end of a short line).
  size_t word = std::strcspn(line, " \t");
  std::string directive_name(line, word), rest = trim(line + word);
  if (directive_name == "$ORIGIN") {
    RdfPtr o = absolute_name(rest, origin);
    if (!o) return Error{name, line_nr, "bad $ORIGIN name '" + rest + "'"};
    origin = add_origin(std::move(o));
    return std::nullopt;
  }
  if (directive_name == "$TTL") {
    const char* end = nullptr;
    uint32_t ttl = ldns_str2period(rest.c_str(), &end);
    if (rest.empty() || !end || *end) return Error{name, line_nr, "bad $TTL value '" + rest + "'"};
    default_ttl_ = ttl;
    return std::nullopt;
  }
  if (directive_name == "$INCLUDE") {
    // $INCLUDE <file> [<origin>] (RFC 1035 §5.1); relative paths are taken
    // from the including file's directory. The origin is restored afterwards.
    std::string file = rest.substr(0, rest.find_first_of(" \t"));
    std::string new_origin = file.size() < rest.size() ? trim(rest.c_str() + file.size()) : "";
    if (file.size() >= 2 && file.front() == '"' && file.back() == '"') file = file.substr(1, file.size() - 2);
    if (file.empty()) return Error{name, line_nr, "$INCLUDE without a file name"};
    if (depth >= kMaxIncludeDepth) return Error{name, line_nr, "$INCLUDE nested too deeply (loop?)"};
    std::filesystem::path p(file);
    if (p.is_relative()) p = std::filesystem::path(name).parent_path() / p;
    auto inc = std::make_unique<MappedFile>(p.string());
    if (!inc->ok()) return Error{name, line_nr, "cannot open $INCLUDE file " + p.string() + ": " + strerror(errno)};
    const ldns_rdf* inc_origin = origin;
    if (!new_origin.empty()) {
      RdfPtr o = absolute_name(new_origin, origin);
      if (!o) return Error{name, line_nr, "bad $INCLUDE origin '" + new_origin + "'"};
      inc_origin = add_origin(std::move(o));
    }
    std::string_view text = inc->text();
    included_sources_.push_back(inc->source(p.string()));
    included_.push_back(std::move(inc));  // its records are cut again by the helpers
    return collect(text, p.string(), inc_origin, depth + 1);
  }
  return Error{name, line_nr, "unknown directive " + directive_name.substr(0, 64)};
}

std::optional<Error> MasterReader::collect(std::string_view text, const std::string& name, const ldns_rdf* origin,
                                           int depth) {
  uint16_t file_idx = b_.add_file(name);
  names_.push_back(name);
  const std::string* file = &names_.back();
  RecordCutter cutter(text);
  int rec_line = 0;
  std::string cut_error;
  while (true) {
    Where at{text, cutter.pos(), cutter.line(), origin, default_ttl_};
    if (!cutter.next(rec_, rec_line, cut_error)) {
      close_chunk();
      if (cut_error.empty()) return std::nullopt;
      return Error{name, rec_line, cut_error};
    }
    if (rec_[0] == '$') {
      close_chunk();  // a chunk never spans a directive
      if (auto err = directive(rec_.c_str(), name, rec_line, origin, depth)) return err;
      continue;
    }
    if (!open_) {
      open_ = std::make_unique<Chunk>();
      open_->start = at;
      if (rec_[0] == ' ' || rec_[0] == '\t') open_->owner = last_owner_;
      open_->file = file;
      open_->file_idx = file_idx;
    }
    if (rec_[0] != ' ' && rec_[0] != '\t') last_owner_ = at;
    if (++open_->count == chunk_) {
      close_chunk();
      if (helpers_.empty() && cores_ > 1) start_helpers();
      if (auto err = merge(false)) return err;
    }
  }
}

// Helpers take the chunks not merged yet (this thread merged every earlier
// one itself).
void MasterReader::start_helpers() {
  {
    std::lock_guard lock(mu_);
    next_ = merged_;
    window_ = 4 * cores_;
  }
  for (size_t t = 0; t < cores_; ++t) helpers_.emplace_back([this] { helper(); });
}

void MasterReader::close_chunk() {
  if (!open_) return;
  std::lock_guard lock(mu_);
  chunks_.push_back(std::move(open_));
  cv_.notify_all();
}

// ldns on one chunk, into checked wire form. Runs on any thread: it reads
// only the chunk, the mapped files and the origins, none of which move.
void MasterReader::parse(Chunk& c) const {
  c.recs.reserve(c.count);
  c.bytes.reserve(c.count * 24);
  // One rdata buffer per thread: 64 KiB allocated per chunk was a good part
  // of a 20-record zone's read.
  thread_local BufferPtr buf(ldns_buffer_new(LDNS_MAX_PACKETLEN));
  std::string text, cut_error;
  int line = 0;
  RdfPtr prev;
  auto ldns_parse = [&](const Where& w, RrPtr& rr) {
    ldns_rr* raw = nullptr;
    ldns_rdf* p = prev.release();
    ldns_status st = ldns_rr_new_frm_str(&raw, text.c_str(), w.ttl, w.origin, &p);
    prev.reset(p);
    rr.reset(raw);
    return st;
  };
  if (c.owner) {  // the owner a blank first record takes
    RecordCutter again(c.owner->text, c.owner->pos, c.owner->line);
    RrPtr ignored;
    if (again.next(text, line, cut_error)) ldns_parse(*c.owner, ignored);
  }
  RecordCutter cutter(c.start.text, c.start.pos, c.start.line);
  for (size_t i = 0; i < c.count && cutter.next(text, line, cut_error); ++i) {
    auto fail = [&](std::string msg) { c.error = Error{*c.file, line, std::move(msg)}; };
    RrPtr rr;
    if (ldns_status st = ldns_parse(c.start, rr); st != LDNS_STATUS_OK)
      return fail(std::string(ldns_get_errorstr_by_id(st)) + " in '" + trim(text.c_str()) + "'");
    if (ldns_rr_get_class(rr.get()) != LDNS_RR_CLASS_IN) return fail("only class IN is served");
    const ldns_rdf* owner = ldns_rr_owner(rr.get());
    size_t olen = ldns_rdf_size(owner);
    if (olen > dns::kMaxNameLen) return fail("owner name too long");
    ldns_buffer_clear(buf.get());
    if (ldns_rr_rdata2buffer_wire(buf.get(), rr.get()) != LDNS_STATUS_OK) return fail("cannot encode rdata");
    size_t rdlen = ldns_buffer_position(buf.get());
    if (rdlen > 65535) return fail("rdata too long");
    Parsed p{0, static_cast<uint32_t>(c.bytes.size()), static_cast<uint32_t>(line), static_cast<uint16_t>(olen),
             static_cast<uint16_t>(rdlen), static_cast<uint16_t>(ldns_rr_get_type(rr.get())), ldns_rr_ttl(rr.get())};
    for (size_t k = 0; k < olen; ++k) c.bytes.push_back(dns::ascii_lower(ldns_rdf_data(owner)[k]));
    c.bytes.insert(c.bytes.end(), ldns_buffer_begin(buf.get()), ldns_buffer_begin(buf.get()) + rdlen);
    std::span<const uint8_t> lower(c.bytes.data() + p.off, olen);
    std::string err = ZoneBuilder::check(origin_, lower, p.type, {c.bytes.data() + p.off + olen, rdlen});
    if (!err.empty()) return fail(std::move(err));
    p.hash = dns::hash_name(lower);
    c.recs.push_back(p);
  }
}

void MasterReader::helper() {
  while (true) {
    Chunk* c;
    {
      std::unique_lock lock(mu_);
      // At most a window of chunks ahead of the merge: that bounds memory.
      auto ready = [&] { return next_ < chunks_.size() && next_ < merged_ + window_; };
      auto finished = [&] { return collected_ && next_ >= chunks_.size(); };
      cv_.wait(lock, [&] { return abort_ || ready() || finished(); });
      if (abort_ || !ready()) return;
      c = chunks_[next_++].get();
    }
    parse(*c);
    {
      std::lock_guard lock(mu_);
      c->done = true;
    }
    cv_.notify_all();
  }
}

void MasterReader::stop() {
  {
    std::lock_guard lock(mu_);
    abort_ = true;
  }
  cv_.notify_all();
  for (auto& t : helpers_) t.join();
  helpers_.clear();
}

// Merges finished chunks into the builder in file order; with `wait`, every
// chunk, waiting for the helpers. Without helpers, parses them here.
std::optional<Error> MasterReader::merge(bool wait) {
  while (true) {
    Chunk* c;
    {
      std::unique_lock lock(mu_);
      if (merged_ >= chunks_.size()) return std::nullopt;
      c = chunks_[merged_].get();
      if (!helpers_.empty()) {
        if (!wait && !c->done) return std::nullopt;
        cv_.wait(lock, [&] { return c->done; });
      }
    }
    if (helpers_.empty()) parse(*c);
    for (const Parsed& p : c->recs) {
      const uint8_t* at = c->bytes.data() + p.off;
      b_.add({at, p.olen}, p.hash, p.type, p.ttl, {at + p.olen, p.rdlen}, c->file_idx, int(p.line));
    }
    if (c->error) return c->error;
    // The mapped text before a merged chunk is read: its pages leave our RSS
    // (a later re-read, a blank owner's record, faults them in again).
    if (!main_text_.empty() && c->start.text.data() == main_text_.data())
      release_pages(main_text_.data(), c->start.pos, released_);
    {
      std::lock_guard lock(mu_);
      chunks_[merged_++].reset();
    }
    cv_.notify_all();
  }
}

std::optional<Error> MasterReader::read(std::string_view text, const std::string& name, RdfPtr origin,
                                        bool mapped) {
  cpu_set_t cpus;
  size_t cores = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? size_t(CPU_COUNT(&cpus)) : 1;
  cores = std::max<size_t>(1, std::min<size_t>(cores, 64));
  cores_ = cores;
  // Small zones stay on this thread; large ones get a helper per core: at
  // once for a large file, else when the first chunk fills (a small file
  // that $INCLUDEs a large one). On one core too, a chunk at a time: a zone
  // is never held whole in parsed form beside the builder.
  bool forced = chunk_ != 0;  // tests: small chunks, always on helpers
  if (!chunk_) chunk_ = 16384;
  if (mapped) main_text_ = text;
  if (forced || (cores > 1 && text.size() > (1u << 20))) start_helpers();
  auto collected = collect(text, name, add_origin(std::move(origin)), 0);
  {
    std::lock_guard lock(mu_);
    collected_ = true;
  }
  cv_.notify_all();
  // Records before a directive's or cutter's error come first.
  if (auto err = merge(true)) return err;
  return collected;
}

}  // namespace

uint64_t hash_text(std::string_view text) {
  return hash_bytes(0xcbf29ce484222325ULL, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

std::optional<uint64_t> hash_file(const std::string& path) {
  MappedFile file(path);  // read or mapped as a zone's read would
  if (!file.ok()) return std::nullopt;
  Zone::Source s = file.source(path);
  return s.contents ? *s.contents : hash_text(file.text());
}

Result<std::unique_ptr<Zone>> load_zone(const ZoneSource& src) {
  dns::NameBuf origin;
  std::string origin_text = src.origin;
  if (!origin_text.empty() && origin_text.back() != '.') origin_text += '.';
  if (!dns::from_text(origin_text, origin)) return Error{src.file, 0, "bad zone name '" + src.origin + "'"};
  std::optional<MappedFile> file;
  if (src.text.empty()) {
    file.emplace(src.file);
    if (!file->ok()) return Error{src.file, 0, std::string("cannot open zone file: ") + strerror(errno)};
  }
  std::string_view text = file ? file->text() : std::string_view(src.text);
  std::vector<Zone::Source> files;  // every file the zone was read from
  if (file) files.push_back(file->source(src.file));
  Result<std::unique_ptr<Zone>> zone = [&]() -> Result<std::unique_ptr<Zone>> {
    ZoneBuilder builder(origin, origin_text);
    if (text.size() > (1u << 20)) {
      size_t lines = 1;
      for (const char* p = text.data(); (p = static_cast<const char*>(memchr(p, '\n', text.data() + text.size() - p)));
           ++p)
        ++lines;
      builder.expect(lines, text.size());
    }
    {
      MasterReader reader(builder, src.parse_chunk);
      RdfPtr ldns_origin(ldns_dname_new_frm_str(origin_text.c_str()));
      if (auto err = reader.read(text, src.file, std::move(ldns_origin), file && file->mapped())) return *err;
      files.insert(files.end(), reader.included().begin(), reader.included().end());
    }
    builder.expect_steered(src.steered);
    for (const SteeredInput& in : src.steered) {
      std::string err = builder.add_steered(in, builder.add_file(in.file));
      if (!err.empty()) return Error{in.file, in.line, err};
    }
    if (src.keys) {  // the apex DNSKEY RRset: every key not retired; CDS/CDNSKEY: those the DS should name
      uint16_t file_idx = builder.add_file(src.dnssec.key_dir);
      auto apex = origin.wire();
      uint64_t hash = dns::hash_name(apex);
      uint32_t ttl = src.keys->dnskey_ttl;
      for (const DnssecKey& k : src.keys->keys) {
        if (k.state != KeyState::kRetired) builder.add(apex, hash, dns::kTypeDNSKEY, ttl, k.dnskey, file_idx, 0);
        if (!src.dnssec.cds || !names_in_ds(k)) continue;
        std::vector<uint8_t> ds = ds_rdata(apex, k);
        if (ds.empty()) return Error{src.dnssec.key_dir, 0, "cannot compute the CDS of key " + std::to_string(k.tag)};
        builder.add(apex, hash, dns::kTypeCDS, ttl, ds, file_idx, 0);
        builder.add(apex, hash, dns::kTypeCDNSKEY, ttl, k.dnskey, file_idx, 0);
      }
    }
    auto built = builder.finish();
    if (built) (*built)->set_keys(src.keys);
    if (built) (*built)->set_sources(std::move(files));
    return built;
  }();
  // A large zone's reading buffers, freed on several threads' malloc arenas
  // and below the compiled zone, go back to the system rather than stay in
  // a serving process's RSS.
  if (zone && (*zone)->record_count() > 100000) malloc_trim(0);
  return zone;
}

}  // namespace vane::zones
