"""Forgetting per-process caches by topic (apps/core/cache.py): subscribers of a topic are emptied, others kept."""

import pytest

from apps.core.cache import TTLCache, cache_forget, cache_forget_all, cache_subscribe


def test_forgetting_a_topic_empties_its_subscribers_and_no_others():
    credentials = TTLCache(ttl_s=60, topics=("credentials",))
    both = TTLCache(ttl_s=60, topics=("credentials", "tenants"))
    deployments = TTLCache(ttl_s=60, topics=("deployments",))
    for cache in (credentials, both, deployments):
        cache.set("k", "v")

    cache_forget("tenants")

    assert (credentials.get("k"), both.get("k"), deployments.get("k")) == ("v", None, "v")
    cache_forget("credentials")
    assert (credentials.get("k"), deployments.get("k")) == (None, "v")


def test_forgetting_every_topic_empties_every_subscriber():
    caches = [TTLCache(ttl_s=60, topics=(topic,)) for topic in ("credentials", "tenants", "deployments")]
    for cache in caches:
        cache.set("k", "v")

    cache_forget_all()

    assert [cache.get("k") for cache in caches] == [None, None, None]


def test_a_plain_function_subscribes_once_and_runs_once_per_forget():
    calls = []

    def forget():
        calls.append(1)

    cache_subscribe(forget, topics=("tenants", "credentials"))
    cache_subscribe(forget, topics=("tenants",))

    cache_forget("tenants", "credentials")

    assert calls == [1]


def test_an_unknown_topic_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown cache topic tenant; one of credentials, deployments, tenants"):
        cache_forget("tenant")
    with pytest.raises(ValueError, match="unknown cache topic workflows"):
        TTLCache(ttl_s=60, topics=("workflows",))
