"""The installation's secret keys (apps/ops/installation_keys.py): made once into the data directory with mode
600, reused by every later start, the same for processes that start at once; and the local settings use them,
never a key written in the source."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.ops.installation_keys import PUBLISHED_SECRET_KEYS, installation_keys

REPO = Path(__file__).resolve().parents[3]
OLD_LOCAL_DEFAULT = "local-development-only-secret-key-not-for-production-use-0123456789"


def test_the_first_call_writes_random_keys_readable_by_the_owner_only(tmp_path):
    data_dir = tmp_path / "var"
    keys = installation_keys(data_dir=data_dir)
    path = data_dir / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == keys
    assert set(keys) == {"secret_key", "jwt_signing_key"}
    assert len(keys["secret_key"]) >= 50 and len(keys["jwt_signing_key"]) >= 32
    assert keys["secret_key"] != keys["jwt_signing_key"]
    assert sorted(p.name for p in data_dir.iterdir()) == ["secrets.json"]  # no temporary file left behind


def test_later_calls_reuse_the_keys_and_another_data_dir_gets_others(tmp_path):
    first = installation_keys(data_dir=tmp_path / "a")
    assert installation_keys(data_dir=tmp_path / "a") == first
    other = installation_keys(data_dir=tmp_path / "b")
    assert other["secret_key"] != first["secret_key"] and other["jwt_signing_key"] != first["jwt_signing_key"]


def test_processes_starting_at_once_agree_on_one_set_of_keys(tmp_path):
    data_dir = tmp_path / "var"
    start_at = time.time() + 1.5
    script = (
        "import json, sys, time; from pathlib import Path; from apps.ops.installation_keys import installation_keys;"
        f"time.sleep(max(0, {start_at} - time.time()));"
        f"print(json.dumps(installation_keys(data_dir=Path({str(data_dir)!r}))))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(12)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * 12, [err for _, err in results]
    seen = {out for out, _ in results}
    assert len(seen) == 1
    assert json.loads(seen.pop()) == json.loads((data_dir / "secrets.json").read_text())
    assert sorted(p.name for p in data_dir.iterdir()) == ["secrets.json"]


def test_a_key_file_others_can_read_is_refused(tmp_path):
    installation_keys(data_dir=tmp_path)
    (tmp_path / "secrets.json").chmod(0o644)
    with pytest.raises(ImproperlyConfigured, match=r"readable by other users \(mode 644\): chmod 600 it"):
        installation_keys(data_dir=tmp_path)


def _local_settings(env: dict) -> subprocess.CompletedProcess:
    script = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.SECRET_KEY, s.SIMPLE_JWT['SIGNING_KEY']]))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("NEXUS_SECRET_KEY", "NEXUS_JWT_SIGNING_KEY", "NEXUS_ENV")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**clean, "DJANGO_SETTINGS_MODULE": "nexus_site.settings.local", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_local_settings_take_their_keys_from_the_data_dir_not_from_the_source(tmp_path):
    first = _local_settings({"NEXUS_DATA_DIR": str(tmp_path / "one")})
    again = _local_settings({"NEXUS_DATA_DIR": str(tmp_path / "one")})
    other = _local_settings({"NEXUS_DATA_DIR": str(tmp_path / "two")})
    assert first.returncode == again.returncode == other.returncode == 0, first.stderr + other.stderr
    stored = json.loads((tmp_path / "one" / "secrets.json").read_text())
    assert json.loads(first.stdout) == [stored["secret_key"], stored["jwt_signing_key"]]
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert json.loads(other.stdout)[0] != json.loads(first.stdout)[0]
    assert json.loads(other.stdout)[1] != json.loads(first.stdout)[1]


@pytest.mark.parametrize("published", sorted(PUBLISHED_SECRET_KEYS))
def test_local_settings_refuse_a_key_published_in_the_source(tmp_path, published):
    result = _local_settings({"NEXUS_DATA_DIR": str(tmp_path), "NEXUS_SECRET_KEY": published})
    assert result.returncode != 0
    assert "ImproperlyConfigured: NEXUS_SECRET_KEY is a key published in the Nexus source" in result.stderr
    assert not (tmp_path / "secrets.json").exists()


def test_old_local_default_is_among_the_refused_keys():
    assert OLD_LOCAL_DEFAULT in PUBLISHED_SECRET_KEYS
