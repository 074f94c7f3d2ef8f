"""HTML cleaning: drop boilerplate (script, style, nav, header, footer, ...), keep tables as Markdown tables."""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup
from markdownify import markdownify

_BOILERPLATE = (
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "form",
    "iframe",
    "svg",
    "button",
)


def html_to_markdown(html: str) -> tuple[str, str, dict[str, Any]]:
    """Returns (title, markdown body, metadata from <meta name=... content=...>)."""
    soup = BeautifulSoup(html, "html.parser")
    meta: dict[str, Any] = {}
    for tag in soup.find_all("meta"):
        name, content = tag.get("name"), tag.get("content")
        if isinstance(name, str) and isinstance(content, str):
            if name == "tags":
                meta["tags"] = [t.strip() for t in content.split(",") if t.strip()]
            else:
                meta[name] = content
    title_tag = soup.find("title")
    title = title_tag.get_text(strip=True) if title_tag else ""
    for tag in soup.find_all(_BOILERPLATE):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.find("body") or soup
    body = markdownify(str(root), heading_style="ATX", bullets="-", strip=["a", "img"])
    return title, body, meta
