"""Sandboxed expression languages for tenant-authored workflows: JMESPath and Jinja templates."""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable, Iterable, Iterator
from functools import update_wrapper
from typing import TYPE_CHECKING, Any

import jmespath
from jinja2 import StrictUndefined, Template
from jinja2 import nodes as jinja_nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jmespath import exceptions as jp_exceptions
from jmespath import functions as jp_functions
from jmespath import visitor as jp_visitor
from markupsafe import Markup

from .errors import NodeError
from .template_guard import (
    FILTER_PREDICTORS,
    GUARD,
    GuardedEscapeFormatter,
    GuardedFormatter,
    RenderGuard,
    check_deadline,
    check_percent,
    check_result,
    counted,
    guard_filter,
    guarded_range,
    guarded_tojson,
    predict_method,
    sizes_of,
    text_size,
    too_long,
)

if TYPE_CHECKING:
    # The parse tree's node type, as typeshed's jmespath stubs spell it (a TypedDict that exists only for checking).
    from jmespath.visitor import _TreeNode as ParsedNode

__all__ = [
    "Expression",
    "compile_expression",
    "compile_template",
    "is_truthy",
    "render_template",
]


def is_truthy(value: Any) -> bool:
    """JMESPath truthiness: null, false and empty string/list/object are false; numbers are true."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict, tuple)):
        return len(value) > 0
    return True


# --------------------------------------------------------------------------------------------------
# JMESPath
# --------------------------------------------------------------------------------------------------

_FUNCTION_TABLE: dict[str, dict[str, Any]] = jp_functions.Functions.FUNCTION_TABLE
# One shared function table: Functions holds no per-evaluation state, and building it per search
# would dominate the cost of small expressions.
_OPTIONS = jmespath.Options(custom_functions=jp_functions.Functions())
_PROJECTIONS = frozenset({"projection", "value_projection", "filter_projection", "flatten"})


class _TooHeavy(Exception):
    pass


class _GuardedInterpreter(jp_visitor.TreeInterpreter):
    """Tree interpreter that bounds the size of every container an expression builds.

    Multi-selects share references (``[@, @] | [@, @] | ...``), so a short expression can describe
    an exponentially large value that later blows up in comparisons, ``to_string`` or JSON encoding.
    Weighing each new container (memoised by identity, so shared parts are weighed once) keeps the
    logical size of every intermediate value under a budget. Projections also enforce the fanout
    limit on the list they consume.
    """

    def __init__(self, budget: int, fanout: int) -> None:
        super().__init__(_OPTIONS)
        self._budget = budget
        self._fanout = fanout
        # id -> (object, weight); holding the object keeps its id from being reused mid-search.
        self._weights: dict[int, tuple[Any, int]] = {}

    def _consume(self, base: Any) -> None:
        if len(base) > self._fanout:
            raise NodeError(
                "fanout_exceeded",
                f"expression iterates over {len(base)} items; the limit is {self._fanout}",
                retryable=False,
            )

    def _guard(self, value: Any) -> Any:
        kind = type(value)
        if kind is list or kind is dict:
            self._weigh(value)
        return value

    def _weigh(self, value: Any) -> int:
        memo = self._weights
        budget = self._budget
        open_ids: set[int] = set()
        stack = [value]
        while stack:
            obj = stack[-1]
            oid = id(obj)
            if oid in memo:
                stack.pop()
                continue
            children = obj.values() if type(obj) is dict else obj
            if oid not in open_ids:
                open_ids.add(oid)
                for child in children:
                    kind = type(child)
                    if (kind is list or kind is dict) and id(child) not in memo:
                        if id(child) in open_ids:
                            raise _TooHeavy
                        stack.append(child)
                continue
            total = 1
            if type(obj) is dict:
                for key in obj:
                    total += len(key) + 1 if type(key) is str else 1
            for child in children:
                kind = type(child)
                if kind is str:
                    total += len(child) + 1
                elif kind is list or kind is dict:
                    total += memo[id(child)][1]
                else:
                    total += 1
            if total > budget:
                raise _TooHeavy
            memo[oid] = (obj, total)
            open_ids.discard(oid)
            stack.pop()
        return memo[id(value)][1]

    def visit_projection(self, node: ParsedNode, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        self._consume(base)
        right = node["children"][1]
        collected = []
        for element in base:
            current = self.visit(right, element)
            if current is not None:
                collected.append(current)
        return self._guard(collected)

    def visit_value_projection(self, node: ParsedNode, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, dict):
            return None
        self._consume(base)
        right = node["children"][1]
        collected = []
        for element in base.values():
            current = self.visit(right, element)
            if current is not None:
                collected.append(current)
        return self._guard(collected)

    def visit_filter_projection(self, node: ParsedNode, value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        self._consume(base)
        right, condition = node["children"][1], node["children"][2]
        collected = []
        for element in base:
            if is_truthy(self.visit(condition, element)):
                current = self.visit(right, element)
                if current is not None:
                    collected.append(current)
        return self._guard(collected)

    def visit_flatten(self, node: ParsedNode, value: Any) -> Any:
        result = super().visit_flatten(node, value)
        if isinstance(result, list):
            self._consume(result)
        return self._guard(result)

    def visit_multi_select_list(self, node: ParsedNode, value: Any) -> Any:
        return self._guard(super().visit_multi_select_list(node, value))

    def visit_multi_select_dict(self, node: ParsedNode, value: Any) -> Any:
        return self._guard(super().visit_multi_select_dict(node, value))

    def visit_function_expression(self, node: ParsedNode, value: Any) -> Any:
        return self._guard(super().visit_function_expression(node, value))


class Expression:
    """A compiled JMESPath expression; thread-safe and reusable across runs."""

    __slots__ = ("_budget", "_fanout", "_parsed", "_path", "refs", "source")

    def __init__(self, source: str, parsed: ParsedNode, budget: int, fanout: int) -> None:
        self.source = source
        self._parsed = parsed
        self._budget = budget
        self._fanout = fanout
        # Plain field chains (``nodes.greet``, ``inputs.name``) are most expressions in practice;
        # walking dicts directly skips building an interpreter.
        self._path = _field_chain(parsed)
        self.refs: frozenset[str] = frozenset(_root_node_refs(parsed))

    def search(self, data: Any) -> Any:
        """Evaluate against `data`; failures raise NodeError (code expression_error and friends)."""
        path = self._path
        if path is not None:
            for key in path:
                if not isinstance(data, dict):
                    return None
                data = data.get(key)
            return data
        try:
            return _GuardedInterpreter(self._budget, self._fanout).visit(self._parsed, data)
        except NodeError:
            raise
        except _TooHeavy:
            raise NodeError(
                "payload_too_large",
                f"expression {self.source!r} builds a value larger than the payload limit",
                retryable=False,
            ) from None
        except RecursionError:
            raise NodeError("expression_error", f"expression {self.source!r} nests too deeply", retryable=False) from None
        except Exception as exc:
            raise NodeError("expression_error", f"expression {self.source!r} failed: {exc}", retryable=False) from None

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _field_chain(parsed: ParsedNode) -> tuple[str, ...] | None:
    if parsed["type"] == "field":
        return (parsed["value"],)
    if parsed["type"] == "subexpression" and all(c["type"] == "field" for c in parsed["children"]):
        return tuple(c["value"] for c in parsed["children"])
    return None


def _leftmost_field(node: Any) -> str | None:
    while isinstance(node, dict):
        if node["type"] == "field":
            return node["value"]
        if node["type"] not in ("index_expression", "subexpression") and node["type"] not in _PROJECTIONS:
            return None
        node = node["children"][0] if node["children"] else None
    return None


def _root_node_refs(parsed: ParsedNode) -> set[str]:
    """Node ids read as ``nodes.<id>`` where the expression is evaluated against the run context.

    Only fields evaluated against the root count: the right side of a projection, pipe or
    sub-expression and the body of ``&expr`` see other values, so ``nodes`` there is user data.
    """
    refs: set[str] = set()
    stack: list[tuple[Any, bool]] = [(parsed, True)]
    while stack:
        node, rooted = stack.pop()
        if not isinstance(node, dict):
            continue
        kind = node["type"]
        children = node.get("children") or []
        if kind == "subexpression":
            chain = list(children)
            while rooted and len(chain) > 1 and isinstance(chain[0], dict) and chain[0]["type"] == "current":
                chain = chain[1:]
            head = chain[0] if chain else None
            if rooted and len(chain) > 1 and isinstance(head, dict) and head["type"] == "field" and head["value"] == "nodes":
                name = _leftmost_field(chain[1])
                if name is not None:
                    refs.add(name)
            if children:
                stack.append((children[0], rooted))
                stack.extend((child, False) for child in children[1:])
        elif kind in _PROJECTIONS or kind in ("index_expression", "pipe"):
            if children:
                stack.append((children[0], rooted))
                stack.extend((child, False) for child in children[1:])
        elif kind == "expref":
            stack.extend((child, False) for child in children)
        else:
            stack.extend((child, rooted) for child in children)
    return refs


def _check_functions(parsed: ParsedNode) -> list[str]:
    problems = []
    stack: list[Any] = [parsed]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        children = node.get("children") or []
        stack.extend(children)
        if node["type"] != "function_expression":
            continue
        name = node["value"]
        spec = _FUNCTION_TABLE.get(name)
        if spec is None:
            problems.append(f"unknown function {name}()")
            continue
        signature = spec["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if (variadic and len(children) < len(signature)) or (not variadic and len(children) != len(signature)):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            problems.append(f"function {name}() takes {expected} argument(s), got {len(children)}")
    return problems


def _parse_error_message(exc: Exception) -> str:
    if isinstance(exc, jp_exceptions.EmptyExpressionError):
        return "expression is empty"
    if isinstance(exc, jp_exceptions.LexerError):
        return f"invalid JMESPath expression: {exc.message} at column {exc.lexer_position}"
    if isinstance(exc, jp_exceptions.IncompleteExpressionError):
        return "invalid JMESPath expression: incomplete expression"
    if isinstance(exc, jp_exceptions.ParseError):
        return f"invalid JMESPath expression: {exc.msg} at column {exc.lex_position}"
    return f"invalid JMESPath expression: {exc}"


def compile_expression(source: Any, *, budget: int, fanout: int) -> Expression:
    """Parse and vet a JMESPath expression; raises ValueError with a one-line reason."""
    if not isinstance(source, str):
        raise ValueError(f"expression must be a string, not {type(source).__name__}")
    try:
        parsed = jmespath.compile(source).parsed
    except jp_exceptions.JMESPathError as exc:
        raise ValueError(_parse_error_message(exc)) from None
    except RecursionError:
        raise ValueError("invalid JMESPath expression: nested too deeply") from None
    problems = _check_functions(parsed)
    if problems:
        raise ValueError("; ".join(problems))
    return Expression(source, parsed, budget, fanout)


# --------------------------------------------------------------------------------------------------
# Jinja
# --------------------------------------------------------------------------------------------------


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple, dict)) else 0


class _GuardedNamespace(Namespace):
    """``namespace()`` whose attributes cannot grow past the payload limit (loops can double them)."""

    def __setitem__(self, name: str, value: Any) -> None:
        guard = GUARD.get()
        if guard is not None and _sized(value) > guard.max_chars:
            raise too_long("namespace value", guard)
        super().__setitem__(name, value)


class _SandboxCodeGenerator(CodeGenerator):
    """Routes ``~`` concatenation and every loop's iterable through the environment, to be guarded."""

    def visit_Concat(self, node: jinja_nodes.Concat, frame: Frame) -> None:
        self.write("environment.guarded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: jinja_nodes.For, frame: Frame) -> None:
        # Jinja forbids custom node types, so the iterable is marked and wrapped when it is visited.
        self._loop_iterables = {*getattr(self, "_loop_iterables", ()), id(node.iter)}
        super().visit_For(node, frame)

    def visit(self, node: jinja_nodes.Node, *args: Any, **kwargs: Any) -> Any:
        marked = getattr(self, "_loop_iterables", None)
        if marked and id(node) in marked:
            marked.discard(id(node))
            self.write("environment.loop_iterable(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)


def _guarded_join(parts: Iterable[str]) -> str:
    """The environment's ``concat``: joins block bodies (``{% set %}…{% endset %}``, macros, filter blocks)."""
    guard = GUARD.get()
    if guard is None:
        return "".join(parts)
    items = parts if type(parts) is list else list(parts)
    sizes_of(items, guard)
    return "".join(items)


def _finalize(value: Any) -> Any:
    """Applied to every ``{{ … }}`` before it is turned into text: refuse what would print too long."""
    guard = GUARD.get()
    if guard is not None and type(value) is not str:
        text_size(value, guard, "output")
    return value


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """Jinja sandbox for tenant templates.

    On top of Jinja's sandbox (no dunder or private attribute access, no mutation of lists and
    dicts) it charges every loop iteration to a per-render budget (``max_template_iterations``) and
    checks the run deadline on every iteration and call; it caps what filters, methods, ``str.format``,
    ``*``, ``+``, ``%``, ``**``, ``~``, block bodies, namespaces and printed values can build (see
    ``template_guard``), refusing before allocating wherever the size is predictable; ``range()`` is
    capped by the loop budget and ``lipsum`` is gone. Dict keys win over dict methods, so an input
    field called ``items`` or ``keys`` reads the data rather than the method.
    """

    code_generator_class = _SandboxCodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "%"})
    concat = staticmethod(_guarded_join)

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=StrictUndefined, auto_reload=False, cache_size=0, finalize=_finalize)
        del self.globals["lipsum"]
        self.globals["namespace"] = _GuardedNamespace
        self.globals["range"] = guarded_range
        filters = dict(self.filters, tojson=guarded_tojson)
        self.filters = {name: guard_filter(func, FILTER_PREDICTORS.get(name)) for name, func in filters.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """As Jinja's, with a formatter that checks every field's width and the total before building."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in ("format", "format_map"):
            return None
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type = type(f_self)
        is_format_map = value.__name__ == "format_map"
        formatter: GuardedFormatter | GuardedEscapeFormatter
        formatter = GuardedEscapeFormatter(self, escape=f_self.escape) if isinstance(f_self, Markup) else GuardedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)

    def loop_iterable(self, iterable: Any) -> Any:
        guard = GUARD.get()
        return iterable if guard is None else counted(iterable, guard)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        guard = GUARD.get()
        if guard is not None:
            check_deadline(guard)
            if isinstance(__obj, LoopContext) and args:
                # loop(children) in a recursive loop: the next level is charged to the same budget.
                args = (counted(args[0], guard), *args[1:])
            else:
                args = predict_method(guard, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if guard is not None:
            check_result(result, guard)
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        guard = GUARD.get()
        if guard is not None:
            if operator == "*":
                for seq, count in ((left, right), (right, left)):
                    if isinstance(count, int) and _sized(seq) * count > guard.budget:
                        raise too_long("repetition", guard)
                if type(left) is int and type(right) is int and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                    raise NodeError("template_error", "multiplication result is too large", retryable=False)
            elif operator == "+":
                if _sized(left) + _sized(right) > guard.budget:
                    raise too_long("value", guard)
            elif operator == "%":
                check_percent(guard, left, right)
            elif operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
                magnitude = abs(left)
                if magnitude > 1 and right * math.log2(magnitude) > _MAX_INT_BITS:
                    raise NodeError("template_error", "exponentiation result is too large", retryable=False)
        result = super().call_binop(context, operator, left, right)
        if guard is not None:
            check_result(result, guard)
        return result

    def guarded_concat(self, parts: tuple[Any, ...]) -> str:
        guard = GUARD.get()
        if guard is not None:
            sizes_of(parts, guard)
        return "".join(map(str, parts))


# Integers a template may build by * and **: far beyond any real use, far below a slow multiplication.
_MAX_INT_BITS = 4096

_ENV = TemplateEnvironment()


def _template_refs(ast: jinja_nodes.Template) -> set[str] | None:
    """Node ids read as ``nodes.X`` / ``nodes['X']``; None when the template rebinds ``nodes``."""
    for name in ast.find_all(jinja_nodes.Name):
        if name.name == "nodes" and name.ctx != "load":
            return None
    refs: set[str] = set()
    for node in ast.find_all((jinja_nodes.Getattr, jinja_nodes.Getitem)):
        assert isinstance(node, (jinja_nodes.Getattr, jinja_nodes.Getitem))  # what find_all was asked for
        target = node.node
        if not (isinstance(target, jinja_nodes.Name) and target.name == "nodes"):
            continue
        if isinstance(node, jinja_nodes.Getattr):
            refs.add(node.attr)
        elif isinstance(node.arg, jinja_nodes.Const) and isinstance(node.arg.value, str):
            refs.add(node.arg.value)
    return refs


_FOLD_MAX_CHARS = 10_000


def compile_template(source: Any) -> tuple[Template, frozenset[str]]:
    """Compile a Jinja template in the sandbox; returns it with the node ids it references.

    Raises ValueError with a one-line reason on syntax errors (including unknown filters).
    """
    if not isinstance(source, str):
        raise ValueError(f"template must be a string, not {type(source).__name__}")
    # Jinja folds constant expressions (``'x'|center(9**9)``) while compiling: under this small guard a
    # fold that would build a large value is refused, so the expression is left to the render's guard.
    token = GUARD.set(RenderGuard(_FOLD_MAX_CHARS, None, _FOLD_MAX_CHARS))
    try:
        ast = _ENV.parse(source)
        refs = _template_refs(ast)
        template = _ENV.from_string(ast)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise ValueError("template nests too deeply") from None
    finally:
        GUARD.reset(token)
    return template, frozenset(refs or ())


_DEADLINE_EVERY = 64
DEFAULT_MAX_TEMPLATE_ITERATIONS = 100_000


def render_template(
    template: Template,
    data: dict[str, Any],
    *,
    max_chars: int,
    deadline: float | None,
    max_iterations: int = DEFAULT_MAX_TEMPLATE_ITERATIONS,
) -> str:
    """Render with output size, value size, loop budget and deadline checks; every failure becomes a NodeError."""
    guard = RenderGuard(max_chars, deadline, max_iterations)
    token = GUARD.set(guard)
    try:
        chunks: Iterator[str] = template.generate(data)
        parts: list[str] = []
        total = 0
        for count, chunk in enumerate(chunks, 1):
            total += len(chunk)
            if total > max_chars:
                raise too_long("output", guard)
            parts.append(chunk)
            if deadline is not None and count % _DEADLINE_EVERY == 0 and time.monotonic() > deadline:
                raise NodeError("timeout", "template rendering ran past the deadline")
        return "".join(parts)
    except NodeError:
        raise
    except SecurityError as exc:
        raise NodeError("sandbox_violation", f"template blocked by the sandbox: {exc}", retryable=False) from None
    except UndefinedError as exc:
        raise NodeError("template_undefined", f"template uses an undefined value: {exc}", retryable=False) from None
    except TemplateError as exc:
        raise NodeError("template_error", f"template failed: {exc}", retryable=False) from None
    except RecursionError:
        raise NodeError("template_error", "template recursed too deeply", retryable=False) from None
    except MemoryError:
        raise NodeError("payload_too_large", "template ran out of memory", retryable=False) from None
    except Exception as exc:
        raise NodeError("template_error", f"template failed: {type(exc).__name__}: {exc}", retryable=False) from None
    finally:
        GUARD.reset(token)
