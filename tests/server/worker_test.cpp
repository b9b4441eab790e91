// A worker's UDP threads block in their receive with no timeout and are
// woken by a signal (worker.cpp, kWakeSignal), and on the io_uring path by
// an eventfd too: a newer snapshot reaches an idle thread, which lets the
// old one go with no query arriving, and a stop ends every thread even when
// a wake lands just before it blocks. On both receive paths. A worker
// destroyed without stop() stops itself. And the TCP admission's hand-over
// of an evicted connection's slot at the cap.
#include "worker.h"

#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "sockets.h"

namespace vane::server {
namespace {

using Receive = UdpOptions::Receive;

struct Bench {
  SnapshotPublisher publisher;
  zones::TransferPublisher transfers;
  NotifyInbox notifies;
  TcpOptions tcp_opts;
  TcpAdmission admission{tcp_opts};
  AnswerOptions answer_opts;

  std::unique_ptr<Worker> worker(Receive receive) {
    std::vector<ListenAddr> listen(1);
    EXPECT_TRUE(parse_listen("127.0.0.1:0", listen[0]));
    auto socks = open_sockets(listen, 1);
    EXPECT_TRUE(socks) << socks.error().to_string();
    if (!socks) return nullptr;
    UdpOptions udp;
    udp.receive = receive;
    return std::make_unique<Worker>(0, std::move((*socks)[0]), publisher, transfers, notifies, admission, answer_opts,
                                    tcp_opts, udp);
  }
};

std::shared_ptr<zones::ZoneSet> empty_set() {
  return std::make_shared<zones::ZoneSet>(std::vector<std::shared_ptr<const zones::Zone>>{});
}

class WorkerWake : public ::testing::TestWithParam<Receive> {};

TEST_P(WorkerWake, AnIdleThreadLetsTheOldSnapshotGo) {
  Bench b;
  auto first = empty_set();
  std::weak_ptr<const zones::ZoneSet> old = first;
  b.publisher.publish(std::move(first));
  auto w = b.worker(GetParam());
  ASSERT_TRUE(w);
  w->start();
  ASSERT_FALSE(old.expired());  // the worker's threads hold it
  for (int generation = 0; generation < 50; ++generation) {
    auto next = empty_set();
    std::weak_ptr<const zones::ZoneSet> now = next;
    b.publisher.publish(std::move(next));
    w->refresh();
    int polls = 0;  // 20 ms apart
    bool gone = test::eventually(  // 10 s: a generous bound for a test, not a deadline
        [&] {
          if (++polls % 50 == 0) w->nudge();  // once a second, as the server's retire timer does
          return old.expired();
        },
        10000);
    ASSERT_TRUE(gone) << "generation " << generation;
    old = now;
  }
  w->stop();
  w.reset();
  EXPECT_TRUE(b.publisher.current());
}

TEST_P(WorkerWake, StopEndsEveryThread_StartedAndStoppedOneHundredTimes) {
  Bench b;
  b.publisher.publish(empty_set());
  for (int i = 0; i < 100; ++i) {
    auto w = b.worker(GetParam());
    ASSERT_TRUE(w);
    w->start();
    if (i % 2) w->refresh();  // a wake in flight as the stop comes
    w->stop();
    w.reset();  // joins: hangs (and times out) if a thread missed its wake
  }
}

TEST_P(WorkerWake, AWorkerDestroyedWithoutStopStopsItself) {
  Bench b;
  b.publisher.publish(empty_set());
  for (int i = 0; i < 10; ++i) {
    auto w = b.worker(GetParam());
    ASSERT_TRUE(w);
    w->start();
    w.reset();  // hangs (and times out) if the destructor waited for a stop that never came
  }
}

// At the cap, an eviction's slot goes to the newcomer it was made for:
// handed over under the lock, the total never dips, so another worker's
// accept cannot take it in between (before, the newcomer could be turned
// away right after a connection was closed for it).
TEST(TcpAdmission, AnEvictedSlotIsHandedToTheNewcomer_NeverFreedInBetween) {
  TcpOptions o;
  o.max_connections = 2;
  o.max_per_client = 2;
  TcpAdmission a(o);
  ASSERT_EQ(a.admit("flood"), TcpAdmission::Verdict::kAdmitted);
  ASSERT_EQ(a.admit("flood"), TcpAdmission::Verdict::kAdmitted);
  EXPECT_EQ(a.admit("fresh"), TcpAdmission::Verdict::kServerFull);
  ASSERT_TRUE(a.hand_over("flood", "fresh"));
  EXPECT_EQ(a.open(), 2u);
  EXPECT_EQ(a.held("flood"), 1u);
  EXPECT_EQ(a.held("fresh"), 1u);
  EXPECT_EQ(a.admit("other"), TcpAdmission::Verdict::kServerFull) << "the slot was not free for anyone else";
  ASSERT_TRUE(a.hand_over("flood", "fresh"));
  EXPECT_EQ(a.held("flood"), 0u);
  EXPECT_EQ(a.held("fresh"), 2u);
  // A newcomer at its own cap takes nothing.
  EXPECT_FALSE(a.hand_over("fresh", "fresh"));
  EXPECT_EQ(a.held("fresh"), 2u);
  EXPECT_EQ(a.open(), 2u);
  a.release("fresh");
  a.release("fresh");
  EXPECT_EQ(a.open(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Receive, WorkerWake, ::testing::Values(Receive::kRecvmmsg, Receive::kIoUring),
                         [](const auto& p) { return p.param == Receive::kIoUring ? "io_uring" : "recvmmsg"; });

}  // namespace
}  // namespace vane::server
