"""How a repository's own scripts (`postBuild`, `start`) are run, as repo2docker runs them.

repo2docker runs them inside the image through a shell, so a script without a
`#!` line (common on mybinder.org) runs as a shell script. Here a small bash
program decides, inside the sandbox the script runs in: it executes the script
directly when it names its interpreter, and through bash otherwise. The service
itself never opens, reads or changes a repository's script: the file is the
repository's, and may be a link to a secret, a pipe that blocks, or be swapped
between a check and its use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

__all__ = ["script_command", "SCRIPT_CANNOT_RUN"]

# $0 is the script, "$@" its arguments (the server command for `start`).
_RUN_SCRIPT = (
    'if [ ! -f "$0" ]; then echo "$0 is not a regular file" >&2; exit 126; fi; '
    'chmod +x -- "$0" 2>/dev/null; '
    'if [ "$(head -c 2 -- "$0" 2>/dev/null)" = "#!" ]; then exec "$0" "$@"; else exec /bin/bash "$0" "$@"; fi'
)

# bash's exit status when it cannot execute a file (a `#!` naming a missing
# interpreter, say): the repository's script could not run at all.
SCRIPT_CANNOT_RUN = (126, 127)


def script_command(script: Path, args: Sequence[str] = ()) -> list[str]:
    """The command that runs `script` with `args`: itself if it starts with `#!`, else bash reading it."""
    return ["/bin/bash", "-c", _RUN_SCRIPT, str(script), *args]
