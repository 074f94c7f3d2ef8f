from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ragharness.core.errors import EmbedderError
from ragharness.retrieval.embedders import Embedder, HashingEmbedder, MiniLMEmbedder, TitanEmbedder
from ragharness.testing.embedder import EmbedderContract


class TestHashingEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashingEmbedder(64)


@pytest.mark.integration
class TestMiniLMEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, minilm: MiniLMEmbedder) -> Embedder:
        return minilm

    def test_matches_the_published_model_geometry(self, embedder: Embedder) -> None:
        a, b = embedder.embed(["The cat sits on the mat.", "A cat is sitting on a mat."])
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.8

    def test_counts_word_pieces_without_special_tokens(self, embedder: Embedder) -> None:
        assert embedder.count_tokens("hello world") == 2
        assert embedder.max_input_tokens == 254

    def test_onnx_vectors_equal_the_reference_model_within_1e5(self, embedder: Embedder) -> None:
        """The ONNX Runtime graph against sentence-transformers on PyTorch (the dev tier's reference): texts of
        every length, across batch boundaries, longer than the 256 word pieces the model reads, empty, non-ASCII,
        in an order that is not sorted by length."""
        import random

        import numpy as np
        from sentence_transformers import SentenceTransformer

        rng = random.Random(7)
        vocab = [
            "refund",
            "annual",
            "plan",
            "SSO",
            "SAML",
            "Fehler",
            "VX-409",
            "Ünïcödé",
            "日本語",
            "the",
            "a",
            "of",
            "passé",
            "€49.99",
            "https://x.test",
        ]
        texts = [" ".join(rng.choice(vocab) for _ in range(rng.choice([1, 5, 40, 120, 400]))) for _ in range(150)]
        texts += ["", " ", "a", "Hello world!"]
        rng.shuffle(texts)
        assert isinstance(embedder, MiniLMEmbedder)
        reference = SentenceTransformer(str(embedder._model_dir()), device="cpu")
        expected = reference.encode(texts, batch_size=64, normalize_embeddings=True)
        got = np.array(embedder.embed(texts))
        assert got.shape == expected.shape == (len(texts), 384)
        assert float(np.abs(got - expected).max()) < 1e-5

    def test_embedding_loads_no_pytorch_and_the_runtime_does_not_depend_on_it(self) -> None:
        """The runtime install has no PyTorch: the embedder neither imports it nor is torch a runtime dependency."""
        import subprocess
        import sys
        import tomllib
        from pathlib import Path

        code = (
            "import sys\n"
            "from ragharness.retrieval.embedders import MiniLMEmbedder\n"
            "vector = MiniLMEmbedder().embed(['refunds on annual plans'])[0]\n"
            "print(len(vector), [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "384 []", out
        project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
        runtime = {d.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip() for d in project["dependencies"]}
        assert not runtime & {"torch", "transformers", "sentence-transformers"}, runtime

    def test_concurrent_embeds_give_the_same_vectors(self, embedder: Embedder) -> None:
        from concurrent.futures import ThreadPoolExecutor

        texts = [f"question number {n} about refunds and single sign-on" for n in range(40)]
        alone = embedder.embed(texts)
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda t: embedder.embed([t])[0], texts))
        assert max(abs(x - y) for a, b in zip(alone, together, strict=True) for x, y in zip(a, b, strict=True)) < 1e-5


def _fake_titan_vector(text: str, dim: int) -> list[float]:
    vec = HashingEmbedder(dim).embed([text])[0]
    return vec


class _TitanStubbed:
    """A Titan embedder whose bedrock-runtime client is a botocore Stubber validating the real service model."""

    def __init__(self, dim: int = 256) -> None:
        client = boto3.client(
            "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        self.stubber = Stubber(client)
        self.stubber.activate()
        self.dim = dim
        self.embedder = TitanEmbedder(dimensions=dim, client=client)

    def expect(self, texts: list[str]) -> None:
        for t in texts:
            payload = json.dumps({"embedding": _fake_titan_vector(t, self.dim), "inputTextTokenCount": 3}).encode()
            self.stubber.add_response(
                "invoke_model",
                {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"},
                {
                    "modelId": "amazon.titan-embed-text-v2:0",
                    "contentType": "application/json",
                    "accept": "application/json",
                    "body": json.dumps({"inputText": t, "dimensions": self.dim, "normalize": True}),
                },
            )


class _ExpectingTitan:
    """Adapter so the contract suite can call embed(); each call queues the expected stubbed responses."""

    def __init__(self, stub: _TitanStubbed) -> None:
        self.stub = stub
        self.name = stub.embedder.name
        self.dimension = stub.embedder.dimension
        self.max_input_tokens = stub.embedder.max_input_tokens

    def count_tokens(self, text: str) -> int:
        return self.stub.embedder.count_tokens(text)

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.stub.expect(list(texts))
        out = self.stub.embedder.embed(texts)
        self.stub.stubber.assert_no_pending_responses()
        return out


class TestTitanEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return _ExpectingTitan(_TitanStubbed())  # type: ignore[return-value]


def test_titan_rejects_wrong_dimension_response() -> None:
    stub = _TitanStubbed(256)
    payload = json.dumps({"embedding": [0.1] * 10}).encode()
    stub.stubber.add_response(
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"},
    )
    with pytest.raises(EmbedderError, match="no 256-d embedding"):
        stub.embedder.embed(["x"])


def test_titan_rejects_unsupported_dimensions() -> None:
    with pytest.raises(EmbedderError, match="256, 512 or 1024"):
        TitanEmbedder(dimensions=300, client=object())
