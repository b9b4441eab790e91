#!/usr/bin/env python3
"""all_served.py PORT N TIMEOUT_S: waits until zones z0.test .. z{N-1}.test
all answer their SOA over UDP on 127.0.0.1:PORT (NOERROR, authoritative);
prints the seconds until 99 % answered ('-': never), then the seconds until
all did, or 'timeout K/N' with how many did."""
import socket, struct, sys, time

port, n, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


def query(qid, zone):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in zone.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 6, 1)


start = time.monotonic()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(0.3)
missing = set(range(n))
most = None  # when 99 % answered
while missing and time.monotonic() - start < limit:
    round = sorted(missing)[:2000]  # one round: at most 2000 queries
    for i in round:
        s.sendto(query(i, "z%d.test" % i), ("127.0.0.1", port))
    # Until every query of the round is answered, or 0.3 s pass without an answer.
    answers = 0
    try:
        while answers < len(round):
            data = s.recv(4096)
            answers += 1
            qid, flags = struct.unpack(">HH", data[:4])
            if flags & 0x0400 and flags & 0xF == 0 and struct.unpack(">H", data[6:8])[0] >= 1:
                missing.discard(qid)
    except socket.timeout:
        pass
    if answers == len(round) and missing:
        time.sleep(0.05)  # all answered, some not served yet: a moment before the next round
    if most is None and len(missing) <= n // 100:
        most = time.monotonic() - start
print("%.1f" % most if most is not None else "-",
      "%.1f" % (time.monotonic() - start) if not missing else "timeout %d/%d" % (n - len(missing), n))
