"""Per-process caches for lookups on the request hot path, and forgetting them by topic when the data changes.

A cache subscribes to the topics whose changes make its entries wrong (`credentials`: keys, applications,
tokens, memberships, passwords; `tenants`: a tenant's state, quotas, domains; `deployments`: what is deployed
where). A service that changes such data calls `cache_forget(topic)`: no app imports another's cache to clear it.
"""

import time
from collections.abc import Callable, Hashable, Iterable
from functools import partial
from typing import Any

from django.db import connection, transaction

TOPICS = frozenset({"credentials", "tenants", "deployments"})
_forgetters: dict[str, list[Callable[[], None]]] = {topic: [] for topic in TOPICS}


def _known(topics: Iterable[str]) -> tuple[str, ...]:
    topics = tuple(topics)
    unknown = sorted(set(topics) - TOPICS)
    if unknown:
        raise ValueError(f"unknown cache topic {', '.join(unknown)}; one of {', '.join(sorted(TOPICS))}")
    return topics


def cache_subscribe(forget: Callable[[], None], *, topics: Iterable[str]) -> None:
    """Have `forget` (which empties a cache) called whenever one of `topics` is forgotten in this process."""
    for topic in _known(topics):
        if forget not in _forgetters[topic]:
            _forgetters[topic].append(forget)


def _forget_now(topics: tuple[str, ...]) -> None:
    done: list[Callable[[], None]] = []
    for topic in topics:
        for forget in _forgetters[topic]:
            if forget not in done:  # a cache on two topics is emptied once
                forget()
                done.append(forget)


def cache_forget(*topics: str) -> None:
    """Empty every cache subscribed to `topics` in this process now and, inside a transaction, again once it
    commits: a request served in between could cache the old value for the cache's time-to-live. Other
    processes follow within their caches' time-to-live (or sooner, on an access notice)."""
    topics = _known(topics)
    _forget_now(topics)
    if connection.in_atomic_block:
        transaction.on_commit(partial(_forget_now, topics))


def cache_forget_all() -> None:
    """Every topic at once (tests, between two of them)."""
    _forget_now(tuple(sorted(TOPICS)))


class TTLCache:
    """Entries expire after `ttl_s`; a process that changes the data forgets its own copy at once (by `topics`),
    and other processes see the change within `ttl_s`. Plain dict operations keep it thread-safe under the GIL.
    `ttl_s` may be a function, read at every `set`: a time-to-live that follows a setting changed at run time."""

    def __init__(self, *, ttl_s: float | Callable[[], float], max_entries: int = 10_000, topics: Iterable[str] = ()):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, Any]] = {}
        if topics:
            cache_subscribe(self.clear, topics=topics)

    def get(self, key: Hashable, default: Any = None) -> Any:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return default
        return hit[1]

    def set(self, key: Hashable, value: Any) -> None:
        ttl_s = self.ttl_s() if callable(self.ttl_s) else self.ttl_s
        if ttl_s <= 0:
            return
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + ttl_s, value)

    def forget(self, key: Hashable) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()
