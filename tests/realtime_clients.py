"""Real realtime clients for the tests, each reading in a thread of its own.

- `SSEReader`: GET /api/v1/events?topic=… as a browser's EventSource reads it: every event's
  `id`, `event` and JSON `data`; with `reconnect=True` it reconnects after the stream breaks,
  sending the last id it saw as Last-Event-ID, as EventSource does.
- `WebSocketSubscription`: the `websockets` library speaking graphql-transport-ws:
  connection_init (with the token, if any) → connection_ack → subscribe; `next` payloads are
  collected, pings answered, `complete` ends it and `error` is kept as the failure.

`items()` is what arrived so far (a copy); `ended` says the server finished the stream;
`failure` holds a refusal (status and body, or the error payload or close code).
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


class _Collector:
    def __init__(self):
        self._items: list[dict] = []
        self._lock = threading.Lock()
        self.ended = False
        self.failure = None
        self.closing = False

    def items(self) -> list[dict]:
        with self._lock:
            return list(self._items)

    def _add(self, item: dict) -> None:
        with self._lock:
            self._items.append(item)

    def _start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()


class SSEReader(_Collector):
    """Items are each event's `data` with `event_id` and `event` added."""

    def __init__(self, base: str, topic: str, *, token: str | None = None, last_event_id: str | None = None,
                 reconnect: bool = False):
        super().__init__()
        self.url, self.topic, self.token, self.reconnect = f"{base}/api/v1/events", topic, token, reconnect
        self.last_id = last_event_id
        self.response = None
        self.connections = 0
        self._start()

    def __repr__(self) -> str:
        return f"SSEReader({self.url}?topic={self.topic})"

    def _run(self) -> None:
        while not self.closing:
            headers = {"Accept": "text/event-stream"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                with requests.get(self.url, params={"topic": self.topic}, headers=headers, stream=True,
                                  timeout=(5, 120)) as response:
                    self.response = response
                    if response.status_code != 200:
                        self.failure = (response.status_code, response.text)
                        return
                    self.connections += 1
                    self._read(response)
            except (requests.RequestException, AttributeError, ValueError, OSError):
                pass  # the stream broke (or close() cut it)
            if not self.reconnect:
                break
            time.sleep(0.5)
        self.ended = True

    def _read(self, response) -> None:
        event_id, kind, data = None, "message", []
        for line in response.iter_lines(chunk_size=1024, decode_unicode=True):
            if self.closing:
                return
            if line == "":
                if data:
                    self._add({**json.loads("\n".join(data)), "event_id": event_id, "event": kind})
                    if event_id:
                        self.last_id = event_id
                event_id, kind, data = None, "message", []
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "id":
                    event_id = value
                elif field == "event":
                    kind = value
                elif field == "data":
                    data.append(value)

    def close(self) -> None:
        self.closing = True
        if self.response is not None:
            self.response.close()


class WebSocketSubscription(_Collector):
    """Items are the subscription field's value in each `next` payload."""

    def __init__(self, url: str, query: str, variables: dict | None = None, *, token: str | None = None):
        super().__init__()
        self._exit = ExitStack()
        self.socket = self._exit.enter_context(connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10))
        self.socket.send(json.dumps({"type": "connection_init",
                                     "payload": {"Authorization": f"Bearer {token}"} if token else {}}))
        ack = json.loads(self.socket.recv(timeout=10))
        assert ack["type"] == "connection_ack", ack
        self.socket.send(json.dumps({"id": "1", "type": "subscribe",
                                     "payload": {"query": query, "variables": variables or {}}}))
        self.close_code = None
        self._start()

    def __repr__(self) -> str:
        return f"WebSocketSubscription({self.socket.request.path if self.socket.request else ''})"

    def _run(self) -> None:
        try:
            for raw in self.socket:
                message = json.loads(raw)
                if message["type"] == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.failure = payload["errors"]
                    for value in (payload.get("data") or {}).values():
                        self._add(value)
                elif message["type"] == "ping":
                    self.socket.send(json.dumps({"type": "pong"}))
                elif message["type"] == "error":
                    self.failure = message["payload"]
                    break
                elif message["type"] == "complete":
                    break
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
            if not self.closing:
                self.failure = self.failure or ("closed", self.close_code)
        self.ended = True

    def close(self) -> None:
        self.closing = True
        self._exit.close()
