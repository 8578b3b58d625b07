#!/usr/bin/env python3
"""Abusive clients for the webhook server (bench/abuse.sh, BENCHMARKS.md "Abuse").

Standard library only: TLS from the ssl module, HTTP/1.1 and the few HTTP/2
frames needed written by hand. Every scenario is bounded in count and time and
talks to 127.0.0.1 only.

  abuse.py stalled-h1 --ca CA --port P [--count 20] [--length 8000000] [--send 7900000] [--hold 12]
  abuse.py stalled-h2 --ca CA --port P [--streams 20] [--length 8000000] [--send 7900000] [--hold 12]
  abuse.py idle       --ca CA --port P --kind tls|h2 [--count 2000] [--limit 120]
  abuse.py sigterm    --ca CA --port P --pid PID [--count 2000]
  abuse.py slowloris  --port ADMIN_PORT [--count 200] [--limit 60]
  abuse.py slow-body  --ca CA --port P [--rate 1024] [--length 100000] [--limit 60]
  abuse.py rss        --pid PID --seconds S
  abuse.py large-review --from buggy.json [--size 3000000] [--config 1000000] --out large.json

Each prints one summary line per phase; times are seconds since the scenario
started.
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import struct
import sys
import time

HOST = "127.0.0.1"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_DATA, FRAME_HEADERS, FRAME_RST, FRAME_SETTINGS = 0, 1, 3, 4
FRAME_PING, FRAME_GOAWAY, FRAME_WINDOW_UPDATE = 6, 7, 8
CHUNK = 16384  # HTTP/2's default largest frame


def tls_context(ca, alpn):
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols([alpn])
    return context


async def open_tls(ca, port, alpn, gate=None):
    async def connect():
        return await asyncio.open_connection(
            HOST, port, ssl=tls_context(ca, alpn), server_hostname="localhost"
        )

    if gate is None:
        return await connect()
    async with gate:  # a few handshakes at a time, not thousands at once
        return await connect()


async def wait_closed(reader, limit):
    """Seconds until the server closes the connection (None: still open)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    return time.monotonic() - started


def status_of(answer):
    line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split(" ")
    return parts[1] if len(parts) > 1 else "closed"


def summary(times):
    done = sorted(t for t in times if t is not None)
    still = len(times) - len(done)
    if not done:
        return f"closed 0 of {len(times)}"
    return (
        f"closed {len(done)} of {len(times)}: first after {done[0]:.1f}s, "
        f"last after {done[-1]:.1f}s; still open {still}"
    )


# ---- stalled HTTP/1.1 uploads -----------------------------------------------

async def stalled_h1_one(args, started, outcomes):
    reader, writer = await open_tls(args.ca, args.port, "http/1.1")
    head = (
        f"POST /mutate?timeout=30s HTTP/1.1\r\nhost: localhost\r\n"
        f"content-type: application/json\r\ncontent-length: {args.length}\r\n\r\n"
    )
    writer.write(head.encode())
    sent = 0
    body = b"{" + b" " * (CHUNK - 1)
    try:
        while sent < args.send and not writer.is_closing():
            piece = body[: min(CHUNK, args.send - sent)]
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    sent_at = time.monotonic() - started
    answer = b""
    try:
        async with asyncio.timeout(args.hold):
            while chunk := await reader.read(65536):
                answer += chunk
    except TimeoutError:
        outcomes.append(("held", sent, sent_at, None))
        writer.close()
        return
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    outcomes.append((status_of(answer), sent, sent_at, time.monotonic() - started))
    writer.close()


async def stalled_h1(args):
    started = time.monotonic()
    outcomes = []
    await asyncio.gather(*(stalled_h1_one(args, started, outcomes) for _ in range(args.count)))
    report_stalled(outcomes)


def report_stalled(outcomes):
    by_status = {}
    for status, sent, sent_at, answered_at in outcomes:
        if answered_at is not None:
            status += " at once" if answered_at < 2 else " later"
        by_status.setdefault(status, []).append((sent, sent_at, answered_at))
    for status, rows in sorted(by_status.items()):
        sent = sum(r[0] for r in rows) / len(rows)
        answered = [r[2] for r in rows if r[2] is not None]
        when = (
            f", answered after {min(answered):.1f}..{max(answered):.1f}s" if answered else ""
        )
        print(f"  {len(rows)} x {status}: {sent / 1e6:.1f} MB sent on average{when}")


# ---- stalled HTTP/2 streams -------------------------------------------------

def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name_index, value):
    """Literal header field without indexing, indexed name, no Huffman."""
    value = value.encode()
    assert len(value) < 127
    if name_index < 15:
        prefix = bytes([name_index])
    else:
        prefix = bytes([0x0F, name_index - 15])
    return prefix + bytes([len(value)]) + value


def request_headers(path, length):
    return (
        b"\x83"  # :method POST
        + b"\x87"  # :scheme https
        + hpack_literal(4, path)  # :path
        + hpack_literal(1, "localhost")  # :authority
        + hpack_literal(31, "application/json")  # content-type
        + hpack_literal(28, str(length))  # content-length
    )


async def read_frames(reader, on_frame):
    header = await reader.readexactly(9)
    while True:
        length = int.from_bytes(header[:3], "big")
        kind, flags = header[3], header[4]
        stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        payload = await reader.readexactly(length)
        on_frame(kind, flags, stream, payload)
        header = await reader.readexactly(9)


async def stalled_h2(args):
    started = time.monotonic()
    reader, writer = await open_tls(args.ca, args.port, "h2")
    writer.write(PREFACE + frame(FRAME_SETTINGS, 0, 0))
    streams = [1 + 2 * i for i in range(args.streams)]
    state = {
        "conn_window": 65535,
        "initial_window": 65535,
        "windows": {s: 65535 for s in streams},
        "sent": {s: 0 for s in streams},
        "answered": {},  # stream -> (how, seconds)
        "max_streams": None,
        "goaway": False,
    }
    progress = asyncio.Event()

    def on_frame(kind, flags, stream, payload):
        now = time.monotonic() - started
        if kind == FRAME_SETTINGS and not flags & 1:
            for at in range(0, len(payload), 6):
                key, value = struct.unpack(">HI", payload[at : at + 6])
                if key == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                    delta = value - state["initial_window"]
                    state["initial_window"] = value
                    for s in state["windows"]:
                        state["windows"][s] += delta
                if key == 3:
                    state["max_streams"] = value
            writer.write(frame(FRAME_SETTINGS, 1, 0))
        elif kind == FRAME_WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if stream == 0:
                state["conn_window"] += increment
            elif stream in state["windows"]:
                state["windows"][stream] += increment
        elif kind == FRAME_PING and not flags & 1:
            # A stalling client still answers PINGs, so keep-alive cannot be
            # what cuts it: the request deadline must.
            writer.write(frame(FRAME_PING, 1, 0, payload))
        elif kind == FRAME_HEADERS and stream in state["sent"]:
            state["answered"].setdefault(stream, ("answered", now))
        elif kind == FRAME_RST and stream in state["sent"]:
            code = int.from_bytes(payload[:4], "big")
            how = "refused" if code == 7 else "reset"
            state["answered"].setdefault(stream, (how, now))
        elif kind == FRAME_GOAWAY:
            state["goaway"] = True
        progress.set()

    reading = asyncio.create_task(read_frames(reader, on_frame))
    for s in streams:
        writer.write(frame(FRAME_HEADERS, 0x4, s, request_headers("/mutate?timeout=30s", args.length)))
    await writer.drain()

    body = b" " * CHUNK
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline and not reading.done():
        moved = False
        for s in streams:
            if s in state["answered"] or state["sent"][s] >= args.send:
                continue
            size = min(CHUNK, args.send - state["sent"][s], state["windows"][s], state["conn_window"])
            if size <= 0:
                continue
            writer.write(frame(FRAME_DATA, 0, s, body[:size]))
            state["windows"][s] -= size
            state["conn_window"] -= size
            state["sent"][s] += size
            moved = True
        await writer.drain()
        if not moved:
            progress.clear()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await progress.wait()
            except TimeoutError:
                break
    reading.cancel()
    writer.close()
    outcomes = []
    for s in streams:
        how, when = state["answered"].get(s, ("held", None))
        outcomes.append((how, state["sent"][s], 0.0, when))
    print(f"  server allows {state['max_streams']} streams per connection")
    report_stalled(outcomes)


# ---- idle connections, SIGTERM ----------------------------------------------

async def open_idle(args, kind, gate):
    alpn = "h2" if kind == "h2" else "http/1.1"
    reader, writer = await open_tls(args.ca, args.port, alpn, gate)
    if kind == "h2":
        # The preface and SETTINGS; then nothing, not even acknowledgements.
        writer.write(PREFACE + frame(FRAME_SETTINGS, 0, 0))
        await writer.drain()
    return reader, writer


async def open_many(args, kinds):
    gate = asyncio.Semaphore(64)
    results = await asyncio.gather(
        *(open_idle(args, kind, gate) for kind in kinds), return_exceptions=True
    )
    opened = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"  {len(failed)} connections failed to open: {failed[0]!r}")
    return opened


async def idle(args):
    opened = await open_many(args, [args.kind] * args.count)
    started = time.monotonic()
    print(f"  {len(opened)} idle {args.kind} connections open")
    if args.pid:
        print(f"  server {rss(args.pid)} with them open")
    times = await asyncio.gather(*(wait_closed(reader, args.limit) for reader, _ in opened))
    print(f"  {summary(times)} (limit {args.limit}s)")
    del started


async def sigterm(args):
    opened = await open_many(args, ["tls", "h2"] * (args.count // 2))
    print(f"  {len(opened)} idle connections open (TLS only and HTTP/2, alternately)")
    print(f"  server {rss(args.pid)} with them open")
    started = time.monotonic()
    os.kill(args.pid, signal.SIGTERM)
    while alive(args.pid):
        if time.monotonic() - started > 60:
            print("  still running after 60s")
            return
        await asyncio.sleep(0.01)
    print(f"  exited {time.monotonic() - started:.2f}s after SIGTERM")
    for _, writer in opened:
        writer.close()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ---- the admin port: slowloris ----------------------------------------------

async def slowloris_one(port, limit):
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n")
    await writer.drain()

    async def trickle():
        # One more header byte every second, as slowloris does.
        try:
            while True:
                await asyncio.sleep(1)
                writer.write(b"x")
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    trickling = asyncio.create_task(trickle())
    closed = await wait_closed(reader, limit)
    trickling.cancel()
    writer.close()
    return closed


async def slowloris(args):
    async def memory():
        await asyncio.sleep(2)
        if args.pid:
            print(f"  server {rss(args.pid)} with them open")

    times, _ = await asyncio.gather(
        asyncio.gather(*(slowloris_one(args.port, args.limit) for _ in range(args.count))),
        memory(),
    )
    print(f"  {summary(times)} (limit {args.limit}s)")


# ---- one body at a crawl ----------------------------------------------------

async def slow_body(args):
    reader, writer = await open_tls(args.ca, args.port, "http/1.1")
    head = (
        f"POST /mutate?timeout=10s HTTP/1.1\r\nhost: localhost\r\n"
        f"content-type: application/json\r\ncontent-length: {args.length}\r\n\r\n"
    )
    started = time.monotonic()
    writer.write(head.encode())

    async def crawl():
        sent = 0
        try:
            while sent < args.length:
                piece = b" " * min(args.rate // 10, args.length - sent)
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
                await asyncio.sleep(0.1)
        except (ConnectionError, OSError):
            pass
        return sent

    crawling = asyncio.create_task(crawl())
    answer = b""
    try:
        async with asyncio.timeout(args.limit):
            while chunk := await reader.read(65536):
                answer += chunk
    except TimeoutError:
        print(f"  not cut within {args.limit}s")
        return
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    cut = time.monotonic() - started
    crawling.cancel()
    print(f"  answered {status_of(answer)} and closed after {cut:.1f}s, at {args.rate} bytes/s")
    writer.close()


# ---- a large legitimate review ---------------------------------------------

BACKEND = """\
        - name: backend-{i:05d}
          url: http://mcp-backend-{i:05d}-proxy.toolhive-system.svc.cluster.local:8080/mcp
          transport: streamable-http
          metadata:
            group: demo-group
            namespace: toolhive-system
            tool_type: mcp
            workload_status: Running
            workload_type: mcp_server
"""


def large_review(args):
    """The buggy UPDATE review with backends added (in reverse order, so the
    webhook sorts them all) until config.yaml is about --config bytes (the
    largest a ConfigMap may hold is 1 MiB), then another data key in both
    objects until the body is about --size bytes."""
    with open(args.source) as source:
        review = json.load(source)
    request = review["request"]
    config = request["object"]["data"]["config.yaml"]
    head, tail = config.split("backends:\n", 1)
    item = len(BACKEND.format(i=0))
    count = max(0, (args.config - len(config)) // item)
    added = "".join(BACKEND.format(i=i) for i in reversed(range(count)))
    config = head + "backends:\n" + added + tail
    for side in ("object", "oldObject"):
        request[side]["data"]["config.yaml"] = config
    size = len(json.dumps(review, separators=(",", ":")))
    padding = "x" * max(0, (args.size - size) // 2)
    for side in ("object", "oldObject"):
        request[side]["data"]["notes"] = padding
    body = json.dumps(review, separators=(",", ":")).encode()
    with open(args.out, "wb") as out:
        out.write(body)
    print(
        f"  {args.out}: {len(body)} bytes; config.yaml {len(config)} bytes "
        f"({count} backends added) in object and oldObject"
    )


# ---- resident memory --------------------------------------------------------

def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss(pid):
    return (
        f"VmRSS {status_kb(pid, 'VmRSS') / 1024:.1f} MiB, "
        f"peak VmHWM {status_kb(pid, 'VmHWM') / 1024:.1f} MiB"
    )


async def rss_watch(args):
    marks = []
    for second in range(args.seconds + 1):
        marks.append(f"{second}s {status_kb(args.pid, 'VmRSS') / 1024:.1f}")
        if second < args.seconds:
            await asyncio.sleep(1)
    print("  VmRSS MiB: " + ", ".join(marks[:: max(1, args.every)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="scenario", required=True)

    def scenario(name, tls=True):
        p = sub.add_parser(name)
        if tls:
            p.add_argument("--ca", required=True)
        p.add_argument("--port", type=int, required=name != "rss")
        return p

    p = scenario("stalled-h1")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--length", type=int, default=8_000_000)
    p.add_argument("--send", type=int, default=7_900_000)
    p.add_argument("--hold", type=float, default=12)
    p = scenario("stalled-h2")
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--length", type=int, default=8_000_000)
    p.add_argument("--send", type=int, default=7_900_000)
    p.add_argument("--hold", type=float, default=12)
    p = scenario("idle")
    p.add_argument("--kind", choices=["tls", "h2"], required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--limit", type=float, default=120)
    p.add_argument("--pid", type=int)
    p = scenario("sigterm")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--pid", type=int, required=True)
    p = scenario("slowloris", tls=False)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--limit", type=float, default=60)
    p.add_argument("--pid", type=int)
    p = scenario("slow-body")
    p.add_argument("--rate", type=int, default=1024)
    p.add_argument("--length", type=int, default=100_000)
    p.add_argument("--limit", type=float, default=60)
    p = scenario("rss", tls=False)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--every", type=int, default=5)

    p = sub.add_parser("large-review")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--size", type=int, default=3_000_000)
    p.add_argument("--config", type=int, default=1_000_000)
    p.add_argument("--out", required=True)

    args = parser.parse_args()
    if args.scenario == "large-review":
        return large_review(args)
    run = {
        "stalled-h1": stalled_h1,
        "stalled-h2": stalled_h2,
        "idle": idle,
        "sigterm": sigterm,
        "slowloris": slowloris,
        "slow-body": slow_body,
        "rss": rss_watch,
    }[args.scenario]
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
