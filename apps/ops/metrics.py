"""Platform metrics: counters kept in Redis so every node adds to one total, exposed at /metrics (Prometheus).

Counting is one HINCRBY: each counter is a Redis hash (`nexus:metrics:<name>`) whose fields are its label
values, in the order COUNTERS declares them, joined by `|` (percent-encoded, so a value never splits). A counter
with one label has the bare value as its field (`nexus:metrics:webhook_deliveries` → `delivered`). To add a
counter, declare it in COUNTERS, then call `counter_incr`; the collector exposes it as `nexus_<name>_total`.

Every figure here covers every tenant, so /metrics is for platform operators only (apps/ops/selectors.py `metrics_access`).
"""

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from apps.ops.redis_client import redis_client
from apps.ops.services import workers_live_count

logger = logging.getLogger(__name__)

METRICS_KEY_PREFIX = "nexus:metrics:"
_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class CounterSpec:
    documentation: str
    labels: tuple[str, ...]
    # Label sets exposed as 0 before anything is counted, so dashboards and alerts see the series from the start.
    always: tuple[tuple[str, ...], ...] = ()


COUNTERS: dict[str, CounterSpec] = {
    "rate_limited": CounterSpec(
        "Requests refused with 429: `scope` is the limit that refused (application, api_key, user, tenant, login, "
        "oauth, or a helper's own); `tenant` is empty before a tenant is known (login, OAuth token)",
        ("tenant", "scope"),
    ),
    "webhook_deliveries": CounterSpec("Webhook deliveries by status", ("status",), always=(("delivered",), ("failed",))),
}


def counter_key(name: str) -> str:
    """The Redis hash holding counter `name`."""
    if name not in COUNTERS:
        raise ValueError(f"unknown counter {name!r}: declare it in apps.ops.metrics.COUNTERS")
    return METRICS_KEY_PREFIX + name


def counter_field(name: str, labels: Mapping[str, str]) -> str:
    """The hash field for one label set of counter `name`: its values in declared order, joined by `|`."""
    spec = COUNTERS.get(name)
    if spec is None:
        raise ValueError(f"unknown counter {name!r}: declare it in apps.ops.metrics.COUNTERS")
    if set(labels) != set(spec.labels):
        raise ValueError(f"counter {name!r} takes the labels {', '.join(spec.labels)}, got {', '.join(sorted(labels))}")
    return _SEPARATOR.join(quote(str(labels[label]), safe="") for label in spec.labels)


def field_labels(name: str, field: str) -> tuple[str, ...] | None:
    """The label values encoded in `field` of counter `name`; None when it does not have one value per label."""
    values = tuple(unquote(part) for part in field.split(_SEPARATOR))
    return values if len(values) == len(COUNTERS[name].labels) else None


def counter_incr(name: str, labels: Mapping[str, str], amount: int = 1) -> None:
    """Add `amount` to counter `name` for `labels`, on every node's behalf. Never raises for Redis: a count lost
    while Redis is down is logged, the caller's work goes on. An undeclared counter or wrong labels raise."""
    key, field = counter_key(name), counter_field(name, labels)
    try:
        redis_client().hincrby(key, field, amount)
    except redis.RedisError as error:
        logger.warning("metrics: could not count %s%s: %s", name, dict(labels), error)


class RedisCollector:
    """Reads the counters from Redis at each scrape (prometheus_client's custom collector protocol)."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("nexus_up", "1 while this Nexus node answers", value=1)
        client = redis_client()
        try:
            hashes = {name: client.hgetall(counter_key(name)) for name in COUNTERS}
            workers = workers_live_count()
        except redis.RedisError as error:
            logger.warning("metrics: Redis unreachable, counters left out of this scrape: %s", error)
            yield GaugeMetricFamily("nexus_redis_up", "1 when the shared counters in Redis could be read", value=0)
            return
        yield GaugeMetricFamily("nexus_redis_up", "1 when the shared counters in Redis could be read", value=1)
        yield GaugeMetricFamily("nexus_workers", "Celery workers that reported in the last 15 s", value=workers)
        for name, spec in COUNTERS.items():
            family = CounterMetricFamily(f"nexus_{name}", spec.documentation, labels=spec.labels)
            values: dict[tuple[str, ...], float] = dict.fromkeys(spec.always, 0.0)
            for raw_field, raw_value in hashes[name].items():
                label_values = field_labels(name, raw_field.decode() if isinstance(raw_field, bytes) else raw_field)
                if label_values is None:
                    continue  # not written by counter_incr: nothing sensible to label it with
                values[label_values] = values.get(label_values, 0.0) + float(raw_value)
            for label_values, value in sorted(values.items()):
                family.add_metric(list(label_values), value)
            yield family


_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisCollector())


def metrics_exposition(*, accept: str = "") -> tuple[bytes, str]:
    """The scrape body and its content type, in the format the scraper's Accept header asks for."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_registry), content_type
