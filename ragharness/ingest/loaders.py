"""Corpus sources and file loaders: Markdown (front matter), HTML, plain text, JSONL ticket exports.

A bad file is a `Skipped` record with its reason, never an exception that aborts the ingest.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from ragharness.core.errors import IngestError
from ragharness.core.normalise import normalise
from ragharness.core.types import METADATA_FIELDS, Document, Frozen, Metadata, SourceType, canonical_hash
from ragharness.core.yamlio import load_strict
from ragharness.ingest.html import html_to_markdown
from ragharness.ingest.settings import CorpusConfig, TicketFormat


class Skipped(Frozen):
    source: str
    reason: str


@dataclass(frozen=True)
class SourceRef:
    path: str  # corpus-relative, POSIX separators
    size: int
    version: str = ""  # what says the content is unchanged without reading it (an S3 ETag); "" = unknown


class CorpusSource(Protocol):
    """Where corpus files come from: a local folder (LocalSource) or an S3 prefix (ingest.s3source.S3Source)."""

    def files(self) -> Iterator[SourceRef | Skipped]:
        """Every candidate file, or a Skipped for an entry that must not be read (e.g. a link leaving the corpus)."""
        ...

    def read(self, ref: SourceRef, limit: int) -> bytes:
        """At most `limit + 1` bytes (a file that grew past the limit is caught without reading it all)."""
        ...

    def sidecar(self, ref: SourceRef) -> bytes | None:
        """The optional `<file>.meta.yaml` beside a file. Raises OSError if it must not be read."""
        ...


def glob_match(path: str, pattern: str) -> bool:
    """fnmatch where `**/` may also match nothing (so `**/*.md` matches `a.md`)."""
    return fnmatch.fnmatch(path, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(path, pattern[3:]))


class LocalSource:
    def __init__(self, root: Path, include: list[str], exclude: list[str]) -> None:
        if not root.is_dir():
            raise IngestError(f"{root}: corpus folder not found; set corpus.path in the config")
        self.root = root
        self.include = include
        self.exclude = exclude

    def _inside(self, path: Path) -> bool:
        try:
            path.resolve(strict=True).relative_to(self.root.resolve())
        except (OSError, ValueError):
            return False
        return True

    def files(self) -> Iterator[SourceRef | Skipped]:
        """Walks without following directory links; a link (file or folder) that leaves the corpus or dangles is
        reported as skipped, one that stays inside is read like the file it points to."""
        for folder, dirs, names in os.walk(self.root, followlinks=False):
            base = Path(folder)
            for d in sorted(dirs):
                if (base / d).is_symlink():
                    rel = (base / d).relative_to(self.root).as_posix()
                    yield Skipped(source=rel + "/", reason="symbolic link to a folder: not followed")
            dirs.sort()
            for name in sorted(names):
                file = base / name
                rel = file.relative_to(self.root).as_posix()
                if any(glob_match(rel, p) for p in self.exclude) or not any(glob_match(rel, p) for p in self.include):
                    continue
                if file.is_symlink() and not self._inside(file):
                    yield Skipped(
                        source=rel, reason="symbolic link leading outside the corpus (or nowhere): not followed"
                    )
                    continue
                if file.is_file():
                    yield SourceRef(rel, file.stat().st_size)

    def read(self, ref: SourceRef, limit: int) -> bytes:
        with (self.root / ref.path).open("rb") as fh:
            return fh.read(limit + 1)

    def sidecar(self, ref: SourceRef) -> bytes | None:
        side = self.root / f"{ref.path}.meta.yaml"
        if side.is_symlink() and not self._inside(side):
            raise OSError(
                errno.EPERM, f"its sidecar {ref.path}.meta.yaml is a symbolic link leaving the corpus (not followed)"
            )
        return side.read_bytes() if side.is_file() else None


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_BLANKS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def _metadata_from(mapping: dict[str, Any], where: str) -> Metadata:
    fields: dict[str, Any] = {f: str(mapping[f]) for f in METADATA_FIELDS if mapping.get(f) is not None}
    tags = mapping.get("tags")
    if tags is not None:
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list):
            raise ValueError(f"{where}: tags must be a list of strings")
        fields["tags"] = tuple(str(t) for t in tags)
    try:
        return Metadata(**fields)
    except ValidationError as exc:  # pragma: no cover - fields are all strings above
        raise ValueError(f"{where}: {exc}") from exc


def yaml_problem(exc: yaml.YAMLError) -> str:
    """The useful part of a YAML error: what is wrong and on which line."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        return f"{problem}" + (f" (line {mark.line + 1})" if mark is not None else "")
    return str(exc).splitlines()[0]


def decode(data: bytes) -> str:
    """UTF-8 text or ValueError with the reason (binary, undecodable)."""
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (NUL bytes); only text formats are ingested")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start}: {exc.reason}); re-save the file as UTF-8") from exc


def _doc(doc_id: str, source: str, kind: SourceType, title: str, text: str, meta: Metadata) -> Document:
    # one normal form before any detector or splitter sees the text (`ragharness.core.normalise`)
    text = clean_text(normalise(text))
    title = normalise(title)
    meta = meta.model_copy(
        update={
            **{f: normalise(getattr(meta, f)) for f in METADATA_FIELDS if getattr(meta, f)},
            "tags": tuple(normalise(t) for t in meta.tags),
        }
    )
    if not text:
        raise ValueError("empty after cleaning")
    payload = {"text": text, "title": title, "metadata": meta.model_dump(mode="json")}
    return Document(
        doc_id=doc_id,
        source=source,
        source_type=kind,
        title=title,
        text=text,
        metadata=meta,
        content_hash=canonical_hash(payload),
    )


def _first_heading(text: str) -> str:
    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else ""


def load_markdown(path: str, text: str, base: Metadata) -> Document:
    meta, title, doc_id = base, "", _default_id(path)
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            front = load_strict(m.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"front matter is not valid YAML: {yaml_problem(exc)}") from exc
        if not isinstance(front, dict):
            raise ValueError("front matter must be a YAML mapping")
        meta = base.merged(_metadata_from(front, "front matter"))
        title = str(front.get("title") or "")
        doc_id = str(front.get("id") or doc_id)
        text = text[m.end() :]
    return _doc(doc_id, path, "markdown", title or _first_heading(text) or Path(path).stem, text, meta)


def load_html(path: str, text: str, base: Metadata) -> Document:
    title, body, meta_tags = html_to_markdown(text)
    meta = base.merged(_metadata_from(meta_tags, "html meta tags"))
    return _doc(_default_id(path), path, "html", title or _first_heading(body) or Path(path).stem, body, meta)


def load_text(path: str, text: str, base: Metadata) -> Document:
    return _doc(_default_id(path), path, "text", Path(path).stem, text, base)


def load_tickets(path: str, text: str, base: Metadata, fmt: TicketFormat) -> tuple[list[Document], list[Skipped]]:
    docs: list[Document] = []
    skipped: list[Skipped] = []
    stem = _default_id(path)
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("a ticket line must be a JSON object")
            ticket_id = record.get(fmt.id_field)
            if ticket_id in (None, ""):
                raise ValueError(f"missing id field {fmt.id_field!r}; set corpus.tickets.id_field")
            parts = [str(record[f]) for f in fmt.text_fields if record.get(f)]
            if not parts:
                raise ValueError(f"none of the text fields {fmt.text_fields} has text")
            mapped = {m: record.get(f) for m, f in fmt.metadata_fields.items()}
            meta = base.merged(_metadata_from(mapped, "ticket metadata"))
            title = str(record.get(fmt.title_field) or f"Ticket {ticket_id}")
            docs.append(_doc(f"{stem}/{ticket_id}", where, "ticket", title, "\n\n".join(parts), meta))
        except json.JSONDecodeError as exc:
            skipped.append(Skipped(source=where, reason=f"not valid JSON ({exc.msg})"))
        except ValueError as exc:
            skipped.append(Skipped(source=where, reason=str(exc)))
    return docs, skipped


def _default_id(path: str) -> str:
    p = Path(path)
    return p.with_suffix("").as_posix()


def path_metadata(path: str, cfg: CorpusConfig) -> Metadata:
    meta = Metadata()
    for rule in cfg.rules:
        if glob_match(path, rule.match):
            meta = meta.merged(rule.metadata)
    return meta


def oversized(path: str, size: int, limit: int) -> Skipped:
    return Skipped(
        source=path,
        reason=f"oversized: {size} bytes > corpus.max_file_bytes {limit}; raise the limit or split the file",
    )


def load_file(
    ref: SourceRef, data: bytes, cfg: CorpusConfig, sidecar: bytes | None = None
) -> tuple[list[Document], list[Skipped]]:
    """Parse one corpus file into documents. Every failure becomes a Skipped with its reason."""
    path = ref.path
    size = max(ref.size, len(data))
    if size > cfg.max_file_bytes:
        return [], [oversized(path, size, cfg.max_file_bytes)]
    try:
        text = decode(data)
        base = path_metadata(path, cfg)
        if sidecar is not None:
            side = load_strict(decode(sidecar)) or {}
            if not isinstance(side, dict):
                raise ValueError("sidecar .meta.yaml must be a mapping")
            base = base.merged(_metadata_from(side, "sidecar"))
        suffix = Path(path).suffix.lower()
        if suffix == ".jsonl":
            return load_tickets(path, text, base, cfg.tickets)
        if suffix in (".md", ".markdown"):
            return [load_markdown(path, text, base)], []
        if suffix in (".html", ".htm"):
            return [load_html(path, text, base)], []
        return [load_text(path, text, base)], []
    except (ValueError, yaml.YAMLError) as exc:
        return [], [Skipped(source=path, reason=str(exc))]
