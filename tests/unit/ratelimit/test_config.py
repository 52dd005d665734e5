"""NEXUS_RATE_LIMIT_PLANS: the default table, overrides laid over it, and refused values."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.ratelimit.config import DEFAULT_PLANS, rate_limit_plans


def test_without_override_the_default_table():
    assert rate_limit_plans("{}") == DEFAULT_PLANS
    assert rate_limit_plans(None) == DEFAULT_PLANS


def test_a_new_application_gets_fewer_than_150_calls_a_minute_on_every_plan():
    assert all(plan["app"] < 150 for plan in DEFAULT_PLANS.values())


def test_the_benchmark_tenant_plan_is_far_above_what_one_installation_serves():
    # hello-world on 2 cores: ~1,900 requests/s at best, one key, one tenant (bench/RESULTS.md)
    assert DEFAULT_PLANS["enterprise"]["credential"] >= 10 * 1_900 * 60 / 2
    assert DEFAULT_PLANS["enterprise"]["tenant"] >= DEFAULT_PLANS["enterprise"]["credential"]


def test_an_override_changes_only_the_fields_it_gives_and_may_add_plans():
    plans = rate_limit_plans('{"standard": {"tenant": 60000}, "gold": {"tenant": 5, "credential": 4, "app": 3}}')
    assert plans["standard"] == {**DEFAULT_PLANS["standard"], "tenant": 60000}
    assert plans["gold"] == {"tenant": 5, "credential": 4, "app": 3}
    assert plans["free"] == DEFAULT_PLANS["free"]
    assert DEFAULT_PLANS["standard"]["tenant"] == 30_000  # the table itself is untouched


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"standard": 5}', "must be an object"),
        ('{"standard": {"burst": 5}}', "unknown field(s) burst"),
        ('{"gold": {"tenant": 5}}', "is a new plan: it needs credential, app"),
        ('{"standard": {"tenant": 0}}', "at least 1"),
        ('{"standard": {"app": 1.5}}', "whole number"),
        ('{"standard": {"app": true}}', "whole number"),
    ],
)
def test_bad_overrides_are_refused_at_start(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(").replace(")", r"\)")):
        rate_limit_plans(raw)
