"""The one client-address rule both doors use (apps/audit/context.py `client_ip`): behind a trusted proxy, the
last X-Forwarded-For entry, which the proxy appended; never an entry the client wrote."""

from apps.audit.context import client_ip


def test_behind_the_proxy_the_last_entry_counts_whether_headers_are_joined_or_kept_apart():
    # WSGI joins repeated headers into one value; ASGI keeps each line: HAProxy's own line comes last
    assert client_ip("127.0.0.1", "6.6.6.6, 203.0.113.9") == "203.0.113.9"
    assert client_ip("127.0.0.1", ["6.6.6.6", "203.0.113.9"]) == "203.0.113.9"
    assert client_ip("127.0.0.1", ["6.6.6.6, 7.7.7.7", "203.0.113.9"]) == "203.0.113.9"


def test_without_a_forwarded_for_or_from_an_untrusted_peer_the_peer_counts():
    assert client_ip("127.0.0.1", []) == "127.0.0.1"
    assert client_ip("127.0.0.1", None) == "127.0.0.1"
    assert client_ip("198.51.100.7", ["6.6.6.6"]) == "198.51.100.7"
    assert client_ip("127.0.0.1", ["not-an-ip"]) == "127.0.0.1"
