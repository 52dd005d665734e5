"""The one outbound webhook request: checked against SSRF at send time, pinned to the checked address.

Security decisions (as for the http_request node; both judge addresses with apps/core/netguard.py):

* The receiver's host is resolved here, every address is checked, and the request connects to a checked
  address with the original host in the Host header and as the TLS server name: a DNS answer that changed
  since the URL was registered (rebinding) cannot reach an internal address. Loopback, private, link-local
  and other non-public addresses are refused unless NEXUS_WEBHOOK_ALLOW_PRIVATE is set.
* Redirects are not followed (a 3xx is a failed attempt), proxies from the environment are ignored.
* The whole request is bounded by the timeout, and at most a few KiB of the answer are read (kept only as
  context for a failed attempt's error).
* Connections are kept alive per (scheme, host, address, port): a receiver's next delivery reuses one, and a
  TLS connection made for one host name is never reused for another.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

import httpx

from apps.core.netguard import UnresolvableHost, first_blocked, resolve

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ANSWER_BYTES = 2048


@cache
def _ssl_context():
    """One verifying context per process: building one loads the CA bundle (tens of ms)."""
    return httpx.create_ssl_context()


_CLIENTS_KEPT = 32
_clients: OrderedDict[tuple[str, str, str, int], httpx.Client] = OrderedDict()
_clients_lock = threading.Lock()
_clients_pid: int | None = None


def _client(scheme: str, host: str, ip: str, port: int) -> httpx.Client:
    """The process's client for one receiver address (least recently used ones are closed past 32)."""
    global _clients_pid
    key = (scheme, host, ip, port)
    with _clients_lock:
        if _clients_pid != os.getpid():  # a forked worker must not share its parent's sockets
            _clients.clear()
            _clients_pid = os.getpid()
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
        client = httpx.Client(
            trust_env=False,
            follow_redirects=False,
            verify=_ssl_context() if scheme == "https" else False,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30),
        )
        _clients[key] = client
        while len(_clients) > _CLIENTS_KEPT:
            _clients.popitem(last=False)[1].close()
        return client


class SendRefused(Exception):
    """The request was not sent and sending it again cannot help (bad URL, forbidden address)."""


class SendFailed(Exception):
    """The request failed on the way (DNS, connection, timeout): a later attempt may succeed."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    latency_ms: float
    body: str  # the start of the answer, for a failed attempt's error


def _addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    try:
        addresses = resolve(host, port)
    except UnresolvableHost as error:
        raise SendFailed(str(error)) from None
    blocked = None if allow_private else first_blocked(addresses)
    if blocked is not None:
        ip, reason = blocked
        shown = host if host == ip else f"{host} ({ip})"
        raise SendRefused(
            f"refused to send to {shown}: a {reason} address is not allowed for webhooks (NEXUS_WEBHOOK_ALLOW_PRIVATE is off)"
        )
    return addresses


def post_json(*, url: str, body: bytes, headers: dict[str, str], timeout_s: float, allow_private: bool) -> Answer:
    """POST `body` to `url`; the answer whatever its status, or SendRefused / SendFailed."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as error:
        raise SendRefused(f"the webhook URL is not valid: {error}") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise SendRefused("the webhook URL must be an absolute http:// or https:// URL")
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    started = time.monotonic()
    addresses = _addresses(host, port, allow_private=allow_private)
    shown = f"[{host}]" if ":" in host else host
    request_headers = {
        **headers,
        "Host": shown if parsed.port is None else f"{shown}:{parsed.port}",
        "Content-Type": "application/json",
        "User-Agent": "nexus-webhooks/1",
    }
    https = parsed.scheme == "https"
    extensions = {"sni_hostname": host} if https else {}
    give_up_at = started + timeout_s
    last_error: Exception | None = None
    for ip in addresses:
        remaining = give_up_at - time.monotonic()
        if remaining <= 0:
            break
        client = _client(parsed.scheme, host, ip, port)
        try:
            with client.stream(
                "POST",
                parsed.copy_with(host=ip),
                headers=request_headers,
                content=body,
                extensions=extensions,
                timeout=remaining,
            ) as response:
                answer = b""
                for chunk in response.iter_raw():
                    answer += chunk
                    if len(answer) >= _ANSWER_BYTES or time.monotonic() > give_up_at:
                        break
                latency_ms = (time.monotonic() - started) * 1000
                return Answer(response.status_code, round(latency_ms, 3), answer[:_ANSWER_BYTES].decode("utf-8", "replace"))
        except httpx.ConnectError as error:
            last_error = error  # this address refused; the host may have another
        except httpx.TimeoutException:
            raise SendFailed(f"no answer from {host} within {timeout_s:g} s") from None
        except httpx.HTTPError as error:
            raise SendFailed(f"POST to {host} failed: {type(error).__name__}: {error}") from None
    if last_error is None:
        raise SendFailed(f"no answer from {host} within {timeout_s:g} s")
    raise SendFailed(f"cannot connect to {host}:{port}: {last_error}")
