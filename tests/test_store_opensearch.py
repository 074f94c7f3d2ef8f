"""OpenSearch store: the contract suite against osmem-server (BM25, filters, aliases, bulk), a real OpenSearch
through testcontainers where a Docker engine exists, and a live cluster at OPENSEARCH_URL (opt-in); golden
request bodies (checked against the OpenSearch documentation) for what osmem cannot run: k-NN and hybrid."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ragharness.core.errors import StoreError
from ragharness.core.types import SearchMode
from ragharness.retrieval.opensearch_store import (
    OpenSearchOptions,
    OpenSearchStore,
    bm25_query,
    hybrid_body,
    index_body,
    knn_query,
    pipeline_body,
    search_body,
    similarity_from_score,
)
from ragharness.retrieval.settings import Fusion, TextAnalysis
from ragharness.retrieval.store import VectorStore
from ragharness.testing.store import StoreContract, VectorSearchContract, chunk, corpus, req

GOLDEN = Path(__file__).parent / "golden" / "opensearch"


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def test_golden_index_body() -> None:
    assert index_body("minilm:all-MiniLM-L6-v2", 384, OpenSearchOptions(url="http://x")) == golden("index_faiss.json")
    lucene = index_body("e", 8, OpenSearchOptions(url="http://x", engine="lucene"))
    assert lucene["mappings"]["properties"]["vector"]["method"]["space_type"] == "cosinesimil"


def test_golden_knn_with_efficient_filter() -> None:
    body = search_body(knn_query([0.1, 0.2, 0.3], 3, {"region": "eu", "plan": ["pro", "enterprise"]}), 3)
    assert body == golden("knn_filtered.json")


def test_golden_bm25_with_filter() -> None:
    assert search_body(bm25_query("refund window", {"product": "vault"}), 5) == golden("bm25_filtered.json")


def test_golden_hybrid_and_both_fusion_pipelines() -> None:
    assert hybrid_body("sso setup", [0.5, 0.5], 4, {"region": "us"}) == golden("hybrid.json")
    assert pipeline_body(Fusion()) == golden("pipeline_normalization.json")  # the default: min-max, 0.3 / 0.7
    assert pipeline_body(Fusion(method="rrf", rrf_k=60, bm25_weight=0.5)) == golden("pipeline_rrf.json")
    l2 = pipeline_body(Fusion(normalization="l2"))["phase_results_processors"][0]["normalization-processor"]
    assert l2["normalization"] == {"technique": "l2"}


def test_golden_analyzer_mapping() -> None:
    """The default analysis is OpenSearch's built-in `english` analyzer; other settings build a custom analyzer
    from the same parts (possessive stemmer, lowercase, asciifolding, stop words, stemmer)."""
    default = index_body("e", 8, OpenSearchOptions(url="http://x"))
    assert default["mappings"]["properties"]["text"] == {"type": "text", "analyzer": "english"}
    assert "analysis" not in default["settings"]
    custom = index_body("e", 8, OpenSearchOptions(url="http://x"), TextAnalysis(ascii_folding=True))
    assert custom["settings"]["analysis"] == golden("analysis_custom.json")
    assert custom["mappings"]["properties"]["title"] == {"type": "text", "analyzer": "ragharness_text"}
    assert custom["mappings"]["_meta"]["analysis"] == TextAnalysis(ascii_folding=True).signature()
    plain = index_body("e", 8, OpenSearchOptions(url="http://x"), TextAnalysis(language="german", stem=False))
    assert plain["settings"]["analysis"]["analyzer"]["ragharness_text"]["filter"] == [
        "lowercase",
        "ragharness_text_stop",
    ]
    assert plain["settings"]["analysis"]["filter"] == {
        "ragharness_text_stop": {"type": "stop", "stopwords": "_german_"}
    }


def test_scores_map_back_to_cosine() -> None:
    assert similarity_from_score(1.8, "innerproduct") == pytest.approx(0.8)
    assert similarity_from_score(0.5, "innerproduct") == pytest.approx(-1.0)
    assert similarity_from_score(0.9, "cosinesimil") == pytest.approx(0.8)


class _Recorder:
    """A fake client for behaviour osmem cannot show: client-side RRF and per-document bulk failures."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        from ragharness.testing.store import TEXTS

        self.sources = {f"{d}#{p}": chunk(d, p, r, t).chunk for (d, p, r), t in TEXTS.items()}

    def search(self, index: str, body: dict[str, Any], params: Any = None) -> dict[str, Any]:
        self.bodies.append(body)
        order = ["sso#0", "sync#0", "refunds#0"] if "knn" in body["query"] else ["sync#0", "refunds#1"]
        hits = []
        for i, cid in enumerate(order):
            c = self.sources[cid]
            src = {**c.model_dump(exclude={"metadata"}), **c.metadata.model_dump(), "tags": list(c.metadata.tags)}
            hits.append({"_source": src, "_score": 1.0 - i * 0.1})
        return {"hits": {"hits": hits}}


def test_hybrid_falls_back_to_client_side_rrf() -> None:
    fake = _Recorder()
    rrf = Fusion(method="rrf", bm25_weight=0.5)
    store = OpenSearchStore(OpenSearchOptions(url="http://x", hybrid="client"), alias="a", client=fake, fusion=rrf)
    store._index = "a-v1"
    hits = store.search(req(SearchMode.hybrid, "VX-409 conflict", k=3, region=["us", ""]))
    assert [h.chunk.chunk_id for h in hits] == ["sync#0", "sso#0", "refunds#1"]
    assert {"knn", "bool"} == {next(iter(b["query"])) for b in fake.bodies}
    assert fake.bodies[0]["query"]["knn"]["vector"]["filter"] == {
        "bool": {"filter": [{"terms": {"region": ["us", ""]}}]}
    }


def test_bulk_failures_are_reported_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    from opensearchpy.helpers import actions

    monkeypatch.setattr(actions.time, "sleep", lambda s: None)  # backoff on 429 without waiting

    class Bulk:
        def __init__(self) -> None:
            from types import SimpleNamespace

            from opensearchpy.serializer import JSONSerializer

            self.calls = 0
            self.indices = self
            self.transport = SimpleNamespace(serializer=JSONSerializer())

        def bulk(self, *args: Any, body: Any = None, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            lines = str(body).strip().split("\n")
            ids = [json.loads(line)["index"]["_id"] for line in lines[::2]]
            items = []
            for i in ids:
                if i == "sso#0":
                    items.append({"index": {"_id": i, "status": 400, "error": {"type": "mapper_parsing_exception"}}})
                elif i == "sync#0" and self.calls == 1:
                    items.append({"index": {"_id": i, "status": 429, "error": {"type": "rejected"}}})
                else:
                    items.append({"index": {"_id": i, "status": 201}})
            return {"errors": True, "items": items}

        def refresh(self, index: str) -> None:
            return None

    client = Bulk()
    store = OpenSearchStore(OpenSearchOptions(url="http://x"), alias="a", client=client)
    store._index = "a-v1"
    with pytest.raises(StoreError, match=r"1 of 5 chunks failed to index; first: \[.sso#0: .*mapper_parsing"):
        store.upsert(corpus())
    assert client.calls == 2  # the 429 was retried


# -- contract suite against osmem-server ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def osmem_url() -> Iterator[str]:
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False)
    try:
        yield server.url
    finally:
        server.close()
        if server.process.stdout is not None:
            server.process.stdout.close()


def _cleanup(store: OpenSearchStore) -> None:
    c = store.client()
    for index in c.indices.get(index=f"{store.alias}-v*"):
        c.indices.delete(index=index)


class TestOpenSearchOsmem(StoreContract):
    """The store contract without vector search: osmem-server implements no k-NN queries or search pipelines. The
    k-NN and hybrid request bodies are golden-tested in this module, and the whole suite, vector search included,
    runs on a real OpenSearch via testcontainers (Docker) or OPENSEARCH_URL (the two classes below)."""

    @pytest.fixture
    def make_store(self, osmem_url: str) -> Iterator[Callable[..., VectorStore]]:
        alias = f"t-{uuid.uuid4().hex[:10]}"
        made: list[OpenSearchStore] = []

        def make(analysis: TextAnalysis | None = None) -> VectorStore:
            store = OpenSearchStore(OpenSearchOptions(url=osmem_url), alias=alias, analysis=analysis)
            made.append(store)
            return store

        yield make
        if made:
            _cleanup(made[0])

    def test_alias_points_at_a_versioned_index(self, filled: VectorStore) -> None:
        assert isinstance(filled, OpenSearchStore)
        aliases = filled.client().indices.get_alias(name=filled.alias)
        assert list(aliases) == [filled.name.split(":", 1)[1]]
        assert filled.name.startswith(f"opensearch:{filled.alias}-v")

    def test_search_pipeline_unavailable_falls_back_to_client_side_fusion(self, store: VectorStore) -> None:
        assert isinstance(store, OpenSearchStore) and store._pipelines and not any(store._pipelines.values())


# -- a real OpenSearch through testcontainers, where a Docker engine exists ------------------------------------
def _docker_reason() -> str | None:
    import docker

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
        return f"no Docker engine ({host} does not exist); the OpenSearch container suite needs one"
    try:
        client = docker.from_env(timeout=3)
    except Exception as exc:
        return f"no Docker engine ({type(exc).__name__}); the OpenSearch container suite needs one"
    try:
        client.ping()
    except Exception as exc:
        return f"Docker engine not answering ({type(exc).__name__}); the OpenSearch container suite needs one"
    finally:
        client.close()
    return None


@pytest.fixture(scope="module")
def container_url() -> Iterator[str]:
    reason = _docker_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.opensearch import OpenSearchContainer

    with OpenSearchContainer("opensearchproject/opensearch:2.19.1") as container:
        cfg = container.get_config()
        yield f"http://{cfg['host']}:{cfg['port']}"


class TestOpenSearchContainer(VectorSearchContract, StoreContract):
    @pytest.fixture
    def make_store(self, container_url: str) -> Iterator[Callable[..., VectorStore]]:
        alias = f"t-{uuid.uuid4().hex[:10]}"
        made: list[OpenSearchStore] = []

        def make(analysis: TextAnalysis | None = None) -> VectorStore:
            made.append(OpenSearchStore(OpenSearchOptions(url=container_url), alias=alias, analysis=analysis))
            return made[-1]

        yield make
        if made:
            _cleanup(made[0])


class TestOpenSearchLive(VectorSearchContract, StoreContract):
    """Opt-in: OPENSEARCH_URL (and OPENSEARCH_USER / OPENSEARCH_PASSWORD if the cluster needs them)."""

    @pytest.fixture
    def make_store(self) -> Iterator[Callable[..., VectorStore]]:
        if not os.environ.get("OPENSEARCH_URL"):
            pytest.skip("set OPENSEARCH_URL to run the contract suite against a live OpenSearch")
        opts = OpenSearchOptions(
            url="${OPENSEARCH_URL}",
            username="${OPENSEARCH_USER}" if os.environ.get("OPENSEARCH_USER") else None,
            password="${OPENSEARCH_PASSWORD}" if os.environ.get("OPENSEARCH_PASSWORD") else None,
            verify_certs=os.environ.get("OPENSEARCH_VERIFY_CERTS", "true") == "true",
        )
        alias = f"t-{uuid.uuid4().hex[:10]}"
        made: list[OpenSearchStore] = []

        def make(analysis: TextAnalysis | None = None) -> VectorStore:
            made.append(OpenSearchStore(opts, alias=alias, analysis=analysis))
            return made[-1]

        yield make
        if made:
            _cleanup(made[0])


def test_same_config_runs_on_opensearch_with_only_store_changed(
    mini_project: Path, osmem_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.evaluation import execute_run
    from ragharness.runs.rundir import RunDir

    monkeypatch.setenv("OSMEM_URL", osmem_url)
    base = (mini_project / "harness.yaml").read_text().replace("mode: hybrid", "mode: bm25")  # osmem has no k-NN
    alias = f"mini-{uuid.uuid4().hex[:8]}"
    (mini_project / "lance.yaml").write_text(base)
    (mini_project / "os.yaml").write_text(
        base + f"store: {{kind: opensearch, table: {alias}, options: {{url: '${{OSMEM_URL}}'}}}}\n"
    )
    packs = {}
    for name in ("lance.yaml", "os.yaml"):
        run_dir = execute_run(load_config(mini_project / name), log=lambda s: None).run_dir
        packs[name] = {p.item_id: p for p in RunDir.open(run_dir).packs()}
        assert len(RunDir.open(run_dir).generations()) == 6
    assert packs["os.yaml"]["refund"].store.startswith(f"opensearch:{alias}-v")
    for name in packs:
        assert packs[name]["refund"].passages[0].doc_id == "a/refunds"
        assert packs[name]["storage"].passages[0].doc_id == "a/limits"


def test_example_opensearch_config_differs_only_in_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import EXAMPLE
    from ragharness.pipeline.components import build_store
    from ragharness.pipeline.config import config_snapshot, load_config

    monkeypatch.setenv("OPENSEARCH_URL", "http://127.0.0.1:9")
    lance = config_snapshot(load_config(EXAMPLE / "harness.yaml"))
    opensearch_cfg = load_config(EXAMPLE / "harness.opensearch.yaml")
    other = config_snapshot(opensearch_cfg)
    assert {k for k in lance if lance[k] != other[k]} == {"name", "store"}
    assert isinstance(build_store(opensearch_cfg), OpenSearchStore)  # built without connecting


def test_store_options_are_validated() -> None:
    from ragharness.core.errors import ConfigError
    from ragharness.core.registry import STORES
    from ragharness.retrieval.settings import RetrievalConfig, StoreConfig

    with pytest.raises(ConfigError, match=r"store\.options: engine"):
        STORES.create(
            "opensearch",
            StoreConfig(kind="opensearch", options={"url": "http://x", "engine": "annoy"}),
            Path("."),
            RetrievalConfig(),
        )
