"""Token-based chunking with the embedder's own tokenizer, Markdown-header aware (langchain-text-splitters).

Each chunk's embedding input is `title + newline + text`; its length in the embedder's word pieces never
exceeds the embedder's input limit (a config asking for more is an error, not silent truncation).
"""

from __future__ import annotations

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from ragharness.core.errors import ConfigError
from ragharness.core.types import Chunk, Document, sha256_text
from ragharness.retrieval.embedders import Embedder

CHUNKER_VERSION = "1"
_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def embedding_input(chunk: Chunk) -> str:
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class Chunker:
    def __init__(
        self,
        embedder: Embedder,
        chunk_size: int | None = None,
        chunk_overlap: int = 32,
        markdown_headers: bool = True,
        salt: str = "",
    ) -> None:
        limit = embedder.max_input_tokens
        size = chunk_size or limit
        if size > limit:
            raise ConfigError(
                f"chunking.chunk_size: {size} tokens exceeds the embedder {embedder.name} input limit of {limit} "
                "word pieces (the model would silently truncate); use at most that"
            )
        if chunk_overlap >= size:
            raise ConfigError(f"chunking.chunk_overlap: {chunk_overlap} must be smaller than chunk_size {size}")
        self.embedder = embedder
        self.size = size
        self.overlap = chunk_overlap
        self.markdown_headers = markdown_headers
        self.salt = salt
        self._md = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=False)

    @property
    def signature(self) -> str:
        """Everything that changes the chunks of an unchanged document (including the redaction, as `salt`);
        part of the stored document hash."""
        sig = f"chunker{CHUNKER_VERSION}:{self.embedder.name}:{self.size}:{self.overlap}:{self.markdown_headers}"
        return f"{sig}:{self.salt}" if self.salt else sig

    def _splitter(self, budget: int) -> RecursiveCharacterTextSplitter:
        return RecursiveCharacterTextSplitter(
            chunk_size=budget,
            chunk_overlap=min(self.overlap, budget // 2),
            length_function=self.embedder.count_tokens,
            separators=_SEPARATORS,
            keep_separator="end",
        )

    def doc_hash(self, doc: Document) -> str:
        return sha256_text(f"{doc.content_hash}:{self.signature}")

    def split(self, doc: Document) -> list[Chunk]:
        title_tokens = self.embedder.count_tokens(doc.title) + 1 if doc.title else 0
        budget = max(16, self.size - title_tokens)
        splitter = self._splitter(budget)
        sections: list[tuple[str, str]] = []
        if self.markdown_headers and doc.source_type in ("markdown", "html") and "#" in doc.text:
            for part in self._md.split_text(doc.text):
                path = " > ".join(str(part.metadata[k]) for _, k in _HEADERS if k in part.metadata)
                sections.append((path, part.page_content))
        else:
            sections.append(("", doc.text))
        chunks: list[Chunk] = []
        for section, text in sections:
            for raw in splitter.split_text(text):
                piece = "\n".join(line.rstrip() for line in raw.strip().splitlines())
                if not piece:
                    continue
                chunk = Chunk(
                    chunk_id=f"{doc.doc_id}#{len(chunks)}",
                    doc_id=doc.doc_id,
                    position=len(chunks),
                    text=piece,
                    title=doc.title,
                    section=section,
                    source=doc.source,
                    source_type=doc.source_type,
                    metadata=doc.metadata,
                    content_hash="",
                    doc_hash=self.doc_hash(doc),
                    n_tokens=self.embedder.count_tokens(piece),
                )
                embed_text = embedding_input(chunk)
                n = self.embedder.count_tokens(embed_text)
                if n > self.embedder.max_input_tokens:
                    raise ValueError(
                        f"chunk {chunk.chunk_id} has {n} tokens > embedder limit {self.embedder.max_input_tokens}"
                    )
                chunks.append(chunk.model_copy(update={"content_hash": sha256_text(embed_text)}))
        return chunks
