"""Running git safely: one policy for every git subprocess in binderflow.

URLs and refs are hostile input. Git only ever sees a URL after it passed the
scheme allow-list and the network block-list; refs are checked against Git's ref
name rules and always follow `--`, so neither can become a git option.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import signal
import tempfile
import urllib.parse
from dataclasses import dataclass, field

from .redaction import redact_url
from .settings import Settings

log = logging.getLogger(__name__)

__all__ = ["GitPolicy", "GitError", "check_url", "check_ref", "run_git", "git_environment", "first_error_line", "SHA_RE", "SHORT_SHA_RE", "policy_from_settings"]

SHA_RE = re.compile(r"^[0-9a-f]{40}\Z")
SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}\Z")
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+@-]{0,254}\Z")


class GitError(Exception):
    """A URL or ref was refused, or git failed; the message is for a person."""


@dataclass(frozen=True)
class GitPolicy:
    """What the git provider (and the builder's fetch) may talk to."""

    allowed_schemes: tuple[str, ...] = ("https", "http", "git")
    blocked_networks: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    timeout_seconds: float = 60.0
    _nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_nets", tuple(ipaddress.ip_network(n, strict=False) for n in self.blocked_networks))

    def is_blocked(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._nets)


async def check_url(url: str, policy: GitPolicy) -> None:
    """Raise GitError unless `url` is a Git URL the policy allows us to fetch."""
    if not url or url.startswith("-") or any(c in url for c in "\x00\r\n\t ") :
        raise GitError(f"{url!r} is not a valid repository URL")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise GitError(f"{url!r} is not a valid repository URL") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise GitError(f"{url!r} is not a repository URL: it needs a scheme such as https://")
    if scheme not in policy.allowed_schemes:
        allowed = ", ".join(f"{s}://" for s in policy.allowed_schemes)
        raise GitError(f"Repository URLs with scheme {scheme}:// are not allowed here (allowed: {allowed})")
    if scheme in ("file",):
        return
    if parts.username or parts.password:
        raise GitError("Repository URLs with credentials in them are not accepted")
    host = parts.hostname
    if not host:
        raise GitError(f"{url!r} has no host name")
    try:
        port = parts.port
    except ValueError:
        raise GitError(f"{redact_url(url)!r} has an invalid port") from None
    if "*" in policy.allowed_hosts or host.lower() in policy.allowed_hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=1)
    except OSError:
        raise GitError(f"Could not reach the repository at {redact_url(url)}: the host {host} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if policy.is_blocked(address):
            raise GitError(
                f"Repository host {host} resolves to {address}, an address in a network this Binder does not fetch from"
            )


def check_ref(ref: str) -> None:
    """Raise GitError unless `ref` is a plausible branch, tag, sha or HEAD."""
    if not ref:
        raise GitError("The spec does not contain a ref (expected <url-escaped-url>/<ref>)")
    if not _REF_RE.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")) or "//" in ref or "@{" in ref:
        raise GitError(f"{ref!r} is not a valid Git ref name")


def git_environment(policy: GitPolicy) -> dict[str, str]:
    """Environment for every git subprocess: no prompts, no user config, no stray transports."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        # Git refuses any transport not listed here, including ext:: and file://,
        # for the top-level URL, redirects and submodules alike.
        "GIT_ALLOW_PROTOCOL": ":".join(policy.allowed_schemes),
    }
    # Proxies and CA bundles of this host still apply to git's HTTPS.
    for key, value in os.environ.items():
        if key.lower().endswith("_proxy") or key in ("GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE"):
            env[key] = value
    return env


# git gives up on a transfer slower than this many bytes per second for this long
# (a server that accepts and never answers, or trickles), before any timeout.
_LOW_SPEED_BYTES_PER_SECOND = 1000
_LOW_SPEED_SECONDS = 30


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # git runs helpers (git-remote-http, ...) that hold its pipes: stop them all.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _reap(proc: asyncio.subprocess.Process) -> None:
    try:
        await asyncio.wait_for(proc.wait(), 5.0)
    except asyncio.TimeoutError:
        log.warning("git (pid %d) did not exit after SIGKILL", proc.pid)


async def run_git(args: list[str], policy: GitPolicy, cwd: str | None = None, timeout: float | None = None) -> tuple[int, str, str]:
    """Run git with hardening options; returns (exit code, stdout, stderr).

    Always ends: git and every helper it started run in a process group of their
    own, killed whole when `timeout` (default: the policy's) passes or the caller
    is cancelled; a timeout is exit code 124 with a message on stderr.
    """
    limit = timeout or policy.timeout_seconds
    low_speed_seconds = max(1, min(_LOW_SPEED_SECONDS, int(limit)))
    cmd = [
        "git",
        "-c", "http.followRedirects=false",
        "-c", "core.hooksPath=/dev/null",
        "-c", "protocol.ext.allow=never",
        "-c", f"http.lowSpeedLimit={_LOW_SPEED_BYTES_PER_SECOND}",
        "-c", f"http.lowSpeedTime={low_speed_seconds}",
        *args,
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=cwd,
        env=git_environment(policy),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except asyncio.TimeoutError:
        _kill_group(proc)
        await _reap(proc)
        return 124, "", f"git timed out after {limit:.0f} s"
    except BaseException:
        _kill_group(proc)
        await _reap(proc)
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def first_error_line(stderr: str) -> str:
    """The line of git's stderr that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.lower().startswith(("fatal:", "error:")):
            return ln
    return lines[-1] if lines else "no output"


def policy_from_settings(settings: Settings) -> GitPolicy:
    """The git policy configured in settings.resolver (the builder fetches under it too)."""
    r = settings.resolver
    return GitPolicy(
        allowed_schemes=tuple(s.lower() for s in r.git_allowed_schemes),
        blocked_networks=tuple(r.git_blocked_networks),
        allowed_hosts=tuple(h.lower() for h in r.git_allowed_hosts),
        timeout_seconds=r.git_timeout_seconds,
    )
