"""Tests of the http_request node against a local HTTP server, and of its SSRF guard."""

from __future__ import annotations

import gzip
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from engine_helpers import by_node, definition_errors, run

from apps.core.netguard import blocked_reason
from apps.engine import Limits

PRIVATE_OK = Limits(allow_private_network=True)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        echo = {
            "method": self.command,
            "path": parts.path,
            "query": parse_qs(parts.query),
            "host": self.headers.get("Host"),
            "content_type": self.headers.get("Content-Type"),
            "x_token": self.headers.get("X-Token"),
            "body": body,
        }
        self._send(200, json.dumps(echo).encode(), "application/json", X_Extra="1")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/echo":
            self._echo()
        elif parts.path == "/text":
            self._send(200, "héllo".encode(), "text/plain; charset=utf-8")
        elif parts.path == "/big":
            self._send(200, b"x" * int(query["n"][0]))
        elif parts.path == "/gzip":
            self._send(200, gzip.compress(b'{"zipped": true}'), "application/json", Content_Encoding="gzip")
        elif parts.path == "/bomb":
            self._send(200, gzip.compress(b"\0" * 5_000_000), Content_Encoding="gzip")
        elif parts.path == "/redirect":
            self._send(302, b"", Location="http://169.254.169.254/latest/meta-data/")
        elif parts.path == "/slow":
            time.sleep(1)
            self._send(200, b"late")
        elif parts.path.startswith("/status/"):
            self._send(int(parts.path.rsplit("/", 1)[1]), b"status")
        elif parts.path == "/bad-json":
            self._send(200, b"{not json", "application/json")
        else:
            self._send(404, b"nope")

    do_POST = do_PUT = do_PATCH = do_DELETE = _echo  # noqa: N815


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up early (timeouts, size limits) break the pipe on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def request(config: dict[str, Any], inputs: dict[str, Any] | None = None, limits: Limits = PRIVATE_OK, **node: Any) -> Any:
    definition = {"nodes": [{"id": "call", "type": "http_request", "config": config, **node}], "outputs": {"out": "nodes.call"}}
    return run(definition, inputs, limits=limits)


def ok(config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    result = request(config, inputs, **kwargs)
    assert result.status == "completed", result.error
    return result.outputs["out"]


def error(config: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    result = request(config, inputs, **kwargs)
    assert result.status == "failed", result.outputs
    assert result.error["node"] == "call"
    return result.error


# -------------------------------------------------------------------------------------- requests


def test_get_json(server: str) -> None:
    out = ok({"url": f"http://{server}/echo"})
    assert out["status"] == 200
    assert out["json"]["method"] == "GET"
    assert out["json"]["host"] == server
    assert out["text"] == ""
    assert out["truncated"] is False
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["x-extra"] == "1"
    assert all(name == name.lower() for name in out["headers"])


def test_post_json_with_templates_headers_and_query(server: str) -> None:
    config = {
        "method": "POST",
        "url": "http://" + server + "/echo?fixed=1",
        "headers": {"X-Token": "t-{{ inputs.token }}"},
        "query": {"name": "{{ inputs.name }}"},
        "json": {"greeting": "hi {{ inputs.name }}", "n": 3, "tags": ["{{ inputs.token }}", "plain"], "none": None},
    }
    out = ok(config, {"name": "Ada Lovelace", "token": "s3"})
    echo = out["json"]
    assert echo["method"] == "POST"
    assert echo["query"] == {"fixed": ["1"], "name": ["Ada Lovelace"]}
    assert echo["x_token"] == "t-s3"
    assert echo["content_type"] == "application/json"
    assert json.loads(echo["body"]) == {"greeting": "hi Ada Lovelace", "n": 3, "tags": ["s3", "plain"], "none": None}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_text_body_and_methods(server: str, method: str) -> None:
    config = {"method": method, "url": f"http://{server}/echo", "body": "name={{ inputs.name }}"}
    echo = ok(config, {"name": "x"})["json"]
    assert echo["method"] == method
    assert echo["body"] == "name=x"
    assert echo["content_type"] == "text/plain; charset=utf-8"


def test_configured_content_type_wins(server: str) -> None:
    config = {
        "method": "POST",
        "url": f"http://{server}/echo",
        "body": "a=1",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    }
    assert ok(config)["json"]["content_type"] == "application/x-www-form-urlencoded"


def test_text_response(server: str) -> None:
    out = ok({"url": f"http://{server}/text"})
    assert out["json"] is None
    assert out["text"] == "héllo"


def test_invalid_json_body_is_text(server: str) -> None:
    out = ok({"url": f"http://{server}/bad-json"})
    assert out["json"] is None
    assert out["text"] == "{not json"


def test_gzip_response_is_inflated(server: str) -> None:
    assert ok({"url": f"http://{server}/gzip"})["json"] == {"zipped": True}


def test_status_is_output_without_expect_status(server: str) -> None:
    assert ok({"url": f"http://{server}/status/503"})["status"] == 503


def test_unexpected_status(server: str) -> None:
    result = request({"url": f"http://{server}/status/500", "expect_status": [200, 204]}, retry={"attempts": 2})
    assert result.status == "failed"
    assert result.error["code"] == "unexpected_status"
    assert "returned 500, expected 200, 204" in result.error["message"]
    assert by_node(result)["call"]["attempts"] == 2  # a 5xx may be transient: retried


def test_redirects_are_not_followed(server: str) -> None:
    out = ok({"url": f"http://{server}/redirect"})
    assert out["status"] == 302
    assert out["headers"]["location"] == "http://169.254.169.254/latest/meta-data/"


# ------------------------------------------------------------------------------------------ limits


def test_response_too_large(server: str) -> None:
    err = error({"url": f"http://{server}/big?n=5000", "max_response_bytes": 1000})
    assert err["code"] == "response_too_large"
    assert "1000 bytes" in err["message"]


def test_response_limit_defaults_to_the_operator_limit(server: str) -> None:
    limits = Limits(allow_private_network=True, max_http_response_bytes=100)
    assert error({"url": f"http://{server}/big?n=101"}, limits=limits)["code"] == "response_too_large"
    assert len(ok({"url": f"http://{server}/big?n=100"}, limits=limits)["text"]) == 100


def test_truncate_instead_of_failing(server: str) -> None:
    out = ok({"url": f"http://{server}/big?n=5000", "max_response_bytes": 1000, "on_too_large": "truncate"})
    assert out["truncated"] is True
    assert out["text"] == "x" * 1000


def test_gzip_bomb_is_stopped_at_the_limit(server: str) -> None:
    assert error({"url": f"http://{server}/bomb", "max_response_bytes": 100_000})["code"] == "response_too_large"


def test_timeout(server: str) -> None:
    started = time.monotonic()
    err = error({"url": f"http://{server}/slow", "timeout_s": 0.2})
    assert time.monotonic() - started < 0.9
    assert err["code"] == "http_timeout"


def test_timeout_is_capped_by_the_node_deadline(server: str) -> None:
    started = time.monotonic()
    err = error({"url": f"http://{server}/slow", "timeout_s": 30}, timeout_s=0.2)
    assert time.monotonic() - started < 0.9
    assert err["code"] == "http_timeout"


def test_connection_refused_is_http_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = error({"url": f"http://127.0.0.1:{port}/"})
    assert err["code"] == "http_error"


def test_https_to_a_plain_http_server_is_http_error(server: str) -> None:
    assert error({"url": f"https://{server}/echo", "timeout_s": 2})["code"] == "http_error"


@pytest.mark.parametrize("url", ["ftp://example.com/file", "not a url", "http://", "/relative/path"])
def test_invalid_urls(url: str) -> None:
    err = error({"url": url})
    assert err["code"] == "invalid_url"


def test_header_injection_is_refused(server: str) -> None:
    err = error({"url": f"http://{server}/echo", "headers": {"X-Token": "{{ inputs.v }}"}}, {"v": "a\r\nX-Evil: 1"})
    assert err["code"] == "invalid_header"


# ------------------------------------------------------------------------------------------- ssrf


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.10:8080/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://100.64.0.1/", "non-public"),
        ("http://224.0.0.1/", "multicast"),
        ("http://2130706433/", "loopback"),
    ],
)
def test_ssrf_guard_refuses_non_public_addresses(url: str, reason: str) -> None:
    result = request({"url": url}, limits=Limits(), retry={"attempts": 3})
    assert result.status == "failed"
    assert result.error["code"] == "ssrf_blocked"
    assert f"a {reason} address" in result.error["message"]
    assert by_node(result)["call"]["attempts"] == 1  # not retryable


def test_any_private_address_among_several_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "mixed.example":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    err = error({"url": "http://mixed.example/"}, limits=Limits())
    assert err["code"] == "ssrf_blocked"
    assert "10.1.2.3" in err["message"]


def test_connects_to_the_checked_address_with_the_original_host(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            lookups.append(host)
            # A rebinding resolver would answer differently the second time; there must be no second time.
            address = "127.0.0.1" if len(lookups) == 1 else "203.0.113.9"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    port = server.rsplit(":", 1)[1]
    out = ok({"url": f"http://rebind.example:{port}/echo"}, limits=Limits(http_allowed_hosts=("rebind.example",)))
    assert out["json"]["host"] == f"rebind.example:{port}"
    assert lookups == ["rebind.example"]


def test_allowed_host_bypasses_the_address_check(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    # localhost may resolve to ::1 first, where nothing listens: the node tries the next address.
    out = ok({"url": f"http://LOCALHOST:{port}/echo"}, limits=Limits(http_allowed_hosts=("localhost",)))
    assert out["status"] == 200
    assert (
        error({"url": f"http://127.0.0.1:{port}/echo"}, limits=Limits(http_allowed_hosts=("localhost",)))["code"]
        == "ssrf_blocked"
    )


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.2", "loopback"),
        ("172.16.0.1", "private"),
        ("fc00::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # Python counts 240/4 as private too
        ("4000::1", "reserved"),
        ("::", "unspecified"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("192.0.2.1", "private"),  # documentation range
    ],
)
def test_blocked_reason(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


def test_dns_failure_is_http_error() -> None:
    assert error({"url": "http://no-such-host.invalid/"}, limits=Limits())["code"] == "http_error"


# ----------------------------------------------------------------------------------------- config


def test_config_errors_name_node_and_field() -> None:
    definition = {
        "nodes": [
            {
                "id": "call",
                "type": "http_request",
                "config": {
                    "url": "http://example.com/{{ broken",
                    "method": "TRACE",
                    "headers": {"Host": "evil", "Bad Name": "x"},
                    "max_response_bytes": 2_000_000,
                },
            }
        ]
    }
    errors = definition_errors(definition)
    fields = {error["field"] for error in errors}
    assert "nodes[0].config.method" in fields
    assert all(error["node"] == "call" for error in errors)
    definition["nodes"][0]["config"]["method"] = "GET"
    errors = definition_errors(definition)
    assert {error["field"] for error in errors} == {
        "nodes[0].config.url",
        "nodes[0].config.headers.Host",
        "nodes[0].config.headers.Bad Name",
        "nodes[0].config.max_response_bytes",
    }


def test_json_and_body_are_exclusive() -> None:
    definition = {"nodes": [{"id": "c", "type": "http_request", "config": {"url": "http://x", "json": {}, "body": "b"}}]}
    [err] = definition_errors(definition)
    assert err == {"node": "c", "field": "nodes[0].config.body", "message": 'give either "json" or "body", not both'}


def test_http_request_is_not_inline_eligible() -> None:
    from apps.engine import compile_workflow

    workflow = compile_workflow({"nodes": [{"id": "c", "type": "http_request", "config": {"url": "http://x"}}]})
    assert workflow.is_inline_eligible is False
