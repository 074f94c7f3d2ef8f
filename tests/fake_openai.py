"""A real local HTTP server speaking the OpenAI chat-completions protocol, with scripted replies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> raw text
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(text: str, prompt_tokens: int = 900, completion_tokens: int = 30) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class FakeBatchAPI:
    """`/v1/files` and `/v1/batches` as the OpenAI Batch API behaves: upload, create, list (newest first, with
    `after`), retrieve, cancel, output and error files. Each request line is answered by the server's chat replies
    (`script`, `responder`, `default`). Knobs: `polls` (retrieves before a batch ends), `outcome` (completed /
    expired / failed), `fail_ids` (custom_ids answered with a 500 in the error file), `malformed` (output lines
    replaced by garbage), `answer_limit` (an expired batch answered only this many)."""

    def __init__(self, server: FakeOpenAI) -> None:
        self.server = server
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls_left: dict[str, int] = {}
        self.creates = 0
        self.uploads = 0
        self.polls = 1
        self.outcome = "completed"
        self.fail_ids: set[str] = set()
        self.malformed = 0
        self.answer_limit: int | None = None
        self.failure_message = "the input file is invalid"

    def post(self, path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        if path == "/v1/files":
            from email.parser import BytesParser

            message = BytesParser().parsebytes(f"Content-Type: {headers.get('content-type')}\r\n\r\n".encode() + raw)
            content = b""
            for part in message.get_payload():
                if part.get_param("name", header="content-disposition") == "file":
                    content = part.get_payload(decode=True)
            self.uploads += 1
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = content
            return 200, {"id": fid, "object": "file", "bytes": len(content), "purpose": "batch"}
        if path == "/v1/batches":
            body = json.loads(raw)
            if body.get("input_file_id") not in self.files:
                return 404, {"error": {"message": f"no file {body.get('input_file_id')}"}}
            self.creates += 1
            bid = f"batch_{len(self.batches) + 1:04d}"
            lines = [ln for ln in self.files[body["input_file_id"]].decode().splitlines() if ln.strip()]
            self.batches[bid] = {
                "id": bid,
                "object": "batch",
                "endpoint": body["endpoint"],
                "input_file_id": body["input_file_id"],
                "completion_window": body["completion_window"],
                "status": "validating",
                "metadata": body.get("metadata") or {},
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "output_file_id": None,
                "error_file_id": None,
                "errors": None,
            }
            self.polls_left[bid] = self.polls
            return 200, self.batches[bid]
        if path.endswith("/cancel"):
            bid = path.split("/")[3]
            self.batches[bid]["status"] = "cancelled"
            return 200, self.batches[bid]
        return 404, {"error": {"message": "not found"}}

    def get(self, path: str) -> tuple[int, Any]:
        if path.startswith("/v1/files/") and path.endswith("/content"):
            fid = path.split("/")[3]
            return (200, self.files[fid]) if fid in self.files else (404, {"error": {"message": "no such file"}})
        if path.startswith("/v1/batches/"):
            bid = path.split("/")[3]
            if bid not in self.batches:
                return 404, {"error": {"message": "no such batch"}}
            self.advance(bid)
            return 200, self.batches[bid]
        if path.startswith("/v1/batches"):
            from urllib.parse import parse_qs, urlparse

            query = parse_qs(urlparse(path).query)
            limit = int(query.get("limit", ["20"])[0])
            newest = sorted(self.batches, reverse=True)
            if "after" in query:
                newest = newest[newest.index(query["after"][0]) + 1 :]
            page = newest[:limit]
            return 200, {"data": [self.batches[b] for b in page], "has_more": len(newest) > limit}
        return 404, {"error": {"message": "not found"}}

    def advance(self, bid: str) -> None:
        batch = self.batches[bid]
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        self.polls_left[bid] -= 1
        if self.polls_left[bid] > 0:
            batch["status"] = "in_progress"
            return
        self.finish(bid)

    def finish(self, bid: str) -> None:
        """End the batch now (as if it finished while nobody was polling)."""
        batch = self.batches[bid]
        if self.outcome == "failed":
            batch["status"] = "failed"
            batch["errors"] = {"data": [{"code": "invalid_file", "message": self.failure_message}]}
            return
        out, err = [], []
        lines = [json.loads(ln) for ln in self.files[batch["input_file_id"]].decode().splitlines() if ln.strip()]
        for n, line in enumerate(lines):
            if self.answer_limit is not None and n >= self.answer_limit:
                break
            cid = line["custom_id"]
            if cid in self.fail_ids:
                body = {"error": {"message": "upstream overloaded", "type": "server_error"}}
                err.append({"id": f"r{n}", "custom_id": cid, "response": {"status_code": 500, "body": body}})
                continue
            reply = self.server.reply_for(line["body"])
            out.append({"id": f"r{n}", "custom_id": cid, "response": {"status_code": reply.status, "body": reply.body}})
        text = [json.dumps(x) for x in out]
        for i in range(min(self.malformed, len(text))):
            text[i] = text[i][: len(text[i]) // 2]  # a torn line: its custom_id is still readable
        if out:
            fid = f"file-out-{bid}"
            self.files[fid] = ("\n".join(text) + "\n").encode()
            batch["output_file_id"] = fid
        if err:
            fid = f"file-err-{bid}"
            self.files[fid] = ("\n".join(json.dumps(x) for x in err) + "\n").encode()
            batch["error_file_id"] = fid
        batch["status"] = "expired" if self.outcome == "expired" else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.default = Reply(body=completion("Refunds take 30 days [1]."))
        self.requests: list[dict[str, Any]] = []
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self._lock = threading.Lock()
        self.batch_api = FakeBatchAPI(self)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                return None

            def do_GET(self) -> None:
                with outer._lock:
                    status, payload = outer.batch_api.get(self.path)
                self._send(status, payload)

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if self.path.startswith(("/v1/files", "/v1/batches")):
                    with outer._lock:
                        status, payload = outer.batch_api.post(self.path, self.headers, raw)
                    self._send(status, payload)
                    return
                with outer._lock:
                    outer.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw or b"null")}
                    )
                    body = outer.requests[-1]["json"]
                    if outer.script:
                        reply = outer.script.pop(0)
                    elif outer.responder is not None:
                        reply = outer.responder(body)
                    else:
                        reply = outer.default
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = payload.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # concurrent-call tests open many connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply_for(self, body: Any) -> Reply:
        """The reply to one chat request, as the online endpoint would give it (used for batch lines too)."""
        self.requests.append({"path": "/v1/chat/completions (batch)", "headers": {}, "json": body})
        if self.script:
            return self.script.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return self.default

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
