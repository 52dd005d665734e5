"""Public ids: a type prefix plus a sortable random body, unique across all tenants (DESIGN §3)."""

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case

PREFIXES = frozenset({"wf", "wfv", "run", "ses", "app", "evt", "aud", "whd", "key", "dep", "ds", "art", "msg"})


_last = 0
_last_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """Return `<prefix>_` + 26 chars: 48 bits of milliseconds then 80 random bits, so ids sort by time.
    Within a process they also sort in the order they were made, even within one millisecond (the random part
    counts up from the last id instead): the event log replays `id > since`, so a burst of events published
    in the same millisecond must neither come back out of order nor be skipped."""
    global _last
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    with _last_lock:
        if value <= _last:
            value = _last + 1
        _last = value
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
