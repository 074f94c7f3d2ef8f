"""The one Jinja environment every HTML view renders with: autoescape on, undefined names fail loudly."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates"
_CITE = re.compile(r"\[(\d{1,3})\]")


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def money(cost: float, unpriced: int = 0, calls: int | None = None) -> str:
    """`cost_text` with its dollar sign: "$0.0123", "$0.0123 + 2 unpriced", or "unpriced" (never "$unpriced")."""
    text = cost_text(cost, unpriced, calls)
    return text if text == "unpriced" else f"${text}"


def cost_text(cost: float, unpriced: int = 0, calls: int | None = None, digits: int = 4) -> str:
    """A cost as people must read it: "unpriced" when no call had a price, the known part plus the unpriced count
    when some had none; never $0 for an unknown cost."""
    if unpriced and (calls is None or unpriced >= calls):
        return "unpriced"
    known = f"{cost:.{digits}f}"
    return f"{known} + {unpriced} unpriced" if unpriced else known


def cached_text(cached: int, generations: int) -> str:
    """How many answers came from the response cache (no call in this run), e.g. "34/34 from cache"."""
    return f"{cached}/{generations} from cache" if cached else ""


def signed(x: float) -> str:
    return f"{x:+.3f}"


def cite_links(text: str, anchor: str, n_passages: int) -> Markup:
    """Escape the answer, then turn [n] into a link to passage n (an invalid number is marked, not linked)."""
    safe = str(escape(text))

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if 1 <= n <= n_passages:
            return f'<a class="cite" href="#{anchor}-p{n}">[{n}]</a>'
        return f'<span class="cite bad" title="no passage {n} in the context">[{n}]</span>'

    return Markup(_CITE.sub(link, safe))  # noqa: S704 - built from escaped text and digits only


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["fmt"] = fmt
    env.filters["signed"] = signed
    env.globals["cost_text"] = cost_text
    env.globals["money"] = money
    env.globals["cached_text"] = cached_text
    env.globals["cite_links"] = cite_links
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
