"""`make run`'s banner says whether `nexus` as typed is this checkout's command, or how to put it on the PATH."""

import os
from pathlib import Path

from apps.cli.commands.up import cli_path_hint


def _checkout(root: Path) -> Path:
    command = root / ".venv" / "bin" / "nexus"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    return command


def test_a_link_on_the_path_to_this_checkouts_command_is_named(tmp_path):
    command = _checkout(tmp_path / "repo")
    local_bin = tmp_path / "home" / ".local" / "bin"
    local_bin.mkdir(parents=True)
    (local_bin / "nexus").symlink_to(command)
    hint = cli_path_hint(path=str(local_bin), repo=tmp_path / "repo")
    assert hint == f"CLI        nexus   (on your PATH: {local_bin / 'nexus'})"


def test_without_it_the_banner_prints_the_export_line(tmp_path):
    command = _checkout(tmp_path / "repo")
    hint = cli_path_hint(path=str(tmp_path / "empty"), repo=tmp_path / "repo")
    assert hint == f'CLI        {command}   (put it on your PATH: export PATH="{command.parent}:$PATH")'


def test_another_checkouts_nexus_on_the_path_is_pointed_out(tmp_path):
    _checkout(tmp_path / "repo")
    other = _checkout(tmp_path / "other")
    hint = cli_path_hint(path=os.pathsep.join([str(other.parent)]), repo=tmp_path / "repo")
    assert hint.endswith(f"; `nexus` on your PATH is another one: {other})")
