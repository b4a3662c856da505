"""One provider catalogue (schemas/providers.py) below every service: complete, and the one everyone reads."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timezone

import msgspec
import pytest

from schemas.providers import PROVIDER_PREFIXES, PROVIDERS, provider_entry, provider_name, repo_url_for
from services.events.ledger import LaunchSummary
from services.events.mybinder import mybinder_record
from services.gateway.provider_config import home_form_providers, legacy_config, repoproviders_config
from services.runtime.plugins import PROVIDER_CLASSES
from services.runtime.settings import ProviderSettings


def test_every_catalogued_provider_has_an_implementation_and_every_implementation_an_entry() -> None:
    """Adding a provider is an entry in the catalogue and a class in the registry: forgetting either fails here."""
    assert set(PROVIDER_CLASSES) == set(PROVIDER_PREFIXES)


def test_settings_enable_the_whole_catalogue_by_default_in_its_order() -> None:
    assert ProviderSettings().enabled == list(PROVIDER_PREFIXES)


@pytest.mark.parametrize("prefix", PROVIDER_PREFIXES)
def test_each_entry_is_well_formed(prefix: str) -> None:
    entry = PROVIDERS[prefix]
    assert entry.prefix == prefix and entry.name and entry.display_name and entry.repo_label
    re.compile("^(" + entry.spec_regex.replace("(?<", "(?P<") + ")$")
    settings_fields = {f.name for f in msgspec.structs.fields(ProviderSettings)}
    assert entry.site_setting == "" or entry.site_setting in settings_fields
    assert entry.web_layout == "" or entry.site_setting, "detecting pasted URLs needs the site they come from"


def test_the_gateways_three_views_and_the_export_use_the_catalogues_names() -> None:
    settings = ProviderSettings()
    assert [p["displayName"] for p in repoproviders_config(settings)] == [PROVIDERS[p].display_name for p in PROVIDER_PREFIXES]
    assert [c["display_name"] for c in legacy_config(settings).values()] == [PROVIDERS[p].display_name for p in PROVIDER_PREFIXES]
    assert list(home_form_providers(settings)) == list(PROVIDER_PREFIXES)
    at = datetime(2026, 12, 3, tzinfo=timezone.utc)
    summary = LaunchSummary(launch_id="l" * 10, requested_at=at, provider="gl", spec="g%2Fp/HEAD", resolved_ref="a" * 40, ended_at=at, status="success")
    record = mybinder_record(summary)
    assert record is not None and record["provider"] == "GitLab" == provider_name("gl")


def test_a_prefix_outside_the_catalogue_is_described_plainly() -> None:
    entry = provider_entry("fixed")
    assert (entry.prefix, entry.name, entry.display_name) == ("fixed", "fixed", "fixed")
    assert repo_url_for("fixed", urllib.parse.quote("https://example.org/r", safe=""), ProviderSettings()) == "https://example.org/r"


def test_the_resolver_reports_the_repository_url_the_gateway_labels_metrics_with() -> None:
    """gh, gist and gl providers name their repository with the catalogue's rule, so /logs/<provider>/<spec>
    finds the builds the resolver indexed."""
    github = ProviderSettings(github_url="https://ghe.example.org/")
    assert repo_url_for("gh", "Org/Repo.git/main", github) == "https://ghe.example.org/Org/Repo"
    assert repo_url_for("git", urllib.parse.quote("https://u:p@example.org/r.git", safe="") + "/main", github) == "https://example.org/r.git"
