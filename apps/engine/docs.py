"""Generates the node type reference: ``python -m apps.engine.docs > docs/nodes.md``."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from .limits import Limits
from .nodes import default_registry
from .registry import NodeRegistry, NodeType

__all__ = ["render_markdown"]

COMMAND = "python -m apps.engine.docs > docs/nodes.md"

# The end of a description's first sentence (not the dot of "e.g." or of a dotted name).
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z])")

_CONSTRAINTS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "≥ {} items"),
    ("maxItems", "≤ {} items"),
    ("minProperties", "≥ {} keys"),
    ("maxProperties", "≤ {} keys"),
    ("pattern", "matches `{}`"),
)

_COMMON_ERRORS = {
    "timeout": "the node ran past its `timeout_s` (a node error: `retry` and `on_error` apply); when the whole "
    "run runs out of time the run ends `timed_out` instead",
    "payload_too_large": "the node's output (or a value an expression builds) exceeds `max_payload_bytes`",
    "invalid_output": "the output is not JSON data (trusted Python node types only)",
    "expression_error": "a JMESPath expression failed at run time",
    "template_undefined": "a Jinja template used a value that does not exist",
    "template_error": "a Jinja template failed at run time",
    "port_unavailable": "the node needs a service (`datasets`, `artifacts`, `mail`, `events`, `workflows`) that "
    "the caller did not give this run",
    "port_error": "a service raised something other than a node error (its text is in the message)",
    "node_error": "a trusted Python node type raised an unexpected exception",
    "aborted": "the node was told to stop because another branch failed (the run's error names that node)",
}

_LIMIT_NOTES = {
    "max_nodes": "nodes in one definition",
    "max_payload_bytes": "JSON size of the inputs, of each node output and of the run outputs",
    "max_run_seconds": "a run's deadline",
    "max_delay_seconds": "longest `delay`",
    "max_fanout": "longest list a node consumes or produces (filter items, rows, query limit)",
    "max_http_response_bytes": "largest `http_request` response body",
    "allow_private_network": "lets `http_request` reach loopback and private addresses",
    "http_allowed_hosts": "host names `http_request` may reach whatever they resolve to",
    "max_subworkflow_depth": "how deep `subworkflow` calls may nest",
    "max_parallel_nodes": "worker threads for concurrent branches, shared by a run and all its subworkflow runs",
    "max_template_iterations": "loop iterations one template render may run (nested and recursive loops count "
    "every pass), and the longest `range()`",
}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def schema_type(schema: Mapping[str, Any]) -> str:
    """A short human spelling of a schema's type: ``"GET" | "POST"``, ``array of string``, ``object of string``."""
    if "enum" in schema:
        return " | ".join(f"`{_json(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{_json(schema['const'])}`"
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " or ".join(schema_type(option) for option in schema[combinator])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {schema_type(items)}" if isinstance(items, Mapping) else "array"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and "properties" not in schema:
            return f"object of {schema_type(extra)}"
        return "object"
    return kind or "any JSON"


def _constraints(schema: Mapping[str, Any]) -> str:
    found = [template.format(schema[key]) for key, template in _CONSTRAINTS if key in schema]
    if schema.get("uniqueItems"):
        found.append("unique")
    items = schema.get("items")
    if isinstance(items, Mapping) and "properties" not in items:
        inner = _constraints(items)
        if inner:
            found.append(f"each: {inner}")
    for combinator in ("oneOf", "anyOf"):
        for option in schema.get(combinator, ()):
            inner = _constraints(option)
            if inner:
                found.append(f"{schema_type(option)}: {inner}")
    return "; ".join(found)


def config_rows(schema: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(dotted field, property schema, required) for every property, nested ones after their parent."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        field = f"{prefix}{name}"
        yield field, prop, name in required
        if "properties" in prop:
            yield from config_rows(prop, f"{field}.")
        items = prop.get("items")
        if isinstance(items, Mapping) and "properties" in items:
            yield from config_rows(items, f"{field}[].")


def _node_section(node_type: NodeType) -> list[str]:
    lines = [f"## `{node_type.name}`", "", node_type.description or "(no description)", ""]
    purity = "yes — no I/O, no side effects" if node_type.pure else "no — it does I/O or has side effects"
    weight = "CPU-light" if node_type.cpu_light else "CPU-heavy"
    inline = "eligible" if node_type.pure and node_type.cpu_light else "not eligible"
    lines += [f"**Pure:** {purity}. **Cost:** {weight}. **Inline fast path:** {inline}.", ""]
    lines += ["### Config", ""]
    rows = list(config_rows(node_type.config_schema))
    if rows:
        lines += ["| field | type | required | default | constraints | description |", "|---|---|---|---|---|---|"]
        for field, prop, required in rows:
            default = f"`{_json(prop['default'])}`" if "default" in prop else ""
            lines.append(
                f"| `{field}` | {_cell(schema_type(prop))} | {'yes' if required else ''} | {_cell(default)} "
                f"| {_cell(_constraints(prop))} | {_cell(prop.get('description', ''))} |"
            )
    else:
        lines.append("No configuration.")
    schema = json.dumps(node_type.config_schema, indent=2, ensure_ascii=False)
    lines += ["", "<details><summary>JSON Schema of the config</summary>", "", "```json", schema, "```", "", "</details>", ""]
    lines += ["### Output", "", node_type.output or "Not documented.", ""]
    lines += ["### Errors", ""]
    if node_type.errors:
        lines += ["| code | when |", "|---|---|"]
        lines += [f"| `{code}` | {_cell(when)} |" for code, when in node_type.errors.items()]
        lines += ["", "Plus the [errors every node may raise](#errors-every-node-may-raise).", ""]
    else:
        lines += ["Only the [errors every node may raise](#errors-every-node-may-raise).", ""]
    if node_type.example is not None:
        lines += ["### Example", "", "```json", json.dumps(node_type.example, indent=2, ensure_ascii=False), "```", ""]
    return lines


def render_markdown(registry: NodeRegistry = default_registry) -> str:
    """The whole reference page, deterministic for a given registry (a test compares it with docs/nodes.md)."""
    types = registry.types()
    lines = [
        "# Workflow node types",
        "",
        f"<!-- Generated by `{COMMAND}` from the engine's node registry. Do not edit by hand:"
        " a unit test fails when this file and the generator disagree. -->",
        "",
        'A workflow definition lists nodes as `{"id": ..., "type": ..., "config": {...}}`, optionally with '
        '`retry` (`{"attempts": 1-10, "backoff_s": s, "multiplier": m}`), `timeout_s` and `on_error` '
        '(`"fail"`, `"continue"` or `{"fallback": "<node id>"}`). The config of each type below is checked '
        "against its JSON Schema when the workflow is compiled; every error names the node and the field "
        "(`nodes[2].config.url`).",
        "",
        'Expressions are [JMESPath](https://jmespath.org/) evaluated over `{"inputs": ..., "nodes": ...}`; '
        "templates are sandboxed [Jinja](https://jinja.palletsprojects.com/) with the same `inputs` and `nodes`. "
        "A node sees the outputs of the nodes upstream of it (connected by edges), never of parallel branches.",
        "",
        "**Pure** nodes do no I/O and have no side effects. A workflow whose nodes are all pure and CPU-light "
        "(and that has no retries) may run inline in the web process when the caller waits; any other runs on a "
        "worker. Independent branches run concurrently: nodes that are not pure and CPU-light go to worker "
        "threads, at most `max_parallel_nodes` for a run and its subworkflow runs together; a subworkflow run "
        "that finds none free runs its branches one after another on its caller's thread.",
        "",
        "| type | pure | summary |",
        "|---|---|---|",
    ]
    for node_type in types:
        summary = _SENTENCE_END.split(node_type.description or "", maxsplit=1)[0].rstrip(".")
        lines.append(f"| [`{node_type.name}`](#{node_type.name}) | {'yes' if node_type.pure else 'no'} | {_cell(summary)}. |")
    lines += ["", "## Errors every node may raise", "", "| code | when |", "|---|---|"]
    lines += [f"| `{code}` | {_cell(when)} |" for code, when in _COMMON_ERRORS.items()]
    lines += [
        "",
        "A node error fails the node; `retry` repeats it (errors marked not retryable, such as bad expression "
        "results, are not repeated), then `on_error` decides: fail the run, continue with a null output, or run "
        "the fallback node and use its output (the run then ends `completed_with_recovery`).",
        "",
        "## Limits",
        "",
        "Operators set these (`Limits`); the defaults are:",
        "",
        "| limit | default | bounds |",
        "|---|---|---|",
    ]
    defaults = Limits()
    for item in dataclasses.fields(Limits):
        lines.append(f"| `{item.name}` | `{_json(getattr(defaults, item.name))}` | {_LIMIT_NOTES.get(item.name, '')} |")
    lines += [
        "",
        "Templates check the run deadline on every loop iteration and call: a template still running at the "
        "deadline ends the run `timed_out`, one that runs more than `max_template_iterations` loop iterations "
        "fails with `template_budget_exceeded`. No value a template builds (through filters, methods, "
        "`str.format`, `%`, `*`, `+`, `~`, block bodies or printing) may exceed twice `max_payload_bytes` "
        "characters: where the size follows from the arguments (`center(n)`, `'{:>n}'`, `replace`, `join`, "
        "`indent`, `wordwrap`...) the value is refused before it is built (`payload_too_large`).",
        "",
        "Regular expressions in the input schema (`pattern`, `patternProperties`, `format: regex`) run on RE2, "
        "a linear-time engine: matching cannot take exponential time, and patterns RE2 does not support "
        "(backreferences, lookaround) are refused when the workflow is saved, naming the field.",
        "",
    ]
    for node_type in types:
        lines += _node_section(node_type)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
