"""Banned and high-quota specs (BinderHub's banned_specs / high_quota_specs), and the
provider's notice event: pure functions of services/resolver/domain.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas import BuildWaiting, LaunchRequest, ResolveRef
from services.resolver.domain import banned_message, check_spec_patterns, is_banned, is_high_quota, notice, spec_matches

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SPEC = "jupyterhub/zero-to-jupyterhub-k8s/v0.4"


def test_banned_patterns_match_the_start_of_the_spec() -> None:
    assert is_banned(SPEC, ["^jupyterhub.*"])
    assert is_banned(SPEC, [".*zero-to-.*"])
    assert is_banned(SPEC, ["jupyterhub/"])  # re.match: anchored at the start
    assert not is_banned(SPEC, ["^yuvipanda.*"])
    assert not is_banned(SPEC, ["zero-to"])
    assert not is_banned(SPEC, [])


@pytest.mark.parametrize("pattern", [".*ddEEff.*", ".*ddEEFF.*", "^aabbccc/"])
def test_matching_ignores_case(pattern: str) -> None:
    assert is_banned("AABBCcc/DDeeFF/v0.4", [pattern])


def test_percent_escaping_does_not_slip_past_a_pattern() -> None:
    assert is_banned("%6Aupyterhub/repo/HEAD", ["^jupyterhub/"])
    # gl specs are escaped by design; patterns may be written either way.
    assert is_banned("group%2Fproject/main", ["^group/project"])
    assert is_banned("group%2Fproject/main", ["^group%2Fproject"])


def test_trailing_slash_is_ignored_like_binderhub() -> None:
    assert is_banned("owner/repo/main/", [r"^owner/repo/main$"])


def test_high_quota_uses_the_same_rules() -> None:
    assert is_high_quota(SPEC, ["^jupyterhub.*"])
    assert not is_high_quota(SPEC, ["^yuvipanda.*"])
    assert not is_high_quota(SPEC, [])
    assert spec_matches(SPEC, ["^JUPYTERHUB"])


def test_banned_message_is_binderhubs() -> None:
    assert banned_message("owner/repo/HEAD") == (
        "Sorry, owner/repo/HEAD has been temporarily disabled from launching. Please contact admins for more info!"
    )


def test_invalid_patterns_are_reported_with_the_setting_name() -> None:
    check_spec_patterns({"gh": ["^ok.*"], "gl": []}, "providers.banned_specs")
    with pytest.raises(ValueError, match=r"providers\.banned_specs.*gh.*'\(unclosed'"):
        check_spec_patterns({"gh": ["(unclosed"]}, "providers.banned_specs")


def test_notice_is_a_waiting_event_with_its_own_id() -> None:
    command = ResolveRef(command_id="l1.resolve", launch_id="l1", issued_at=NOW, request=LaunchRequest(provider="gh", spec="o/r/master"))
    event = notice(command, "Trying again with HEAD instead of master.", NOW)
    assert isinstance(event, BuildWaiting)
    assert event.event_id == "l1.resolver.notice"
    assert event.message == "Trying again with HEAD instead of master.\n"
