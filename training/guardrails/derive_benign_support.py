"""Build training/guardrails/data/benign_support/dev.jsonl: help-center text that guardrails must let through.

Ordinary support documents are full of instructions to the reader ("quit the client, delete the cache folder"),
which an injection detector trained only on e-mails, tables and code answers mistakes for injected instructions;
support questions are short requests unlike the chat prompts of the attack data. This file adds both as benign rows:

- `document`: the 213 answers of the COVID-QA FAQ (deepset-ai/COVID-QA, BEIR layout) and the distinct passages
  given with the MTRAG human-evaluation subset (IBM/mt-rag-benchmark: government, IBM Cloud, finance, Wikipedia);
- `question`: the 244 COVID-QA paraphrase questions and the distinct MTRAG questions.

Both sources are Apache-2.0 (licenses/covid_qa.txt, licenses/mtrag.txt). Run once with the folder holding
`covid_faq_beir/` and `mtrag_faithfulness/`: `python training/guardrails/derive_benign_support.py ../shared/data`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ragharness.core.fileio import atomic_write_text  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "benign_support" / "dev.jsonl"


def main(src: Path) -> int:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(text: str, category: str, source: str, rid: str) -> None:
        key = " ".join(text.split()).casefold()
        if key and key not in seen:
            seen.add(key)
            rows.append({"id": rid, "text": text, "label": "benign", "category": category, "source": source})

    for line in (src / "covid_faq_beir" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        add(r["text"], "document", "covid_qa", f"covid_{r['_id']}")
    for line in (src / "covid_faq_beir" / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        add(r["text"], "question", "covid_qa", f"covid_{r['_id']}")
    for n, line in enumerate((src / "mtrag_faithfulness" / "dev.jsonl").read_text(encoding="utf-8").splitlines()):
        r = json.loads(line)
        add(r["question"], "question", "mtrag", f"mtrag_q{n:03d}")
        for m, ctx in enumerate(r["contexts"]):
            add(ctx["text"], "document", "mtrag", f"mtrag_d{n:03d}_{m}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{OUT}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
