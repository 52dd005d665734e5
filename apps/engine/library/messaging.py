"""The `email` and `notify` nodes: send mail through the `mail` service, publish events through `events`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from ..errors import NodeError
from ..expressions import Expression
from ..registry import CompileContext, NodeType, RunContext
from .common import call_port, expect_object, json_type, render

MAX_RECIPIENTS = 50
# Loose on purpose (mail servers decide what exists); strict where it matters: one "@", and no
# whitespace or control characters, which is what header injection needs.
_ADDRESS = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
_EVENT_TYPE = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
_TEMPLATE_LIST = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 500}}

# -------------------------------------------------------------------------------------------- email


@dataclass(frozen=True, slots=True)
class _EmailConfig:
    to: tuple[Template, ...]
    cc: tuple[Template, ...]
    subject: Template
    body: Template
    html: Template | None
    attachments: tuple[Expression, ...]


def _compile_email(config: dict[str, Any], ctx: CompileContext) -> _EmailConfig | None:
    to = [ctx.template(f"to[{i}]", source) for i, source in enumerate(config["to"])]
    cc = [ctx.template(f"cc[{i}]", source) for i, source in enumerate(config.get("cc", ()))]
    subject = ctx.template("subject", config["subject"])
    body = ctx.template("body", config["body"])
    html = ctx.template("html", config["html"]) if "html" in config else None
    attachments = [ctx.expression(f"attachments[{i}]", source) for i, source in enumerate(config.get("attachments", ()))]
    if ctx.errors:
        return None
    return _EmailConfig(tuple(to), tuple(cc), subject, body, html, tuple(attachments))  # type: ignore[arg-type]


def _addresses(templates: tuple[Template, ...], ctx: RunContext, field: str) -> list[str]:
    addresses = []
    for index, template in enumerate(templates):
        address = render(template, ctx).strip()
        if not _ADDRESS.match(address):
            raise NodeError(
                "invalid_address", f"{field}[{index}] is not a valid email address: {address[:100]!r}", retryable=False
            )
        addresses.append(address)
    return addresses


def _attachment_ids(expressions: tuple[Expression, ...], ctx: RunContext) -> list[str]:
    ids: list[str] = []
    for index, expression in enumerate(expressions):
        value = expression.search(ctx.data)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None:
                continue  # a skipped chart: nothing to attach
            artifact_id = item.get("id") if isinstance(item, dict) else item
            if not isinstance(artifact_id, str) or not artifact_id:
                raise NodeError(
                    "invalid_attachment",
                    f"attachments[{index}] {expression.source!r} yielded {json_type(item)}, "
                    'not an artifact (an object with an "id") or an artifact id',
                    retryable=False,
                )
            ids.append(artifact_id)
    return ids


def _run_email(config: _EmailConfig, ctx: RunContext) -> dict[str, Any]:
    to = _addresses(config.to, ctx, "to")
    cc = _addresses(config.cc, ctx, "cc")
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise NodeError("too_many_recipients", f"{len(to) + len(cc)} recipients; the limit is {MAX_RECIPIENTS}", retryable=False)
    # A subject is one header line: newlines would inject headers, so all whitespace runs become one space.
    subject = " ".join(render(config.subject, ctx).split())
    body = render(config.body, ctx)
    html = render(config.html, ctx) if config.html is not None else None
    attachment_ids = _attachment_ids(config.attachments, ctx)
    sent = call_port(ctx, "mail", "send", to=to, cc=cc, subject=subject, body=body, html=html, attachment_ids=attachment_ids)
    return expect_object(sent, "mail", "send")


EMAIL_NODE = NodeType(
    name="email",
    description=(
        "Send an email through the run's `mail` service, optionally with artifacts (such as charts) attached. "
        "Addresses are checked loosely: exactly one `@` and no whitespace or control characters. "
        "The subject is folded to one line."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["to", "subject", "body"],
        "properties": {
            "to": {
                **_TEMPLATE_LIST,
                "minItems": 1,
                "maxItems": MAX_RECIPIENTS,
                "description": "Recipients: Jinja templates that each render one address.",
            },
            "cc": {**_TEMPLATE_LIST, "maxItems": MAX_RECIPIENTS, "description": "Copy recipients, as `to`."},
            "subject": {"type": "string", "maxLength": 1000, "description": "Jinja template for the subject line."},
            "body": {"type": "string", "description": "Jinja template for the plain-text body."},
            "html": {"type": "string", "description": "Jinja template for an HTML alternative body (not autoescaped)."},
            "attachments": {
                "type": "array",
                "maxItems": 20,
                "items": {"type": "string", "minLength": 1},
                "description": "JMESPath expressions, each yielding an artifact (an object with an `id`, as a `chart` "
                "node outputs), an artifact id, a list of those, or null (nothing attached).",
            },
        },
    },
    compile=_compile_email,
    run=_run_email,
    pure=False,
    output=(
        'What the mail service returns, e.g. `{"message_id": "<…@nexus.local>", "accepted": ["ada@example.com"], '
        '"attachments": 1, "delivered_to": "local outbox", "mail_id": "msg_…"}`: `delivered_to` is `local outbox` '
        "when no mail server is configured (the message is kept for `nexus mail list`), else the server "
        "(`smtp://host:port`)."
    ),
    errors={
        "invalid_address": "a recipient rendered to something that is not one address",
        "too_many_recipients": f"more than {MAX_RECIPIENTS} recipients in `to` and `cc` together",
        "invalid_attachment": "an attachment expression yielded something that is not an artifact or an id",
        "email_failed": "raised by the mail service: the message could not be sent",
        "recipient_not_allowed": "raised by the mail service: a recipient is outside the platform's allow-list",
        "quota_exceeded": "raised by the mail service: the tenant has sent its messages for the day",
        "port_unavailable": "the run has no `mail` service",
        "port_error": "the mail service failed",
    },
    example={
        "id": "send",
        "type": "email",
        "config": {
            "to": ["{{ inputs.recipient }}"],
            "subject": "Customer report: {{ nodes.stats.count }} customers",
            "body": "Total revenue: {{ nodes.stats.sum }}",
            "attachments": ["nodes.chart"],
        },
    },
)


# ------------------------------------------------------------------------------------------- notify


@dataclass(frozen=True, slots=True)
class _NotifyConfig:
    event: str
    data: tuple[tuple[str, Expression], ...]


def _compile_notify(config: dict[str, Any], ctx: CompileContext) -> _NotifyConfig | None:
    data = [(key, ctx.expression(f"data.{key}", source)) for key, source in config.get("data", {}).items()]
    if ctx.errors:
        return None
    return _NotifyConfig(config["event"], tuple(data))  # type: ignore[arg-type]


def _run_notify(config: _NotifyConfig, ctx: RunContext) -> dict[str, Any]:
    data = {key: expression.search(ctx.data) for key, expression in config.data}
    published = call_port(ctx, "events", "publish", type=config.event, data=data)
    return expect_object(published, "events", "publish")


NOTIFY_NODE = NodeType(
    name="notify",
    description=(
        "Publish an event (`<entity>.<past_verb>`, e.g. `report.ready`) through the run's `events` service, "
        "which delivers it to WebSocket subscribers, webhooks and the event log."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["event"],
        "properties": {
            "event": {
                "type": "string",
                "pattern": _EVENT_TYPE,
                "maxLength": 100,
                "description": "Event type, `<entity>.<past_verb>` in lower case, e.g. `report.ready`.",
            },
            "data": {
                "type": "object",
                "maxProperties": 50,
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Event data: each key's value is a JMESPath expression.",
            },
        },
    },
    compile=_compile_notify,
    run=_run_notify,
    pure=False,
    output='What the events service returns, e.g. `{"id": "evt_…", "type": "report.ready"}`.',
    errors={
        "port_unavailable": "the run has no `events` service",
        "port_error": "the events service failed",
    },
    example={
        "id": "announce",
        "type": "notify",
        "config": {"event": "data.processed", "data": {"rows": "nodes.stats.count", "total": "nodes.stats.sum"}},
    },
)
