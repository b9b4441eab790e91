#!/usr/bin/env python3
"""Endpoints that are half there and lying, for the health-checker bench.

  lying_endpoints.py FLAKY_PORT TARPIT_PORT

FLAKY_PORT answers HTTP 200 "ok" and 503 in turn, per request path (one
path per endpoint: each sees success, failure, success, ...);
TARPIT_PORT accepts connections and never says a word (an HTTP server that
hangs, a TLS handshake that stalls) until the prober gives up and closes.
Both on 127.0.0.1; runs until killed.
"""
import asyncio
import resource
import sys

served = {}


async def flaky(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
        served[path] = served.get(path, 0) + 1
        if served[path] % 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        else:
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\nConnection: close\r\n\r\nflaky\n")
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    writer.close()


async def tarpit(reader, writer):
    try:
        while await reader.read(4096):  # what the prober sends is ignored; its close ends this
            pass
    except ConnectionError:
        pass
    writer.close()


async def main(flaky_port, tarpit_port):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    a = await asyncio.start_server(flaky, "127.0.0.1", flaky_port, backlog=4096)
    b = await asyncio.start_server(tarpit, "127.0.0.1", tarpit_port, backlog=4096)
    async with a, b:
        await asyncio.gather(a.serve_forever(), b.serve_forever())


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
