"""OpenSearch (self-managed, Amazon OpenSearch Service, Serverless) behind the VectorStore seam.

- Versioned concrete indexes behind an alias: `rebuild()` creates a new index, writes go there, `publish()` swaps
  the alias atomically. Context packs record the concrete index name.
- Mapping: `knn_vector` (HNSW; engine and space type configurable: faiss + innerproduct by default, which suits
  L2-normalised MiniLM / Titan vectors), English-analysed `text`, keyword metadata; `_meta` records the embedder
  and dimension, checked at startup.
- Writes: streaming bulk with backoff on 429; per-document failures are reported, never silently lost.
- Queries: k-NN with efficient filtering, BM25 with filters, hybrid through a search pipeline (min-max
  normalisation, weighted arithmetic mean) created idempotently, or client-side reciprocal rank fusion where a
  search pipeline is unavailable.
- Connections: URL with basic auth from environment references, TLS options, or AWS SigV4 (`es` / `aoss`).

Request bodies are built by pure functions below (golden-tested against the OpenSearch documentation).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.errors import StoreError
from ragharness.core.settings import resolve_env
from ragharness.core.types import (
    FILTERABLE_FIELDS,
    METADATA_FIELDS,
    Chunk,
    EmbeddedChunk,
    FilterValue,
    SearchHit,
    SearchMode,
)
from ragharness.retrieval.settings import Fusion, TextAnalysis
from ragharness.retrieval.store import TEXT_FIELDS, SearchRequest, chunk_from_record, fuse

_KEYWORDS = ("chunk_id", "doc_id", "source", "source_type", "content_hash", "doc_hash", *METADATA_FIELDS, "tags")
SOURCE_FIELDS = (*TEXT_FIELDS, "position", "n_tokens", "tags", *METADATA_FIELDS)
DEFAULT_SPACE = {"faiss": "innerproduct", "lucene": "cosinesimil", "nmslib": "cosinesimil"}


class OpenSearchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Endpoint, e.g. https://localhost:9200 (may be ${OPENSEARCH_URL}).")
    username: str | None = Field(None, description="Basic auth user (may be an environment reference).")
    password: str | None = Field(None, description="Basic auth password: an environment reference.")
    verify_certs: bool = True
    ca_certs: str | None = None
    aws_sigv4: Literal["es", "aoss"] | None = Field(None, description="Sign requests with AWS SigV4 for this service.")
    region: str | None = None
    engine: Literal["faiss", "lucene", "nmslib"] = "faiss"
    space_type: str | None = Field(None, description="Default: innerproduct (faiss), cosinesimil (lucene, nmslib).")
    m: int = Field(16, gt=1)
    ef_construction: int = Field(128, gt=1)
    ef_search: int = Field(100, gt=1)
    hybrid: Literal["pipeline", "client"] = Field(
        "pipeline", description="Fuse in a search pipeline (server) or here (client); retrieval.fusion says how."
    )
    bulk_chunk_size: int = Field(500, gt=0)
    bulk_max_retries: int = Field(5, ge=0)
    timeout_s: float = Field(30.0, gt=0)


def filter_clauses(filters: dict[str, FilterValue]) -> list[dict[str, Any]]:
    clauses = []
    for field, value in sorted(filters.items()):
        if field not in FILTERABLE_FIELDS:
            raise StoreError(f"filter field {field!r} is not filterable; allowed: {', '.join(FILTERABLE_FIELDS)}")
        values = [value] if isinstance(value, str) else list(value)
        if values:
            clauses.append({"terms": {field: values}})
    return clauses


ANALYZER = "ragharness_text"


def analyzer(analysis: TextAnalysis) -> tuple[str, dict[str, Any]]:
    """The analyzer name for `text` and the index `analysis` settings it needs. The defaults are exactly the
    built-in language analyzer (e.g. `english`: standard tokenizer, possessive stemmer, lowercase, the language's
    stop words, Porter stemmer); anything else is a custom analyzer built from the same parts."""
    if analysis == TextAnalysis(language=analysis.language):
        return analysis.language, {}
    filters: list[str] = []
    defs: dict[str, Any] = {}
    if analysis.language == "english" and analysis.stem:
        defs[f"{ANALYZER}_possessive"] = {"type": "stemmer", "language": "possessive_english"}
        filters.append(f"{ANALYZER}_possessive")
    if analysis.lower_case:
        filters.append("lowercase")
    if analysis.ascii_folding:
        filters.append("asciifolding")
    if analysis.stop_words:
        defs[f"{ANALYZER}_stop"] = {"type": "stop", "stopwords": f"_{analysis.language}_"}
        filters.append(f"{ANALYZER}_stop")
    if analysis.stem:
        defs[f"{ANALYZER}_stem"] = {"type": "stemmer", "language": analysis.language}
        filters.append(f"{ANALYZER}_stem")
    settings = {"analyzer": {ANALYZER: {"type": "custom", "tokenizer": "standard", "filter": filters}}}
    if defs:
        settings["filter"] = defs
    return ANALYZER, settings


def index_body(
    embedder: str, dimension: int, opts: OpenSearchOptions, analysis: TextAnalysis | None = None
) -> dict[str, Any]:
    analysis = analysis or TextAnalysis()
    name, analysis_settings = analyzer(analysis)
    props: dict[str, Any] = {k: {"type": "keyword"} for k in _KEYWORDS}
    props.update(
        {
            "text": {"type": "text", "analyzer": name},
            "title": {"type": "text", "analyzer": name},
            "section": {"type": "text", "analyzer": name},
            "position": {"type": "integer"},
            "n_tokens": {"type": "integer"},
            "vector": {
                "type": "knn_vector",
                "dimension": dimension,
                "method": {
                    "name": "hnsw",
                    "engine": opts.engine,
                    "space_type": opts.space_type or DEFAULT_SPACE[opts.engine],
                    "parameters": {"m": opts.m, "ef_construction": opts.ef_construction},
                },
            },
        }
    )
    settings: dict[str, Any] = {"index": {"knn": True, "knn.algo_param.ef_search": opts.ef_search}}
    if analysis_settings:
        settings["analysis"] = analysis_settings
    meta = {"embedder": embedder, "dimension": dimension, "analysis": analysis.signature()}
    return {"settings": settings, "mappings": {"_meta": meta, "properties": props}}


def knn_query(vector: Sequence[float], k: int, filters: dict[str, FilterValue]) -> dict[str, Any]:
    clause: dict[str, Any] = {"vector": list(vector), "k": k}
    f = filter_clauses(filters)
    if f:
        clause["filter"] = {"bool": {"filter": f}}  # efficient filtering (faiss / lucene engines)
    return {"knn": {"vector": clause}}


def bm25_query(text: str, filters: dict[str, FilterValue]) -> dict[str, Any]:
    return {"bool": {"must": [{"match": {"text": {"query": text}}}], "filter": filter_clauses(filters)}}


def search_body(query: dict[str, Any], size: int) -> dict[str, Any]:
    return {"size": size, "_source": list(SOURCE_FIELDS), "query": query}


def hybrid_body(text: str, vector: Sequence[float], k: int, filters: dict[str, FilterValue]) -> dict[str, Any]:
    """A hybrid query (BM25 first, k-NN second, matching the pipeline's weights); filters go in each subquery."""
    return search_body({"hybrid": {"queries": [bm25_query(text, filters), knn_query(vector, k, filters)]}}, k)


def pipeline_body(fusion: Fusion) -> dict[str, Any]:
    """The search pipeline doing `fusion` server-side: the score-ranker processor (RRF, OpenSearch >= 2.19) or the
    normalization processor (min-max or L2, weighted arithmetic mean); weights in sub-query order (BM25, k-NN)."""
    weights = list(fusion.weights)
    if fusion.method == "rrf":
        processor: dict[str, Any] = {
            "score-ranker-processor": {
                "combination": {"technique": "rrf", "rank_constant": fusion.rrf_k, "parameters": {"weights": weights}}
            }
        }
        what = f"reciprocal rank fusion (rank constant {fusion.rrf_k})"
    else:
        processor = {
            "normalization-processor": {
                "normalization": {"technique": fusion.normalization},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": weights}},
            }
        }
        what = f"{fusion.normalization} normalisation, weighted arithmetic mean"
    return {
        "description": f"ragharness hybrid search: {what}, weights (BM25, k-NN) {weights}",
        "phase_results_processors": [processor],
    }


def similarity_from_score(score: float, space_type: str) -> float:
    """Turn OpenSearch's k-NN score back into cosine similarity (vectors are L2-normalised)."""
    if space_type == "cosinesimil":
        return 2 * score - 1
    if space_type == "innerproduct":
        return score - 1 if score >= 1 else 1 - 1 / score
    return score


class OpenSearchStore:
    def __init__(
        self,
        opts: OpenSearchOptions,
        alias: str = "ragharness-chunks",
        client: Any = None,
        *,
        analysis: TextAnalysis | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        self.opts = opts
        self.analysis = analysis or TextAnalysis()
        self.fusion = fusion or Fusion()
        self.stale_analysis = False
        self.alias = alias
        self._client = client
        self._index: str | None = None
        self._building: str | None = None
        self._previous: str | None = None
        self._pipelines: dict[str, bool] = {}  # fusion signature -> the pipeline exists (False: unavailable)
        self.space_type = opts.space_type or DEFAULT_SPACE[opts.engine]
        self.write_failures: list[str] = []

    # -- connection -----------------------------------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            from opensearchpy import OpenSearch, RequestsHttpConnection

            url = resolve_env(self.opts.url, what="store.options.url")
            kwargs: dict[str, Any] = {
                "hosts": [url],
                "timeout": self.opts.timeout_s,
                "verify_certs": self.opts.verify_certs,
                "retry_on_status": (502, 503, 504),
                "max_retries": 3,
                "retry_on_timeout": True,
            }
            if self.opts.ca_certs:
                kwargs["ca_certs"] = self.opts.ca_certs
            if self.opts.aws_sigv4:
                import boto3
                from opensearchpy import AWSV4SignerAuth

                session = boto3.Session(region_name=self.opts.region)
                credentials = session.get_credentials()
                if credentials is None or session.region_name is None:
                    raise StoreError(
                        "store: AWS SigV4 needs AWS credentials and a region (options.region or AWS_REGION)"
                    )
                kwargs["http_auth"] = AWSV4SignerAuth(credentials, session.region_name, self.opts.aws_sigv4)
                kwargs["connection_class"] = RequestsHttpConnection
            elif self.opts.username:
                user = resolve_env(self.opts.username, what="store.options.username")
                password = resolve_env(self.opts.password or "", what="store.options.password")
                kwargs["http_auth"] = (user, password)
            self._client = OpenSearch(**kwargs)
        return self._client

    @property
    def name(self) -> str:
        return f"opensearch:{self._index or self.alias}"

    @property
    def index(self) -> str:
        if self._index is None:
            raise StoreError("store used before ensure(); call ensure(embedder_name, dimension) first")
        return self._building or self._index

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _new_index_name(self) -> str:
        return f"{self.alias}-v{time.strftime('%Y%m%d%H%M%S')}{int(time.time() * 1000) % 1000:03d}"

    def _create(self, embedder_name: str, dimension: int) -> str:
        name = self._new_index_name()
        self.client().indices.create(index=name, body=index_body(embedder_name, dimension, self.opts, self.analysis))
        return name

    def ensure(self, embedder_name: str, dimension: int) -> None:
        c = self.client()
        if c.indices.exists_alias(name=self.alias):
            concrete = sorted(c.indices.get_alias(name=self.alias))
            if len(concrete) != 1:
                raise StoreError(f"alias {self.alias!r} points at {concrete}; it must point at exactly one index")
            self._index = concrete[0]
            meta = c.indices.get_mapping(index=self._index)[self._index]["mappings"].get("_meta", {})
            if meta.get("embedder") != embedder_name or meta.get("dimension") != dimension:
                raise StoreError(
                    f"index {self._index} (alias {self.alias}) was built with embedder {meta.get('embedder')} "
                    f"({meta.get('dimension')}-d), not {embedder_name} ({dimension}-d); rebuild it "
                    "(`ragharness ingest CONFIG --rebuild`) or use another index name"
                )
            # Other analysis settings than the index's: the next ingest re-indexes into a new index (begin_write);
            # BM25 and hybrid searches refuse until then (never a mix of tokenisations).
            self.stale_analysis = meta.get("analysis") != self.analysis.signature()
        elif c.indices.exists(index=self.alias):
            raise StoreError(f"{self.alias!r} is a concrete index, not an alias; choose another store.table name")
        else:
            self._index = self._create(embedder_name, dimension)
            c.indices.put_alias(index=self._index, name=self.alias)
        self._embedder = (embedder_name, dimension)
        if self.opts.hybrid == "pipeline":
            self.pipeline_for(self.fusion)

    def pipeline_name(self, fusion: Fusion) -> str:
        return f"{self.alias}-hybrid-{fusion.method}-{fusion.signature()}"

    def pipeline_for(self, fusion: Fusion) -> str | None:
        """The search pipeline for `fusion`, created idempotently on first use; None where pipelines are not
        available (then fusion happens client-side, the same computation)."""
        name = self.pipeline_name(fusion)
        if name not in self._pipelines:
            try:
                self.client().transport.perform_request("PUT", f"/_search/pipeline/{name}", body=pipeline_body(fusion))
                self._pipelines[name] = True
            except Exception:
                self._pipelines[name] = False
        return name if self._pipelines[name] else None

    def rebuild(self) -> None:
        """Start a full re-index into a new concrete index; `publish()` swaps the alias to it."""
        if self._index is None:
            raise StoreError("rebuild() before ensure()")
        if self._building is not None:
            return  # already re-indexing (an analysis change, and --rebuild)
        self._previous = self._index
        self._building = self._create(*self._embedder)

    def publish(self) -> None:
        if self._building is None:
            return
        c = self.client()
        c.indices.update_aliases(
            body={
                "actions": [
                    {"remove": {"index": self._previous, "alias": self.alias}},
                    {"add": {"index": self._building, "alias": self.alias}},
                ]
            }
        )
        c.indices.delete(index=self._previous)
        self._index, self._building, self._previous = self._building, None, None
        self.stale_analysis = False

    # -- writes ---------------------------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[EmbeddedChunk]) -> None:
        if not chunks:
            return
        from opensearchpy import helpers

        def actions() -> Any:
            for ec in chunks:
                c = ec.chunk
                source: dict[str, Any] = {
                    f: getattr(c, f) for f in SOURCE_FIELDS if f not in (*METADATA_FIELDS, "tags")
                }
                source.update({f: getattr(c.metadata, f) for f in METADATA_FIELDS})
                source.update(tags=list(c.metadata.tags), vector=list(ec.vector))
                yield {"_op_type": "index", "_index": self.index, "_id": c.chunk_id, "_source": source}

        failures = []
        for ok, item in helpers.streaming_bulk(
            self.client(),
            actions(),
            chunk_size=self.opts.bulk_chunk_size,
            max_retries=self.opts.bulk_max_retries,
            initial_backoff=1,
            max_backoff=30,
            raise_on_error=False,
            raise_on_exception=False,
        ):
            if not ok:
                info = item.get("index", item)
                failures.append(f"{info.get('_id')}: {info.get('error') or info.get('status')}")
        self.client().indices.refresh(index=self.index)
        if failures:
            self.write_failures += failures
            raise StoreError(f"{len(failures)} of {len(chunks)} chunks failed to index; first: {failures[:3]}")

    def delete_documents(self, doc_ids: Sequence[str], keep_chunk_ids: Collection[str] = ()) -> int:
        keep: dict[str, list[str]] = {}
        for cid in sorted(keep_chunk_ids):
            keep.setdefault(cid.rsplit("#", 1)[0], []).append(cid)
        deleted = 0
        for start in range(0, len(doc_ids), 500):
            batch = list(doc_ids[start : start + 500])
            query: dict[str, Any] = {"terms": {"doc_id": batch}}
            mine = [c for d in batch for c in keep.get(d, ())]
            if mine:
                query = {"bool": {"filter": [query], "must_not": [{"ids": {"values": mine}}]}}
            res = self.client().delete_by_query(index=self.index, refresh=True, body={"query": query})
            deleted += int(res.get("deleted", 0))
        return deleted

    def search_many(self, requests: Sequence[SearchRequest], concurrency: int = 16) -> list[list[SearchHit]]:
        """Side by side on a thread pool (opensearch-py's client is thread-safe; the cluster does the work)."""
        from concurrent.futures import ThreadPoolExecutor

        if len(requests) <= 1:
            return [self.search(r) for r in requests]
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, 8)), thread_name_prefix="opensearch") as pool:
            return list(pool.map(self.search, requests))

    def begin_write(self) -> int:
        """Chunk ids are document ids here, so duplicates cannot exist; a rebuild's index is only published by
        an alias swap, so a killed rebuild never shows. Nothing to repair. If the index was built with other
        text_analysis settings, this ingest re-indexes into a new index (its vectors are reused)."""
        if self.stale_analysis:
            self.rebuild()
        return 0

    # -- reads ----------------------------------------------------------------------------------------------
    def _scan_fields(self, fields: list[str]) -> Iterator[dict[str, Any]]:
        from opensearchpy import helpers

        query = {"query": {"match_all": {}}, "_source": fields}
        for h in helpers.scan(self.client(), index=self.index, query=query):
            yield h["_source"]

    def document_hashes(self) -> dict[str, str]:
        """doc_id -> doc hash; a document whose chunks disagree (a write cut short) maps to '' (changed)."""
        out: dict[str, str] = {}
        for src in self._scan_fields(["doc_id", "doc_hash"]):
            prev = out.get(src["doc_id"])
            out[src["doc_id"]] = src["doc_hash"] if prev is None or prev == src["doc_hash"] else ""
        return out

    def document_sources(self) -> dict[str, str]:
        return {src["doc_id"]: src.get("source") or "" for src in self._scan_fields(["doc_id", "source"])}

    def vectors_for(self, content_hashes: Sequence[str]) -> dict[str, list[float]]:
        from opensearchpy import helpers

        wanted = sorted(set(content_hashes))
        out: dict[str, list[float]] = {}
        for start in range(0, len(wanted), 500):
            query = {
                "query": {"terms": {"content_hash": wanted[start : start + 500]}},
                "_source": ["content_hash", "vector"],
            }
            # While re-indexing, the live index still holds every unchanged chunk's vector: reuse, never re-embed.
            where = ",".join(i for i in (self._building, self._previous) if i) or self.index
            for h in helpers.scan(self.client(), index=where, query=query):
                out[h["_source"]["content_hash"]] = [float(x) for x in h["_source"]["vector"]]
        return out

    def count(self) -> int:
        return int(self.client().count(index=self.index)["count"])

    def _hits(self, body: dict[str, Any], **params: Any) -> list[tuple[Chunk, float]]:
        res = self.client().search(index=self.index, body=body, params=params or None)
        return [(chunk_from_record(h["_source"]), float(h["_score"] or 0.0)) for h in res["hits"]["hits"]]

    def search(self, request: SearchRequest) -> list[SearchHit]:
        k, filters = request.k, request.filters
        filter_clauses(filters)  # validates field names before any request
        if self.stale_analysis and request.mode is not SearchMode.vector:
            raise StoreError(
                f"index {self._index} was built with other text_analysis settings than the config's; run "
                "`ragharness ingest` (it re-indexes into a new index and swaps the alias) before searching"
            )
        if request.mode is SearchMode.bm25:
            pairs = self._hits(search_body(bm25_query(request.text, filters), k)) if request.text.strip() else []
        else:
            if request.vector is None:
                raise StoreError(f"{request.mode.value} search needs a query vector")
            if request.mode is SearchMode.vector:
                pairs = [
                    (c, similarity_from_score(s, self.space_type))
                    for c, s in self._hits(search_body(knn_query(request.vector, k, filters), k))
                ]
            elif self.opts.hybrid == "pipeline" and (pipeline := self.pipeline_for(request.fusion or self.fusion)):
                pairs = self._hits(hybrid_body(request.text, request.vector, k, filters), search_pipeline=pipeline)
            else:
                depth = max(k * 4, 20)
                vec = [
                    (c, similarity_from_score(s, self.space_type))
                    for c, s in self._hits(search_body(knn_query(request.vector, depth, filters), depth))
                ]
                lex = self._hits(search_body(bm25_query(request.text, filters), depth)) if request.text.strip() else []
                by_id = {c.chunk_id: c for c, _ in [*lex, *vec]}
                lists = [[(c.chunk_id, s) for c, s in lex], [(c.chunk_id, s) for c, s in vec]]
                pairs = [(by_id[cid], score) for cid, score in fuse(lists, request.fusion or self.fusion, k)]
        return [SearchHit(chunk=c, score=s, rank=i) for i, (c, s) in enumerate(pairs[:k], start=1)]
