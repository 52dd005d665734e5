"""Exception types raised by the workflow engine, and how error locations are spelled."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from jsonschema.exceptions import ValidationError

_SUMMARY_ITEMS = 5
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _summarize(title: str, items: list[str]) -> str:
    shown = "; ".join(_one_line(item) for item in items[:_SUMMARY_ITEMS])
    more = len(items) - _SUMMARY_ITEMS
    suffix = f"; and {more} more" if more > 0 else ""
    noun = "error" if len(items) == 1 else "errors"
    return f"{title} ({len(items)} {noun}): {shown}{suffix}"


class EngineError(Exception):
    """Base class of every error the engine raises."""


class DefinitionError(EngineError):
    """A workflow definition is invalid; `.errors` lists every problem found."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        items = [f"{e['field'] or '<definition>'}: {e['message']}" for e in errors]
        super().__init__(_summarize("invalid workflow definition", items))


class InputError(EngineError):
    """Run inputs do not satisfy the workflow's input schema; `.errors` lists every violation."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        items = [f"{e['field'] or '<inputs>'}: {e['message']}" for e in errors]
        super().__init__(_summarize("invalid inputs", items))


class NodeError(EngineError):
    """A node failed; `code` is a stable machine-readable reason, `message` is for humans.

    `retryable=False` marks deterministic failures (bad expression results, oversized output)
    where retrying the same pure computation cannot succeed.
    """

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        self.code = code
        self.message = _one_line(message)[:2000]
        self.retryable = retryable
        super().__init__(f"{code}: {self.message}")


class ConfigError(EngineError):
    """Raised by a node type's compile hook for a problem in one config field (dotted, relative to config)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = _one_line(message)
        super().__init__(f"{field}: {self.message}" if field else self.message)


class RunInterrupted(EngineError):
    """Stops a whole run (cancellation or run deadline); node code must let it propagate."""

    def __init__(self, status: str, code: str, message: str, node: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.node = node
        super().__init__(f"{code}: {message}")


def format_path(parts: Iterable[str | int]) -> str:
    """Render a JSON location as ``items[2].id``; keys that are not identifiers use ``["a b"]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def schema_error_location(error: ValidationError) -> list[str | int]:
    """Path of a jsonschema error; a missing required property points at the property itself."""
    path: list[str | int] = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.validator_value, list):
        for name in error.validator_value:
            if isinstance(name, str) and error.message == f"{name!r} is a required property":
                path.append(name)
                break
    return path
