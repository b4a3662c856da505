"""How the gateway shows the provider catalogue: /_config, /api/repoproviders and the home page's form.

Three views of one table (schemas.providers), for three generations of Binder
front ends: BinderHub's pre-React UI and binderhub-client's detect() read
/_config, its React UI reads /api/repoproviders, and binderflow's home page
reads the form description. Each lists the enabled providers in the order
`providers.enabled` gives. Pure.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from schemas.providers import ProviderEntry, ProviderSites, provider_entry
from services.runtime.settings import ProviderSettings

__all__ = ["enabled_providers", "repoproviders_config", "legacy_config", "home_form_providers"]


def enabled_providers(providers: ProviderSettings) -> list[ProviderEntry]:
    """The enabled providers' descriptions, once each, in the order settings list them."""
    return [provider_entry(prefix) for prefix in dict.fromkeys(providers.enabled)]


def _site_pattern(url: str) -> str:
    """A regular expression for a configured site URL, accepting http or https."""
    base = url.rstrip("/")
    parts = urllib.parse.urlsplit(base)
    rest = re.escape(parts.netloc + parts.path)
    return f"https?://{rest}" if parts.scheme in ("http", "https") else re.escape(base)


def _detect_regexes(entry: ProviderEntry, sites: ProviderSites) -> list[str] | None:
    """BinderHub's `regex_detect` (JavaScript syntax): turn a pasted web URL into repo, ref and path."""
    site = entry.site_url(sites)
    if site is None or not entry.web_layout:
        return None
    base = _site_pattern(site)
    if entry.web_layout == "github":
        return [
            f"^{base}/(?<repo>[^/]+/[^/]+)(/blob/(?<ref>[^/]+)(/(?<filepath>.+))?)?$",
            f"^{base}/(?<repo>[^/]+/[^/]+)(/tree/(?<ref>[^/]+)(/(?<urlpath>.+))?)?$",
        ]
    if entry.web_layout == "gist":
        return [f"^{base}/(?<repo>[^/]+/[^/]+)(/(?<ref>[^/]+))?$"]
    return [
        f"^{base}/(?<repo>[^/]+/[^/]+(/[^/-][^/]+)*)(/-/blob/(?<ref>[^/]+)(/(?<filepath>.+))?)?$",
        f"^{base}/(?<repo>[^/]+/[^/]+(/[^/-][^/]+)*)(/-/tree/(?<ref>[^/]+)(/(?<urlpath>.+))?)?$",
    ]


def repoproviders_config(providers: ProviderSettings) -> list[dict[str, Any]]:
    """/api/repoproviders: BinderHub's `display_config` of each enabled provider, for the React UI."""
    out = []
    for entry in enabled_providers(providers):
        config: dict[str, Any] = {"displayName": entry.display_name, "id": entry.prefix}
        site = entry.site_url(providers) if entry.web_layout else None
        if site is not None:
            # Accept "owner/repo" as typed, or the same behind the site's URL.
            config["detect"] = {"regex": f"^({_site_pattern(site)}/)?(?<repo>.*[^/])/?"}
        config["spec"] = {"validateRegex": entry.spec_regex}
        config["repo"] = {"label": entry.repo_label, "placeholder": entry.repo_placeholder, "urlEncode": entry.url_encode}
        config["ref"] = {"enabled": True, "default": "HEAD"} if entry.ref_enabled else {"enabled": False}
        out.append(config)
    return out


def legacy_config(providers: ProviderSettings) -> dict[str, dict[str, Any]]:
    """/_config: BinderHub's provider labels keyed by prefix, for the pre-React UI and binderhub-client's detect()."""
    out: dict[str, dict[str, Any]] = {}
    for entry in enabled_providers(providers):
        out[entry.prefix] = {
            "text": entry.repo_label,
            "tag_text": entry.ref_text,
            "ref_prop_disabled": not entry.ref_enabled,
            "label_prop_disabled": not entry.ref_enabled,
            "display_name": entry.display_name,
            "regex_detect": _detect_regexes(entry, providers),
        }
    return out


def home_form_providers(providers: ProviderSettings) -> dict[str, dict[str, Any]]:
    """How the home page's form (static/home.js) turns what a person types into each
    enabled provider's spec, keyed by prefix in the order settings list them."""
    form: dict[str, dict[str, Any]] = {}
    for entry in enabled_providers(providers):
        site = entry.site_url(providers) if entry.web_layout else None
        form[entry.prefix] = {
            "display": entry.display_name,
            "label": entry.repo_label,
            "placeholder": entry.repo_placeholder,
            "ref": entry.ref_enabled,
            "ref_label": entry.ref_text,
            "default_ref": "HEAD",
            "url_encode": entry.url_encode,
            "keep_git_suffix": entry.keeps_git_suffix,
            # A pasted web URL of the provider's site is cut down to the repository.
            "strip_prefix": site.rstrip("/") + "/" if site else "",
        }
    return form
