"""Versioned prompt templates: `<id>.v<version>.yaml` with `system` and `user` Jinja2 templates.

Looked up in the config's prompts_dir first, then among the built-ins shipped in ragharness/generation/builtin_prompts.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ragharness.core.errors import ConfigError
from ragharness.core.types import Passage, PromptRef
from ragharness.core.yamlio import load_strict

BUILTIN_DIR = Path(__file__).parent / "builtin_prompts"


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: int
    description: str = ""
    system: str
    user: str


class RenderedPrompt(BaseModel):
    system: str
    user: str


_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701 - plain-text prompts, not HTML


def load_prompt(ref: PromptRef, prompts_dir: Path | None = None) -> PromptTemplate:
    name = f"{ref.id}.v{ref.version}.yaml"
    dirs = [d for d in (prompts_dir, BUILTIN_DIR) if d is not None]
    for d in dirs:
        file = d / name
        if file.is_file():
            try:
                tpl = PromptTemplate.model_validate(load_strict(file.read_text(encoding="utf-8")))
            except (yaml.YAMLError, ValidationError) as exc:
                raise ConfigError(f"{file}: invalid prompt template: {exc}") from exc
            if (tpl.id, tpl.version) != (ref.id, ref.version):
                raise ConfigError(f"{file}: declares {tpl.id} v{tpl.version}, file name says {ref.id} v{ref.version}")
            for part in ("system", "user"):
                try:
                    _ENV.parse(getattr(tpl, part))
                except jinja2.TemplateSyntaxError as exc:
                    raise ConfigError(f"{file}: {part}: template error line {exc.lineno}: {exc.message}") from exc
            return tpl
    available = sorted({p.name for d in dirs if d.is_dir() for p in d.glob("*.v*.yaml")})
    raise ConfigError(f"prompt {ref.id} v{ref.version}: no file {name} in {[str(d) for d in dirs]}; have {available}")


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    """Compile each template source once (a 10,000-item run renders 20,000 prompts from two sources)."""
    return _ENV.from_string(source)


_TAG_OPEN = re.compile(r"<(?=[/!?]?[A-Za-z])")
_LINE_NUMBER = re.compile(r"(?m)^(\s*)\[(\d{1,3})\]")


def fence_safe(text: str) -> str:
    """Untrusted text made unable to forge the template's own markers: every `<` that would open or close a tag
    (`</passages>`, `<system>`, `<!--`) is written `&lt;`, so content can never close the fence it sits in."""
    return _TAG_OPEN.sub("&lt;", text) if "<" in text else text


def _passage_safe(p: Passage) -> Passage:
    """A passage whose text cannot forge the template's structure: no tags, and no line starting like the next
    numbered passage (`[2] Policy update ...`)."""
    text = _LINE_NUMBER.sub(r"\1(\2)", fence_safe(p.text))
    return p.model_copy(update={"text": text, "title": fence_safe(p.title), "section": fence_safe(p.section)})


def render(tpl: PromptTemplate, question: str, passages: tuple[Passage, ...], **extra: str) -> RenderedPrompt:
    """The prompt for one item. Every value placed in the template (question, passages, answer, reference, ...) is
    untrusted and escaped first (`fence_safe`): only the template's own text can make a delimiter."""
    ctx = {
        "question": fence_safe(question),
        "passages": tuple(_passage_safe(p) for p in passages),
        **{k: fence_safe(v) for k, v in extra.items()},
    }
    return RenderedPrompt(
        system=_compiled(tpl.system).render(ctx).strip(),
        user=_compiled(tpl.user).render(ctx).strip(),
    )
