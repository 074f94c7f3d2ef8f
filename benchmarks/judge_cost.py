"""Judge calls and tokens per answer on the example, with and without context metrics (precision/recall).

    python benchmarks/judge_cost.py [--example goldsets/support]

Runs the shipped example (its two offline candidates, real MiniLM, real LanceDB) with the LLM judge pointed at a
local OpenAI-compatible server that answers every judge request with valid judge JSON built from the prompt (one
claim per answer sentence; per-passage verdicts and gold-answer statements when the prompt asks for them). Token
counts are what the requests and replies hold at ~4 characters a token (the runner's own estimator), so the input
figure is the judge prompt's real size; the output figure is that of the fake judge's reply, which is as terse as
the JSON format allows (a real judge's reply is at least this long). The ideal is one call per answer: Ragas and
DeepEval spend 4-6 extra LLM calls per answer on context precision/recall. Headline figures last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def judge_reply(system: str, user: str) -> str:
    answer = user.split("<answer>")[1].split("</answer>", maxsplit=1)[0].strip()
    refusal = bool(re.search(r"\b(can't|cannot|unable|don't have)\b", answer, re.IGNORECASE))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
    out: dict[str, Any] = {
        "claims": []
        if refusal or not answer
        else [
            {"text": s, "verdict": "supported", "supporting_passages": [1], "cited_passages": [1] if "[1]" in s else []}
            for s in sentences
        ],
        "correctness": {"label": "correct", "reason": "bench"},
        "is_refusal": refusal or not answer,
    }
    if "reference_statements" in system:
        passages = user.split("<passages>")[1].split("</passages>", maxsplit=1)[0]
        n = len(re.findall(r"^\[(\d+)\]", passages, re.MULTILINE))
        out["passages"] = [{"number": i, "relevant": i <= 2, "needed": i == 1} for i in range(1, n + 1)]
        reference = user.split("<reference_answer>")[1].split("</reference_answer>", maxsplit=1)[0].strip()
        out["reference_statements"] = (
            []
            if reference.startswith("(this question")
            else [{"text": s, "supporting_passages": [1]} for s in re.split(r"(?<=[.!?;])\s+", reference) if s]
        )
    return json.dumps(out, separators=(",", ":"))


class _Judge(BaseHTTPRequestHandler):
    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        system = body["messages"][0]["content"]
        user = body["messages"][-1]["content"]
        text = judge_reply(system, user)
        with _Judge.lock:
            _Judge.calls += 1
        reply = {
            "id": f"bench-{_Judge.calls}",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": _tokens(system) + _tokens(user),
                "completion_tokens": _tokens(text),
                "total_tokens": _tokens(system + user + text),
            },
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return None


def measure(example: Path, work: Path, base_url: str, context: bool) -> dict[str, float]:
    dest = work / ("ctx" if context else "plain")
    shutil.copytree(example, dest)
    cfg = (dest / "harness.yaml").read_text()
    cfg = cfg.replace("../../.ragharness/support", str(work / "data")).replace("../../runs", str(dest / "runs"))
    cfg = re.sub(r"^scorers: \[(.*)\]$", r"scorers: [\1, judge]", cfg, flags=re.MULTILINE)
    cfg += (
        f'judge:\n  provider: "openai:bench-judge"\n  options: {{base_url: "{base_url}", api_key: "${{BENCH_KEY}}"}}\n'
        f"  context_metrics: {'true' if context else 'false'}\n"
        f"  prompt: {{id: judge-claims, version: {2 if context else 1}}}\n"
        "  concurrency: 8\n"
    )
    (dest / "harness.yaml").write_text(cfg)
    before = _Judge.calls
    result = execute_run(load_config(dest / "harness.yaml"), log=lambda s: None, use_cache=False)
    calls = [json.loads(line) for line in (result.run_dir / "judge_calls.jsonl").read_text().splitlines()]
    answers = sum(c.generations - c.errors for c in result.summary.candidates)
    metrics = result.summary.candidates[0].metrics
    return {
        "answers": answers,
        "calls": _Judge.calls - before,
        "recorded": len(calls),
        "input": sum(c["usage"]["input_tokens"] for c in calls),
        "output": sum(c["usage"]["output_tokens"] for c in calls),
        "context_precision": (metrics.get("judge_context_precision") or metrics["judge_correctness"]).mean or 0.0,
        "context_metrics": float("judge_context_recall" in metrics),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", type=Path, default=Path("goldsets/support"))
    a = ap.parse_args()
    os.environ["BENCH_KEY"] = "bench"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        plain = measure(a.example, Path(tmp), base_url, context=False)
        ctx = measure(a.example, Path(tmp), base_url, context=True)
    server.shutdown()
    for name, m in (("without_context_metrics", plain), ("with_context_metrics", ctx)):
        print(
            f"{name}: answers={m['answers']} judge_calls={m['calls']} recorded={m['recorded']} "
            f"input_tokens={m['input']} output_tokens={m['output']} context_metrics={bool(m['context_metrics'])}"
        )
    print(f"judge_calls_per_answer_without_context: {plain['calls'] / plain['answers']:.2f}")
    print(f"judge_input_tokens_per_answer: {ctx['input'] / ctx['answers']:.0f}")
    print(f"judge_output_tokens_per_answer: {ctx['output'] / ctx['answers']:.0f}")
    extra = ctx["input"] + ctx["output"] - plain["input"] - plain["output"]
    print(f"context_metrics_extra_tokens_per_answer: {extra / ctx['answers']:.0f}")
    print(f"judge_calls_per_answer: {ctx['calls'] / ctx['answers']:.2f}")


if __name__ == "__main__":
    main()
