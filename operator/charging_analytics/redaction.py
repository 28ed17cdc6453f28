"""Keeping credentials out of every text the operator shows (status, Events, logs, plans, CLI).

Redaction here is by construction, not by recognising secrets in text after the fact: whoever
sends a credential to another system (RisingWave, Kafka, PostgreSQL) knows exactly which values
it sent, and builds any error text it reports from the remote system's message with each of those
values removed in every form the remote side could have echoed it in. The remote message is
treated as untrusted text: after scrubbing, control characters are made visible, so a value split
across lines or hidden in escapes cannot reassemble in a log viewer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"

#: Fragments shorter than this are not scrubbed on their own (a one-line piece of a multi-line
#: value): replacing every "a" in a message would destroy it and protect nothing.
_MIN_FRAGMENT = 4


def _rust_debug(value: str) -> str:
    """How Rust's ``{:?}`` (and most error formatters) print a string's body."""
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "'":
            out.append("\\'")
        elif not ch.isprintable():
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return "".join(out)


def encodings(value: str) -> set[str]:
    """Every form in which a remote system may echo ``value``: as sent, SQL-quoted
    (``'`` doubled), backslash-escaped (``E'...'``), JSON, Python ``repr``, Rust ``Debug``,
    URL-encoded, base64 (Kubernetes Secret data), and each line of a multi-line value."""
    forms = {
        value,
        value.replace("'", "''"),
        value.replace("\\", "\\\\").replace("'", "\\'"),
        value.replace("\\", "\\\\").replace("'", "''"),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        _rust_debug(value),
        quote(value, safe=""),
        quote_plus(value),
        base64.b64encode(value.encode()).decode(),
    }
    for line in value.splitlines():
        if len(line.strip()) >= _MIN_FRAGMENT:
            forms.add(line)
    return {f for f in forms if f}


def _visible(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\n" else f"\\x{ord(ch):02x}" for ch in text)


def scrub(message: str, secrets: Iterable[str]) -> str:
    """``message`` (untrusted remote text) with every encoding of every value in ``secrets``
    replaced by ``[redacted]``, longest first, then its control characters made visible."""
    forms: set[str] = set()
    for value in secrets:
        if value:
            forms |= encodings(value)
    text = message
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return _visible(text)
