"""The repository-provider catalogue: every spec prefix binderflow serves, described once.

Each entry says what a person, a Binder client and an analytics reader see of a
provider: its prefix (`gh`, `zenodo`, ...), BinderHub's name for it (the
`provider` label of its metrics and of mybinder.org's launch archive), the
labels of the home page's form, the grammar of its specs, and how a spec names
a repository (BinderHub's `get_repo_url()`). The gateway's pages and APIs, the
settings' defaults, the resolver's registry of implementations, the event
exporter and the benchmarks all read this table; adding a provider is one entry
here plus its implementation in `services/resolver/providers/`, and a test fails
when either is missing.

Pure and dependency-free: base URLs arrive as an object with the provider
settings' URL attributes (`ProviderSites`).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Protocol

__all__ = [
    "ProviderSites",
    "ProviderEntry",
    "PROVIDERS",
    "PROVIDER_PREFIXES",
    "provider_entry",
    "provider_name",
    "repo_url_for",
    "without_userinfo",
]

_GIT_REF_TEXT = "Git ref (branch, tag, or commit)"
_DOI_SPEC = r"10\.\d+/.+"

# How a provider's web site lays out repository pages, for turning a pasted web
# URL into a spec (BinderHub's `regex_detect`); "" for providers without one.
WebLayout = Literal["github", "gist", "gitlab", ""]


class ProviderSites(Protocol):
    """The base URLs a provider description needs (ProviderSettings has them all)."""

    @property
    def github_url(self) -> str: ...
    @property
    def gist_url(self) -> str: ...
    @property
    def gitlab_url(self) -> str: ...
    @property
    def hydroshare_url(self) -> str: ...


@dataclass(frozen=True)
class ProviderEntry:
    """One repository provider as everyone outside the resolver sees it."""

    prefix: str
    # BinderHub's provider.name: the `provider` label of its build and launch
    # metrics and of mybinder.org's launch events ("GitHub", "Git", ...).
    name: str
    display_name: str
    # Regular expression (JavaScript syntax, also valid Python after `(?<` ->
    # `(?P<`) a spec after "/v2/<prefix>/" must match.
    spec_regex: str
    repo_label: str
    repo_placeholder: str
    # Whether the repository part must be URL-encoded into the spec (git URLs, GitLab paths).
    url_encode: bool
    # Whether the spec ends in a ref the person chooses.
    ref_enabled: bool
    ref_text: str = _GIT_REF_TEXT
    # Whether a pasted repository keeps a trailing ".git" (a git URL is used as given;
    # the home page drops it from "owner/repo.git" on GitHub and the like).
    keeps_git_suffix: bool = False
    # The ProviderSettings attribute holding the web site repositories are pasted from.
    site_setting: str = ""
    web_layout: WebLayout = ""

    def site_url(self, sites: ProviderSites) -> str | None:
        """The provider's web site (GitHub, Gist, GitLab, ...) as configured, or None."""
        return getattr(sites, self.site_setting) if self.site_setting else None

    def repo_url(self, spec: str, sites: ProviderSites) -> str:
        """The repository URL BinderHub reports for `spec` (its get_repo_url()), without resolving anything.

        `spec` is the raw spec (percent-encoded parts, trailing slashes removed).
        Credentials in a URL are dropped: the result is a metric label and an
        event field, read by many. A malformed spec gives the spec itself.
        """
        rule = _REPO_URL_RULES.get(self.prefix)
        if rule is not None:
            try:
                found = rule(spec.split("/"), spec, sites)
            except (IndexError, ValueError):
                found = None
            if found:
                return found
        return without_userinfo(urllib.parse.unquote(spec))


# Every provider binderflow knows, in the order the UI lists them by default.
PROVIDERS: Mapping[str, ProviderEntry] = {
    p.prefix: p
    for p in (
        ProviderEntry("gh", "GitHub", "GitHub", r"[^/]+/[^/]+/.+", "GitHub repository name or URL",
                      "owner/repository or https://github.com/owner/repository", False, True,
                      site_setting="github_url", web_layout="github"),
        ProviderEntry("gist", "Gist", "Gist", r"[^/]+/[^/]+(/[^/]+)?", "Gist ID (username/gistId) or URL",
                      "username/gistId or https://gist.github.com/username/gistId", False, True, "Git commit SHA",
                      site_setting="gist_url", web_layout="gist"),
        ProviderEntry("gl", "GitLab", "GitLab.com", r"[^/]+/.+", "GitLab.com repository or URL",
                      "group/project or https://gitlab.com/group/subgroup/project", True, True,
                      site_setting="gitlab_url", web_layout="gitlab"),
        ProviderEntry("git", "Git", "Git repository", r"[^/]+/.+", "Arbitrary git repository URL",
                      "https://example.org/path/to/repository.git", True, True, keeps_git_suffix=True),
        ProviderEntry("zenodo", "Zenodo", "Zenodo DOI", _DOI_SPEC, "Zenodo DOI", "10.5281/zenodo.3242074", False, False),
        ProviderEntry("figshare", "Figshare", "Figshare DOI", _DOI_SPEC, "Figshare DOI", "10.6084/m9.figshare.9782777.v1", False, False),
        ProviderEntry("hydroshare", "Hydroshare", "HydroShare resource", r"[^/]+", "HydroShare resource id or URL",
                      "b8f6eae9d89241cf8b5904033460af61", False, False, site_setting="hydroshare_url"),
        ProviderEntry("dataverse", "Dataverse", "Dataverse DOI", _DOI_SPEC, "Dataverse DOI", "10.7910/DVN/TJCLKP", False, False),
        ProviderEntry("ckan", "CKAN", "CKAN dataset", r".+", "CKAN dataset URL",
                      "https://demo.ckan.org/dataset/my-dataset", True, False),
        ProviderEntry("doi", "DOI", "DOI", _DOI_SPEC, "DOI (resolved to its repository)", "10.5281/zenodo.3242074", False, False),
    )
}

PROVIDER_PREFIXES: tuple[str, ...] = tuple(PROVIDERS)


def provider_entry(prefix: str) -> ProviderEntry:
    """The description of `prefix`; a plain one for a prefix the catalogue does not hold
    (a provider plugged in by an operator)."""
    known = PROVIDERS.get(prefix)
    if known is not None:
        return known
    return ProviderEntry(prefix, prefix, prefix, r".+", "Repository", "", True, True)


def provider_name(prefix: str) -> str:
    """BinderHub's provider.name for a spec prefix ("GitHub", "Git", ...)."""
    return provider_entry(prefix).name


def repo_url_for(prefix: str, spec: str, sites: ProviderSites) -> str:
    """The repository URL BinderHub reports for `<prefix>/<spec>`: see ProviderEntry.repo_url."""
    return provider_entry(prefix).repo_url(spec, sites)


def without_userinfo(url: str) -> str:
    """A URL without user name or password."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _base(url: str) -> str:
    return url.rstrip("/")


def _strip_git(text: str) -> str:
    return text[: -len(".git")] if text.endswith(".git") else text


def _gh(parts: list[str], spec: str, sites: ProviderSites) -> str | None:
    if len(parts) < 2:
        return None
    owner, repo = urllib.parse.unquote(parts[0]), _strip_git(urllib.parse.unquote(parts[1]))
    return f"{_base(sites.github_url)}/{owner}/{repo}"


def _gist(parts: list[str], spec: str, sites: ProviderSites) -> str | None:
    if len(parts) < 2:
        return None
    user, gist_id = urllib.parse.unquote(parts[0]), urllib.parse.unquote(parts[1])
    return f"{_base(sites.gist_url)}/{user}/{gist_id}.git"


def _gl(parts: list[str], spec: str, sites: ProviderSites) -> str | None:
    namespace = _strip_git(urllib.parse.unquote(parts[0]).strip("/"))
    return f"{_base(sites.gitlab_url)}/{namespace}.git"


def _url_in_spec(parts: list[str], spec: str, sites: ProviderSites) -> str | None:
    return without_userinfo(urllib.parse.unquote(parts[0]))


def _hydroshare(parts: list[str], spec: str, sites: ProviderSites) -> str | None:
    found = re.search(r"[0-9a-f]{32}", urllib.parse.unquote(spec))
    return f"{_base(sites.hydroshare_url)}/resource/{found.group(0)}" if found else None


# (spec split at "/", spec, sites) -> the repository URL, for providers whose
# repository is more than the decoded spec (a DOI is its own repository URL).
_REPO_URL_RULES: dict[str, Callable[[list[str], str, ProviderSites], str | None]] = {"gh": _gh, "gist": _gist, "gl": _gl, "git": _url_in_spec, "ckan": _url_in_spec, "hydroshare": _hydroshare}
