"""Personal data in the forms a detector can be made to miss: obfuscated, encoded, full-width, split by invisible
characters, followed by a citation marker. Each planted form maps to what must never be found in any artefact (its
normal form, and the digits of a number)."""

from __future__ import annotations

HIDDEN = {
    # form as planted -> what must never be found (its normal form, and digits for numbers)
    "Call +1 415 555 0188 [1].": ["415 555 0188", "4155550188"],
    "jane(at)acme.io": ["jane(at)acme.io"],
    "mail jane at acme.io today": ["jane at acme.io"],
    "jane @ acme.io": ["jane @ acme.io"],
    "mailto:jane%40acme.io": ["jane@acme.io", "jane%40acme.io"],
    "jane&#64;acme.io": ["jane@acme.io", "jane&#64;acme.io"],
    "ops dot team at acme dot ch": ["ops dot team at acme dot ch"],
    "jane\uff20acme.io": ["jane@acme.io"],
    "\uff4a\uff41\uff4e\uff45\uff20\uff41\uff43\uff4d\uff45\uff0e\uff49\uff4f": ["jane@acme.io"],
    "iban de89 3704 0044 0532 0130 00": ["de89 3704 0044 0532 0130 00", "370400440532013000"],
    "card 5555.5555.5555.4444": ["5555.5555.5555.4444", "5555555555554444"],
    "card \uff15\uff15\uff15\uff15 \uff15\uff15\uff15\uff15 \uff15\uff15\uff15\uff15 \uff14\uff14\uff14\uff14": [
        "5555 5555 5555 4444",
        "5555555555554444",
    ],
    "SSN \uff15\uff13\uff16-\uff12\uff12-\uff18\uff19\uff11\uff14": ["536-22-8914", "536228914"],
    "mail ja\u200bne@acme.io": ["jane@acme.io"],
    "card 3782\u200b822463\u200b10005": ["378282246310005"],
    "IBAN DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000": ["DE89 3704 0044 0532 0130 00", "370400440532013000"],
    "write to jane\u00ad@acme.io": ["jane@acme.io"],
}
