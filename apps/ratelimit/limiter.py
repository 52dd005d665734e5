"""The limiter: GCRA over one or more limits, checked and charged atomically in Redis in one round trip.

Every node counts in the same Redis, against Redis's own clock, so a limit holds across a cluster. The check is
one EVALSHA of gcra.lua (loaded once per process, again if Redis forgets it). A limit of L per period P admits
a burst of L, then one request every P / L: a refused client that waits `Retry-After` then succeeds, unless
other clients of the same limit took the freed slot first.

Why the round trip bypasses redis-py's command API: measured on the 2-core box (bench/RESULTS.md),
`client.evalsha(...)` costs ~90 µs of CPU per call in redis-py 8 (pool lock and liveness poll, argument
packing, the pure-Python reply parser), against ~15 µs for writing bytes packed once per credential on an
idle connection and reading the script's fixed-shape reply (an array of integers) with `_read_reply`. redis-py
still opens every connection (URL, TLS, AUTH, SELECT) and loads the script.

Fail open: when Redis cannot be reached, requests pass unlimited (except logins: the middleware refuses them
while their throttle cannot be checked, apps/ratelimit/middleware.py). That is logged once per outage, and the
process does not try Redis again for NEXUS_RATE_LIMIT_RETRY_S, so an outage costs a request at most one
timeout (NEXUS_RATE_LIMIT_TIMEOUT_S) per retry period instead of one per request.
"""

import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.signals import setting_changed

from apps.ops.metrics import counter_field, counter_key

logger = logging.getLogger(__name__)

SCRIPT = (Path(__file__).parent / "gcra.lua").read_text()
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()
_MAX_COMMANDS = 10_000


@dataclass(frozen=True, slots=True)
class Limit:
    """`limit` requests per `period_s` (also the largest burst) for everything counted under `key`."""

    key: str
    limit: int
    period_s: float
    # What the limit applies to, named in the 429 and in the `scope` label of nexus_rate_limited_total.
    scope: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check. The figures are those of the limit that refused the request or, when every
    limit admitted it, of the one with the fewest requests left (the IETF RateLimit header fields draft)."""

    allowed: bool
    limit: int
    period_s: float
    remaining: int
    reset_s: int  # seconds until that limit admits a full burst again
    retry_after_s: int  # refused: whole seconds to wait, at least 1; admitted: 0
    retry_after_us: int  # refused: the exact wait, in microseconds
    scope: str

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def _arg(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def pack_command(*args: Any) -> bytes:
    """One Redis command in the wire protocol (RESP)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def parse_reply(data: bytes) -> list[int] | None:
    """The script's reply (an array of integers) from the bytes read so far; None while incomplete.
    An error reply raises redis.ResponseError (NoScriptError when Redis does not have the script)."""
    end = data.find(b"\r\n")
    if end < 0:
        return None
    kind = data[:1]
    if kind == b"-":
        message = data[1:end].decode(errors="replace")
        raise redis.exceptions.NoScriptError(message) if message.startswith("NOSCRIPT") else redis.ResponseError(message)
    if kind != b"*":
        raise redis.ConnectionError(f"unexpected reply from Redis to the rate-limit script: {data[:40]!r}")
    lines = data.split(b"\r\n")
    count = int(lines[0][1:])
    if len(lines) < count + 2:  # the header, `count` integers, and what follows the last \r\n
        return None
    values = []
    for line in lines[1 : count + 1]:
        if line[:1] != b":":
            raise redis.ConnectionError(f"unexpected element in the rate-limit script's reply: {line[:40]!r}")
        values.append(int(line[1:]))
    return values


def _read_reply(sock) -> list[int]:
    data = sock.recv(1024)
    while True:
        if not data:
            raise redis.ConnectionError("Redis closed the connection")
        reply = parse_reply(data)
        if reply is not None:
            return reply
        more = sock.recv(1024)
        if not more:
            raise redis.ConnectionError("Redis closed the connection")
        data += more


def _ceil_s(microseconds: int) -> int:
    return -(-microseconds // 1_000_000)


class RedisLimiter:
    """Checks limits against one Redis. One per process (`limiter()`); tests make more to play several nodes."""

    def __init__(self, *, url: str, prefix: str, timeout_s: float, retry_s: float):
        self.url = url
        self.prefix = prefix
        self.retry_s = retry_s
        self.client = redis.Redis.from_url(url, protocol=2, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        # Connections (with their sockets) not in use: one per thread that is checking at once.
        self._idle: deque[tuple[Any, Any]] = deque()
        self._commands: dict[tuple, bytes] = {}
        self._script_loaded = False
        self._down_until = 0.0

    # ------------------------------------------------------------------------------------------ checks

    def check(self, limits: Sequence[Limit], *, tenant: str = "", cost: int = 1) -> Decision | None:
        """Charge `cost` to every limit if all of them admit it, else to none. None when Redis is unreachable
        (fail open). `tenant` labels a refusal in nexus_rate_limited_total (empty when there is none)."""
        if self._down_until and time.monotonic() < self._down_until:
            return None
        command_key = (tuple(limits), tenant, cost)
        command = self._commands.get(command_key)
        if command is None:
            command = self._command(limits, tenant=tenant, cost=cost)
            if len(self._commands) >= _MAX_COMMANDS:
                self._commands.clear()
            self._commands[command_key] = command
        try:
            reply = self._evaluate(command)
        except (redis.RedisError, OSError, ValueError) as error:
            self._failed(error)
            return None
        if self._down_until:
            self._down_until = 0.0
            logger.warning("rate limits: Redis at %s answers again; limits are enforced", self._safe_url())
        return _decision(reply, limits)

    def refund(self, limits: Sequence[Limit], *, tenant: str = "") -> None:
        """Give back one request to each limit (a login that succeeded counts no failure)."""
        self.check(limits, tenant=tenant, cost=-1)

    def _command(self, limits: Sequence[Limit], *, tenant: str, cost: int) -> bytes:
        if not limits:
            raise ValueError("a check needs at least one limit")
        args: list[Any] = ["EVALSHA", SCRIPT_SHA, len(limits) + 1]
        args.extend(self.prefix + limit.key for limit in limits)
        args.extend([counter_key("rate_limited"), len(limits), cost])
        for limit in limits:
            if limit.limit < 1 or limit.period_s <= 0:
                raise ValueError(f"a rate limit needs at least 1 request per a positive period, not {limit}")
            args.extend(
                [
                    limit.limit,
                    int(limit.period_s * 1_000_000),
                    counter_field("rate_limited", {"tenant": tenant, "scope": limit.scope}),
                ]
            )
        return pack_command(*args)

    # ------------------------------------------------------------------------------------------- Redis

    def _evaluate(self, command: bytes) -> list[int]:
        if not self._script_loaded:
            self._load_script()
        try:
            return self._round_trip(command)
        except redis.exceptions.NoScriptError:
            self._load_script()  # Redis restarted or its script cache was flushed
            return self._round_trip(command)

    def _load_script(self) -> None:
        if self.client.script_load(SCRIPT) != SCRIPT_SHA:
            raise redis.ResponseError("Redis returned another SHA1 for the rate-limit script")
        self._script_loaded = True

    def _round_trip(self, command: bytes) -> list[int]:
        try:
            connection, sock = self._idle.pop()
        except IndexError:
            connection = self.client.connection_pool.make_connection()
            connection.connect()
            # make_connection() is typed as redis' ConnectionInterface, which leaves out the _get_socket() every concrete
            # connection class has: the stubs are narrower than what the pool returns.
            sock = connection._get_socket()  # type: ignore[attr-defined]
        try:
            sock.sendall(command)
            reply = _read_reply(sock)
        except redis.ResponseError:
            self._idle.append((connection, sock))  # the error reply was read whole: the connection is fine
            raise
        except BaseException:
            connection.disconnect()
            raise
        self._idle.append((connection, sock))
        return reply

    def _failed(self, error: Exception) -> None:
        if not self._down_until:
            logger.warning(
                "rate limits are NOT enforced: Redis at %s failed (%s: %s); requests pass unlimited, next try in %.0f s",
                self._safe_url(),
                type(error).__name__,
                error,
                self.retry_s,
            )
        self._down_until = time.monotonic() + self.retry_s

    def _safe_url(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}/{kwargs.get('db', 0)}"

    def close(self) -> None:
        while self._idle:
            connection, _ = self._idle.pop()
            connection.disconnect()
        self.client.close()


def _decision(reply: list[int], limits: Sequence[Limit]) -> Decision:
    allowed, refusing, wait_us = reply[0], reply[1], reply[2]
    if allowed:
        index = 0
        for other in range(1, len(limits)):
            if reply[3 + 2 * other] < reply[3 + 2 * index]:
                index = other
    else:
        index = refusing - 1
    limit = limits[index]
    return Decision(
        allowed=bool(allowed),
        limit=limit.limit,
        period_s=limit.period_s,
        remaining=reply[3 + 2 * index],
        reset_s=_ceil_s(reply[4 + 2 * index]),
        retry_after_s=0 if allowed else max(1, _ceil_s(wait_us)),
        retry_after_us=0 if allowed else wait_us,
        scope=limit.scope,
    )


_current: RedisLimiter | None = None


def limiter() -> RedisLimiter:
    """This process's limiter for the configured Redis (a new one after fork or a settings change)."""
    global _current
    if _current is None:
        _current = RedisLimiter(
            url=settings.NEXUS_RATE_LIMIT_REDIS_URL,
            prefix=settings.NEXUS_RATE_LIMIT_PREFIX,
            timeout_s=settings.NEXUS_RATE_LIMIT_TIMEOUT_S,
            retry_s=settings.NEXUS_RATE_LIMIT_RETRY_S,
        )
    return _current


def check(key: str, limit: int, period: float, *, scope: str = "custom", tenant: str = "") -> Decision | None:
    """Count one request under `key` against `limit` per `period` seconds, shared by every node.

    For callers with their own limits (`check(f"oauth:{client_id}", 10, 300, scope="oauth")`). None when Redis
    is unreachable: the caller should let the request through.
    """
    return limiter().check((Limit(key=key, limit=limit, period_s=period, scope=scope),), tenant=tenant)


def _forget_in_child() -> None:
    # A forked child must not share its parent's sockets: it opens its own on first use.
    global _current
    _current = None


def _settings_changed(*, setting: str, **kwargs) -> None:
    global _current
    if setting.startswith("NEXUS_RATE_LIMIT_") and _current is not None:
        _current.close()
        _current = None


os.register_at_fork(after_in_child=_forget_in_child)
setting_changed.connect(_settings_changed)
