"""JSON-compatibility and size checks for values crossing node and run boundaries."""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import NodeError

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# Widest JSON spelling of a float (repr of a negative subnormal with exponent) and of a 64-bit int.
_FLOAT_MAX_CHARS = 24
_SMALL_INT = 10**20


def _not_json(what: str, value: Any) -> NodeError:
    return NodeError("invalid_output", f"{what} is not JSON-compatible: {type(value).__name__}", retryable=False)


def _too_large(what: str, limit: int) -> NodeError:
    return NodeError("payload_too_large", f"{what} exceeds the payload limit of {limit} bytes", retryable=False)


def check_payload(value: Any, limit: int, what: str = "value") -> None:
    """Raise NodeError unless `value` is plain JSON data whose encoding fits in `limit` bytes.

    A walk computes lower and upper bounds of the encoded size and stops as soon as the lower
    bound passes the limit, so values sharing sub-structures (``[@, @]`` piped repeatedly in
    JMESPath) cannot make us encode gigabytes; exact encoding happens only in the narrow band
    where the bounds disagree.
    """
    if type(value) is str:
        n = len(value)
        # UTF-8 takes at most 6 bytes per character once escapes are counted.
        if 6 * n + 2 <= limit:
            return
        if n + 2 > limit:
            raise _too_large(what, limit)
        if len(_ENCODER.encode(value).encode()) > limit:
            raise _too_large(what, limit)
        return
    low = high = 0
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            n = len(item)
            low += n + 2
            high += 6 * n + 2
        elif kind is dict:
            # Braces plus the commas between members; each key adds quotes and a colon.
            separators = 2 + max(len(item) - 1, 0)
            low += separators
            high += separators
            for key, child in item.items():
                if type(key) is not str:
                    raise NodeError("invalid_output", f"{what} has a non-string object key {key!r}", retryable=False)
                n = len(key)
                low += n + 3
                high += 6 * n + 3
                push(child)
        elif kind is list or kind is tuple:
            separators = 2 + max(len(item) - 1, 0)
            low += separators
            high += separators
            extend(item)
        elif item is None or kind is bool:
            low += 4
            high += 5
        elif kind is int:
            low += 1
            high += 21 if -_SMALL_INT < item < _SMALL_INT else len(str(item))
        elif kind is float:
            if not math.isfinite(item):
                raise NodeError(
                    "invalid_output",
                    f"{what} contains {item!r}, which JSON cannot represent",
                    retryable=False,
                )
            low += 1
            high += _FLOAT_MAX_CHARS
        elif isinstance(item, (str, dict, list, tuple, int, float)):
            # Subclasses (e.g. OrderedDict from trusted node code): normalise and re-check.
            push(_plain(item))
            continue
        else:
            raise _not_json(what, item)
        if low > limit:
            raise _too_large(what, limit)
    if high <= limit:
        return
    try:
        size = len(_ENCODER.encode(value).encode())
    except (TypeError, ValueError) as exc:
        raise NodeError("invalid_output", f"{what} is not JSON-compatible: {exc}", retryable=False) from None
    if size > limit:
        raise _too_large(what, limit)


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return dict(value)
    return list(value)
