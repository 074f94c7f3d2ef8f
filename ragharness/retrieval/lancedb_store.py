"""LanceDB: the embedded default store. Vector (cosine), BM25 full-text and hybrid (RRF) with metadata prefilters."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ragharness.core.errors import StoreError
from ragharness.core.fileio import atomic_write_text
from ragharness.core.types import (
    FILTERABLE_FIELDS,
    METADATA_FIELDS,
    EmbeddedChunk,
    FilterValue,
    SearchHit,
    SearchMode,
)
from ragharness.retrieval.settings import Fusion, TextAnalysis
from ragharness.retrieval.store import TEXT_FIELDS, SearchRequest, chunk_from_record, chunk_record, fuse

_STRING_COLUMNS = (*TEXT_FIELDS, *METADATA_FIELDS)


def _stamp() -> str:
    return time.strftime("%Y%m%d%H%M%S")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def where_clause(filters: dict[str, FilterValue]) -> str | None:
    """SQL predicate for LanceDB. Field names are whitelisted; values are quoted."""
    parts = []
    for field, value in sorted(filters.items()):
        if field not in FILTERABLE_FIELDS:
            raise StoreError(f"filter field {field!r} is not filterable; allowed: {', '.join(FILTERABLE_FIELDS)}")
        values = [value] if isinstance(value, str) else list(value)
        if not values:
            continue
        if len(values) == 1:
            parts.append(f"{field} = {_quote(values[0])}")
        else:
            parts.append(f"{field} IN ({', '.join(_quote(v) for v in values)})")
    return " AND ".join(parts) or None


def fts_config(analysis: TextAnalysis) -> Any:
    """LanceDB's full-text index options for the analysis settings (its `simple` tokenizer, Snowball stemmer)."""
    from lancedb.index import FTS

    return FTS(
        base_tokenizer="simple",
        language=analysis.language.capitalize(),
        lower_case=analysis.lower_case,
        stem=analysis.stem,
        remove_stop_words=analysis.stop_words,
        ascii_folding=analysis.ascii_folding,
    )


class LanceDBStore:
    """Readers only ever see a published version.

    Every ingest writes to the latest table version and `publish()` records that version in the store's meta
    file (atomically); readers check out the published version, so a reader never sees an ingest half done, and
    a killed ingest leaves the previous complete version in force. The next ingest (`begin_write`) first goes
    back to the published version, dropping what the killed one wrote. A rebuild writes a new physical table and
    publishing switches to it; the old table stays readable until the next ingest removes it.
    """

    def __init__(
        self,
        path: str | Path,
        table: str = "chunks",
        ann_min_rows: int = 50_000,
        *,
        analysis: TextAnalysis | None = None,
        fusion: Fusion | None = None,
    ) -> None:
        import lancedb

        self.analysis = analysis or TextAnalysis()
        self.fusion = fusion or Fusion()
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.table_name = table
        self._db = lancedb.connect(str(self.path))
        self._table: Any = None
        self._reader: Any = None
        self._meta_file = self.path / f"{table}.ragharness.json"
        self._meta: dict[str, Any] = {}
        self._fts_ready = False
        self._unindexed = 0
        self._count: int | None = None
        self._building: str | None = None
        self.ann_min_rows = ann_min_rows
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lancedb-hybrid")

    @property
    def name(self) -> str:
        """Physical table, build stamp and the table version that searches read (the published one)."""
        reader = self._reader if self._reader is not None else self._table
        version = reader.version if reader is not None else 0
        return f"lancedb:{self._physical}@{self._meta.get('built', '')}.v{version}"

    @property
    def _physical(self) -> str:
        return str(self._meta.get("physical") or self.table_name)

    def _schema(self, dimension: int) -> Any:
        import pyarrow as pa

        fields = [pa.field(c, pa.string()) for c in _STRING_COLUMNS]
        fields += [
            pa.field("position", pa.int32()),
            pa.field("n_tokens", pa.int32()),
            pa.field("tags", pa.list_(pa.string())),
            pa.field("vector", pa.list_(pa.float32(), dimension)),
        ]
        return pa.schema(fields)

    def _read_meta(self) -> dict[str, Any]:
        if not self._meta_file.is_file():
            return {}
        try:
            meta: dict[str, Any] = json.loads(self._meta_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise StoreError(
                f"{self._meta_file}: unreadable store metadata ({exc}); delete the data_dir to rebuild"
            ) from exc
        return meta

    def _write_meta(self) -> None:
        atomic_write_text(self._meta_file, json.dumps(self._meta))

    def ensure(self, embedder_name: str, dimension: int) -> None:
        meta = self._read_meta()
        if meta and (meta.get("embedder") != embedder_name or meta.get("dimension") != dimension):
            raise StoreError(
                f"{self.path}: table {self.table_name!r} was built with embedder {meta.get('embedder')} "
                f"({meta.get('dimension')}-d), not {embedder_name} ({dimension}-d); "
                "use another data_dir or table name, or delete the table to rebuild"
            )
        existing = set(self._db.list_tables().tables)
        physical = str(meta.get("physical") or self.table_name)
        if meta.get("built") and physical in existing:
            self._meta = meta
            self._table = self._db.open_table(physical)
        else:
            if physical in existing:
                self._db.drop_table(physical)
            self._meta = {"embedder": embedder_name, "dimension": dimension, "built": _stamp(), "physical": physical}
            self._table = self._db.create_table(physical, schema=self._schema(dimension))
            self._meta["published"] = self._table.version
            self._write_meta()
        self._open_reader()
        built = any(getattr(ix, "index_type", "") == "FTS" for ix in self._table.list_indices())
        # A text index built with other analysis settings is rebuilt at the next publish, never mixed with new rows.
        self._fts_ready = built and self._meta.get("analysis") == self.analysis.signature()

    def _open_reader(self) -> None:
        """Searches read the published version, whatever an unfinished ingest has written since."""
        published = self._meta.get("published")
        self._count = None
        if published is None:
            self._reader = self._table
            return
        reader = self._db.open_table(self._physical)
        try:
            reader.checkout(int(published))
        except Exception as exc:
            raise StoreError(
                f"{self.path}: published version {published} of {self._physical} is gone ({exc}); "
                "run `ragharness ingest --rebuild`"
            ) from exc
        self._reader = reader

    def begin_write(self) -> int:
        """Start an ingest (under the data_dir lock): return to the published version if a killed ingest wrote
        past it, drop tables of killed or superseded rebuilds, and remove duplicate rows. Returns the duplicates
        removed."""
        table = self._t()
        published = self._meta.get("published")
        if published is not None and table.version != published:
            table.restore(int(published))
        for name in self._db.list_tables().tables:
            if name != self._physical and (name == self.table_name or name.startswith(f"{self.table_name}__")):
                self._db.drop_table(name)
        return self._repair_duplicates()

    def _repair_duplicates(self) -> int:
        """Concurrent writers from older versions could leave two rows with one chunk id; keep one of each."""
        table = self._t()
        ids = Counter(table.search().select(["chunk_id"]).limit(None).to_arrow().column("chunk_id").to_pylist())
        dupes = sorted(cid for cid, n in ids.items() if n > 1)
        for start in range(0, len(dupes), 500):
            where = f"chunk_id IN ({', '.join(_quote(d) for d in dupes[start : start + 500])})"
            keep = {r["chunk_id"]: r for r in table.search().where(where).limit(None).to_arrow().to_pylist()}
            table.delete(where)
            table.add(list(keep.values()))
        self._unindexed += len(dupes)
        return sum(ids[d] - 1 for d in dupes)

    def rebuild(self) -> None:
        """Start a full re-index into a new physical table; searches keep reading the old one until publish()."""
        if self._table is None:
            raise StoreError("rebuild() before ensure()")
        stamp = _stamp()
        if stamp == self._meta.get("built"):
            stamp = f"{stamp}{int(time.time() * 1000) % 1000:03d}"
        self._building = stamp
        physical = f"{self.table_name}__{stamp}"
        if physical in set(self._db.list_tables().tables):
            self._db.drop_table(physical)
        self._table = self._db.create_table(physical, schema=self._schema(int(self._meta["dimension"])))
        self._fts_ready = False

    def _has_vector_index(self) -> bool:
        return any("vector" in (getattr(ix, "columns", None) or []) for ix in self._t().list_indices())

    def publish(self) -> None:
        """Index what was written (FTS; from `ann_min_rows` rows an ANN index, IVF-HNSW-SQ cosine: flat vector
        search costs ~90 ms at 100k chunks on two cores, the ANN index ~10 ms), then make this version the one
        readers see (after a rebuild: switch to the new table)."""
        if self._table is None:
            return
        table = self._t()
        if not self._fts_ready and table.count_rows() > 0:
            table.create_index("text", config=fts_config(self.analysis), replace=True)
            self._meta["analysis"] = self.analysis.signature()
            self._fts_ready = True
            self._unindexed = 0
        if table.count_rows() >= self.ann_min_rows and not self._has_vector_index():
            from lancedb.index import IvfHnswSq

            table.create_index("vector", config=IvfHnswSq(distance_type="cosine"))
        if self._unindexed:
            table.optimize()
            self._unindexed = 0
        if self._building is not None:
            self._meta["physical"] = f"{self.table_name}__{self._building}"
            self._meta["built"] = self._building
            self._building = None
        self._meta["published"] = table.version
        self._write_meta()
        self._open_reader()

    def _t(self) -> Any:
        if self._table is None:
            raise StoreError("store used before ensure(); call ensure(embedder_name, dimension) first")
        return self._table

    def _r(self) -> Any:
        self._t()
        return self._reader if self._reader is not None else self._table

    def upsert(self, chunks: Sequence[EmbeddedChunk]) -> None:
        """Idempotent by chunk id (merge-insert): writing the same chunks twice leaves one row each."""
        if not chunks:
            return
        rows = [{**chunk_record(ec.chunk), "vector": list(ec.vector)} for ec in chunks]
        table = self._t()
        table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        self._unindexed += len(rows)

    def delete_documents(self, doc_ids: Sequence[str], keep_chunk_ids: Collection[str] = ()) -> int:
        if not doc_ids:
            return 0
        table = self._t()
        before = int(table.count_rows())
        keep: dict[str, list[str]] = {}
        for cid in sorted(keep_chunk_ids):
            keep.setdefault(cid.rsplit("#", 1)[0], []).append(cid)
        for start in range(0, len(doc_ids), 500):
            batch = doc_ids[start : start + 500]
            where = f"doc_id IN ({', '.join(_quote(d) for d in batch)})"
            mine = [c for d in batch for c in keep.get(d, ())]
            if mine:
                where += f" AND chunk_id NOT IN ({', '.join(_quote(c) for c in mine)})"
            table.delete(where)
        return before - int(table.count_rows())

    def document_hashes(self) -> dict[str, str]:
        """doc_id -> doc hash of what the writer sees; a document whose chunks disagree maps to '' (changed)."""
        table = self._t()
        if table.count_rows() == 0:
            return {}
        rows = table.search().select(["doc_id", "doc_hash"]).limit(None).to_arrow().to_pylist()
        out: dict[str, str] = {}
        for row in rows:
            prev = out.get(row["doc_id"])
            out[row["doc_id"]] = row["doc_hash"] if prev is None or prev == row["doc_hash"] else ""
        return out

    def document_sources(self) -> dict[str, str]:
        table = self._t()
        if table.count_rows() == 0:
            return {}
        rows = table.search().select(["doc_id", "source"]).limit(None).to_arrow().to_pylist()
        return {row["doc_id"]: row["source"] or "" for row in rows}

    def vectors_for(self, content_hashes: Sequence[str]) -> dict[str, list[float]]:
        table = self._t()
        wanted = sorted(set(content_hashes))
        if not wanted or table.count_rows() == 0:
            return {}
        out: dict[str, list[float]] = {}
        for start in range(0, len(wanted), 500):
            batch = ", ".join(_quote(h) for h in wanted[start : start + 500])
            query = table.search().where(f"content_hash IN ({batch})").select(["content_hash", "vector"])
            for row in query.limit(None).to_arrow().to_pylist():
                out[row["content_hash"]] = row["vector"]
        return out

    def count(self) -> int:
        """Chunks in the version searches read."""
        if self._count is None:
            self._count = int(self._r().count_rows())
        return self._count

    def _vector(self, req: SearchRequest, where: str | None, limit: int) -> list[dict[str, Any]]:
        if req.vector is None:
            raise StoreError(f"{req.mode.value} search needs a query vector")
        q = self._r().search(list(req.vector), vector_column_name="vector").distance_type("cosine")
        if where:
            q = q.where(where, prefilter=True)
        rows: list[dict[str, Any]] = q.limit(limit).to_list()
        for r in rows:
            r["_score"] = 1.0 - float(r["_distance"])
        return rows

    def _bm25(self, req: SearchRequest, where: str | None, limit: int) -> list[dict[str, Any]]:
        if not req.text.strip():
            return []
        q = self._r().search(req.text, query_type="fts", fts_columns="text")
        if where:
            q = q.where(where, prefilter=True)
        rows: list[dict[str, Any]] = q.limit(limit).to_list()
        return rows

    def _hits(self, request: SearchRequest, vec: list[dict[str, Any]], lex: list[dict[str, Any]]) -> list[SearchHit]:
        """Hits for a request from its vector and/or BM25 rows; hybrid fuses deeper lists client-side with the
        request's (else the store's) fusion, the same computation as OpenSearch's pipeline."""
        if request.mode is SearchMode.vector:
            rows = vec
        elif request.mode is SearchMode.bm25:
            rows = lex
        else:
            by_id = {r["chunk_id"]: r for r in [*lex, *vec]}
            lists = [
                [(r["chunk_id"], float(r["_score"])) for r in lex],
                [(r["chunk_id"], float(r["_score"])) for r in vec],
            ]
            fused = fuse(lists, request.fusion or self.fusion, request.k)
            rows = [{**by_id[cid], "_score": score} for cid, score in fused]
        return [
            SearchHit(chunk=chunk_from_record(r), score=float(r["_score"]), rank=i) for i, r in enumerate(rows, start=1)
        ]

    @staticmethod
    def _depth(request: SearchRequest) -> int:
        return max(request.k * 4, 20) if request.mode is SearchMode.hybrid else request.k

    def with_analysis(self, analysis: TextAnalysis, path: Path) -> LanceDBStore:
        """A copy of the published table under `path` whose text index uses `analysis` (vectors copied, nothing
        re-embedded): how a sweep compares analyzers side by side without touching this store."""
        other = LanceDBStore(path, table=self.table_name, ann_min_rows=self.ann_min_rows, analysis=analysis)
        other.fusion = self.fusion
        other.ensure(str(self._meta["embedder"]), int(self._meta["dimension"]))
        data = self._r().to_arrow()
        if data.num_rows:
            other._t().add(data)
        other.publish()
        return other

    def _check_analysis(self) -> None:
        if self._meta.get("analysis") != self.analysis.signature() and self.count() > 0:
            raise StoreError(
                f"{self.path}: the text index was built with other text_analysis settings than the config's; run "
                "`ragharness ingest` (it rebuilds the text index) before searching"
            )

    def search(self, request: SearchRequest) -> list[SearchHit]:
        if self.count() == 0:
            return []
        if request.mode is not SearchMode.vector:
            self._check_analysis()
        where = where_clause(request.filters)
        depth = self._depth(request)
        vec: list[dict[str, Any]] = []
        lex: list[dict[str, Any]] = []
        if request.mode is SearchMode.vector:
            vec = self._vector(request, where, depth)
        elif request.mode is SearchMode.bm25:
            lex = self._bm25(request, where, depth)
        else:
            # The two sub-queries run side by side (LanceDB releases the GIL): hybrid costs max(), not sum().
            vec_future = self._pool.submit(self._vector, request, where, depth)
            lex = self._bm25(request, where, depth)
            vec = vec_future.result()
        return self._hits(request, vec, lex)

    def search_many(self, requests: Sequence[SearchRequest], concurrency: int = 16) -> list[list[SearchHit]]:
        """Many searches at once through LanceDB's async API, `concurrency` in flight (and, for hybrid, both
        sub-queries of each): on two cores ~3.4 ms per hybrid query instead of ~9 ms one by one, because the
        per-query overhead overlaps. Reads the same published version as `search`."""
        if not requests:
            return []
        if self.count() == 0:
            return [[] for _ in requests]
        if any(r.mode is not SearchMode.vector for r in requests):
            self._check_analysis()
        return asyncio.run(self._search_many(requests, concurrency))

    async def _search_many(self, requests: Sequence[SearchRequest], concurrency: int) -> list[list[SearchHit]]:
        import lancedb

        db = await lancedb.connect_async(str(self.path))
        table = await db.open_table(self._physical)
        published = self._meta.get("published")
        if published is not None:
            await table.checkout(int(published))
        gate = asyncio.Semaphore(max(1, concurrency))

        async def vector(req: SearchRequest, where: str | None, limit: int) -> list[dict[str, Any]]:
            if req.vector is None:
                raise StoreError(f"{req.mode.value} search needs a query vector")
            q = table.vector_search(list(req.vector)).column("vector").distance_type("cosine")
            if where:
                q = q.where(where)
            rows: list[dict[str, Any]] = await q.limit(limit).to_list()
            for r in rows:
                r["_score"] = 1.0 - float(r["_distance"])
            return rows

        async def bm25(req: SearchRequest, where: str | None, limit: int) -> list[dict[str, Any]]:
            if not req.text.strip():
                return []
            q = await table.search(req.text, query_type="fts", fts_columns="text")
            if where:
                q = q.where(where)
            rows: list[dict[str, Any]] = await q.limit(limit).to_list()
            return rows

        async def one(req: SearchRequest) -> list[SearchHit]:
            where = where_clause(req.filters)
            depth = self._depth(req)
            async with gate:
                if req.mode is SearchMode.vector:
                    return self._hits(req, await vector(req, where, depth), [])
                if req.mode is SearchMode.bm25:
                    return self._hits(req, [], await bm25(req, where, depth))
                vec, lex = await asyncio.gather(vector(req, where, depth), bm25(req, where, depth))
                return self._hits(req, vec, lex)

        try:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        finally:
            table.close()  # type: ignore[no-untyped-call]  # lancedb leaves close() unannotated
