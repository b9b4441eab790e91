#!/usr/bin/python3
"""bench/api.sh's HTTP API client (127.0.0.1 only).

  api_client.py latency PORT TOKEN N   -> p50/p99 of GET /v1/status?filter= and of
                                          POST /v1/weight flips (255/0, N each), one
                                          keep-alive connection, one request at a time
  api_client.py hammer PORT TOKEN SECONDS THREADS
                                       -> requests answered while THREADS connections
                                          send GET /v1/status back to back
"""
import http.client
import json
import sys
import threading
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def latency(port, token, n):
    c = http.client.HTTPConnection("127.0.0.1", port)
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    out = {}
    for name, call in (
        ("status", lambda i: ("GET", "/v1/status?filter=www.example.com", None)),
        ("flip", lambda i: ("POST", "/v1/weight",
                            json.dumps({"record": "www.example.com", "endpoint": "use1", "weight": 255 if i % 2 else 0}))),
    ):
        us = []
        for i in range(n + 20):
            method, path, body = call(i)
            t = time.perf_counter_ns()
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            dt = (time.perf_counter_ns() - t) / 1000
            if r.status != 200:
                sys.exit(f"{name}: HTTP {r.status}: {data[:200]!r}")
            if i >= 20:  # warm-up
                us.append(dt)
        out[name] = (pct(us, 0.5), pct(us, 0.99))
    print(" ".join(f"{k}_p50_us {v[0]:.0f} {k}_p99_us {v[1]:.0f}" for k, v in out.items()))


def hammer(port, token, seconds, threads):
    done = [0] * threads
    served = [0] * threads
    end = time.time() + seconds

    def run(k):
        c = http.client.HTTPConnection("127.0.0.1", port)
        h = {"Authorization": "Bearer " + token}
        while time.time() < end:
            c.request("GET", "/v1/status", headers=h)
            r = c.getresponse()
            r.read()
            done[k] += 1
            served[k] += r.status == 200

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"api_requests {sum(done)} api_rps {sum(done) / seconds:.0f} served {sum(served)}")


if __name__ == "__main__":
    if sys.argv[1] == "latency":
        latency(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        hammer(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
