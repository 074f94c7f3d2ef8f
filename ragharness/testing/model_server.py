"""A model server on 127.0.0.1 that behaves like a real one, for the acceptance tier and the latency benchmark:
OpenAI-compatible chat completions (JSON or streamed as server-sent events), a known per-request latency with
jitter, occasional 429s and 500s, and answers that a switch can make worse between two runs.

The server times every request itself (from the request's arrival to the last byte written), so a test can hold
the latencies the harness records against what the server saw."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[dict[str, Any], bool], str]
"""(request body, worse) -> the answer text."""


@dataclass
class Served:
    model: str
    status: int
    ms: float = field(metadata={"unit": "ms"})
    """Server-side: from the request's arrival to the last byte of the answer written."""
    id: str = ""
    """The answer's `id` (what the harness records as the generation's request_id)."""
    ttft_ms: float | None = None
    """Streamed answers: from the request's arrival to the first token's event written."""


def _echo(body: dict[str, Any], worse: bool) -> str:
    return "I can't answer that from the available documentation." if worse else "See the passages [1]."


class ModelServer:
    """`latency_ms` +- `jitter_ms` (uniform, seeded) per request; every `fail_every`-th request (by arrival) gets a
    429 with Retry-After 0 and every `error_every`-th a 500 (0: never); `worse` flips what `answer` returns.

    A streamed answer (`"stream": true`) sends its headers at once, its first token after the jittered latency and
    each further word `token_ms` later, as a model decoding does; a JSON answer arrives whole after the latency."""

    def __init__(
        self,
        answer: Answer = _echo,
        *,
        latency_ms: float = 60.0,
        jitter_ms: float = 20.0,
        fail_every: int = 0,
        error_every: int = 0,
        token_ms: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.answer = answer
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.fail_every = fail_every
        self.error_every = error_every
        self.token_ms = token_ms
        self.worse = False
        self.served: list[Served] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._arrivals = 0
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the server was answering at once."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints

            def setup(self) -> None:
                super().setup()
                # as real servers do: without it, Nagle's algorithm holds the body behind the headers until the
                # client's delayed ACK (~40 ms on Linux), a delay no real endpoint has
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                started = time.perf_counter()
                with outer._lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    self._answer(started)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1

            def _answer(self, started: float) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                body = json.loads(raw or b"{}")
                status, delay, text, rid = outer._plan(body)
                stream = bool(body.get("stream"))
                first: float | None = None
                if status != 200:
                    payload = json.dumps({"error": {"message": "slow down" if status == 429 else "server error"}})
                    self._send(status, payload.encode(), {"Retry-After": "0"} if status == 429 else {})
                elif stream:
                    first = self._stream(body.get("model", ""), text, rid, started + delay)
                else:
                    time.sleep(delay)
                    self._send(200, json.dumps(_completion(body.get("model", ""), text, rid)).encode(), {})
                ms = (time.perf_counter() - started) * 1000
                ttft = None if first is None else (first - started) * 1000
                with outer._lock:
                    outer.served.append(Served(body.get("model", ""), status, ms, rid, ttft))

            def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _stream(self, model: str, text: str, rid: str, first_at: float) -> float | None:
                """Headers now, the first word at `first_at`, each next one `token_ms` later; returns when the
                first word was written."""
                words = text.split(" ")
                first: float | None = None
                try:
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    self._chunk(b": the model is thinking\n\n")  # a comment line, as real servers send
                    for n, word in enumerate(words):
                        time.sleep(max(0.0, first_at + n * outer.token_ms / 1000 - time.perf_counter()))
                        delta = {"content": word + (" " if n < len(words) - 1 else "")}
                        chunk = {"id": rid, "model": model, "choices": [{"index": 0, "delta": delta}]}
                        self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                        if first is None:
                            first = time.perf_counter()
                    usage = {"prompt_tokens": 900, "completion_tokens": len(words), "total_tokens": 900 + len(words)}
                    end = {"id": rid, "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self._chunk(f"data: {json.dumps(end)}\n\n".encode())
                    self._chunk(f"data: {json.dumps({'id': rid, 'choices': [], 'usage': usage})}\n\n".encode())
                    self._chunk(b"data: [DONE]\n\n")
                    self._chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return first

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request: object, client_address: object) -> None:
                return None  # a client that went away (a killed run) is no server error

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _plan(self, body: dict[str, Any]) -> tuple[int, float, str, str]:
        with self._lock:
            self._arrivals += 1
            n = self._arrivals
            delay = max(0.0, self.latency_ms + self._rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000
            worse = self.worse
        rid = f"chatcmpl-{n:06d}"
        if self.fail_every and n % self.fail_every == 0:
            return 429, 0.0, "", rid
        if self.error_every and n % self.error_every == 0:
            return 500, 0.0, "", rid
        return 200, delay, self.answer(body, worse), rid

    def by_id(self) -> dict[str, float]:
        """Server-side milliseconds of each successful answer, by its id."""
        with self._lock:
            return {s.id: s.ms for s in self.served if s.status == 200}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def requests(self, model: str | None = None) -> int:
        """Requests answered so far (all of them, or those for `model`)."""
        with self._lock:
            return sum(1 for s in self.served if model is None or s.model == model)

    def ttfts(self) -> dict[str, float]:
        """Server-side time to first token of each streamed answer, by its id."""
        with self._lock:
            return {s.id: s.ttft_ms for s in self.served if s.status == 200 and s.ttft_ms is not None}

    def latencies(self, model: str | None = None) -> list[float]:
        """Server-side milliseconds of the successful answers (for `model`)."""
        with self._lock:
            return [s.ms for s in self.served if s.status == 200 and (model is None or s.model == model)]

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(model: str, text: str, rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 30, "total_tokens": 930},
    }
