"""uvicorn (setup.cfg: <1; tested 0.55, websockets 17, httptools 0.9): a stream's pending messages in one write.

Replaces: one ASGI `websocket.send` per message, which uvicorn's websockets-sansio protocol
(`WebSocketsSansIOProtocol.send`, the `--ws auto` choice with websockets ≥ 13) frames and writes
with its own `transport.write`: a syscall per message per subscriber, 35–40 % of the realtime
process at 50 events/s × 1,000 subscribers (py-spy, `make bench-realtime`). `frame_writer(send)`
takes the `send` uvicorn hands the ASGI app (a bound method of that protocol) and gives a
`FrameWriter`: `write(texts)` frames the texts (itself, or with the protocol's own `websockets`
ServerProtocol when an extension such as permessage-deflate was negotiated: `send_text`,
`data_to_send`, websockets' public sans-I/O API) and writes them in one `transport.write`. It
reads the protocol's `conn`, `transport`, `writable`, `close_sent`, `disconnected` and
`handshake_complete`, and the connection's `state` and `extensions`. None when `send` is not
that protocol's (another server, `--ws wsproto`): the caller keeps one ASGI send per message.
"""
from __future__ import annotations

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import (
        WebSocketsSansIOProtocol,
    )
    from websockets.protocol import State
except ImportError:  # pragma: no cover - websockets not installed: no seam
    WebSocketsSansIOProtocol = None


class FrameWriter:
    """Text frames written straight to one uvicorn WebSocket connection."""

    def __init__(self, protocol):
        self.protocol = protocol

    def open(self) -> bool:
        """Accepted, not closing, and below the transport's high-water mark (else: the ASGI send,
        which waits for the buffer to drain, so a slow reader still holds its sender back)."""
        protocol = self.protocol
        return (protocol.handshake_complete and not protocol.close_sent and not protocol.disconnected
                and protocol.writable.is_set())

    def write(self, texts: list[str]) -> bool:
        """Frame and write `texts` at once; False (nothing written) once the connection is closing.

        Without a negotiated extension (no permessage-deflate) a server's text frame is a 2-10
        byte header and the UTF-8 text, unmasked (RFC 6455 §5.2): framed here, ~2 µs less per
        message than websockets' `Frame.serialize`; with one, websockets frames (and compresses) it."""
        protocol = self.protocol
        if protocol.close_sent or protocol.disconnected or protocol.transport.is_closing():
            return False
        conn = protocol.conn
        if conn.state is not State.OPEN:
            return False
        if conn.extensions:
            for text in texts:
                conn.send_text(text.encode())
            protocol.transport.write(b"".join(conn.data_to_send()))
        else:
            protocol.transport.write(b"".join(map(_text_frame, texts)))
        return True


def _text_frame(text: str) -> bytes:
    data = text.encode()
    length = len(data)
    if length < 126:
        return bytes((0x81, length)) + data
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big") + data
    return b"\x81\x7f" + length.to_bytes(8, "big") + data


def frame_writer(send) -> FrameWriter | None:
    """A FrameWriter for the connection `send` belongs to, or None when it is not uvicorn's websockets-sansio."""
    protocol = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    return FrameWriter(protocol)


try:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
except ImportError:  # pragma: no cover - httptools not installed: no seam
    RequestResponseCycle = None


class ChunkWriter:
    """Body chunks written straight to one uvicorn (httptools) chunked response: an SSE stream.

    Replaces: one ASGI `http.response.body` per chunk (`RequestResponseCycle.send`), reached
    through Starlette's StreamingResponse and its middlewares' send wrappers. Reads the cycle's
    `transport`, `flow.write_paused`, `chunked_encoding`, `response_started`, `response_complete`
    and `disconnected`; writes the chunk framing that `send` writes."""

    def __init__(self, cycle):
        self.cycle = cycle

    def open(self) -> bool:
        cycle = self.cycle
        return (cycle.response_started and cycle.chunked_encoding and not cycle.response_complete
                and not cycle.disconnected and not cycle.flow.write_paused)

    def write(self, chunks: list[str]) -> bool:
        cycle = self.cycle
        if cycle.response_complete or cycle.disconnected or cycle.transport.is_closing():
            return False
        body = "".join(chunks).encode()
        cycle.transport.write(b"%x\r\n%s\r\n" % (len(body), body))
        return True


def chunk_writer(send) -> ChunkWriter | None:
    """A ChunkWriter for the response `send` belongs to, or None when it is not uvicorn's httptools cycle."""
    cycle = getattr(send, "__self__", None)
    if RequestResponseCycle is None or not isinstance(cycle, RequestResponseCycle):
        return None
    return ChunkWriter(cycle)
