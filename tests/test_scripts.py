"""A repository's own scripts run as repo2docker runs them (services/runtime/scripts.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.runtime.scripts import script_command


def test_a_script_naming_its_interpreter_runs_itself(tmp_path: Path) -> None:
    script = tmp_path / "postBuild"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    assert script_command(script) == [str(script)]


@pytest.mark.parametrize("body", ["echo hi\n", "", "\n#!/bin/sh\necho late shebang\n", "set -e\n[ -n \"$HOME\" ]\n"])
def test_a_script_without_an_interpreter_line_runs_through_a_shell(tmp_path: Path, body: str) -> None:
    script = tmp_path / "start"
    script.write_text(body)
    command = script_command(script)
    assert len(command) == 2 and Path(command[0]).name in ("bash", "sh") and command[1] == str(script)


@pytest.mark.slow
def test_the_shell_really_reads_a_script_that_exec_fails_on(tmp_path: Path) -> None:
    """What the kernel refuses (no `#!`, not executable) the shell command runs."""
    script = tmp_path / "postBuild"
    script.write_text('echo "args: $*"\n')
    script.chmod(0o644)
    with pytest.raises(OSError):
        subprocess.run([str(script)], check=False)
    done = subprocess.run([*script_command(script), "a", "b"], capture_output=True, text=True, check=True)
    assert done.stdout == "args: a b\n"


def test_a_script_that_cannot_be_read_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        script_command(tmp_path / "missing")
