"""The one SSRF guard: pure Python, every address judged, the first non-public one named."""

import subprocess
import sys

import pytest

from apps.core.netguard import UnresolvableHost, first_blocked, resolve


def test_the_guard_imports_no_django():
    code = "import sys, apps.core.netguard; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_first_non_public_address_is_named():
    assert first_blocked(["93.184.216.34", "2606:4700::1111"]) is None
    assert first_blocked(["93.184.216.34", "10.1.2.3", "127.0.0.1"]) == ("10.1.2.3", "private")
    assert first_blocked(["::ffff:127.0.0.1"]) == ("::ffff:127.0.0.1", "loopback")


def test_resolving_gives_every_address_once_or_says_why_not():
    assert resolve("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(UnresolvableHost) as refused:
        resolve("no-such-host.invalid", 80)
    assert str(refused.value).startswith("cannot resolve 'no-such-host.invalid': ")
