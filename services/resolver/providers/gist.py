"""The `gist` provider: GitHub Gists, BinderHub's spec `<user>/<gist_id>[/<ref>]`.

The ref is optional. Empty, HEAD, master and main mean the latest revision;
otherwise it must be a full commit sha of the gist's history. The gist must
belong to `<user>`, and secret gists are refused unless allowed (BinderHub's
allow_secret_gist, off by default).
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from typing import Callable

from schemas.providers import repo_url_for
from services.runtime.gitcmd import SHA_RE
from services.runtime.settings import ProviderSettings, Settings

from .base import ProviderDirectory, ProviderError, ResolvedSource
from .github import GitHubApi, check_owner

__all__ = ["GistProvider", "parse_gist_spec", "LATEST_REFS"]

log = logging.getLogger(__name__)

# Gist ids: hexadecimal (older gists have decimal ids, a subset).
_GIST_ID_RE = re.compile(r"^[0-9a-fA-F]{1,64}\Z")
LATEST_REFS = frozenset({"", "HEAD", "master", "main"})


def parse_gist_spec(spec: str) -> tuple[str, str, str]:
    """(user, gist_id, ref) of `<user>/<gist_id>[/<ref>]`; ref may be empty. Pure."""
    parts = [urllib.parse.unquote(p) for p in spec.rstrip("/").split("/")]
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ProviderError(f'Spec is not of the form "user/gist-id/ref", provided: "{spec}".')
    user, gist_id = parts[0], parts[1]
    ref = parts[2] if len(parts) == 3 else ""
    check_owner(user)
    if not _GIST_ID_RE.match(gist_id):
        raise ProviderError(f"{gist_id!r} is not a valid Gist id")
    if ref not in LATEST_REFS and not SHA_RE.match(ref):
        raise ProviderError(f"{ref!r} is not a Gist revision: use HEAD for the latest one, or a full 40-character commit sha")
    return user, gist_id, ref


class GistProvider:
    """Gists on GitHub."""

    name = "gist"

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "GistProvider":
        return cls(settings.providers, allow_secret_gist=settings.providers.allow_secret_gist)

    def __init__(self, settings: ProviderSettings, allow_secret_gist: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.api = GitHubApi(settings, clock)
        self.sites = settings
        self.gist_url = settings.gist_url.rstrip("/")
        self.allow_secret_gist = allow_secret_gist

    async def aclose(self) -> None:
        await self.api.aclose()

    async def resolve(self, spec: str) -> ResolvedSource:
        user, gist_id, ref = parse_gist_spec(spec)
        not_found = f"Could not resolve ref for gist:{spec}: the gist or revision was not found. Double check your URL and that your gist is public."
        resp = await self.api.get(f"gists/{gist_id}", f"gist {gist_id}")
        if resp is None:
            raise ProviderError(not_found)
        data = resp.json()
        if not isinstance(data, dict):
            raise ProviderError("The GitHub API answered with something that is not a gist")
        owner_info = data.get("owner")
        owner = owner_info.get("login") if isinstance(owner_info, dict) else None
        if owner and owner.lower() != user.lower():
            raise ProviderError(f"Gist {gist_id} belongs to {owner}, not {user}: launch gist/{owner}/{gist_id} instead.")
        if not self.allow_secret_gist and not data.get("public", False):
            raise ProviderError("You seem to want to use a secret Gist, but this Binder does not launch secret Gists.")
        listed = [entry.get("version") for entry in data.get("history") or [] if isinstance(entry, dict)]
        versions: list[str] = [v for v in listed if isinstance(v, str) and SHA_RE.match(v)]
        if ref in LATEST_REFS:
            if not versions:
                raise ProviderError(f"The GitHub API listed no revisions of gist {gist_id}")
            sha = versions[0]
        elif ref in versions:
            sha = ref
        else:
            # The history in a gist's answer can be shortened; ask for the revision itself.
            if await self.api.get(f"gists/{gist_id}/{ref}", f"gist {gist_id}") is None:
                raise ProviderError(not_found)
            sha = ref
        web = f"{self.gist_url}/{user}/{gist_id}"
        return ResolvedSource(
            repo_url=repo_url_for("gist", spec.rstrip("/"), self.sites),
            ref=ref or "HEAD",
            resolved_ref=sha,
            ref_url=f"{web}/{sha}",
            clone_url=f"{self.gist_url}/{gist_id}.git",
            persistent_spec=f"{user}/{gist_id}/{sha}",
        )
