// ZonePreload: zones read while vane.yaml is parsed are taken when the
// config adds nothing to their { name, file } (a zone a record steers in,
// or one whose read-ahead failed, is read again); a file changed after its
// read-ahead is read again at the next reload; the set answers the same
// either way.
#include "answer.h"
#include "server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "dns_client.h"
#include "process.h"

namespace vane::server {
namespace {

constexpr int kZones = 100;

std::string zone_text(const std::string& www) {
  return "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A " + www + "\n";
}

std::string config(const test::TempDir& dir) {
  std::string y = "listen: [\"127.0.0.1:0\"]\nstate_dir: " + dir.path() + "/state\nzones:\n";
  for (int i = 0; i < kZones; ++i) y += "  - { name: z" + std::to_string(i) + ".test, file: z" + std::to_string(i) + ".zone }\n";
  // After the zones: the parse has handed z50 over before it reads this.
  y += "records:\n  - name: app.z50.test\n    type: A\n    endpoints:\n      - { name: one, address: 198.51.100.1 }\n";
  return y;
}

std::vector<std::string> answer_of(const zones::ZoneSet& set, const std::string& name) {
  std::vector<uint8_t> out(4096);
  QueryContext ctx;
  size_t n = answer(set, test::make_query(name, "A", {}, 7), out, Transport::kUdp, AnswerOptions{}, ctx);
  out.resize(n);
  auto r = test::parse_response(out);
  return r ? r->answer : std::vector<std::string>{"<unparseable>"};
}

TEST(ZonePreload, TakesPlainZones_ReadsAgainASteeredOneAndAFailedRead_AFileChangedSinceAtTheNextReload) {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) < 2)
    GTEST_SKIP() << "one core: the parse has it, nothing is read ahead";
  test::TempDir dir;
  for (int i = 0; i < kZones; ++i) dir.write("z" + std::to_string(i) + ".zone", zone_text("192.0.2.10"));
  // z3 is caught mid-write by its read-ahead: that failed read is not taken.
  dir.write("z3.zone", "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.");
  std::string path = dir.write("vane.yaml", config(dir));
  ZonePreload preload;
  auto hook = preload.hook();
  auto cfg = load_config(path, &hook);
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  // Every zone is read ahead (z50 too: the parse could not know of its record yet).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (preload.read() < size_t(kZones) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(preload.read(), size_t(kZones));
  // z7 changes after it was read ahead (another size, so another fingerprint).
  dir.write("z7.zone", zone_text("192.0.2.77") + "; changed\n");
  dir.write("z3.zone", zone_text("192.0.2.33"));

  zones::StateTable states;
  ZoneCache cache;
  auto set = build_zone_set(*cfg, states, true, false, nullptr, &cache, nullptr, &preload);
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(preload.taken(), size_t(kZones - 2));  // all but z50, which a record steers in, and z3
  EXPECT_EQ(answer_of(**set, "www.z3.test"), std::vector<std::string>{"www.z3.test. 300 IN A 192.0.2.33"});
  EXPECT_EQ(answer_of(**set, "www.z0.test"), std::vector<std::string>{"www.z0.test. 300 IN A 192.0.2.10"});
  EXPECT_EQ(answer_of(**set, "www.z99.test"), std::vector<std::string>{"www.z99.test. 300 IN A 192.0.2.10"});
  EXPECT_EQ(answer_of(**set, "app.z50.test"), std::vector<std::string>{"app.z50.test. 60 IN A 198.51.100.1"});
  EXPECT_EQ(answer_of(**set, "www.z50.test"), std::vector<std::string>{"www.z50.test. 300 IN A 192.0.2.10"});
  // z7 as read ahead, as if the change had come just after its read; the
  // next reload reads it again, and only it.
  EXPECT_EQ(answer_of(**set, "www.z7.test"), std::vector<std::string>{"www.z7.test. 300 IN A 192.0.2.10"});
  ZoneCache after;
  size_t reread = 0;
  auto reloaded = build_zone_set(*cfg, states, true, false, &cache, &after, &reread);
  ASSERT_TRUE(reloaded) << reloaded.error().to_string();
  EXPECT_EQ(reread, 1u);
  EXPECT_EQ(answer_of(**reloaded, "www.z7.test"), std::vector<std::string>{"www.z7.test. 300 IN A 192.0.2.77"});
}

TEST(ZonePreload, ABadConfigAfterTheZones_IsStillRefusedWithItsLine) {
  test::TempDir dir;
  for (int i = 0; i < kZones; ++i) dir.write("z" + std::to_string(i) + ".zone", zone_text("192.0.2.10"));
  std::string path = dir.write("vane.yaml", config(dir) + "bogus: 1\n");
  ZonePreload preload;
  auto hook = preload.hook();
  auto cfg = load_config(path, &hook);
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().line, kZones + 9);
  EXPECT_NE(cfg.error().message.find("unknown key 'bogus'"), std::string::npos) << cfg.error().to_string();
}

// Zone sets built as reloads build them: each from the last one's cache.
struct Reloads {
  explicit Reloads(const Config& c) : cfg(c) {}
  Result<std::shared_ptr<zones::ZoneSet>> first() {
    return build_zone_set(cfg, states, true, false, nullptr, &cache, nullptr);
  }
  Result<std::shared_ptr<zones::ZoneSet>> again() {  // sets `reread`
    ZoneCache next;
    reread = 0;
    auto set = build_zone_set(cfg, states, true, false, &cache, &next, &reread);
    cache = std::move(next);
    return set;
  }
  const Config& cfg;
  zones::StateTable states;
  ZoneCache cache;
  size_t reread = 0;
};

// A file written in the last 2 s is compared by content too (two writes of
// one size within a tick look alike by stat); once it has aged past that,
// its zone is not read again for it.
TEST(ZoneCache, ARacyFileIsComparedByContent_AndNotReadAgainOnceItHasAged) {
  test::TempDir dir;
  std::string y = "listen: [\"127.0.0.1:0\"]\nstate_dir: " + dir.path() + "/state\nzones:\n";
  for (int i = 0; i < 3; ++i) {
    dir.write("z" + std::to_string(i) + ".zone", zone_text("192.0.2.10"));
    y += "  - { name: z" + std::to_string(i) + ".test, file: z" + std::to_string(i) + ".zone }\n";
  }
  auto cfg = load_config(dir.write("vane.yaml", y));
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  Reloads r(*cfg);
  auto first = r.first();
  ASSERT_TRUE(first) << first.error().to_string();
  // The same size, within the same second: found by its content.
  dir.write("z1.zone", zone_text("192.0.2.11"));
  size_t& reread = r.reread;
  auto set = r.again();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(reread, 1u);
  EXPECT_EQ(answer_of(**set, "www.z1.test"), std::vector<std::string>{"www.z1.test. 300 IN A 192.0.2.11"});
  // Every file ages past the 2 s: nothing is read again, then or after.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  set = r.again();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(reread, 0u);
  set = r.again();
  EXPECT_EQ(reread, 0u);
  dir.write("z2.zone", zone_text("192.0.2.12"));
  set = r.again();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(reread, 1u);
  EXPECT_EQ(answer_of(**set, "www.z2.test"), std::vector<std::string>{"www.z2.test. 300 IN A 192.0.2.12"});
  EXPECT_EQ(answer_of(**set, "www.z0.test"), std::vector<std::string>{"www.z0.test. 300 IN A 192.0.2.10"});
}

// A write that lands while a zone is being read, of the same size and in
// the same tick of the file system's clock, shows in neither the file's
// size nor its mtime. What the read parsed is what its fingerprint hashes,
// so the next reload still finds the file changed. A writer flips an
// address in place and puts the mtime back after every write (a tick that
// never ends), while the zone is read again and again; the reload after
// must serve what the file finally holds. The file flipped is the master
// file, then a file it $INCLUDEs.
TEST(ZoneCache, AFileRewrittenWhileItIsRead_SameSizeSameMtime_IsReadAgainAtTheNextReload) {
  for (bool include : {false, true}) {
    SCOPED_TRACE(include ? "an included file" : "the master file");
    test::TempDir dir;
    const std::string head = "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";
    const std::string www = "www IN A 192.0.2.";
    std::string body = www + "11\n";
    // Under 64 KiB: read into memory, so the bytes parsed are known.
    for (int i = 0; i < 1000; ++i) body += "h" + std::to_string(i) + " IN TXT \"filler record number " + std::to_string(i) + "\"\n";
    ASSERT_LT(body.size(), 60000u);
    const std::string flipped = include ? dir.write("inc.zone", body) : dir.write("z.zone", head + body);
    if (include) dir.write("z.zone", head + "$INCLUDE inc.zone\n");
    const off_t at = off_t((include ? 0 : head.size()) + www.size());
    auto cfg = load_config(dir.write("vane.yaml", "listen: [\"127.0.0.1:0\"]\nstate_dir: " + dir.path() +
                                                      "/state\nzones:\n  - { name: z.test, file: z.zone }\n"));
    ASSERT_TRUE(cfg) << cfg.error().to_string();
    int fd = open(flipped.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    int overlapped = 0, rounds = 0;
    // Until 30 rounds had writes landing during the read (or 5 s).
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (; overlapped < 30 && std::chrono::steady_clock::now() < end; ++rounds) {
      ASSERT_EQ(pwrite(fd, "11", 2, at), 2);
      timespec times[2] = {{0, UTIME_OMIT}, {}};
      clock_gettime(CLOCK_REALTIME, &times[1]);
      ASSERT_EQ(futimens(fd, times), 0);
      std::atomic<bool> stop{false};
      std::atomic<int> writes{0};
      char last = '1';
      std::thread writer([&] {
        for (char d = '2'; !stop.load(); d = d == '1' ? '2' : '1') {
          const char two[2] = {d, d};
          if (pwrite(fd, two, 2, at) != 2 || futimens(fd, times) != 0) return;
          last = d;
          writes.fetch_add(1);
        }
      });
      Reloads r(*cfg);
      while (writes.load() == 0) std::this_thread::yield();  // the read starts with the flips under way
      const int before = writes.load();
      auto first = r.first();
      ASSERT_TRUE(first) << first.error().to_string();
      if (writes.load() > before) ++overlapped;
      stop = true;
      writer.join();
      struct stat st {};
      ASSERT_EQ(fstat(fd, &st), 0);
      ASSERT_EQ(st.st_mtim.tv_nsec, times[1].tv_nsec);  // the last write's mtime put back too
      auto second = r.again();
      ASSERT_TRUE(second) << second.error().to_string();
      const std::string want = std::string("www.z.test. 300 IN A 192.0.2.") + last + last;
      ASSERT_EQ(answer_of(**second, "www.z.test"), std::vector<std::string>{want}) << "round " << rounds;
    }
    close(fd);
    EXPECT_GE(overlapped, 20) << "of " << rounds << " rounds, too few had writes landing during the read";
  }
}

// A racy file too large to read into memory is mapped, and what its first
// read parsed is not known: its zone is read again at the next reload, and
// not again after that while the file is unchanged.
TEST(ZoneCache, ARacyFileThatWasMapped_IsReadAgainAtTheNextReload_AndNotAfter) {
  test::TempDir dir;
  std::string text = zone_text("192.0.2.10");
  for (int i = 0; i < 3000; ++i) text += "h" + std::to_string(i) + " IN TXT \"filler record number " + std::to_string(i) + "\"\n";
  ASSERT_GT(text.size(), 100000u);
  dir.write("big.zone", text);
  dir.write("small.zone", zone_text("192.0.2.20"));
  auto cfg = load_config(dir.write("vane.yaml", "listen: [\"127.0.0.1:0\"]\nstate_dir: " + dir.path() +
                                                    "/state\nzones:\n  - { name: big.test, file: big.zone }\n"
                                                    "  - { name: small.test, file: small.zone }\n"));
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  Reloads r(*cfg);
  const size_t& reread = r.reread;
  auto first = r.first();
  ASSERT_TRUE(first) << first.error().to_string();
  auto set = r.again();  // the big one again; the small one's bytes were hashed
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(reread, 1u);
  EXPECT_EQ(answer_of(**set, "www.big.test"), std::vector<std::string>{"www.big.test. 300 IN A 192.0.2.10"});
  // That read was fingerprinted before it began (a write during it shows
  // at the next reload): nothing is read again, racy or aged.
  set = r.again();
  EXPECT_EQ(reread, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  set = r.again();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(reread, 0u);
  EXPECT_EQ(answer_of(**set, "h2999.big.test").size(), 0u);  // TXT, not A: NODATA
  EXPECT_EQ(answer_of(**set, "www.small.test"), std::vector<std::string>{"www.small.test. 300 IN A 192.0.2.20"});
}

}  // namespace
}  // namespace vane::server
