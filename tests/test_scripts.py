"""A repository's own scripts run as repo2docker runs them (services/runtime/scripts.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.runtime.scripts import SCRIPT_CANNOT_RUN, script_command


def _run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(script_command(script, args), capture_output=True, text=True, timeout=30)


@pytest.mark.slow
def test_a_script_naming_its_interpreter_runs_with_it(tmp_path: Path) -> None:
    script = tmp_path / "postBuild"
    script.write_text("#!/usr/bin/env python3\nimport sys\nprint('python', sys.argv[1:])\n")
    script.chmod(0o644)
    done = _run(script, "a", "b")
    assert done.returncode == 0 and done.stdout == "python ['a', 'b']\n"


@pytest.mark.slow
@pytest.mark.parametrize("body", ['echo "args: $*"\n', '\n#!/bin/sh\necho "args: $*"\n'])
def test_a_script_without_an_interpreter_line_runs_through_bash(tmp_path: Path, body: str) -> None:
    """What the kernel refuses (no `#!` on the first line, not executable) bash runs."""
    script = tmp_path / "start"
    script.write_text(body)
    script.chmod(0o644)
    done = _run(script, "a", "b")
    assert done.returncode == 0 and done.stdout.endswith("args: a b\n")


@pytest.mark.slow
def test_a_script_that_cannot_run_exits_with_the_shells_cannot_run_status(tmp_path: Path) -> None:
    script = tmp_path / "postBuild"
    script.write_text("#!/no/such/interpreter\necho never\n")
    done = _run(script)
    assert done.returncode in SCRIPT_CANNOT_RUN and "never" not in done.stdout
    assert "cannot execute" in done.stderr


@pytest.mark.slow
def test_a_pipe_in_place_of_a_script_does_not_block(tmp_path: Path) -> None:
    """A build can leave a named pipe where `start` was: running it must not hang."""
    script = tmp_path / "start"
    os.mkfifo(script)
    done = _run(script)
    assert done.returncode != 0
