"""The resolver's decisions, as pure functions: name the environment, build or launch.

No I/O, no clock, no random ids: everything arrives as arguments, so tests are
plain calls.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

from schemas import (
    BuildImage,
    BuildWaiting,
    ImageBuilt,
    LaunchFailed,
    ResolvedRepo,
    ResolveRef,
    StartServer,
)
from schemas.events import PhaseEvent, RefResolved
from schemas.identity import command_id, resolver_event_id
from services.runtime.build_only import build_only_ready_event

from .providers.base import ResolvedSource

__all__ = [
    "environment_name",
    "pin",
    "Decision",
    "decide",
    "failure",
    "ENVIRONMENT_NAME_MAX",
    "check_spec_patterns",
    "spec_matches",
    "is_banned",
    "is_high_quota",
    "banned_message",
    "notice",
]

# DNS labels are at most 63 characters; image names and pod names inherit this.
ENVIRONMENT_NAME_MAX = 63
_HASH_CHARS = 16


def _slug(text: str) -> str:
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text.lower())
    # Credentials in a URL must not end up in a name that is logged and listed.
    text = re.sub(r"^[^/@]*@", "", text)
    text = re.sub(r"\.git$", "", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def environment_name(content_provider: str, clone_url: str, resolved_ref: str) -> str:
    """The environment's name: same inputs, same name; DNS-safe; at most 63 characters.

    This is the one place that decides what an environment is keyed by: what the
    builder fetches (how, from where, which version), not the spec that led
    there. So `doi/…` and `zenodo/…` links to one Zenodo record, a concept DOI
    and its latest version's DOI, or `gh/…` and `git/…` links to one commit
    share one environment and one build.

    A human-readable slug of the source comes first, then a hash of all inputs,
    so two sources whose slugs collide still get different names.
    """
    digest = hashlib.sha256(f"{content_provider}\0{clone_url}\0{resolved_ref}".encode()).hexdigest()[:_HASH_CHARS]
    head = f"{_slug(content_provider)}-{_slug(clone_url)}"
    room = ENVIRONMENT_NAME_MAX - _HASH_CHARS - 1
    head = head[:room].strip("-") or "env"
    return f"{head}-{digest}"


def pin(provider: str, spec: str, source: ResolvedSource, image_prefix: str = "") -> ResolvedRepo:
    """A resolved source plus the names BinderHub's ready event reports.

    `provider` and `spec` are the request's (binder_request keeps them); the
    image is named after the content alone (environment_name).
    """
    return ResolvedRepo(
        repo_url=source.repo_url,
        ref=source.ref,
        resolved_ref=source.resolved_ref,
        ref_url=source.ref_url,
        clone_url=source.clone_url,
        image_name=image_prefix + environment_name(source.content_provider, source.clone_url, source.resolved_ref),
        binder_request=f"v2/{provider}/{spec}",
        binder_persistent_request=f"v2/{provider}/{source.persistent_spec}",
        content_provider=source.content_provider,
    )


@dataclass(frozen=True)
class Decision:
    """Events to append to the launch, and commands to queue, in this order."""

    events: list[PhaseEvent] = field(default_factory=list)
    build: BuildImage | None = None
    start: StartServer | None = None


def decide(command: ResolveRef, repo: ResolvedRepo, is_built: bool, now: datetime) -> Decision:
    """Launch a built environment at once; otherwise queue a build."""
    lid = command.launch_id
    if is_built and command.request.build_only:
        # BinderHub's build_only: the environment exists, so the launch is done
        # without a server; `ready` names the image (url and token stay empty).
        ready = build_only_ready_event(lid, resolver_event_id(lid, "ready"), command.request, repo, "Done! Found built image\n", now)
        return Decision(events=[ready])
    if is_built:
        return Decision(
            events=[
                ImageBuilt(
                    launch_id=lid,
                    event_id=resolver_event_id(lid, "built"),
                    timestamp=now,
                    image_name=repo.image_name,
                    message="Found built image, launching...\n",
                )
            ],
            start=StartServer(command_id=command_id(lid, "start"), launch_id=lid, issued_at=now, request=command.request, repo=repo),
        )
    return Decision(
        events=[
            BuildWaiting(
                launch_id=lid,
                event_id=resolver_event_id(lid, "waiting"),
                timestamp=now,
                message=f"Waiting for build to start... ({repo.repo_url} at {repo.resolved_ref[:12]})\n",
            )
        ],
        build=BuildImage(command_id=command_id(lid, "build"), launch_id=lid, issued_at=now, request=command.request, repo=repo),
    )


def _as_lines(message: str) -> str:
    """BinderHub's event messages end with a newline; clients print them as they come."""
    return message if message.endswith("\n") else message + "\n"


def failure(command: ResolveRef, message: str, now: datetime) -> LaunchFailed:
    return LaunchFailed(
        launch_id=command.launch_id,
        event_id=resolver_event_id(command.launch_id, "failed"),
        timestamp=now,
        message=_as_lines(message),
    )


# -- banned and high-quota specs (BinderHub's banned_specs / high_quota_specs) ----


def check_spec_patterns(patterns: Mapping[str, Iterable[str]], setting: str) -> None:
    """Raise ValueError naming `setting` if a pattern is not a regular expression."""
    for provider, regexes in patterns.items():
        for regex in regexes:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"invalid setting '{setting}': {provider}: {regex!r} is not a regular expression ({exc})") from None


def spec_matches(spec: str, patterns: Iterable[str]) -> bool:
    """Whether any pattern matches the start of `spec`, ignoring case, as BinderHub does.

    The spec is tried as sent and percent-decoded, so escaping a character
    (`%6Aupyterhub/...`) does not slip past a pattern.
    """
    spec = spec.rstrip("/")
    forms = {spec, urllib.parse.unquote(spec)}
    return any(re.match(pattern, form, re.IGNORECASE) for pattern in patterns for form in forms)


def is_banned(spec: str, banned_specs: Iterable[str]) -> bool:
    """BinderHub's is_banned: `spec` (without the provider prefix) matches a banned pattern."""
    return spec_matches(spec, banned_specs)


def is_high_quota(spec: str, high_quota_specs: Iterable[str]) -> bool:
    """BinderHub's has_higher_quota: `spec` matches a high-quota pattern."""
    return spec_matches(spec, high_quota_specs)


def banned_message(spec: str) -> str:
    """BinderHub's words for a banned spec."""
    return f"Sorry, {spec} has been temporarily disabled from launching. Please contact admins for more info!"


def notice(command: ResolveRef, message: str, now: datetime) -> BuildWaiting:
    """A provider's hint to the person launching, before the launch goes on."""
    return BuildWaiting(
        launch_id=command.launch_id,
        event_id=resolver_event_id(command.launch_id, "notice"),
        timestamp=now,
        message=_as_lines(message),
    )


def resolved_fact(command: ResolveRef, repo: ResolvedRepo, is_built: bool, now: datetime) -> RefResolved:
    """The fact that this launch is for `repo` at its commit: what analytics and stats read."""
    lid = command.launch_id
    return RefResolved(
        launch_id=lid,
        event_id=resolver_event_id(lid, "resolved"),
        timestamp=now,
        provider=command.request.provider,
        spec=command.request.spec,
        repo_url=repo.repo_url,
        ref=repo.ref,
        resolved_ref=repo.resolved_ref,
        image_name=repo.image_name,
        is_built=is_built,
    )
