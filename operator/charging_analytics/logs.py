"""Client libraries log through the operator's logging (so JSON logging covers them), rate-limited.

librdkafka retries a broker that cannot be reached many times a second and logs every attempt;
one line per distinct message per interval is enough to see what is wrong.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from .redaction import scrub

#: Parts of a client message that change from one attempt to the next ("after 3ms in state
#: CONNECT", thread and client instance names), removed to recognise a repeated message.
_VOLATILE = re.compile(r"\(after \d+ms in state \w+\)|\[rdkafka#\w+-\d+\]|\[thrd:[^\]]*\]|\d+ms")


def stable_text(message: str) -> str:
    """``message`` without its per-attempt details (timings, thread names)."""
    return re.sub(r"\s+", " ", _VOLATILE.sub("", message)).strip()


class RateLimit(logging.Filter):
    """Pass the first record of each distinct message per ``interval`` seconds, and say how many
    repeats were held back when the message is next passed."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()  # librdkafka logs from the worker thread that polls

    def filter(self, record: logging.LogRecord) -> bool:
        key = stable_text(record.getMessage())
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (float("-inf"), 0))
            if now - last < self.interval:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} similar messages suppressed)"
            record.args = None
        return True


class Scrub(logging.Filter):
    """Remove the exact credentials a client sent from each of its log lines."""

    def __init__(self, sent: tuple[str, ...]) -> None:
        super().__init__()
        self.sent = sent

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage(), self.sent)
        record.args = None
        return True


def client_logger(name: str, interval: float = 60.0, *, scrubbed: tuple[str, ...] = ()) -> logging.Logger:
    """The operator's logger for a client library, with one rate limit shared by its users.

    With ``scrubbed`` (the credentials one client sends), a logger of its own that removes them
    from every line first, then applies the shared rate limit (a logger's filters apply only to
    records logged through it, not to those propagated from a child)."""
    shared = logging.getLogger(f"charging_analytics.clients.{name}")
    limit = next((f for f in shared.filters if isinstance(f, RateLimit)), None)
    if limit is None:
        limit = RateLimit(interval)
        shared.addFilter(limit)
    if not scrubbed:
        return shared
    own = logging.Logger(shared.name)  # not registered: one per client, collected with it
    own.parent = shared
    own.addFilter(Scrub(scrubbed))
    own.addFilter(limit)
    return own
