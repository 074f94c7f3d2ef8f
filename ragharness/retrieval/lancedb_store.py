"""LanceDB: the embedded default store. Vector (cosine), BM25 full-text and hybrid (RRF) with metadata prefilters."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ragharness.errors import StoreError
from ragharness.retrieval.store import TEXT_FIELDS, SearchRequest, chunk_from_record, chunk_record, rrf_fuse
from ragharness.types import (
    FILTERABLE_FIELDS,
    METADATA_FIELDS,
    EmbeddedChunk,
    FilterValue,
    SearchHit,
    SearchMode,
)

_STRING_COLUMNS = (*TEXT_FIELDS, *METADATA_FIELDS)


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


class LanceDBStore:
    def __init__(self, path: str | Path, table: str = "chunks", ann_min_rows: int = 50_000) -> None:
        import lancedb

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.table_name = table
        self._db = lancedb.connect(str(self.path))
        self._table: Any = None
        self._meta_file = self.path / f"{table}.ragharness.json"
        self._fts_ready = False
        self._built = ""
        self._unindexed = 0
        self.ann_min_rows = ann_min_rows
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lancedb-hybrid")

    @property
    def name(self) -> str:
        """Table, build stamp (changes on rebuild) and LanceDB version (changes on every write)."""
        version = self._table.version if self._table is not None else 0
        return f"lancedb:{self.table_name}@{self._built}.v{version}"

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

    def ensure(self, embedder_name: str, dimension: int) -> None:
        if self._meta_file.is_file():
            meta = json.loads(self._meta_file.read_text())
            if meta.get("embedder") != embedder_name or meta.get("dimension") != dimension:
                raise StoreError(
                    f"{self.path}: table {self.table_name!r} was built with embedder {meta.get('embedder')} "
                    f"({meta.get('dimension')}-d), not {embedder_name} ({dimension}-d); "
                    "use another data_dir or table name, or delete the table to rebuild"
                )
        existing = set(self._db.list_tables().tables)
        built = json.loads(self._meta_file.read_text()).get("built", "") if self._meta_file.is_file() else ""
        if self.table_name in existing and built:
            self._table = self._db.open_table(self.table_name)
        else:
            if self.table_name in existing:
                self._db.drop_table(self.table_name)
            self._table = self._db.create_table(self.table_name, schema=self._schema(dimension))
            built = time.strftime("%Y%m%d%H%M%S")
        self._built = built
        self._write_meta(embedder_name, dimension)
        self._fts_ready = any(getattr(ix, "index_type", "") == "FTS" for ix in self._table.list_indices())

    def _write_meta(self, embedder_name: str, dimension: int) -> None:
        self._meta_file.write_text(
            json.dumps({"embedder": embedder_name, "dimension": dimension, "built": self._built})
        )

    def rebuild(self) -> None:
        """Start a full re-index: the table is recreated empty and gets a new build stamp."""
        meta = json.loads(self._meta_file.read_text()) if self._meta_file.is_file() else None
        if meta is None or self._table is None:
            raise StoreError("rebuild() before ensure()")
        self._db.drop_table(self.table_name)
        self._table = self._db.create_table(self.table_name, schema=self._schema(int(meta["dimension"])))
        self._fts_ready = False
        stamp = time.strftime("%Y%m%d%H%M%S")
        self._built = stamp if stamp != self._built else f"{stamp}.{int(time.time() * 1000) % 1000:03d}"
        self._write_meta(meta["embedder"], int(meta["dimension"]))

    def _has_vector_index(self) -> bool:
        return any("vector" in (getattr(ix, "columns", None) or []) for ix in self._t().list_indices())

    def publish(self) -> None:
        """Writes are live already (no alias to swap). Fold rows written since the last index build into the
        indexes, and from `ann_min_rows` rows on build an ANN index (IVF-HNSW-SQ, cosine): flat vector search
        costs ~90 ms at 100k chunks on two cores, the ANN index ~10 ms."""
        if self._table is None:
            return
        if self.count() >= self.ann_min_rows and not self._has_vector_index():
            from lancedb.index import IvfHnswSq

            self._t().create_index("vector", config=IvfHnswSq(distance_type="cosine"))
        if self._unindexed:
            self._t().optimize()
            self._unindexed = 0

    def _t(self) -> Any:
        if self._table is None:
            raise StoreError("store used before ensure(); call ensure(embedder_name, dimension) first")
        return self._table

    def upsert(self, chunks: Sequence[EmbeddedChunk]) -> None:
        if not chunks:
            return
        rows = [{**chunk_record(ec.chunk), "vector": list(ec.vector)} for ec in chunks]
        table = self._t()
        table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all().execute(rows)
        self._unindexed += len(rows)
        if not self._fts_ready:
            from lancedb.index import FTS

            table.create_index("text", config=FTS(), replace=True)
            self._fts_ready = True
            self._unindexed = 0

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        table = self._t()
        before = int(table.count_rows())
        for start in range(0, len(doc_ids), 500):
            batch = doc_ids[start : start + 500]
            table.delete(f"doc_id IN ({', '.join(_quote(d) for d in batch)})")
        return before - int(table.count_rows())

    def document_hashes(self) -> dict[str, str]:
        table = self._t()
        if table.count_rows() == 0:
            return {}
        rows = table.search().select(["doc_id", "doc_hash"]).limit(None).to_arrow().to_pylist()
        return {row["doc_id"]: row["doc_hash"] for row in rows}

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
        return int(self._t().count_rows())

    def _vector(self, req: SearchRequest, where: str | None, limit: int) -> list[dict[str, Any]]:
        if req.vector is None:
            raise StoreError(f"{req.mode.value} search needs a query vector")
        q = self._t().search(list(req.vector), vector_column_name="vector").distance_type("cosine")
        if where:
            q = q.where(where, prefilter=True)
        rows: list[dict[str, Any]] = q.limit(limit).to_list()
        for r in rows:
            r["_score"] = 1.0 - float(r["_distance"])
        return rows

    def _bm25(self, req: SearchRequest, where: str | None, limit: int) -> list[dict[str, Any]]:
        if not req.text.strip():
            return []
        q = self._t().search(req.text, query_type="fts", fts_columns="text")
        if where:
            q = q.where(where, prefilter=True)
        rows: list[dict[str, Any]] = q.limit(limit).to_list()
        return rows

    def _refresh_indexes(self) -> None:
        """Rows written after the full-text index was built are searched by brute force; fold them in (once, at
        the first search after a large write) so BM25 stays fast."""
        if self._unindexed >= 1000:
            self._t().optimize()
            self._unindexed = 0

    def search(self, request: SearchRequest) -> list[SearchHit]:
        if self.count() == 0:
            return []
        self._refresh_indexes()
        where = where_clause(request.filters)
        if request.mode is SearchMode.vector:
            rows = self._vector(request, where, request.k)
        elif request.mode is SearchMode.bm25:
            rows = self._bm25(request, where, request.k)
        else:
            # Client-side RRF over deeper candidate lists: same fusion as the OpenSearch fallback.
            # The two sub-queries run side by side (LanceDB releases the GIL): hybrid costs max(), not sum().
            depth = max(request.k * 4, 20)
            vec_future = self._pool.submit(self._vector, request, where, depth)
            lex = self._bm25(request, where, depth)
            vec = vec_future.result()
            by_id = {r["chunk_id"]: r for r in [*lex, *vec]}
            fused = rrf_fuse([[r["chunk_id"] for r in vec], [r["chunk_id"] for r in lex]], request.k)
            rows = [{**by_id[cid], "_score": score} for cid, score in fused]
        return [
            SearchHit(chunk=chunk_from_record(r), score=float(r["_score"]), rank=i) for i, r in enumerate(rows, start=1)
        ]
