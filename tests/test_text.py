from __future__ import annotations

import pytest

from ragharness.core.text import is_refusal, names, numbers, parse_citations, sentences, strip_citations


def test_sentences_keep_trailing_citations_with_their_sentence() -> None:
    assert sentences("Refunds take 30 days. [1] Monthly plans take 7 days [2]. Both apply.[3][4]") == [
        "Refunds take 30 days [1].",
        "Monthly plans take 7 days [2].",
        "Both apply [3][4].",
    ]


def test_list_items_are_sentences() -> None:
    assert sentences("Options:\n- Use an app [1]\n- Use a key [2]") == ["Use an app [1]", "Use a key [2]"]


def test_parse_citations_in_order_of_first_use_with_groups() -> None:
    assert parse_citations("a [2] b [1, 3] c [2]") == [2, 1, 3]
    assert parse_citations("no citations") == []
    assert strip_citations("x [1] y [2, 3]") == "x  y"


def test_numbers_are_normalised() -> None:
    assert numbers("$1,200 or 30% within 2.0 days; AES-256 and 4.2.0 [3]") == {
        "1200",
        "30",
        "2",
        "256",
        "4.2.0",
    }


def test_names_skip_sentence_starts() -> None:
    assert names("Refunds go to Acme Vault users in Berlin.") == {"acme vault", "berlin"}


@pytest.mark.parametrize(
    "text",
    [
        "I can't answer that from the available documentation.",
        "I'm sorry, I don't have information about that.",
        "The provided documents do not contain pricing for that.",
        "That is outside the scope of support.",
        "I cannot help with accessing other people's accounts.",
    ],
)
def test_refusals(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Refunds are paid within 10 business days [1].",
        "You cannot move accounts between regions [2].",
    ],
)
def test_not_refusals(text: str) -> None:
    assert not is_refusal(text)
