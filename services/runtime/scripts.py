"""How a repository's own scripts (`postBuild`, `start`) are run, as repo2docker runs them.

repo2docker runs them inside the image through a shell, so a script without a
`#!` line (common on mybinder.org) runs as a shell script. Here the script is
executed directly when it names its interpreter, and through bash otherwise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["script_command"]


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def script_command(script: Path) -> list[str]:
    """The command that runs `script`: itself if it starts with `#!`, else a shell reading it.

    Raises OSError when the script cannot be read.
    """
    with open(script, "rb") as fh:
        has_interpreter_line = fh.read(2) == b"#!"
    return [str(script)] if has_interpreter_line else [_shell(), str(script)]
