"""Import a BEIR-layout dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) as a corpus the ingest reads,
a retrieval-only gold set with expected sources, and a harness.yaml to run it."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import yaml

from ragharness.core.errors import GoldSetError

RETRIEVAL_ONLY = "retrieval-only"


def _read_qrels(qrels_file: Path) -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = defaultdict(set)
    with qrels_file.open(encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if n == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise GoldSetError(f"{qrels_file}:{n}: expected query-id, corpus-id, score")
            if int(row[2]) > 0:
                relevant[row[0]].add(row[1])
    return relevant


def _write_corpus(corpus_file: Path, dest: Path) -> int:
    n_docs = 0
    with corpus_file.open(encoding="utf-8") as fh, dest.open("w", encoding="utf-8") as w:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                record = {"_id": str(doc["_id"]), "title": doc.get("title") or "", "text": doc.get("text") or ""}
            except (json.JSONDecodeError, KeyError) as exc:
                raise GoldSetError(f"{corpus_file}:{n}: not a BEIR corpus record ({exc})") from exc
            w.write(json.dumps(record, ensure_ascii=False) + "\n")
            n_docs += 1
    return n_docs


def _gold_items(queries_file: Path, relevant: dict[str, set[str]]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    with queries_file.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            q = json.loads(line)
            qid = str(q["_id"])
            if qid in relevant:
                intent = str((q.get("metadata") or {}).get("intent") or "beir")
                items.append(
                    {
                        "id": f"q-{qid}",
                        "question": q["text"],
                        "intent": intent,
                        "expected_sources": [f"corpus/{d}" for d in sorted(relevant[qid])],
                        "tags": [RETRIEVAL_ONLY],
                    }
                )
    return items


def import_beir(src: Path, out: Path, *, split: str = "test", name: str | None = None) -> dict[str, int]:
    corpus_file, queries_file = src / "corpus.jsonl", src / "queries.jsonl"
    qrels_file = src / "qrels" / f"{split}.tsv"
    for f in (corpus_file, queries_file, qrels_file):
        if not f.is_file():
            raise GoldSetError(f"{f}: missing; a BEIR folder has corpus.jsonl, queries.jsonl and qrels/{split}.tsv")
    relevant = _read_qrels(qrels_file)
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    n_docs = _write_corpus(corpus_file, out / "corpus" / "corpus.jsonl")
    items = _gold_items(queries_file, relevant)
    if not items:
        raise GoldSetError(f"{qrels_file}: no query has a relevant document")
    with (out / "gold.jsonl").open("w", encoding="utf-8") as w:
        for item in items:
            w.write(json.dumps(item, ensure_ascii=False) + "\n")
    config = {
        "name": name or src.name.replace("_", "-"),
        "data_dir": ".ragharness",
        "output_dir": "runs",
        "corpus": {
            "path": "corpus",
            "include": ["**/*.jsonl"],
            "max_file_bytes": 20_000_000_000,
            "tickets": {"id_field": "_id", "text_fields": ["title", "text"], "title_field": "title"},
        },
        "retrieval": {"mode": "hybrid", "k": 10},
        "goldset": "gold.jsonl",
        "candidates": [{"name": "extractive", "provider": "extractive"}],
        "guardrails": {"input": [], "output": []},
        "scorers": ["retrieval"],
    }
    (out / "harness.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return {"documents": n_docs, "queries": len(items)}
