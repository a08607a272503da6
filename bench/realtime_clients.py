"""The subscriber side of `make bench-realtime`: thousands of WebSocket and SSE clients in one process.

Each client is a bare asyncio Protocol speaking the wire format itself (HTTP/1.1 + SSE, or an RFC 6455
handshake + graphql-transport-ws, no compression offered), so the per-message cost here is a regex
over the bytes received and the realtime process, not this one, is what the benchmark measures.
Every post's title is "bench <seq> <unix time before its commit>": a delivery's latency is its
arrival time minus that. Every subscriber checks it gets each post once (a bitmap by seq:
`duplicates`), and an SSE subscriber that the event ids (commit order) only rise (`out_of_order`);
the publisher's concurrent writers commit out of seq order, so seqs are not compared for order.

Driven over stdin/stdout, one JSON line each way: `open N` (→ {"opened", "failed"}), `reset SEQ`
(start a measuring window for the posts after SEQ), `count` (→ deliveries so far), `stats` (→ the
window's counts and a latency histogram), `quit`. bench/realtime.py runs several such processes.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import resource
import sys
import time
from array import array

TITLE = re.compile(rb"bench (\d+) (\d+\.\d+)")
SSE_ID = re.compile(rb"^id: (\d+)-(\d+)$", re.MULTILINE)
SUBSCRIBE = json.dumps({"id": "1", "type": "subscribe",
                        "payload": {"query": "subscription { postPublished { id title } }"}}).encode()


class Window:
    """What every subscriber received of the posts published since the last `reset` (seq > floor)."""

    def __init__(self, floor: int = 0):
        self.latencies = {"websocket": array("d"), "sse": array("d")}
        self.floor = floor
        self.duplicates = self.out_of_order = 0

    def record(self, client, chunk: bytes, now: float) -> None:
        latencies, seen = self.latencies[client.protocol], client.seen
        for match in TITLE.finditer(chunk):
            seq = int(match.group(1))
            if seq > self.floor:  # a backlog of the window before is not this one's
                if seq >= len(seen):
                    seen.extend(bytes(seq + 1024 - len(seen)))
                if seen[seq]:
                    self.duplicates += 1
                    continue
                seen[seq] = 1
                latencies.append(now - float(match.group(2)))
                client.received += 1
        if client.protocol == "sse":
            for match in SSE_ID.finditer(chunk):
                key = (int(match.group(1)), int(match.group(2)))
                if key <= client.last_id:
                    self.out_of_order += 1
                client.last_id = key


WINDOW = Window()


class Client(asyncio.Protocol):
    """Shared plumbing: connect, send the request, hand the body bytes to `feed`."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.ready = asyncio.get_running_loop().create_future()
        self.transport = None
        self.buffer = b""
        self.headers_done = False
        self.received = 0
        self.closed = False
        self.seen = bytearray()  # seqs received (each once)
        self.last_id = (0, 0)  # SSE: the last event id, as (ms, seq)

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request())

    def data_received(self, data: bytes):
        self.buffer += data
        if not self.headers_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self.headers_done = True
            if not self.accepted(head):
                self.fail(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                return
        self.feed(time.time())

    def connection_lost(self, exc):
        self.closed = True
        self.fail("connection closed")

    def fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()


class SSEClient(Client):
    protocol = "sse"

    def request(self) -> bytes:
        return (f"GET /api/v1/events?topic=posts HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Accept: text/event-stream\r\n\r\n").encode()

    def accepted(self, head: bytes) -> bool:
        if head.startswith(b"HTTP/1.1 200"):
            self.ready.set_result(self)
            return True
        return False

    def feed(self, now: float) -> None:
        end = max(self.buffer.rfind(b"\n\n"), self.buffer.rfind(b"\n\r\n"))  # whole events only
        if end >= 0:
            WINDOW.record(self, self.buffer[:end], now)
            self.buffer = self.buffer[end + 2:]
        if self.buffer.lstrip(b"\r\n").startswith(b"0\r\n\r\n"):  # the last chunk: the server ended it
            self.closed = True
            self.transport.close()


class WebSocketClient(Client):
    """graphql-transport-ws: connection_init → connection_ack → subscribe; answers pings."""

    protocol = "websocket"

    def request(self) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (f"GET /graphql HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode()

    def accepted(self, head: bytes) -> bool:
        if head.startswith(b"HTTP/1.1 101"):
            self.send(b'{"type": "connection_init", "payload": {}}')
            return True
        return False

    def send(self, payload: bytes, opcode: int = 1) -> None:
        mask = os.urandom(4)
        length = len(payload)
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
        self.transport.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def feed(self, now: float) -> None:
        buffer, offset = self.buffer, 0
        while len(buffer) - offset >= 2:
            opcode, length, start = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F, offset + 2
            if length == 126:
                if len(buffer) - offset < 4:
                    break
                length, start = int.from_bytes(buffer[offset + 2:offset + 4], "big"), offset + 4
            elif length == 127:
                if len(buffer) - offset < 10:
                    break
                length, start = int.from_bytes(buffer[offset + 2:offset + 10], "big"), offset + 10
            if len(buffer) < start + length:
                break
            self.message(opcode, buffer[start:start + length], now)
            offset = start + length
        self.buffer = buffer[offset:]

    def message(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 9:
            self.send(payload, opcode=10)
        elif opcode == 8:
            self.fail(f"closed by the server: {payload[:2].hex()} {payload[2:].decode(errors='replace')}")
        elif opcode == 1:
            if b'"next"' in payload:
                WINDOW.record(self, payload, now)
            elif b'"ping"' in payload:
                self.send(b'{"type": "pong"}')
            elif b'"connection_ack"' in payload:
                self.send(SUBSCRIBE)
                self.ready.set_result(self)
            elif b'"error"' in payload or b'"complete"' in payload:
                self.fail(payload.decode(errors="replace"))


async def open_clients(host: str, port: int, count: int, ws_share: float, clients: list, batch: int = 100) -> dict:
    """Open `count` more subscribers, `batch` handshakes at a time; WebSocket for ws_share of them."""
    loop = asyncio.get_running_loop()
    failed, reasons = 0, {}
    for start in range(0, count, batch):
        pending = []
        for _ in range(start, min(count, start + batch)):
            kind = WebSocketClient if (len(clients) + len(pending)) % 100 < ws_share * 100 else SSEClient
            pending.append(_connect(loop, kind, host, port))
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, Client):
                clients.append(outcome)
            else:
                failed += 1
                reasons[str(outcome)[:120]] = reasons.get(str(outcome)[:120], 0) + 1
    return {"opened": len(clients), "failed": failed, "reasons": reasons,
            "websocket": sum(isinstance(c, WebSocketClient) for c in clients)}


async def _connect(loop, kind, host: str, port: int) -> Client:
    _, client = await loop.create_connection(lambda: kind(host, port), host, port)
    return await asyncio.wait_for(client.ready, 30)


def counts(clients: list) -> dict:
    """What `drain` polls: cheap (no sorting while deliveries may still be arriving)."""
    return {"deliveries": sum(map(len, WINDOW.latencies.values())), "open": sum(not c.closed for c in clients),
            "closed": sum(c.closed for c in clients)}


def stats(clients: list) -> dict:
    """The window's counts and latencies as a histogram (0.1 ms buckets), merged by bench/realtime.py."""
    received = [c.received for c in clients if not c.closed]
    hist = {}
    for name, values in WINDOW.latencies.items():
        buckets: dict[int, int] = {}
        for value in values:
            bucket = max(0, int(value * 10_000))
            buckets[bucket] = buckets.get(bucket, 0) + 1
        hist[name] = buckets
    return {**counts(clients), "duplicates": WINDOW.duplicates, "out_of_order": WINDOW.out_of_order,
            "per_subscriber_min": min(received, default=0), "per_subscriber_max": max(received, default=0),
            "hist": hist}


def reset(clients: list, floor: int) -> None:
    global WINDOW
    WINDOW = Window(floor)
    for client in clients:
        client.received = 0


async def main(host: str, port: int, ws_share: float) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    clients: list[Client] = []

    def answer(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while line := (await reader.readline()).decode().strip():
        command, *args = line.split()
        if command == "open":
            answer(await open_clients(host, port, int(args[0]), ws_share, clients))
        elif command == "reset":
            reset(clients, int(args[0]))
            answer({"reset": True})
        elif command == "count":
            answer(counts(clients))
        elif command == "stats":
            answer(stats(clients))
        elif command == "quit":
            break
    for client in clients:
        client.transport.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
