"""Counters in Redis hashes: label values encoded in the field, in declared order, never split by a value."""

import pytest

from apps.ops.metrics import counter_field, counter_key, field_labels


def test_fields_hold_the_label_values_in_declared_order():
    assert counter_key("rate_limited") == "nexus:metrics:rate_limited"
    assert counter_field("rate_limited", {"scope": "api_key", "tenant": "acme"}) == "acme|api_key"
    assert counter_field("webhook_deliveries", {"status": "delivered"}) == "delivered"
    assert field_labels("rate_limited", "acme|api_key") == ("acme", "api_key")
    assert field_labels("rate_limited", "|login") == ("", "login")


def test_a_value_with_the_separator_survives_the_round_trip():
    field = counter_field("rate_limited", {"tenant": "a|b%c", "scope": "x"})
    assert field.count("|") == 1
    assert field_labels("rate_limited", field) == ("a|b%c", "x")


def test_a_field_of_another_shape_is_not_read():
    assert field_labels("rate_limited", "only-one") is None


def test_undeclared_counters_and_wrong_labels_are_programming_errors():
    with pytest.raises(ValueError, match="unknown counter 'made_up'"):
        counter_key("made_up")
    with pytest.raises(ValueError, match="takes the labels tenant, scope"):
        counter_field("rate_limited", {"tenant": "acme"})
