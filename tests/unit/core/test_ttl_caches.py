"""Every per-process cache is a TTLCache: a time-to-live that can follow a setting, forgetting one key, and no
hand-rolled (expiry, value) dictionaries left in the apps."""

import re
import time
from pathlib import Path

from apps.core.cache import TTLCache

APPS = Path(__file__).resolve().parents[3] / "apps"


def test_a_time_to_live_read_at_each_set(monkeypatch):
    clock = {"now": 100.0}
    monkeypatch.setattr(time, "monotonic", lambda: clock["now"])
    ttl = {"s": 5.0}
    cache = TTLCache(ttl_s=lambda: ttl["s"])
    cache.set("a", 1)
    ttl["s"] = 1.0
    cache.set("b", 2)
    clock["now"] += 2
    assert (cache.get("a"), cache.get("b")) == (1, None)
    ttl["s"] = 0
    cache.set("c", 3)
    assert cache.get("c") is None


def test_forgetting_one_key_keeps_the_others():
    cache = TTLCache(ttl_s=60)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.forget("a")
    cache.forget("missing")
    assert (cache.get("a"), cache.get("b")) == (None, 2)


def test_no_hand_rolled_expiry_caches_remain():
    hand_rolled = re.compile(r"dict\[[^=\n]*tuple\[float")
    offenders = sorted(str(p.relative_to(APPS)) for p in APPS.rglob("*.py") if hand_rolled.search(p.read_text()))
    assert offenders == ["core/cache.py"]
