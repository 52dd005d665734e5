"""The README's first five minutes, run verbatim on a fresh installation: the README cannot drift from the product.

The commands are read from the README's first `bash` block under "## The first five minutes" and run one by one
with bash, as a newcomer would after `make run`: from a directory whose `var/` is the installation's data
directory, with this checkout's `.venv/bin` on the PATH. The one change is the address: the README's
`127.0.0.1:8000` becomes this installation's free port. A trailing `# {...}` comment that is JSON is what the
command prints, and is checked.
"""

import json
import os
import re
import subprocess

import pytest

from tests.e2e.conftest import REPO, Installation

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README_ADDRESS = "http://127.0.0.1:8000"


def readme_journey(text: str) -> list[tuple[str, object]]:
    """(command, expected JSON or None) for each command of the first-five-minutes block, continuations joined."""
    section = text.split("## The first five minutes", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the README's first five minutes have no ```bash block"
    commands: list[tuple[str, object]] = []
    pending = ""
    for line in block.group(1).splitlines():
        if pending:
            line = pending + " " + line.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        pending = ""
        command, _, comment = line.partition("  # ")
        if not command.strip():
            continue
        try:
            expected = json.loads(comment.strip()) if comment.strip().startswith("{") else None
        except json.JSONDecodeError:
            expected = None
        commands.append((command.strip(), expected))
    return commands


def test_the_readme_journey_parses_into_the_commands_a_newcomer_types():
    journey = readme_journey((REPO / "README.md").read_text())
    assert [command.split()[0] for command, _ in journey][:2] == ["nexus", "nexus"]
    assert any(command.startswith("curl ") and README_ADDRESS in command for command, _ in journey)
    assert any(expected is not None for _, expected in journey), "at least one command says what it prints"


def test_the_readme_first_five_minutes_run_verbatim(tmp_path):
    installation = Installation(tmp_path, redis_db=8)
    try:
        installation.start()
        workdir = tmp_path / "newcomer"
        workdir.mkdir()
        (workdir / "var").symlink_to(installation.data_dir)
        env = {**installation.env, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
        journey = readme_journey((REPO / "README.md").read_text())
        for command, expected in journey:
            result = subprocess.run(
                ["bash", "-c", "set -o pipefail; " + command.replace(README_ADDRESS, installation.base_url)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
            if expected is not None:
                assert _printed(expected, result.stdout), f"{command}: the README says {expected}, it printed:\n{result.stdout}"
    finally:
        installation.stop()
        installation.drop()


def _printed(expected: dict, stdout: str) -> bool:
    """Every key and value of the README's comment is in what the command printed: as JSON, or in a table."""
    try:
        printed = json.loads(stdout)
    except json.JSONDecodeError:
        return all(str(key) in stdout and str(value) in stdout for key, value in expected.items())
    return isinstance(printed, dict) and all(printed.get(key) == value for key, value in expected.items())


def test_setup_links_nexus_into_a_local_bin_on_the_path_and_leaves_another_alone(tmp_path):
    local_bin = tmp_path / ".local" / "bin"
    local_bin.mkdir(parents=True)
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{local_bin}:{os.environ['PATH']}"}
    setup = [str(REPO / "deploy" / "scripts" / "setup.sh")]

    subprocess.run(setup, env=env, check=True, capture_output=True, timeout=300)
    assert (local_bin / "nexus").resolve() == (REPO / ".venv" / "bin" / "nexus").resolve()
    typed = subprocess.run(["nexus", "--help"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert typed.returncode == 0 and "workflow" in typed.stdout

    (local_bin / "nexus").unlink()
    (local_bin / "nexus").symlink_to(tmp_path / "another-checkout-nexus")
    subprocess.run(setup, env=env, check=True, capture_output=True, timeout=300)
    assert os.readlink(local_bin / "nexus") == str(tmp_path / "another-checkout-nexus")
