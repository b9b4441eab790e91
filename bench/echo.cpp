// bench/run.sh's floor: the least a UDP DNS server can do per query. One
// thread blocks in recvmmsg(MSG_WAITFORONE) for up to 64 datagrams and
// sends each back with sendmmsg, the QR bit set and nothing else changed —
// what any server's receive and send cost, without a lookup or an encoder.
//
//   vane-echo PORT [WIDTH [RCVBUF]]   (127.0.0.1 only; runs until killed)
//
// WIDTH (1-64, default 64) is the datagrams per call; RCVBUF the bytes
// asked for the receive buffer (default 4 MiB, as vaned; 0 leaves the
// kernel's default), to tell the kernel's part of a tail from a server's.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  constexpr int kBatch = 64;
  const int width = argc > 2 ? std::atoi(argv[2]) : kBatch;
  int rcvbuf = argc > 3 ? std::atoi(argv[3]) : 4 << 20;
  if (argc < 2 || argc > 4 || width < 1 || width > kBatch || rcvbuf < 0) {
    std::fprintf(stderr, "usage: vane-echo PORT [WIDTH (1-64) [RCVBUF bytes, 0: the kernel's default]]\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("vane-echo: bind");
    return 1;
  }
  static unsigned char bufs[kBatch][512];
  sockaddr_in from[kBatch];
  iovec iov[kBatch];
  mmsghdr msgs[kBatch];
  while (true) {
    for (int i = 0; i < width; ++i) {
      iov[i] = {bufs[i], sizeof bufs[i]};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, msgs, static_cast<unsigned>(width), MSG_WAITFORONE, nullptr);
    if (n <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (msgs[i].msg_len >= 3) bufs[i][2] |= 0x80;  // QR
      iov[i].iov_len = msgs[i].msg_len;
    }
    sendmmsg(fd, msgs, static_cast<unsigned>(n), 0);
  }
}
