"""A small per-process cache with a time-to-live, for lookups on the request hot path."""

import time
from collections.abc import Hashable
from typing import Any

_MISSING = object()


class TTLCache:
    """Entries expire after `ttl_s`; a process that changes the data clears its own copy at once, and
    other processes see the change within `ttl_s`. Plain dict operations keep it thread-safe under the GIL."""

    def __init__(self, *, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, default: Any = None) -> Any:
        hit = self._data.get(key, _MISSING)
        if hit is _MISSING or hit[0] < time.monotonic():
            return default
        return hit[1]

    def set(self, key: Hashable, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl_s, value)

    def clear(self) -> None:
        self._data.clear()
