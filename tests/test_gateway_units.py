"""Unit tests of the gateway's BinderHub API pieces: build tokens, admission of /build
requests, network bans, the launch-metrics state machine, provider descriptions,
badges and redirects. Routes are exercised on the real aiohttp app, its state on the
session's nats-server (every request here is answered before anything is published)."""

from __future__ import annotations

import html
import ipaddress
import json
import re
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from schemas import BuildImage, ResolvedRepo, ResolveRef, ServerReady, Subjects
from schemas.commands import LaunchRequest
from services.builder import domain as builder_domain
from services.builder.executors.base import BuildFinished
from schemas.providers import PROVIDERS, provider_name, repo_url_for
from services.gateway.admission import Admitted, Refused, admit_build_request, banned_by, parse_ban_networks
from services.gateway.api import legacy_redirect_location, versions_body
from services.gateway.app import make_app
from services.gateway.badges import BADGE_LOGO_SVG, BADGE_SVG
from services.gateway.fanout import LaunchFanout
from services.gateway.launch_metrics import LaunchMetrics, Metric, Observation
from services.gateway.metrics import record_observations
from services.gateway.provider_config import legacy_config, repoproviders_config
from services.gateway.sightings import ServiceSightings
from services.gateway.state import GatewayState
from services.gateway.tokens import BuildTokenError, check_build_token, make_build_token, token_origin
from services.resolver import domain as resolver_domain
from services.runtime.bus import EventPublisher, connect
from services.runtime.settings import GatewaySettings, ProviderSettings, Settings, SettingsError, load_settings

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
NOW = 1_800_000_000.0


# -- build tokens --------------------------------------------------------------


def test_build_token_round_trip_carries_binderhub_claims() -> None:
    token = make_build_token(SECRET, "gh/owner/repo/HEAD", "binder.example.org", 300, NOW)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="gh/owner/repo/HEAD", options={"verify_exp": False})
    assert claims == {"aud": "gh/owner/repo/HEAD", "exp": int(NOW + 300), "origin": "binder.example.org"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert check_build_token(token, SECRET, "gh/owner/repo/HEAD", "binder.example.org", NOW + 299)["origin"] == "binder.example.org"


@pytest.mark.parametrize(
    ("secret", "spec", "origin", "now", "reason"),
    [
        (SECRET, "gh/owner/other/HEAD", "binder.example.org", NOW, "another repository"),
        (SECRET, "gh/owner/repo/HEAD", "evil.example.org", NOW, "another site"),
        (SECRET, "gh/owner/repo/HEAD", "binder.example.org", NOW + 300, "expired"),
        (SECRET, "gh/owner/repo/HEAD", "binder.example.org", NOW + 10_000, "expired"),
        ("another-secret-that-is-also-long-enough-to-use", "gh/owner/repo/HEAD", "binder.example.org", NOW, "not signed by this service"),
    ],
)
def test_build_token_is_refused_for_the_wrong_repo_site_time_or_secret(secret: str, spec: str, origin: str, now: float, reason: str) -> None:
    token = make_build_token(SECRET, "gh/owner/repo/HEAD", "binder.example.org", 300, NOW)
    with pytest.raises(BuildTokenError) as info:
        check_build_token(token, secret, spec, origin, now)
    assert str(info.value).startswith("Invalid build token")
    assert reason in str(info.value)


def test_build_token_origin_check_can_be_skipped() -> None:
    token = make_build_token(SECRET, "git/x/main", "a.example", 60, NOW)
    assert check_build_token(token, SECRET, "git/x/main", "b.example", NOW, check_origin=False)["origin"] == "a.example"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "",
        # alg "none": no signature at all.
        jwt.encode({"aud": "gh/o/r/HEAD", "exp": int(NOW + 60), "origin": "h"}, None, algorithm="none"),  # type: ignore[arg-type]  # alg "none" takes no key
        # Right secret, other HMAC algorithm.
        jwt.encode({"aud": "gh/o/r/HEAD", "exp": int(NOW + 60), "origin": "h"}, SECRET + "-padding-for-hs512-key-length-rules-here", algorithm="HS512"),
        # No expiry claim.
        jwt.encode({"aud": "gh/o/r/HEAD", "origin": "h"}, SECRET, algorithm="HS256"),
    ],
)
def test_malformed_unsigned_or_incomplete_tokens_are_refused(token: str) -> None:
    with pytest.raises(BuildTokenError):
        check_build_token(token, SECRET, "gh/o/r/HEAD", "h", NOW)


def test_no_secret_means_tokens_cannot_be_made_or_checked() -> None:
    with pytest.raises(ValueError):
        make_build_token("", "gh/o/r/HEAD", "h", 60, NOW)
    with pytest.raises(BuildTokenError):
        check_build_token("x.y.z", "", "gh/o/r/HEAD", "h", NOW)


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        ("https://binder.example.org", "ignored:1", "binder.example.org"),
        ("http://127.0.0.1:8585", "127.0.0.1:8585", "127.0.0.1:8585"),
        (None, "127.0.0.1:8585", "127.0.0.1:8585"),
        (None, None, ""),
    ],
)
def test_token_origin_is_origin_netloc_else_host(origin: str | None, host: str | None, expected: str) -> None:
    assert token_origin(origin, host) == expected


# -- admission of /build requests ------------------------------------------------


def _gateway(**kw: Any) -> GatewaySettings:
    return GatewaySettings(**kw)


def test_plain_request_is_admitted_as_a_launch() -> None:
    assert admit_build_request(_gateway(), "gh", "o/r/HEAD", {}, "h", NOW) == Admitted(build_only=False, have_build_token=False)


def test_valid_token_is_noted_and_invalid_one_refused_with_403() -> None:
    g = _gateway(build_token_secret=SECRET)
    token = make_build_token(SECRET, "gh/o/r/HEAD/", "h:1", 300, NOW)
    # The audience is the spec exactly as in the URL, trailing slash included.
    assert admit_build_request(g, "gh", "o/r/HEAD/", {"build_token": token}, "h:1", NOW) == Admitted(have_build_token=True)
    refused = admit_build_request(g, "gh", "o/r/HEAD", {"build_token": token}, "h:1", NOW)
    assert isinstance(refused, Refused) and refused.status_code == 403
    assert refused.message.startswith("Invalid build token")


def test_missing_token_is_refused_only_when_required() -> None:
    assert isinstance(admit_build_request(_gateway(build_token_secret=SECRET), "gh", "o/r/HEAD", {}, "h", NOW), Admitted)
    refused = admit_build_request(_gateway(build_token_secret=SECRET, require_build_token=True), "gh", "o/r/HEAD", {}, "h", NOW)
    assert refused == Refused(403, refused.message) and "build token is required" in refused.message  # type: ignore[union-attr]
    # Required without a secret to check with: refused, never silently open.
    misconfigured = admit_build_request(_gateway(require_build_token=True), "gh", "o/r/HEAD", {}, "h", NOW)
    assert isinstance(misconfigured, Refused) and misconfigured.status_code == 500


def test_token_without_a_secret_is_ignored() -> None:
    assert admit_build_request(_gateway(), "gh", "o/r/HEAD", {"build_token": "whatever"}, "h", NOW) == Admitted()


@pytest.mark.parametrize(
    ("settings", "query", "expected"),
    [
        ({}, {"build_only": "true"}, 400),
        ({}, {"build_only": "True"}, 400),
        ({}, {"build_only": "false"}, False),
        ({"enable_api_only_mode": True}, {"build_only": "true"}, True),
        ({"enable_api_only_mode": True}, {"build_only": "TRUE"}, True),
        ({"enable_api_only_mode": True}, {}, False),
        ({"enable_api_only_mode": True}, {"build_only": "yes"}, False),
        ({"require_build_only": True}, {"build_only": "true"}, True),
        ({"require_build_only": True}, {}, 400),
        ({"require_build_only": True}, {"build_only": "false"}, 400),
    ],
)
def test_build_only_follows_binderhubs_table(settings: dict[str, bool], query: dict[str, str], expected: bool | int) -> None:
    result = admit_build_request(_gateway(**settings), "gh", "o/r/HEAD", query, "h", NOW)
    if isinstance(expected, bool):
        assert result == Admitted(build_only=expected)
    else:
        assert isinstance(result, Refused) and result.status_code == expected
        if settings.get("require_build_only"):
            assert "only builds" in result.message
        else:
            assert "Building but not launching is not permitted" in result.message


# -- network bans ----------------------------------------------------------------


def test_ban_networks_parse_and_match_ipv4_ipv6_and_mapped_addresses() -> None:
    nets = parse_ban_networks({"10.0.0.0/8": "a private network", "2001:db8::/32": "documentation", "192.0.2.7": "one host"})
    assert banned_by("10.1.2.3", nets) == (ipaddress.ip_network("10.0.0.0/8"), "a private network")
    assert banned_by("::ffff:10.9.9.9", nets) == (ipaddress.ip_network("10.0.0.0/8"), "a private network")
    assert banned_by("2001:db8::1", nets)[1] == "documentation"  # type: ignore[index]
    assert banned_by("192.0.2.7", nets)[1] == "one host"  # type: ignore[index]
    for address in ("192.0.2.8", "11.0.0.1", "2001:db9::1", "fe80::1%eth0", "", None, "/run/gateway.sock"):
        assert banned_by(address, nets) is None
    assert banned_by("10.0.0.1", []) is None


def test_invalid_ban_network_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="gateway.ban_networks"):
        parse_ban_networks({"10.0.0.0/33": "x"})
    with pytest.raises(SettingsError, match="not a CIDR"):
        parse_ban_networks({"example.org": "x"})


def test_ban_networks_from_the_environment() -> None:
    settings = load_settings(environ={"BINDERFLOW_GATEWAY_BAN_NETWORKS": '{"127.0.0.2/32": "banned"}'})
    assert settings.gateway.ban_networks == {"127.0.0.2/32": "banned"}
    assert banned_by("127.0.0.2", parse_ban_networks(settings.gateway.ban_networks)) is not None


# -- launch metrics state machine -----------------------------------------------


def _feed(machine: LaunchMetrics, steps: list[tuple[str, float]]) -> list[Observation]:
    out: list[Observation] = []
    for phase, at in steps:
        out += machine.on_event(phase, at)
    return out + machine.on_close()


def _gauge_sum(observations: list[Observation], metric: Metric) -> float:
    return sum(o.value for o in observations if o.metric is metric)


def _of(observations: list[Observation], metric: Metric) -> list[Observation]:
    return [o for o in observations if o.metric is metric]


REPO = {"provider": "Git", "repo": "git://example.org/r"}


def test_first_build_then_launch_records_both() -> None:
    out = _feed(
        LaunchMetrics("Git", "git://example.org/r"),
        [("waiting", 10), ("fetching", 11), ("building", 12), ("building", 30), ("pushing", 40), ("built", 70), ("launching", 71), ("ready", 75)],
    )
    assert _of(out, Metric.BUILD_TIME) == [Observation(Metric.BUILD_TIME, 60, {"status": "success"})]
    assert _of(out, Metric.BUILD_COUNT) == [Observation(Metric.BUILD_COUNT, 1, {"status": "success", **REPO})]
    assert _of(out, Metric.LAUNCH_TIME) == [Observation(Metric.LAUNCH_TIME, 4, {"status": "success", "retries": "0"})]
    assert _of(out, Metric.LAUNCH_COUNT) == [Observation(Metric.LAUNCH_COUNT, 1, {"status": "success", **REPO})]
    assert _gauge_sum(out, Metric.BUILDS_INPROGRESS) == 0 and _gauge_sum(out, Metric.LAUNCHES_INPROGRESS) == 0


def test_gauges_rise_while_building_and_launching() -> None:
    m = LaunchMetrics("GitHub", "https://github.com/o/r")
    assert m.on_event("waiting", 0) == [Observation(Metric.BUILDS_INPROGRESS, 1)]
    assert m.on_event("building", 1) == []
    built = m.on_event("built", 5)
    assert Observation(Metric.BUILDS_INPROGRESS, -1) in built and Observation(Metric.LAUNCHES_INPROGRESS, 1) in built
    assert m.on_event("launching", 6) == []


def test_cached_launch_records_only_a_launch() -> None:
    out = _feed(LaunchMetrics("Git", "git://example.org/r"), [("built", 0), ("launching", 0.5), ("launching", 1.0), ("ready", 3.5)])
    assert _of(out, Metric.BUILD_COUNT) == [] and _of(out, Metric.BUILD_TIME) == []
    assert _of(out, Metric.LAUNCH_TIME) == [Observation(Metric.LAUNCH_TIME, 3.0, {"status": "success", "retries": "0"})]
    assert _gauge_sum(out, Metric.LAUNCHES_INPROGRESS) == 0


def test_failed_build_records_a_build_failure_and_no_launch() -> None:
    out = _feed(LaunchMetrics("Git", "git://example.org/r"), [("waiting", 0), ("building", 1), ("failed", 90)])
    assert _of(out, Metric.BUILD_TIME) == [Observation(Metric.BUILD_TIME, 90, {"status": "failure"})]
    assert _of(out, Metric.BUILD_COUNT) == [Observation(Metric.BUILD_COUNT, 1, {"status": "failure", **REPO})]
    assert _of(out, Metric.LAUNCH_COUNT) == [] and _of(out, Metric.LAUNCH_TIME) == []
    assert _gauge_sum(out, Metric.BUILDS_INPROGRESS) == 0


def test_failed_launch_records_a_launch_failure_with_retries_minus_one() -> None:
    out = _feed(LaunchMetrics("Git", "git://example.org/r"), [("built", 0), ("launching", 1), ("failed", 121)])
    assert _of(out, Metric.LAUNCH_TIME) == [Observation(Metric.LAUNCH_TIME, 120, {"status": "failure", "retries": "-1"})]
    assert _of(out, Metric.LAUNCH_COUNT) == [Observation(Metric.LAUNCH_COUNT, 1, {"status": "failure", **REPO})]


def test_build_only_ready_ends_the_build_and_launches_nothing() -> None:
    out = _feed(LaunchMetrics("Git", "git://example.org/r"), [("waiting", 0), ("building", 1), ("ready", 61)])
    assert _of(out, Metric.BUILD_COUNT) == [Observation(Metric.BUILD_COUNT, 1, {"status": "success", **REPO})]
    assert _of(out, Metric.LAUNCH_COUNT) == [] and _gauge_sum(out, Metric.LAUNCHES_INPROGRESS) == 0
    # A build-only request for a built environment: just `ready`, nothing to record.
    assert _feed(LaunchMetrics("Git", "r"), [("ready", 0)]) == []


def test_failures_before_any_build_record_nothing() -> None:
    assert _feed(LaunchMetrics("Git", "r"), [("failed", 1)]) == []


def test_client_leaving_releases_gauges_without_counting() -> None:
    out = _feed(LaunchMetrics("Git", "r"), [("waiting", 0), ("building", 1)])
    assert _gauge_sum(out, Metric.BUILDS_INPROGRESS) == 0
    assert _of(out, Metric.BUILD_COUNT) == [] and _of(out, Metric.BUILD_TIME) == []
    out = _feed(LaunchMetrics("Git", "r"), [("built", 0), ("launching", 1)])
    assert _gauge_sum(out, Metric.LAUNCHES_INPROGRESS) == 0 and _of(out, Metric.LAUNCH_COUNT) == []


def test_events_after_the_end_are_ignored() -> None:
    m = LaunchMetrics("Git", "r")
    _feed(m, [("waiting", 0), ("failed", 1)])
    assert m.on_event("ready", 2) == [] and m.on_event("waiting", 3) == [] and m.on_close() == []


def test_a_launch_without_built_still_ends_the_build() -> None:
    out = _feed(LaunchMetrics("Git", "r"), [("waiting", 0), ("launching", 5), ("ready", 7)])
    assert [o.labels["status"] for o in _of(out, Metric.BUILD_COUNT)] == ["success"]
    assert _of(out, Metric.LAUNCH_TIME)[0].value == 2


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observations_are_recorded_on_binderhubs_metrics() -> None:
    labels = {"status": "failure", "provider": "Git", "repo": "unit-test://record-observations"}
    before_count = _sample("binderhub_build_count_total", labels)
    before_time = _sample("binderhub_build_time_seconds_bucket", {"status": "failure", "le": "60.0"})
    before_gauge = _sample("binderhub_inprogress_builds", {})
    machine = LaunchMetrics("Git", "unit-test://record-observations")
    record_observations(machine.on_event("waiting", 0))
    assert _sample("binderhub_inprogress_builds", {}) == before_gauge + 1
    record_observations(machine.on_event("failed", 30))
    assert _sample("binderhub_build_count_total", labels) == before_count + 1
    assert _sample("binderhub_build_time_seconds_bucket", {"status": "failure", "le": "60.0"}) == before_time + 1
    assert _sample("binderhub_inprogress_builds", {}) == before_gauge


def test_binderhub_buckets() -> None:
    from services.gateway.metrics import BUILD_BUCKETS, LAUNCH_BUCKETS

    assert BUILD_BUCKETS == (60, 120, 300, 600, 1800, 3600, 7200, float("inf"))
    assert LAUNCH_BUCKETS == (2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))


# -- providers, repo URLs, redirects, versions, badges ----------------------------


def _py_regex(js: str) -> re.Pattern[str]:
    """JavaScript named groups (?<name>...) in Python syntax."""
    return re.compile(js.replace("(?<", "(?P<"))


def test_repoproviders_lists_enabled_providers_in_binderhubs_display_config_shape() -> None:
    providers = ProviderSettings(enabled=["git", "gh", "zenodo"])
    config = repoproviders_config(providers)
    assert [p["id"] for p in config] == ["git", "gh", "zenodo"]
    for entry in config:
        assert set(entry) >= {"displayName", "id", "spec", "repo", "ref"}
        assert set(entry["repo"]) == {"label", "placeholder", "urlEncode"}
        assert isinstance(entry["ref"]["enabled"], bool)
        _py_regex(entry["spec"]["validateRegex"])
    by_id = {p["id"]: p for p in config}
    assert by_id["git"]["repo"]["urlEncode"] is True and by_id["git"]["ref"] == {"enabled": True, "default": "HEAD"}
    assert by_id["zenodo"]["ref"] == {"enabled": False} and by_id["zenodo"]["displayName"] == "Zenodo DOI"
    detect = _py_regex(by_id["gh"]["detect"]["regex"])
    assert detect.match("https://github.com/binder-examples/requirements").group("repo") == "binder-examples/requirements"  # type: ignore[union-attr]
    assert detect.match("binder-examples/requirements/").group("repo") == "binder-examples/requirements"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("prefix", "spec"),
    [
        ("gh", "binder-examples/requirements/HEAD"),
        ("gist", "user/0123abcd"),
        ("gl", "group%2Fproject/HEAD"),
        ("git", "https%3A%2F%2Fexample.org%2Frepo.git/main"),
        ("zenodo", "10.5281/zenodo.3242074"),
        ("dataverse", "10.7910/DVN/TJCLKP"),
        ("hydroshare", "b8f6eae9d89241cf8b5904033460af61"),
        ("ckan", "https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fx"),
        ("doi", "10.5281/zenodo.3242074"),
    ],
)
def test_spec_regexes_accept_binderhub_specs(prefix: str, spec: str) -> None:
    config = {p["id"]: p for p in repoproviders_config(ProviderSettings())}
    assert _py_regex(config[prefix]["spec"]["validateRegex"]).fullmatch(spec)


def test_legacy_config_is_keyed_by_prefix_with_labels_and_detection() -> None:
    config = legacy_config(ProviderSettings(enabled=["gh", "gl", "git", "figshare"]))
    assert list(config) == ["gh", "gl", "git", "figshare"]
    for entry in config.values():
        assert set(entry) == {"text", "tag_text", "ref_prop_disabled", "label_prop_disabled", "display_name", "regex_detect"}
    assert config["figshare"]["ref_prop_disabled"] is True and config["figshare"]["regex_detect"] is None
    gh = [_py_regex(r) for r in config["gh"]["regex_detect"]]
    m = gh[0].match("https://github.com/o/r/blob/main/notebooks/a.ipynb")
    assert m and m.group("repo") == "o/r" and m.group("ref") == "main" and m.group("filepath") == "notebooks/a.ipynb"
    gl = [_py_regex(r) for r in config["gl"]["regex_detect"]]
    m = gl[1].match("https://gitlab.com/g/sub/proj/-/tree/dev/docs")
    assert m and m.group("repo") == "g/sub/proj" and m.group("urlpath") == "docs"


def test_detection_follows_configured_github_enterprise() -> None:
    config = legacy_config(ProviderSettings(enabled=["gh"], github_url="https://ghe.example.org/"))
    assert _py_regex(config["gh"]["regex_detect"][0]).match("https://ghe.example.org/o/r")


def test_every_default_provider_is_described() -> None:
    assert set(ProviderSettings().enabled) <= set(PROVIDERS)
    assert provider_name("gh") == "GitHub" and provider_name("git") == "Git" and provider_name("gl") == "GitLab"
    assert provider_name("new") == "new"


@pytest.mark.parametrize(
    ("prefix", "spec", "expected"),
    [
        ("gh", "binder-examples/requirements/HEAD", "https://github.com/binder-examples/requirements"),
        ("gh", "o/r.git/main", "https://github.com/o/r"),
        ("gl", "group%2Fsub%2Fproject/HEAD", "https://gitlab.com/group/sub/project.git"),
        ("gist", "user/abc123/HEAD", "https://gist.github.com/user/abc123.git"),
        ("git", urllib.parse.quote("git://127.0.0.1:9418/repo", safe="") + "/main", "git://127.0.0.1:9418/repo"),
        ("git", urllib.parse.quote("https://user:secret@example.org/r.git", safe="") + "/main", "https://example.org/r.git"),
        ("zenodo", "10.5281/zenodo.3242074", "10.5281/zenodo.3242074"),
        ("hydroshare", "b8f6eae9d89241cf8b5904033460af61", "https://www.hydroshare.org/resource/b8f6eae9d89241cf8b5904033460af61"),
        ("gh", "malformed", "malformed"),
    ],
)
def test_repo_url_label_is_binderhubs_get_repo_url(prefix: str, spec: str, expected: str) -> None:
    assert repo_url_for(prefix, spec, ProviderSettings()) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/repo/binderhub-ci-repos/requirements", "/v2/gh/binderhub-ci-repos/requirements/master"),
        ("/repo/binderhub-ci-repos/requirements/", "/v2/gh/binderhub-ci-repos/requirements/master"),
        ("/repo/binderhub-ci-repos/requirements/notebooks/index.ipynb", "/v2/gh/binderhub-ci-repos/requirements/master?urlpath=%2Fnotebooks%2Findex.ipynb"),
        ("/repo/u/r/a%20b.ipynb", "/v2/gh/u/r/master?urlpath=%2Fa+b.ipynb"),
        ("/repo/only-user", None),
        ("/repo//r", None),
    ],
)
def test_legacy_repo_redirect_like_binderhub(path: str, expected: str | None) -> None:
    assert legacy_redirect_location(path) == expected


def test_legacy_redirect_keeps_the_public_base_path() -> None:
    assert legacy_redirect_location("/repo/u/r", "/binder/") == "/binder/v2/gh/u/r/master"


def test_versions_report_binderflow_honestly() -> None:
    body = versions_body(Settings())
    assert set(body) >= {"builder", "binderhub", "builder_info"}
    assert "binderflow" in body["binderhub"] and "uv" in body["builder"]


@pytest.mark.parametrize(("svg", "width"), [(BADGE_LOGO_SVG, "109"), (BADGE_SVG, "88")])
def test_badges_are_20px_svg_saying_launch_binder(svg: str, width: str) -> None:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == width and root.get("height") == "20"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert texts == {"launch", "binder"}


# -- build-only in the resolver and the builder ------------------------------------


def _repo() -> ResolvedRepo:
    return ResolvedRepo(
        repo_url="git://example.org/r",
        ref="main",
        resolved_ref="a" * 40,
        ref_url="git://example.org/r",
        clone_url="git://example.org/r",
        image_name="git-example-org-r-0123456789abcdef",
        binder_request="v2/git/x/main",
        binder_persistent_request="v2/git/x/" + "a" * 40,
    )


def _request(build_only: bool) -> LaunchRequest:
    return LaunchRequest(provider="git", spec="x/main", launch_host="http://127.0.0.1:8585/", build_only=build_only)


def test_launch_request_build_only_defaults_off_and_decodes_old_commands() -> None:
    import msgspec

    old = msgspec.json.encode({"provider": "git", "spec": "x/main"})
    assert msgspec.json.decode(old, type=LaunchRequest).build_only is False


def test_resolver_answers_built_build_only_with_ready_and_no_server() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    command = ResolveRef(command_id="l1234567.resolve", launch_id="l1234567", issued_at=now, request=_request(True))
    decision = resolver_domain.decide(command, _repo(), True, now)
    assert decision.build is None and decision.start is None
    (event,) = decision.events
    assert isinstance(event, ServerReady) and event.message == "Done! Found built image\n"
    assert event.image == _repo().image_name and event.url == "" and event.token == ""
    # Not built yet: a build-only launch builds as usual.
    assert resolver_domain.decide(command, _repo(), False, now).build is not None
    # A launch is unchanged.
    launch = ResolveRef(command_id="l1234567.resolve", launch_id="l1234567", issued_at=now, request=_request(False))
    assert resolver_domain.decide(launch, _repo(), True, now).start is not None


def test_builder_ends_a_build_only_build_with_ready() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    command = BuildImage(command_id="l1234567.build", launch_id="l1234567", issued_at=now, request=_request(True), repo=_repo())
    event = builder_domain.event_for_progress(command, "b1", 9, BuildFinished(image_name=_repo().image_name, was_cached=False), now)
    assert isinstance(event, ServerReady) and event.phase == "ready"
    assert event.message == "Done! Image built\n" and event.image == _repo().image_name
    assert event.event_id == "l1234567.build.ready"
    launch = BuildImage(command_id="l1234567.build", launch_id="l1234567", issued_at=now, request=_request(False), repo=_repo())
    assert builder_domain.event_for_progress(launch, "b1", 9, BuildFinished(image_name="x", was_cached=False), now).phase == "built"


# -- routes on the real app (answered before anything reaches NATS) ---------------


def _settings(**gateway: Any) -> Settings:
    return Settings(gateway=GatewaySettings(**gateway))


MakeClient = Callable[[Settings], Awaitable[TestClient]]


def _state(js: JetStreamContext, settings: Settings) -> GatewayState:
    """A gateway's state on the session's nats-server, in a namespace of its own.

    These requests are answered before anything is published; the state is real all the same.
    """
    subjects = Subjects(f"u{uuid.uuid4().hex[:10]}")
    return GatewayState(
        settings=settings,
        subjects=subjects,
        js=js,
        publisher=EventPublisher(js, subjects),
        fanout=LaunchFanout(js, subjects),
        sightings=ServiceSightings(30.0),
        nats_connected=lambda: True,
    )


@pytest.fixture
async def nats_js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """JetStream on the session's nats-server."""
    nc = await connect(nats_url, "gateway-units")
    yield nc.jetstream()
    await nc.drain()


@pytest.fixture
async def make_client(nats_js: JetStreamContext) -> AsyncIterator[MakeClient]:
    """Start the real gateway app with these settings; every client is closed afterwards."""
    made: list[TestClient] = []

    async def make(settings: Settings) -> TestClient:
        client = TestClient(TestServer(make_app(_state(nats_js, settings)), host="127.0.0.1"))
        await client.start_server()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    return await make_client(_settings())


async def _events(resp: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    body = await resp.text()
    return [json.loads(line[len("data: "):]) for line in body.splitlines() if line.startswith("data: ")]


async def test_badge_routes_serve_svg(client: TestClient) -> None:
    for path in ("/badge_logo.svg", "/badge.svg", "/assets/images/badge.svg"):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "image/svg+xml"
        ET.fromstring(await resp.text())


async def test_config_routes_answer_json(client: TestClient) -> None:
    providers = await (await client.get("/api/repoproviders")).json()
    assert [p["id"] for p in providers] == ProviderSettings().enabled
    config = await (await client.get("/_config")).json()
    assert list(config) == ProviderSettings().enabled
    versions = await (await client.get("/versions")).json()
    assert versions["binderflow"]


async def test_legacy_route_redirects(client: TestClient) -> None:
    resp = await client.get("/repo/u/r/notebooks/a.ipynb", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/v2/gh/u/r/master?urlpath=%2Fnotebooks%2Fa.ipynb"
    assert (await client.get("/repo/u", allow_redirects=False)).status == 404


async def test_build_only_without_api_mode_is_one_failed_event(client: TestClient) -> None:
    resp = await client.get("/build/gh/o/r/HEAD?build_only=true", headers={"Accept": "text/event-stream"})
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    events = await _events(resp)
    assert len(events) == 1 and events[0]["phase"] == "failed" and events[0]["status_code"] == 400
    assert "Building but not launching is not permitted" in events[0]["message"]


async def test_required_and_invalid_tokens_are_refused_on_the_stream(make_client: MakeClient) -> None:
    c = await make_client(_settings(build_token_secret=SECRET, require_build_token=True, require_build_only=True))
    try:
        headers = {"Accept": "text/event-stream"}
        (missing,) = await _events(await c.get("/build/gh/o/r/HEAD", headers=headers))
        assert missing["status_code"] == 403 and "build token is required" in missing["message"]
        expired = make_build_token(SECRET, "gh/o/r/HEAD", f"127.0.0.1:{c.port}", 1, time.time() - 10)
        (event,) = await _events(await c.get(f"/build/gh/o/r/HEAD?build_token={expired}", headers=headers))
        assert event["status_code"] == 403 and "expired" in event["message"]
        other_site = make_build_token(SECRET, "gh/o/r/HEAD", "elsewhere.example", 60, time.time())
        (event,) = await _events(await c.get(f"/build/gh/o/r/HEAD?build_token={other_site}", headers=headers))
        assert "another site" in event["message"]
        good = make_build_token(SECRET, "gh/o/r/HEAD", f"127.0.0.1:{c.port}", 60, time.time())
        # A valid token, but this Binder only builds: refused for the missing build_only.
        (event,) = await _events(await c.get(f"/build/gh/o/r/HEAD?build_token={good}", headers=headers))
        assert event["status_code"] == 400 and "only builds" in event["message"]
        # The Origin header, when sent, is what the token is bound to.
        from_origin = make_build_token(SECRET, "gh/o/r/HEAD", "binder.example.org", 60, time.time())
        (event,) = await _events(
            await c.get(f"/build/gh/o/r/HEAD?build_token={from_origin}", headers={**headers, "Origin": "https://binder.example.org"})
        )
        assert event["status_code"] == 400  # got past the token check
    finally:
        await c.close()


async def test_banned_network_gets_403_everywhere_but_versions_health_and_metrics(make_client: MakeClient) -> None:
    c = await make_client(_settings(ban_networks={"127.0.0.0/8": "the loopback network"}))
    try:
        resp = await c.get("/api/repoproviders")
        assert resp.status == 403 and "Requests from the loopback network are not allowed" in await resp.text()
        assert (await c.get("/badge_logo.svg")).status == 403
        (event,) = await _events(await c.get("/build/gh/o/r/HEAD", headers={"Accept": "text/event-stream"}))
        assert event == {"phase": "failed", "status_code": 403, "message": "Requests from the loopback network are not allowed\n"}
        assert (await c.get("/versions")).status == 200
        assert (await c.get("/metrics")).status == 200
    finally:
        await c.close()


async def test_other_networks_are_not_banned(make_client: MakeClient) -> None:
    c = await make_client(_settings(ban_networks={"127.0.0.2/32": "banned"}))
    try:
        assert (await c.get("/api/repoproviders")).status == 200
    finally:
        await c.close()


async def test_invalid_ban_network_stops_the_app(nats_js: JetStreamContext) -> None:
    with pytest.raises(SettingsError):
        make_app(_state(nats_js, _settings(ban_networks={"nope": "x"})))


@pytest.mark.parametrize("mode", [{"enable_api_only_mode": True}, {"require_build_only": True}])
async def test_api_only_mode_serves_the_api_but_no_ui_badges_or_ui_links(make_client: MakeClient, mode: dict[str, bool]) -> None:
    # As BinderHub with enable_api_only_mode: the API answers, every page of the UI is 404.
    c = await make_client(_settings(**mode))
    try:
        for path in ("/_config", "/api/repoproviders", "/versions"):
            assert (await c.get(path)).status == 200, path
        for path in ("/", "/about", "/v2/gh/o/r/HEAD", "/static/home.js", "/badge_logo.svg", "/badge.svg", "/repo/u/r"):
            assert (await c.get(path, allow_redirects=False)).status == 404, path
    finally:
        await c.close()


async def test_ui_pages_are_served_outside_api_only_mode(client: TestClient) -> None:
    for path in ("/", "/about", "/v2/gh/o/r/HEAD", "/static/home.js"):
        assert (await client.get(path)).status == 200, path


async def test_home_form_and_provider_apis_describe_providers_from_one_table(make_client: MakeClient) -> None:
    enabled = ["gl", "zenodo", "git"]
    c = await make_client(Settings(providers=ProviderSettings(enabled=enabled)))
    try:
        page = await (await c.get("/")).text()
        form = json.loads(re.search(r'<script id="providers-config" type="application/json">(.*?)</script>', page).group(1))["providers"]  # type: ignore[union-attr]
        repoproviders = await (await c.get("/api/repoproviders")).json()
        config = await (await c.get("/_config")).json()
        about = await (await c.get("/about")).text()
    finally:
        await c.close()
    assert list(form) == [p["id"] for p in repoproviders] == list(config) == enabled
    for api in repoproviders:
        entry = form[api["id"]]
        assert entry["display"] == api["displayName"] == config[api["id"]]["display_name"]
        assert (entry["label"], entry["placeholder"], entry["url_encode"]) == (api["repo"]["label"], api["repo"]["placeholder"], api["repo"]["urlEncode"])
        assert entry["ref"] == api["ref"]["enabled"] and entry["ref_label"] == config[api["id"]]["tag_text"]
        assert f'<option value="{api["id"]}">{api["displayName"]}</option>' in page
    assert form["gl"]["strip_prefix"] == "https://gitlab.com/" and form["git"]["keep_git_suffix"] is True
    assert "GitLab.com, Zenodo DOI, Git repository" in about


async def test_loading_page_hands_its_stream_a_build_token_that_stream_accepts(make_client: MakeClient) -> None:
    c = await make_client(_settings(build_token_secret=SECRET, require_build_token=True))
    try:
        page = await (await c.get("/v2/gh/o/r/HEAD")).text()
        build_url = html.unescape(re.search(r'data-build-url="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        assert build_url.startswith("/build/gh/o/r/HEAD?build_token=")
        headers = {"Accept": "text/event-stream"}
        (refused,) = await _events(await c.get("/build/gh/o/r/HEAD?build_only=true", headers=headers))
        assert refused["status_code"] == 403 and "build token is required" in refused["message"]
        # build_only is refused only after the token is checked: a 400 here means the token passed.
        (event,) = await _events(await c.get(build_url + "&build_only=true", headers=headers))
        assert event["status_code"] == 400 and "Building but not launching is not permitted" in event["message"]
        # A page opened from another site's form gets a token for that site, as BinderHub binds it.
        foreign = await (await c.get("/v2/gh/o/r/HEAD", headers={"Origin": "https://elsewhere.example"})).text()
        token = re.search(r"build_token=([^&\"]+)", foreign).group(1)  # type: ignore[union-attr]
        assert check_build_token(token, SECRET, "gh/o/r/HEAD", "elsewhere.example", time.time())["origin"] == "elsewhere.example"
    finally:
        await c.close()
