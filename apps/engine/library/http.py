"""The `http_request` node: an outbound HTTP call with an SSRF guard, bounded time and a bounded response.

Security decisions, defended here once:

* Every address the host resolves to is checked, and the request then connects to one of those
  checked addresses (the URL's host is replaced by the IP, the original host travels in the Host
  header and as the TLS server name). A second DNS lookup by the HTTP client could answer
  differently (DNS rebinding); this way there is none.
* Redirects are never followed: a 3xx comes back as the node's output, so a public server cannot
  bounce the request to an internal address.
* Proxies from the environment are ignored (``trust_env=False``): the checked IP is what we reach.
* The response body is read as a stream and reading stops at the size limit; compressed bodies are
  inflated with the same bound, so a small gzip bomb cannot allocate gigabytes.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from apps.core.netguard import UnresolvableHost, first_blocked, resolve

from ..errors import NodeError
from ..limits import Limits
from ..registry import CompileContext, NodeType, RunContext
from .common import compile_json_templates, render, render_json

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT_S = 10.0
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Set by the node itself (Host, framing) or hop-by-hop: a config must not override them.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization"}
)
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")
_DEFAULT_PORTS = {"http": 80, "https": 443}

_ssl_lock = threading.Lock()
_ssl_context: Any = None


def _shared_ssl_context() -> Any:
    """One verifying SSL context per process: building one loads the CA bundle (tens of ms)."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            import httpx

            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


# ------------------------------------------------------------------------------------------- guard


def resolve_checked(host: str, port: int, limits: Limits) -> list[str]:
    """Resolve `host` and return its addresses, refusing (ssrf_blocked) if any of them is not public (the judgement
    is apps/core/netguard.py's), unless the tenant's limits allow private networks or this host."""
    name = host.lower().rstrip(".")
    exempt = limits.allow_private_network or name in limits.http_allowed_hosts
    try:
        addresses = resolve(host, port)
    except UnresolvableHost as exc:
        raise NodeError("http_error", str(exc)) from None
    blocked = None if exempt else first_blocked(addresses)
    if blocked is not None:
        ip, reason = blocked
        shown = host if host == ip else f"{host!r} ({ip})"
        raise NodeError(
            "ssrf_blocked",
            f"refusing to connect to {shown}: a {reason} address is not reachable from workflows",
            retryable=False,
        )
    return addresses


# ------------------------------------------------------------------------------------------ config


@dataclass(frozen=True, slots=True)
class _HttpConfig:
    method: str
    url: Template
    headers: tuple[tuple[str, Template], ...]
    query: tuple[tuple[str, Template], ...]
    json_body: Any
    has_json: bool
    body: Template | None
    timeout_s: float
    max_bytes: int
    expect_status: frozenset[int] | None
    truncate: bool


def _compile(config: dict[str, Any], ctx: CompileContext) -> _HttpConfig | None:
    url = ctx.template("url", config["url"])
    headers = []
    for name, source in config.get("headers", {}).items():
        if not _HEADER_NAME.match(name):
            ctx.error(f"headers.{name}", f"{name!r} is not a valid header name")
        elif name.lower() in _RESERVED_HEADERS:
            ctx.error(f"headers.{name}", f"the {name} header is set by the node and cannot be configured")
        else:
            headers.append((name, ctx.template(f"headers.{name}", source)))
    query = [(name, ctx.template(f"query.{name}", source)) for name, source in config.get("query", {}).items()]
    if "json" in config and "body" in config:
        ctx.error("body", 'give either "json" or "body", not both')
    json_body = compile_json_templates(ctx, "json", config["json"]) if "json" in config else None
    body = ctx.template("body", config["body"]) if "body" in config else None
    max_bytes = config.get("max_response_bytes", ctx.limits.max_http_response_bytes)
    if max_bytes > ctx.limits.max_http_response_bytes:
        ctx.error("max_response_bytes", f"{max_bytes} is greater than the limit of {ctx.limits.max_http_response_bytes} bytes")
    if url is None or ctx.errors:
        return None
    expect = config.get("expect_status")
    return _HttpConfig(
        method=config.get("method", "GET"),
        url=url,
        headers=tuple(headers),  # type: ignore[arg-type]
        query=tuple(query),  # type: ignore[arg-type]
        json_body=json_body,
        has_json="json" in config,
        body=body,
        timeout_s=float(config.get("timeout_s", DEFAULT_TIMEOUT_S)),
        max_bytes=max_bytes,
        expect_status=frozenset(expect) if expect else None,
        truncate=config.get("on_too_large", "error") == "truncate",
    )


# --------------------------------------------------------------------------------------------- run


def _too_large(limit: int) -> NodeError:
    return NodeError("response_too_large", f"the response body exceeds the limit of {limit} bytes", retryable=False)


def _inflate(raw: bytes, encoding: str, limit: int, truncate: bool) -> tuple[bytes, bool]:
    if encoding in ("", "identity"):
        return raw, False
    if encoding in ("gzip", "x-gzip"):
        decoders = [zlib.decompressobj(16 + zlib.MAX_WBITS)]
    elif encoding == "deflate":
        decoders = [zlib.decompressobj(zlib.MAX_WBITS), zlib.decompressobj(-zlib.MAX_WBITS)]
    else:
        raise NodeError("http_error", f"unsupported Content-Encoding {encoding!r}", retryable=False)
    for decoder in decoders:
        try:
            data = decoder.decompress(raw, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit:
            if not truncate:
                raise _too_large(limit)
            return data[:limit], True
        return data, False
    raise NodeError("http_error", f"the {encoding} response body is corrupt", retryable=False)


def _read(response: Any, config: _HttpConfig, give_up_at: float) -> tuple[bytes, bool]:
    limit = config.max_bytes
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit and not config.truncate:
        raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    truncated = False
    for chunk in response.iter_raw():
        if time.monotonic() > give_up_at:
            raise NodeError("http_timeout", "the response took longer than the timeout")
        if total + len(chunk) > limit:
            if not config.truncate:
                raise _too_large(limit)
            chunks.append(chunk[: limit - total])
            truncated = True
            break
        chunks.append(chunk)
        total += len(chunk)
    raw = b"".join(chunks)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    data, inflated_truncated = _inflate(raw, encoding, limit, config.truncate)
    return data, truncated or inflated_truncated


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _output(response: Any, data: bytes, truncated: bool) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    text = data.decode(response.charset_encoding or "utf-8", errors="replace")
    parsed = None
    is_json = False
    if "json" in headers.get("content-type", "").lower() and not truncated:
        try:
            parsed = json.loads(text, parse_constant=_reject_constant)
            is_json = True
        except ValueError:
            pass
    return {
        "status": response.status_code,
        "headers": headers,
        "json": parsed,
        "text": "" if is_json else text,
        "truncated": truncated,
    }


def _request(config: _HttpConfig, ctx: RunContext) -> dict[str, Any]:
    import httpx  # imported on first use: importing the engine stays fast

    ctx.check()
    source = render(config.url, ctx).strip()
    try:
        url = httpx.URL(source)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise NodeError("invalid_url", f"{source[:200]!r} is not a valid URL: {exc}", retryable=False) from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise NodeError("invalid_url", f"{source[:200]!r}: only absolute http:// and https:// URLs are allowed", retryable=False)
    if config.query:
        url = url.copy_merge_params({name: render(template, ctx) for name, template in config.query})
    # Keyed by lower-case name so a configured header replaces a default whatever its spelling.
    headers = {"accept-encoding": ("Accept-Encoding", "gzip, deflate"), "user-agent": ("User-Agent", "nexus-workflow/1")}
    for name, template in config.headers:
        value = render(template, ctx)
        if _BAD_HEADER_VALUE.search(value):
            raise NodeError("invalid_header", f"header {name} rendered a line break or NUL", retryable=False)
        headers[name.lower()] = (name, value)
    content: bytes | None = None
    if config.has_json:
        content = json.dumps(render_json(config.json_body, ctx), ensure_ascii=False, separators=(",", ":")).encode()
        headers.setdefault("content-type", ("Content-Type", "application/json"))
    elif config.body is not None:
        content = render(config.body, ctx).encode()
        headers.setdefault("content-type", ("Content-Type", "text/plain; charset=utf-8"))
    host = url.raw_host.decode("ascii")  # IDNA-encoded; an IPv6 literal without brackets
    port = url.port or _DEFAULT_PORTS[url.scheme]
    # The Host header is the URL's (minus credentials), whichever address we connect to.
    shown = f"[{host}]" if ":" in host else host
    headers["host"] = ("Host", shown if url.port is None else f"{shown}:{url.port}")
    addresses = resolve_checked(host, port, ctx.limits)
    timeout = min(config.timeout_s, ctx.remaining())
    if timeout <= 0:
        ctx.check()
        raise NodeError("http_timeout", "no time left for the request")
    give_up_at = time.monotonic() + timeout
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    verify = _shared_ssl_context() if url.scheme == "https" else False
    last_error: Exception | None = None
    for ip in addresses:
        target = url.copy_with(host=ip)
        try:
            with (
                httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout, verify=verify) as client,
                client.stream(
                    config.method, target, headers=list(headers.values()), content=content, extensions=extensions
                ) as response,
            ):
                data, truncated = _read(response, config, give_up_at)
                output = _output(response, data, truncated)
        except httpx.ConnectError as exc:
            last_error = exc  # this address refused; the host may have another
            continue
        except httpx.TimeoutException:
            raise NodeError("http_timeout", f"{config.method} {host} took longer than {timeout:.3g} s") from None
        except httpx.HTTPError as exc:
            raise NodeError("http_error", f"{config.method} {host} failed: {type(exc).__name__}: {exc}") from None
        if config.expect_status is not None and output["status"] not in config.expect_status:
            expected = ", ".join(str(status) for status in sorted(config.expect_status))
            raise NodeError("unexpected_status", f"{config.method} {host} returned {output['status']}, expected {expected}")
        return output
    raise NodeError("http_error", f"cannot connect to {host}: {last_error}")


HTTP_REQUEST_NODE = NodeType(
    name="http_request",
    description=(
        "Call an HTTP or HTTPS endpoint, guarded against server-side request forgery. The host must resolve to "
        "public addresses only (no loopback, "
        "private, link-local, multicast, reserved or unspecified address) unless the operator allows private "
        "networks or lists the host; the request goes to the checked address. Redirects are not followed: a 3xx "
        "is returned as is. The response is read up to `max_response_bytes`."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "method": {"enum": list(METHODS), "default": "GET", "description": "HTTP method."},
            "url": {"type": "string", "minLength": 1, "maxLength": 8000, "description": "Jinja template for the absolute URL."},
            "headers": {
                "type": "object",
                "maxProperties": 50,
                "additionalProperties": {"type": "string", "maxLength": 8000},
                "description": "Request headers: name -> Jinja template. Host, Content-Length, Transfer-Encoding "
                "and hop-by-hop headers are set by the node.",
            },
            "query": {
                "type": "object",
                "maxProperties": 50,
                "additionalProperties": {"type": "string", "maxLength": 8000},
                "description": "Query parameters added to the URL: name -> Jinja template.",
            },
            "json": {
                "description": "JSON request body; every string in it is a Jinja template (rendered to a string). "
                "Sets Content-Type: application/json unless a header says otherwise."
            },
            "body": {
                "type": "string",
                "description": "Jinja template for a text request body (Content-Type text/plain unless a header says "
                "otherwise). Not together with `json`.",
            },
            "timeout_s": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 300,
                "default": DEFAULT_TIMEOUT_S,
                "description": "Seconds for the whole request, capped by the node's deadline.",
            },
            "max_response_bytes": {
                "type": "integer",
                "minimum": 1,
                "description": "Largest response body to read (after decompression); default and maximum "
                "`max_http_response_bytes` (1,000,000 by default).",
            },
            "on_too_large": {
                "enum": ["error", "truncate"],
                "default": "error",
                "description": "A larger body fails the node with response_too_large, or is cut at the limit "
                '(then `"truncated": true` and `json` is null).',
            },
            "expect_status": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "integer", "minimum": 100, "maximum": 599},
                "description": "Statuses that count as success; any other fails the node with unexpected_status. "
                "Without it every status (including 4xx/5xx) is an output.",
            },
        },
    },
    compile=_compile,
    run=_request,
    pure=False,
    output=(
        '`{"status": 200, "headers": {"content-type": "application/json", ...}, "json": <parsed body or null>, '
        '"text": "<body when it is not JSON, else empty>", "truncated": false}`. Header names are lower-case; '
        "repeated headers are joined with `, `. The body is JSON when the Content-Type mentions json and it parses."
    ),
    errors={
        "ssrf_blocked": "the host is or resolves to a non-public address (the message names the address and why)",
        "invalid_url": "the URL rendered to something that is not an absolute http(s) URL",
        "invalid_header": "a header value rendered a line break or NUL",
        "http_timeout": "no complete response within `timeout_s` (or the node deadline)",
        "http_error": "DNS failure, connection refused or reset, TLS failure, malformed response",
        "response_too_large": "the body exceeds `max_response_bytes`",
        "unexpected_status": "`expect_status` is set and the status is not in it",
    },
    example={
        "id": "fetch",
        "type": "http_request",
        "config": {
            "method": "POST",
            "url": "https://api.example.com/v1/customers/{{ inputs.customer_id }}/events",
            "headers": {"Authorization": "Bearer {{ inputs.token }}"},
            "json": {"type": "report.requested", "month": "{{ inputs.month }}"},
            "timeout_s": 5,
            "expect_status": [200, 201],
        },
        "retry": {"attempts": 3, "backoff_s": 1},
    },
)
