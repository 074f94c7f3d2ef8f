"""How well the local guardrail detectors guard, on labelled public data.

    python benchmarks/guardrail_quality.py ../shared/data/guardrails [--ner-model en_core_web_lg]

DIR holds `prompt_attacks/`, `unsafe_requests/` and `pii/` (each a `dev.jsonl` or `test.jsonl` of
{id, text, label, category, source}); the held-out test split has the same layout. Each detector runs as a run
runs it:

- prompt attacks: user prompts (categories direct, chat_prompt, trigger_word_prompt) go through the input detector
  (the input head plus the override pattern); retrieved content (indirect, document) through the context detector
  (the context head plus the override pattern). Malicious accuracy is over attacks (direct + indirect), benign
  accuracy over chat prompts and clean documents, over-defence accuracy over benign prompts full of trigger words.
- unsafe requests: the unsafe-request head (which confirms denied topics): F1 on unsafe, false-positive rate on safe.
- PII: the offline redactor (pattern and checksum entities; with --ner-model an installed official spaCy pipeline
  adds PERSON and LOCATION). Span level: a gold span is found when a detected span overlaps it; a detected span is
  correct when it overlaps any gold span. Recall per gold entity type; the headline recall is over the types the
  offline detector covers (EMAIL_ADDRESS, PHONE_NUMBER, US_SSN, CREDIT_CARD, IBAN_CODE, IP_ADDRESS), and names and
  street addresses are reported apart (0 without an NER model: stated, not hidden).

Throughput: texts per second of each detector, and its ratio to embedding the same windows alone (the ideal: a head
adds a dot product). Headline figures last, one per line as `name: value`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragharness.guardrails.heads import HeadDetector, load_head, windows
from ragharness.guardrails.local import attack_probability
from ragharness.guardrails.pii import DEFAULT_ENTITIES, PiiRedactor
from ragharness.retrieval.embedders import MiniLMEmbedder

PATTERN_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")
NER_TYPES = ("PERSON", "STREET_ADDRESS")


TRAINED_ON = Path(__file__).resolve().parents[1] / "training" / "guardrails" / "data"


def read(folder: Path) -> list[dict]:
    for name in ("test.jsonl", "dev.jsonl"):
        if (folder / name).is_file():
            raw = (folder / name).read_bytes()
            twin = TRAINED_ON / folder.name / name
            if twin.is_file() and twin.read_bytes() == raw:
                print(
                    f"note: {folder / name} is the file the heads were trained on: its figures are training-set "
                    "figures; the cross-validated ones are in ragharness/guardrails/weights/*.json (provenance)"
                )
            return [json.loads(line) for line in raw.decode("utf-8").split("\n") if line.strip()]
    raise SystemExit(f"{folder}: no test.jsonl or dev.jsonl")


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def ideal_seconds(embedder: MiniLMEmbedder, texts: list[str], size: int, stride: int) -> float:
    flat = [w for t in texts for w in windows(t, size, stride)]
    _, seconds = timed(embedder.embed, flat)
    return seconds


def prompt_attacks(rows: list[dict], embedder: MiniLMEmbedder, figures: dict[str, float]) -> None:
    inp = HeadDetector(load_head("prompt_attack_input"), embedder)
    ctx = HeadDetector(load_head("prompt_attack_context"), embedder)
    prompts = [r for r in rows if r["category"] in ("direct", "chat_prompt", "trigger_word_prompt")]
    docs = [r for r in rows if r["category"] in ("indirect", "document")]
    p_in, s_in = timed(attack_probability, inp, [r["text"] for r in prompts])
    p_ctx, s_ctx = timed(attack_probability, ctx, [r["text"] for r in docs])
    hits: dict[str, list[bool]] = defaultdict(list)
    for rows_, probs, det in ((prompts, p_in, inp), (docs, p_ctx, ctx)):
        for r, p in zip(rows_, probs, strict=True):
            flagged = p >= det.head.threshold
            hits[r["category"]].append(flagged == (r["label"] == "attack"))
    for cat, v in sorted(hits.items()):
        print(f"prompt attacks · {cat}: {sum(v)}/{len(v)} correct ({sum(v) / len(v):.3f})")
    mal = hits["direct"] + hits["indirect"]
    ben = hits["chat_prompt"] + hits["document"]
    figures["prompt_attack_malicious_accuracy"] = sum(mal) / len(mal)
    figures["prompt_attack_benign_accuracy"] = sum(ben) / len(ben)
    figures["prompt_attack_overdefense_accuracy"] = sum(hits["trigger_word_prompt"]) / max(
        1, len(hits["trigger_word_prompt"])
    )
    ideal = ideal_seconds(embedder, [r["text"] for r in prompts], inp.head.window_words, inp.head.window_stride)
    ideal += ideal_seconds(embedder, [r["text"] for r in docs], ctx.head.window_words, ctx.head.window_stride)
    figures["prompt_attack_texts_per_s"] = len(rows) / (s_in + s_ctx)
    figures["prompt_attack_time_vs_embedding_only"] = (s_in + s_ctx) / ideal


def unsafe(rows: list[dict], embedder: MiniLMEmbedder, figures: dict[str, float]) -> None:
    det = HeadDetector(load_head("unsafe_request"), embedder)
    probs, seconds = timed(det.probabilities, [r["text"] for r in rows])
    tp = fp = fn = tn = 0
    by_source: dict[str, list[bool]] = defaultdict(list)
    for r, p in zip(rows, probs, strict=True):
        flagged, is_unsafe = p >= det.head.threshold, r["label"] == "unsafe"
        tp += flagged and is_unsafe
        fp += flagged and not is_unsafe
        fn += not flagged and is_unsafe
        tn += not flagged and not is_unsafe
        by_source[f"{r['source']} ({r['label']})"].append(flagged == is_unsafe)
    for src, v in sorted(by_source.items()):
        print(f"unsafe requests · {src}: {sum(v)}/{len(v)} correct ({sum(v) / len(v):.3f})")
    figures["unsafe_f1"] = 2 * tp / max(1, 2 * tp + fp + fn)
    figures["unsafe_fpr"] = fp / max(1, fp + tn)
    ideal = ideal_seconds(embedder, [r["text"] for r in rows], det.head.window_words, det.head.window_stride)
    figures["unsafe_texts_per_s"] = len(rows) / seconds
    figures["unsafe_time_vs_embedding_only"] = seconds / ideal


def pii(rows: list[dict], ner_model: str | None, figures: dict[str, float]) -> None:
    entities = list(DEFAULT_ENTITIES) + (["PERSON", "LOCATION"] if ner_model else [])
    redactor = PiiRedactor(entities, ner_model=ner_model)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    predicted = correct = 0
    t0 = time.perf_counter()
    for r in rows:
        spans = redactor.spans(r["text"])
        gold = [(g["start"], g["end"], g["type"]) for g in r["label"]]
        for a, b, kind in gold:
            total[kind] += 1
            found[kind] += any(x < b and a < y for x, y, _ in spans)
        for x, y, _ in spans:
            predicted += 1
            correct += any(x < b and a < y for a, b, _ in gold)
    seconds = time.perf_counter() - t0
    for kind in sorted(total, key=lambda k: -total[k]):
        print(f"pii · recall {kind}: {found[kind]}/{total[kind]} ({found[kind] / total[kind]:.3f})")
    pattern_total = sum(total[k] for k in PATTERN_TYPES)
    figures["pii_recall"] = sum(found[k] for k in PATTERN_TYPES) / max(1, pattern_total)
    figures["pii_precision"] = correct / max(1, predicted)
    for kind in NER_TYPES:
        figures[f"pii_recall_{kind.lower()}"] = found[kind] / max(1, total[kind])
    figures["pii_texts_per_s"] = len(rows) / seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--ner-model", default=None, help="an installed official spaCy pipeline, e.g. en_core_web_lg")
    args = ap.parse_args()
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    figures: dict[str, float] = {}
    prompt_attacks(read(args.dir / "prompt_attacks"), embedder, figures)
    unsafe(read(args.dir / "unsafe_requests"), embedder, figures)
    pii(read(args.dir / "pii"), args.ner_model, figures)
    order = [
        "pii_recall_person",
        "pii_recall_street_address",
        "prompt_attack_time_vs_embedding_only",
        "unsafe_time_vs_embedding_only",
        "prompt_attack_malicious_accuracy",
        "prompt_attack_benign_accuracy",
        "prompt_attack_overdefense_accuracy",
        "unsafe_f1",
        "unsafe_fpr",
        "pii_recall",
        "pii_precision",
        "prompt_attack_texts_per_s",
        "unsafe_texts_per_s",
        "pii_texts_per_s",
    ]
    for name in order:
        print(f"{name}: {figures[name]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
