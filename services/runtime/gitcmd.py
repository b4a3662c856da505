"""Running git safely: one policy for every git subprocess in binderflow.

URLs and refs are hostile input. Git only ever sees a URL after it passed the
scheme allow-list and the network block-list; refs are checked against Git's ref
name rules and always follow `--`, so neither can become a git option.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import Sequence

from .addresses import AddressPolicy, AddressRefused
from .redaction import redact_url
from .settings import Settings

log = logging.getLogger(__name__)

__all__ = ["GitPolicy", "GitTarget", "GitError", "check_url", "pinned_target", "check_ref", "run_git", "git_environment", "first_error_line", "SHA_RE", "SHORT_SHA_RE", "policy_from_settings"]

SHA_RE = re.compile(r"^[0-9a-f]{40}\Z")
SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}\Z")
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+@-]{0,254}\Z")


class GitError(Exception):
    """A URL or ref was refused, or git failed; the message is for a person."""


@dataclass(frozen=True)
class GitPolicy:
    """What the git provider (and the builder's fetch) may talk to, and how long git may take."""

    allowed_schemes: tuple[str, ...] = ("https", "http", "git")
    # Networks refused on top of every address that is not globally routable.
    blocked_networks: tuple[str, ...] = ()
    # Host names trusted whatever they resolve to ("*": every host).
    allowed_hosts: tuple[str, ...] = ()
    timeout_seconds: float = 60.0
    addresses: AddressPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", AddressPolicy(self.blocked_networks, self.allowed_hosts))


@dataclass(frozen=True)
class GitTarget:
    """A URL git may fetch, and the `git -c` settings that make it connect to the addresses that were checked."""

    url: str
    config: tuple[str, ...] = ()


_DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418}


def _address_for_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def check_url(url: str, policy: GitPolicy) -> GitTarget:
    """The URL as git is to fetch it, if the policy allows it; GitError with a message for a person otherwise.

    The host is resolved once, here, and every address checked; git is then
    pinned to those addresses (curl's resolve list for http(s), the address
    itself for git://), so the name cannot resolve elsewhere when git connects.
    """
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
        return GitTarget(url)
    if parts.username or parts.password:
        raise GitError("Repository URLs with credentials in them are not accepted")
    host = parts.hostname
    if not host:
        raise GitError(f"{url!r} has no host name")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 443)
    except ValueError:
        raise GitError(f"{redact_url(url)!r} has an invalid port") from None
    if policy.addresses.trusts(host):
        return GitTarget(url)
    try:
        addresses = await policy.addresses.resolve(host, port)
    except AddressRefused as exc:
        raise GitError(f"Could not reach the repository at {redact_url(url)}: {exc}") from None
    return pinned_target(url, addresses)


def pinned_target(url: str, addresses: list[str]) -> GitTarget:
    """`url` for git, bound to `addresses` (what its host resolved to when checked). Pure.

    http(s) keeps its name (TLS and virtual hosts need it) and gets curl's resolve
    list; git:// has no use for the name, so the address replaces it.
    """
    parts = urllib.parse.urlsplit(url)
    host, scheme = parts.hostname or "", parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 443)
    if host in addresses:
        return GitTarget(url)  # an address literal: nothing to pin
    if scheme in ("http", "https"):
        pins = ",".join(_address_for_url(a) for a in addresses)
        return GitTarget(url, (f"http.curloptResolve={host}:{port}:{pins}",))
    netloc = f"{_address_for_url(addresses[0])}:{port}"
    return GitTarget(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))


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


async def run_git(
    args: list[str], policy: GitPolicy, cwd: str | None = None, timeout: float | None = None, config: Sequence[str] = ()
) -> tuple[int, str, str]:
    """Run git with hardening options (and `config`, "key=value" settings such as a
    GitTarget's); returns (exit code, stdout, stderr).

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
        *(arg for setting in config for arg in ("-c", setting)),
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
        allowed_hosts=tuple(r.git_allowed_hosts),
        timeout_seconds=r.git_timeout_seconds,
    )
