"""Guards for sandboxed templates: loop budget, deadline, and the size of what filters, methods and operators build.

Every guard refuses *before* allocating wherever the size of a result follows from the arguments
(``center(400000000)``, ``'{:>400000000}'.format(x)``, ``replace`` with many matches, joining many
references to one large string...), and checks the result afterwards everywhere else. Sizes are
weighed logically: a list holding a thousand references to one 1 MB string weighs 1 GB, because
that is what ``string``, ``join``, ``~`` or printing it would build.
"""

from __future__ import annotations

import json
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView
from contextvars import ContextVar
from functools import wraps
from typing import Any, cast

from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, _PassArg
from markupsafe import Markup

from .errors import NodeError

_monotonic = time.monotonic

# Characters that may end a line for str.splitlines() (indent, wordwrap) or a chunk for textwrap.
_LINE_BREAKS = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_WRAP_POINTS = (*_LINE_BREAKS, " ", "\t", "-")
# Longest text a float becomes under %f / {:f} (1e308 has 309 digits) plus sign and point.
_FLOAT_TEXT = 330


class RenderGuard:
    """The limits of one render: output size, value size budget, deadline and loop iterations left."""

    __slots__ = ("budget", "deadline", "iterations_left", "max_chars", "max_iterations")

    def __init__(self, max_chars: int, deadline: float | None, max_iterations: int) -> None:
        self.max_chars = max_chars
        self.deadline = deadline
        # Intermediate values may be larger than the output (a template can slice what it builds).
        self.budget = 2 * max_chars
        self.max_iterations = max_iterations
        self.iterations_left = max_iterations


# The environment is shared by every workflow (it is immutable after setup); the limits of the
# render in progress travel in a context variable so concurrent renders each see their own.
GUARD: ContextVar[RenderGuard | None] = ContextVar("nexus_engine_render_guard", default=None)


def too_long(what: str, guard: RenderGuard) -> NodeError:
    return NodeError(
        "payload_too_large",
        f"template {what} exceeds the limit of {guard.max_chars} characters",
        retryable=False,
    )


def past_deadline() -> NodeError:
    return NodeError("timeout", "template rendering ran past the deadline")


def over_budget(guard: RenderGuard, what: str = "loop iterations") -> NodeError:
    return NodeError(
        "template_budget_exceeded",
        f"template ran more than {guard.max_iterations} {what} (max_template_iterations)",
        retryable=False,
    )


def check_deadline(guard: RenderGuard) -> None:
    if guard.deadline is not None and _monotonic() > guard.deadline:
        raise past_deadline()


# ------------------------------------------------------------------------------------------ loops


def counted(iterable: Iterable[Any], guard: RenderGuard) -> Iterator[Any]:
    """Yield from `iterable`, charging each item to the render's loop budget and checking the deadline.

    Every ``{% for %}`` iterates through this (the code generator wraps the iterable), and so does
    every level of a ``recursive`` loop, so nested loops multiply against one shared budget.
    """
    deadline = guard.deadline
    for item in iterable:
        left = guard.iterations_left - 1
        guard.iterations_left = left
        if left < 0:
            raise over_budget(guard)
        if deadline is not None and _monotonic() > deadline:
            raise past_deadline()
        yield item


def guarded_range(*args: int) -> range:
    """``range()`` for templates: never longer than the loop budget (Jinja's own cap is 100 000)."""
    values = range(*args)
    guard = GUARD.get()
    if guard is not None and len(values) > guard.max_iterations:
        raise NodeError(
            "template_budget_exceeded",
            f"range() of {len(values)} items is longer than max_template_iterations ({guard.max_iterations})",
            retryable=False,
        )
    return values


# ----------------------------------------------------------------------------------------- sizes


class _TooHeavy(Exception):
    pass


def _weight(value: Any, limit: int) -> int:
    """About how long ``str(value)`` is, counting shared references each time; _TooHeavy past `limit`.

    Each step adds at least one to the total, so the walk costs at most `limit` steps (cycles included).
    """
    total = 0
    stack = [value]
    pop = stack.pop
    while stack:
        obj = pop()
        if isinstance(obj, (str, bytes, bytearray)):
            total += len(obj) + 2
        elif isinstance(obj, (list, tuple, set, frozenset, MappingView)):
            total += 2 + 2 * len(obj)
            if total > limit:
                raise _TooHeavy
            stack.extend(cast(Iterable[Any], obj))
        elif isinstance(obj, dict):
            total += 2 + 4 * len(obj)
            if total > limit:
                raise _TooHeavy
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, Namespace):
            total += 16
            stack.append(object.__getattribute__(obj, "_Namespace__attrs"))
        elif type(obj) is int:
            total += obj.bit_length() // 3 + 2
        else:
            total += 24
        if total > limit:
            raise _TooHeavy
    return total


def text_size(value: Any, guard: RenderGuard, what: str = "value") -> int:
    """Length of ``str(value)`` (estimated for containers), refused past the budget without building it."""
    if isinstance(value, str):
        if len(value) > guard.budget:
            raise too_long(what, guard)
        return len(value)
    try:
        return _weight(value, guard.budget)
    except _TooHeavy:
        raise too_long(what, guard) from None


def _text(value: Any, guard: RenderGuard) -> str:
    """``str(value)``, refused before building when it would be too long."""
    if isinstance(value, str):
        return value
    text_size(value, guard)
    return str(value)


def need(guard: RenderGuard, size: int, what: str = "value") -> None:
    if size > guard.budget:
        raise too_long(what, guard)


def check_result(result: Any, guard: RenderGuard) -> None:
    """After-the-fact check for results whose size the arguments did not predict (bounded growth)."""
    if isinstance(result, (str, bytes, bytearray, list, tuple, dict, set, frozenset)) and len(result) > guard.budget:
        raise too_long("value", guard)


def sizes_of(items: Iterable[Any], guard: RenderGuard, separator: int = 0) -> int:
    """Total text length of `items` joined with a separator of length `separator`; refused early."""
    budget = guard.budget
    total = 0
    for item in items:
        total += separator + (len(item) if isinstance(item, str) else text_size(item, guard))
        if total > budget:
            raise too_long("value", guard)
    return total


def _index(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        return None


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


# ---------------------------------------------------------------------------------- %-formatting

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.DOTALL)


def check_percent(guard: RenderGuard, template: Any, values: Any) -> None:
    """Refuse ``template % values`` before formatting when widths, precisions or repeats make it too long."""
    if not isinstance(template, str):
        return
    if isinstance(values, tuple):
        arguments: Iterable[Any] = values
    elif isinstance(values, Mapping):
        arguments = values.values()
    else:
        arguments = (values,)
    arguments = list(arguments)
    largest = max((text_size(argument, guard) for argument in arguments), default=0)
    star = max((n for n in (_index(a) for a in arguments if not isinstance(a, str)) if n is not None), default=0)
    total = len(template)
    budget = guard.budget
    for match in _PERCENT_SPEC.finditer(template):
        width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        # %r and %a escape: one character can become up to ten ("\U0001f600").
        size = largest * (10 if conversion in ("r", "a") else 1)
        if conversion in ("f", "F", "e", "E", "g", "G"):
            size += _FLOAT_TEXT
        for number in (width, precision):
            if number == "*":
                size = max(size, star)
            elif number:
                if len(number) > 12:
                    raise too_long("format width", guard)
                size = max(size, int(number))
        total += size
        if total > budget:
            raise too_long("formatted value", guard)


# --------------------------------------------------------------------------------- str.format()

_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d*))?([a-zA-Z%]?)$", re.DOTALL)


class _GuardedFormatting:
    """str.format / format_map with every field's width and the total length checked before building."""

    _total = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._total = len(format_string)
        return super().vformat(format_string, args, kwargs)  # type: ignore[misc]

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        guard = GUARD.get()
        if guard is not None and conversion is not None:
            need(guard, text_size(value, guard) * (10 if conversion in ("r", "a") else 1), "formatted value")
        return super().convert_field(value, conversion)  # type: ignore[misc]

    def format_field(self, value: Any, format_spec: str) -> Any:
        guard = GUARD.get()
        if guard is not None:
            size = text_size(value, guard)
            match = _FORMAT_SPEC.match(format_spec)
            if match is not None:
                width, precision, kind = match.groups()
                for number in (width, precision):
                    if number:
                        if len(number) > 12:
                            raise too_long("format width", guard)
                        size = max(size, int(number))
                if kind in ("f", "F", "e", "E", "g", "G", "%", "n", ""):
                    size += _FLOAT_TEXT if isinstance(value, float) else 0
            self._total += size
            need(guard, self._total, "formatted value")
        return super().format_field(value, format_spec)  # type: ignore[misc]


class GuardedFormatter(_GuardedFormatting, SandboxedFormatter):
    pass


class GuardedEscapeFormatter(_GuardedFormatting, SandboxedEscapeFormatter):
    pass


# ------------------------------------------------------------------------------------- predictors
#
# A predictor gets the guard and the positional and keyword arguments of a filter (after Jinja's
# context/environment argument) or of a method (receiver first). It raises when the result would
# be too large, and may return new positional arguments (an iterator turned into a list it weighed).

Predictor = Callable[..., "tuple[Any, ...] | None"]


def _p_width(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
    width = _index(_arg(args, kwargs, 0, "width", 80))
    if width is not None:
        need(guard, max(text_size(value, guard), width))


def _p_replace(guard: RenderGuard, value: Any, old: Any, new: Any, count: Any = None) -> None:
    text: str | bytes | bytearray
    old_text: Any
    new_text: Any
    if isinstance(value, (bytes, bytearray)):
        text, old_text, new_text = value, old, new
        if not isinstance(old, (bytes, bytearray)) or not isinstance(new, (bytes, bytearray)):
            return
    else:
        text, old_text, new_text = _text(value, guard), _text(old, guard), _text(new, guard)
    matches = len(text) + 1 if not old_text else text.count(old_text)
    limit = _index(count)
    if limit is not None and limit >= 0:
        matches = min(matches, limit)
    need(guard, len(text) + matches * max(0, len(new_text) - len(old_text)))


def _p_wordwrap(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
    text = _text(value, guard)
    width = max(_index(_arg(args, kwargs, 0, "width", 79)) or 1, 1)
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    wrap_length = 1 if wrap is None else text_size(wrap, guard)
    # textwrap breaks at whitespace, hyphens and paragraph ends, and inside words longer than `width`.
    lines = 2 * sum(map(text.count, _WRAP_POINTS)) + len(text) // width + 2
    need(guard, len(text) + lines * wrap_length)


def _p_indent(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
    text = _text(value, guard)
    width = _arg(args, kwargs, 0, "width", 4)
    indention = text_size(width, guard) if isinstance(width, str) else _index(width)
    if indention is None:
        return
    need(guard, indention)
    lines = sum(map(text.count, _LINE_BREAKS)) + 2
    need(guard, len(text) + lines * (indention + 1))


def _collect(items: Any, guard: RenderGuard, separator: int = 0) -> Any:
    """The items of `items` in a list, weighed one by one (refused as soon as they add up past the budget).

    Iterators are drained item by item, so a generator producing new large values (``map('upper')``)
    is stopped at the budget rather than after building them all.
    """
    if isinstance(items, str):
        need(guard, len(items) * (separator + 1))
        return items
    collected: list[Any] | tuple[Any, ...] = items if isinstance(items, (list, tuple)) else []
    budget = guard.budget
    total = 0
    source = items.keys() if isinstance(items, Mapping) else items
    for item in source:
        total += separator + (len(item) if isinstance(item, str) else text_size(item, guard))
        if total > budget:
            raise too_long("value", guard)
        if collected is not items:
            cast(list, collected).append(item)
    return items if isinstance(items, Mapping) else collected


def _p_join(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...] | None:
    separator = text_size(_arg(args, kwargs, 0, "d", ""), guard)
    items = _collect(value, guard, separator)
    return None if items is value else (items, *args)


def _p_str_join(guard: RenderGuard, separator: Any, iterable: Any = (), *args: Any) -> tuple[Any, ...] | None:
    if not isinstance(separator, str):
        return None
    items = _collect(iterable, guard, len(separator))
    return None if items is iterable else (separator, items, *args)


def _p_sum(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...] | None:
    start = _arg(args, kwargs, 1, "start", 0)
    if isinstance(start, (int, float)):
        return None  # numbers add up to numbers; lists or strings after a number start fail anyway
    need(guard, text_size(start, guard))
    items = _collect(value, guard, text_size(start, guard))
    return None if items is value else (items, *args)


def _p_count_limit(name: str, index: int) -> Predictor:
    def predict(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
        count = _index(_arg(args, kwargs, index, name, 1))
        if count is not None and count > guard.max_iterations:
            raise NodeError(
                "payload_too_large",
                f"template {name} of {count} exceeds the limit of {guard.max_iterations} (max_template_iterations)",
                retryable=False,
            )

    return predict


def _p_stringify(factor: int) -> Predictor:
    def predict(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
        need(guard, text_size(value, guard) * factor)

    return predict


def _p_urlize(guard: RenderGuard, value: Any, *args: Any, **kwargs: Any) -> None:
    text_size(value, guard)
    # Each link repeats these; only short ones make sense, and then a link is at most ~10x its text.
    for index, name in ((2, "target"), (3, "rel")):
        extra = _arg(args, kwargs, index, name, None)
        if extra is not None and text_size(extra, guard) > 200:
            raise NodeError("template_error", f"urlize {name} is longer than 200 characters", retryable=False)


def _p_expandtabs(guard: RenderGuard, value: Any, tabsize: Any = 8) -> None:
    size = _index(tabsize)
    if size is not None and isinstance(value, (str, bytes, bytearray)):
        tab = "\t" if isinstance(value, str) else b"\t"
        need(guard, len(value) + value.count(tab) * max(size, 0))  # type: ignore[arg-type]


def _p_translate(guard: RenderGuard, value: Any, table: Any = None) -> None:
    if isinstance(value, str) and isinstance(table, Mapping):
        longest = max((text_size(v, guard) for v in table.values() if isinstance(v, str)), default=1)
        need(guard, len(value) * max(longest, 1))


def _p_to_bytes(guard: RenderGuard, value: Any, length: Any = 1, *args: Any, **kwargs: Any) -> None:
    size = _index(length)
    if size is not None:
        need(guard, size)


FILTER_PREDICTORS: dict[str, Predictor] = {
    "center": _p_width,
    "format": lambda guard, value, *args, **kwargs: check_percent(guard, _text(value, guard), kwargs or args),
    "replace": _p_replace,
    "wordwrap": _p_wordwrap,
    "indent": _p_indent,
    "join": _p_join,
    "sum": _p_sum,
    "batch": _p_count_limit("linecount", 0),
    "slice": _p_count_limit("slices", 0),
    "string": _p_stringify(1),
    "pprint": _p_stringify(2),
    "xmlattr": _p_stringify(6),
    "urlencode": _p_stringify(9),
    "urlize": _p_urlize,
    "truncate": _p_stringify(1),
}

METHOD_PREDICTORS: dict[str, Predictor] = {
    "center": _p_width,
    "ljust": _p_width,
    "rjust": _p_width,
    "zfill": _p_width,
    "replace": _p_replace,
    "join": _p_str_join,
    "expandtabs": _p_expandtabs,
    "translate": _p_translate,
    "to_bytes": _p_to_bytes,
}


def guard_filter(func: Callable[..., Any], predict: Predictor | None) -> Callable[..., Any]:
    """Wrap a Jinja filter: predicted sizes are refused before it runs, its result is checked after."""
    skip = 1 if _PassArg.from_obj(func) is not None else 0

    @wraps(func)  # keeps jinja_pass_arg, so Jinja still passes the context/environment first
    def guarded(*args: Any, **kwargs: Any) -> Any:
        guard = GUARD.get()
        if guard is None:
            return func(*args, **kwargs)
        if predict is not None and len(args) > skip:
            try:
                replaced = predict(guard, *args[skip:], **kwargs)
            except TypeError:
                replaced = None  # a call the filter itself will reject with a clearer message
            if replaced is not None:
                args = (*args[:skip], *replaced)
        result = func(*args, **kwargs)
        check_result(result, guard)
        return result

    return guarded


def predict_method(guard: RenderGuard, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a str/bytes/int method before it runs; returns the (possibly materialized) args."""
    receiver = getattr(method, "__self__", None)
    if not isinstance(receiver, (str, bytes, bytearray, int)):
        return args
    predict = METHOD_PREDICTORS.get(getattr(method, "__name__", ""))
    if predict is None:
        return args
    try:
        replaced = predict(guard, receiver, *args, **kwargs)
    except TypeError:
        return args
    return args if replaced is None else replaced[1:]


# ------------------------------------------------------------------------------------------ tojson


def guarded_tojson(value: Any, indent: int | None = None) -> Markup:
    """``tojson`` that encodes piece by piece and stops at the size budget, never building more."""
    guard = GUARD.get()
    encoder = json.JSONEncoder(sort_keys=True, indent=indent)
    if guard is None:
        text = encoder.encode(value)
    else:
        budget = guard.budget
        parts = []
        total = 0
        for part in encoder.iterencode(value):
            total += len(part)
            if total > budget:
                raise too_long("value", guard)
            parts.append(part)
        text = "".join(parts)
    # As Jinja's htmlsafe_json_dumps: safe to embed in HTML and in single-quoted attributes.
    escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")
    return Markup(escaped)  # noqa: S704 - the JSON text is escaped for HTML just above
