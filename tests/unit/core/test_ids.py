"""Public ids are prefixed, unique and sort by creation time."""

import time

from apps.core.ids import has_prefix, new_id


def test_ids_are_prefixed_unique_and_time_ordered():
    first = new_id("run")
    time.sleep(0.002)
    later = [new_id("run") for _ in range(1000)]
    assert has_prefix(first, "run") and len(first) == 30
    assert len(set(later)) == 1000
    assert all(first < other for other in later)


def test_ids_of_one_process_sort_in_creation_order_within_a_millisecond():
    # The event log replays `id > since`: a burst published in one millisecond must keep its order.
    burst = [new_id("evt") for _ in range(5000)]
    assert burst == sorted(burst) and len(set(burst)) == 5000
