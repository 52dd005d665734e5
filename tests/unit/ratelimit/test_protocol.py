"""The limiter's own Redis wire handling: packing a command, reading the script's reply, and the decision."""

import pytest
import redis

from apps.ratelimit.limiter import Decision, Limit, _decision, pack_command, parse_reply


def test_pack_command_is_resp():
    assert pack_command("EVALSHA", b"ab", 2, "k:é") == b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$4\r\nk:\xc3\xa9\r\n"


def test_a_whole_reply_is_read_and_a_partial_one_waits():
    whole = b"*5\r\n:1\r\n:0\r\n:0\r\n:99\r\n:600000\r\n"
    assert parse_reply(whole) == [1, 0, 0, 99, 600000]
    for cut in range(1, len(whole)):
        assert parse_reply(whole[:cut]) is None, cut


def test_negative_integers_are_read():
    assert parse_reply(b"*2\r\n:-5\r\n:7\r\n") == [-5, 7]


def test_error_replies_raise_and_noscript_is_told_apart():
    with pytest.raises(redis.exceptions.NoScriptError):
        parse_reply(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
    with pytest.raises(redis.ResponseError, match="OOM command not allowed"):
        parse_reply(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")


def test_anything_else_is_a_broken_connection():
    with pytest.raises(redis.ConnectionError):
        parse_reply(b"$3\r\nabc\r\n")
    with pytest.raises(redis.ConnectionError):
        parse_reply(b"*1\r\n$1\r\nx\r\n")


LIMITS = (Limit("k:a", 100, 60, "api_key"), Limit("t:1", 1000, 60, "tenant"))


def test_an_admitted_request_reports_the_limit_nearest_to_running_out():
    decision = _decision([1, 0, 0, 99, 600_000, 12, 60_000_000], LIMITS)
    assert decision == Decision(
        allowed=True, limit=1000, period_s=60, remaining=12, reset_s=60, retry_after_s=0, retry_after_us=0, scope="tenant"
    )
    assert decision.headers() == {"RateLimit-Limit": "1000", "RateLimit-Remaining": "12", "RateLimit-Reset": "60"}


def test_a_refused_request_reports_the_refusing_limit_and_a_whole_retry_after():
    decision = _decision([0, 1, 400_001, 0, 60_000_000, 998, 120_000], LIMITS)
    assert (decision.allowed, decision.scope, decision.limit, decision.remaining) == (False, "api_key", 100, 0)
    assert (decision.retry_after_s, decision.retry_after_us, decision.reset_s) == (1, 400_001, 60)
    assert decision.headers()["Retry-After"] == "1"
    # rounded up, never down: waiting Retry-After is always enough
    assert _decision([0, 2, 2_000_001, 5, 1, 0, 9], LIMITS).retry_after_s == 3
