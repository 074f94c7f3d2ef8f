"""How far the offline scorers agree with people, on public human-labelled data.

    python benchmarks/scorer_agreement.py --mtrag DIR/mtrag_faithfulness/dev.jsonl \\
        --factcheck DIR/factcheck_stance/dev.jsonl --evouna DIR/evouna/TQ.json --evouna DIR/evouna/NQ_dev.json \\
        [--limit N]

- groundedness vs MTRAG faithfulness ratings: faithful = median rating >= 3; the scorer says faithful when its
  groundedness is >= the configured `groundedness_faithful_min` (see ragharness/scoring/calibration.yaml).
- citation support vs Factcheck-GPT stance: does the evidence support the claim fully or partly
  (completely-support, partially-support) or not (refute, irrelevant); binary macro-F1.
- correctness vs EVOUNA human judgements of 5 systems' answers (TriviaQA: short answers; Natural Questions: long,
  paraphrased LLM answers), one figure per file; golden answers list aliases separated by '/'; agreement = share
  of (question, system) pairs where correct/not matches the human.

The scorers run exactly as in a run (same classes, same MiniLM embedder). Headline figures last.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

from ragharness.core.types import ContextPack, Generation, GoldItem, Passage, SearchMode
from ragharness.retrieval.embedders import CachedEmbedder, MiniLMEmbedder
from ragharness.scoring.base import ScorerContext, ScoringInput
from ragharness.scoring.offline import CorrectnessScorer, GroundednessScorer
from ragharness.scoring.support import SupportJudge
from ragharness.scoring.thresholds import THRESHOLDS

SYSTEMS = ("fid", "gpt35", "chatgpt", "gpt4", "newbing")


def _pack(item_id: str, question: str, texts: list[tuple[str, str]]) -> ContextPack:
    passages = tuple(
        Passage(number=i, chunk_id=f"{item_id}#{i}", doc_id=f"{item_id}-{i}", text=text, title=title)
        for i, (title, text) in enumerate(texts, start=1)
    )
    return ContextPack(item_id=item_id, question=question, mode=SearchMode.hybrid, k=len(passages), passages=passages)


def report_binary(name: str, human: list[int], pred: list[int], labels: tuple[str, str]) -> dict[str, float]:
    acc = sum(h == p for h, p in zip(human, pred, strict=True)) / len(human)
    bal = balanced_accuracy_score(human, pred)
    kappa = cohen_kappa_score(human, pred)
    macro = f1_score(human, pred, average="macro")
    neg_f1 = f1_score(human, pred, pos_label=0)
    cm = confusion_matrix(human, pred, labels=[1, 0])
    print(
        f"{name}: n={len(human)} accuracy={acc:.3f} balanced_accuracy={bal:.3f} kappa={kappa:.3f} "
        f"macro_f1={macro:.3f} f1_{labels[1]}={neg_f1:.3f}"
    )
    print(f"{name}: confusion (rows human {labels[0]}/{labels[1]}, cols scorer): {cm.tolist()}")
    return {"accuracy": acc, "balanced_accuracy": bal, "kappa": kappa, "macro_f1": macro}


def groundedness(path: Path, embedder: CachedEmbedder, limit: int | None) -> dict[str, float]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    scorer = GroundednessScorer(ScorerContext(embedder=embedder))
    human, pred, values = [], [], []
    for n, r in enumerate(rows):
        item = GoldItem(
            id=f"m{n}",
            question=r["question"],
            intent=r.get("domain", "x"),
            reference_answer=r.get("reference_answer") or "x",
            expected_sources=["x"],
        )
        pack = _pack(item.id, r["question"], [(c.get("title") or "", c["text"]) for c in r["contexts"]])
        gen = Generation(item_id=item.id, candidate=r["model_id"], text=r["response"])
        (score,) = scorer.score(ScoringInput(item=item, pack=pack, generation=gen))
        value = 1.0 if score.value is None else score.value  # a refusal claims nothing unsupported
        values.append(value)
        human.append(int(float(r["faithfulness_median"]) >= 3))
        pred.append(int(value >= THRESHOLDS.groundedness_faithful_min))
    return report_binary("groundedness", human, pred, ("faithful", "unfaithful"))


def citation_support(path: Path, embedder: CachedEmbedder, limit: int | None) -> dict[str, float]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:limit]
    judge = SupportJudge(embedder)
    human, pred = [], []
    for n, r in enumerate(rows):
        passage = Passage(number=1, chunk_id=f"f{n}", doc_id=f"f{n}", text=r["evidence"])
        human.append(int(r["stance"] in ("completely-support", "partially-support")))
        pred.append(int(judge.support(r["claim"], [passage]).supported))
    return report_binary("citation_support", human, pred, ("supports", "does_not_support"))


def correctness(path: Path, embedder: CachedEmbedder, limit: int | None, name: str) -> dict[str, float]:
    data = json.loads(path.read_text(encoding="utf-8"))[:limit]
    scorer = CorrectnessScorer(ScorerContext(embedder=embedder))
    human, pred = [], []
    per_system: dict[str, list[int]] = {s: [] for s in SYSTEMS}
    for n, q in enumerate(data):
        if q.get("improper"):
            continue
        aliases = [a.strip() for a in str(q["golden_answer"]).split("/") if a.strip()]
        item = GoldItem(
            id=f"e{n}",
            question=q["question"],
            intent="trivia",
            reference_answer=aliases[0],
            alternative_answers=aliases[1:],
            expected_sources=["x"],
        )
        pack = _pack(item.id, q["question"], [])
        for system in SYSTEMS:
            label = q.get(f"judge_{system}")
            answer = q.get(f"answer_{system}")
            if not isinstance(label, bool) or not isinstance(answer, str):
                continue
            gen = Generation(item_id=item.id, candidate=system, text=answer)
            (score,) = scorer.score(ScoringInput(item=item, pack=pack, generation=gen))
            p = int(score.label == "correct")
            human.append(int(label))
            pred.append(p)
            per_system[system].append(int(p == label))
    for system, hits in per_system.items():
        if hits:
            print(f"{name}_agreement_{system}: {sum(hits) / len(hits):.3f} (n={len(hits)})")
    return report_binary(name, human, pred, ("correct", "incorrect"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtrag", type=Path, required=True)
    ap.add_argument("--factcheck", type=Path, required=True)
    ap.add_argument("--evouna", type=Path, action="append", required=True, help="An EVOUNA file (repeatable).")
    ap.add_argument("--limit", type=int, default=None, help="Use only the first N records of each file.")
    a = ap.parse_args()
    embedder = CachedEmbedder(MiniLMEmbedder(batch_size=64))
    t0 = time.perf_counter()
    g = groundedness(a.mtrag, embedder, a.limit)
    c = citation_support(a.factcheck, embedder, a.limit)
    k = {f.stem: correctness(f, embedder, a.limit, f"correctness_{f.stem}") for f in a.evouna}
    print(f"seconds: {time.perf_counter() - t0:.1f}")
    print(f"groundedness_balanced_accuracy: {g['balanced_accuracy']:.3f}")
    print(f"groundedness_kappa: {g['kappa']:.3f}")
    print(f"citation_support_macro_f1: {c['macro_f1']:.3f}")
    for stem_, figures in k.items():
        print(f"correctness_agreement_{stem_}: {figures['accuracy']:.3f}")


if __name__ == "__main__":
    main()
