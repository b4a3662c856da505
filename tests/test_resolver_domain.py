"""The resolver's pure decisions: environment names, pinning, build-or-launch, failures."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import msgspec

from schemas import BuildImage, BuildWaiting, ImageBuilt, LaunchFailed, LaunchRequest, ResolvedRepo, ResolveRef, StartServer
from schemas.commands import Command
from services.resolver.domain import Decision, decide, environment_name, failure, pin
from services.resolver.providers.base import ResolvedSource

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "fedcba9876543210fedcba9876543210fedcba98"
URL = "https://github.com/jupyterhub/binder-example.git"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")


def _is_dns_label(name: str) -> bool:
    return bool(NAME_RE.match(name)) and len(name) <= 63


def _source(url: str = URL, ref: str = "main", sha: str = SHA) -> ResolvedSource:
    return ResolvedSource(
        repo_url=url,
        ref=ref,
        resolved_ref=sha,
        ref_url=url,
        clone_url=url,
        persistent_spec=f"{url.replace(':', '%3A').replace('/', '%2F')}/{sha}",
    )


def _command(launch_id: str = "launch-0001") -> ResolveRef:
    return ResolveRef(
        command_id=f"{launch_id}.resolve",
        launch_id=launch_id,
        issued_at=NOW,
        request=LaunchRequest(provider="git", spec="https%3A%2F%2Fexample.org%2Frepo/main"),
    )


def _repo() -> ResolvedRepo:
    return pin("git", "https%3A%2F%2Fexample.org%2Frepo/main", _source())


# -- environment_name -----------------------------------------------------------


def test_environment_name_is_stable_for_same_inputs() -> None:
    assert environment_name("gh", URL, SHA) == environment_name("gh", URL, SHA)


def test_environment_name_differs_when_any_input_differs() -> None:
    base = environment_name("gh", URL, SHA)
    assert environment_name("gl", URL, SHA) != base
    assert environment_name("gh", URL + "x", SHA) != base
    assert environment_name("gh", URL, OTHER_SHA) != base


def test_environment_name_keeps_slugs_that_collide_apart() -> None:
    # Both slug to "example-org-a-b"; the hash must still tell them apart.
    a = environment_name("git", "https://example.org/a-b", SHA)
    b = environment_name("git", "https://example.org/a/b", SHA)
    assert a != b


def test_environment_name_is_readable() -> None:
    name = environment_name("git", "https://GitHub.com/Owner/Repo.git", SHA)
    assert name.startswith("git-github-com-owner-repo-")


def test_environment_name_leaves_credentials_out_of_the_readable_part() -> None:
    name = environment_name("git", "https://someone:hunter2@example.org/r.git", SHA)
    assert name.startswith("git-example-org-r-") and "hunter2" not in name


def test_links_that_reach_the_same_content_share_one_environment() -> None:
    # A DOI resolved by the Zenodo provider pins exactly what a zenodo link pins,
    # apart from the names the request itself reports.
    record = ResolvedSource(
        repo_url="10.5281/zenodo.3242074", ref="3242074", resolved_ref=SHA, ref_url="https://doi.org/10.5281/zenodo.3242074",
        clone_url="https://zenodo.org/api/records/3242074", persistent_spec="10.5281/zenodo.3242074",
    )
    by_concept_doi = msgspec.structs.replace(record, repo_url="10.5281/zenodo.3242073")
    direct = pin("zenodo", "10.5281/zenodo.3242074", record)
    via_doi = pin("doi", "10.5281/zenodo.3242073", by_concept_doi)
    assert via_doi.image_name == direct.image_name
    assert (direct.binder_request, via_doi.binder_request) == ("v2/zenodo/10.5281/zenodo.3242074", "v2/doi/10.5281/zenodo.3242073")
    # gh and git links to one commit are one environment too; another fetcher is not.
    github = _source(url="https://github.com/o/r")
    assert pin("gh", "o/r/main", github).image_name == pin("git", "https%3A%2F%2Fgithub.com%2Fo%2Fr/main", github).image_name
    assert pin("zenodo", "x", msgspec.structs.replace(record, content_provider="figshare")).image_name != direct.image_name


CRAFTED_URLS = [
    URL,
    "",
    "-",
    "---",
    "https://",
    "HTTPS://EXAMPLE.ORG/UPPER/CASE.GIT",
    "https://example.org/" + "a" * 5000,
    "https://example.org/" + "a-" * 2000,
    "https://example.org/" + "-" * 300 + "x",
    "https://exämple.org/ünïcödé/репозиторий/仓库",
    "🙂🙂🙂",
    "git://127.0.0.1:9418/some/repo.git",
    "https://example.org/repo.git.git",
    "file:///etc/passwd",
    "https://example.org/a_b.c~d/e%20f",
    "https://user:pass@example.org/x",
    "\x00\n\t ",
]
CRAFTED_PROVIDERS = ["git", "gh", "GitHub", "", "-", "ünï", "x" * 200, "a--b"]


def test_environment_name_is_always_a_dns_label() -> None:
    for provider in CRAFTED_PROVIDERS:
        for url in CRAFTED_URLS:
            for ref in (SHA, "", "HEAD", "x" * 300):
                name = environment_name(provider, url, ref)
                assert _is_dns_label(name), (provider, url, ref, name)


def test_environment_name_of_long_url_is_truncated_to_63() -> None:
    name = environment_name("git", "https://example.org/" + "abc" * 1000, SHA)
    assert len(name) <= 63
    assert _is_dns_label(name)


# -- pin ------------------------------------------------------------------------


def test_pin_reports_binder_request_with_the_spec_as_given() -> None:
    repo = pin("gh", "jupyterhub/binder-example/main", _source(ref="main"))
    assert repo.binder_request == "v2/gh/jupyterhub/binder-example/main"


def test_pin_persistent_request_uses_the_commit() -> None:
    source = _source()
    repo = pin("git", "https%3A%2F%2Fexample.org%2Frepo/main", source)
    assert repo.binder_persistent_request == f"v2/git/{source.persistent_spec}"
    assert repo.binder_persistent_request.endswith("/" + SHA)
    assert repo.resolved_ref == SHA
    assert repo.ref == "main"


def test_pin_names_the_image_after_the_environment_with_prefix() -> None:
    source = _source()
    repo = pin("git", "spec/main", source, image_prefix="registry.example/binder-")
    assert repo.image_name == "registry.example/binder-" + environment_name(source.content_provider, source.clone_url, source.resolved_ref)


# -- decide ---------------------------------------------------------------------


def _commands(decision: Decision) -> list[Command]:
    return [c for c in (decision.build, decision.start) if c is not None]


def test_decide_built_launches_at_once_without_a_build() -> None:
    command, repo = _command(), _repo()
    decision = decide(command, repo, is_built=True, now=NOW)
    assert decision.build is None
    assert len(decision.events) == 1
    event = decision.events[0]
    assert isinstance(event, ImageBuilt)
    assert event.message == "Found built image, launching...\n"
    assert event.image_name == repo.image_name
    assert event.launch_id == command.launch_id
    assert isinstance(decision.start, StartServer)
    assert decision.start.repo == repo
    assert decision.start.request == command.request
    assert _commands(decision) == [decision.start]


def test_decide_not_built_queues_a_build_and_waits() -> None:
    command, repo = _command(), _repo()
    decision = decide(command, repo, is_built=False, now=NOW)
    assert decision.start is None
    assert len(decision.events) == 1
    assert isinstance(decision.events[0], BuildWaiting)
    assert decision.events[0].message.endswith("\n")
    assert isinstance(decision.build, BuildImage)
    assert decision.build.repo == repo
    assert decision.build.launch_id == command.launch_id
    assert _commands(decision) == [decision.build]


def _ids(decision) -> list[str]:
    return [e.event_id for e in decision.events] + [c.command_id for c in _commands(decision)]


def test_decide_ids_are_deterministic_for_a_redelivered_command() -> None:
    for built in (True, False):
        first = decide(_command("launch-0001"), _repo(), built, NOW)
        # A redelivery is handled later: the clock differs, the ids must not.
        again = decide(_command("launch-0001"), _repo(), built, datetime(2030, 1, 1, tzinfo=timezone.utc))
        assert _ids(first) == _ids(again)


def test_decide_ids_differ_between_launches() -> None:
    for built in (True, False):
        a = _ids(decide(_command("launch-0001"), _repo(), built, NOW))
        b = _ids(decide(_command("launch-0002"), _repo(), built, NOW))
        assert not set(a) & set(b)


# -- failure --------------------------------------------------------------------


def test_failure_message_ends_with_one_newline() -> None:
    event = failure(_command(), "Could not resolve ref 'nope'", NOW)
    assert isinstance(event, LaunchFailed)
    assert event.message == "Could not resolve ref 'nope'\n"
    assert failure(_command(), "already\n", NOW).message == "already\n"


def test_failure_id_is_deterministic() -> None:
    assert failure(_command(), "a", NOW).event_id == failure(_command(), "b", NOW).event_id
