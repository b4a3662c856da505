"""The `gh` and `gist` providers against a stand-in for api.github.com, then `gh` end to end.

The internet is unreachable here, so tests/standins/github_api.py serves
api.github.com's answers (recorded-style bodies, status codes and headers) on
127.0.0.1; the end-to-end test points the resolver at it and clones the
repository from `git daemon`, which plays github.com.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

import msgspec
import pytest

from services.resolver.providers.base import ProviderError, ResolvedSource
from services.resolver.providers.gist import GistProvider
from services.resolver.providers.github import GitHubProvider, parse_gh_spec, rate_limit_message
from services.runtime.settings import ProviderSettings

from .harness import GitServer, launch
from .standins.github_api import GitHubApiStandIn

TOKEN = "secret-token-xyz"
A = "38e50c71130fcf56655685f0992f4f125bef3879"
B = "4931711ef6661f45f9fbba6780200d36d735dde8"
C = "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603"
D = "ada2170a2181ae1760d85eab74e5264d0c6bb67f"
GIST = "8a658f7f63b13768d1e75fa2464f5092"
V1 = "72997b34f5b0d6949e9e3750889e0b3ff7b5c066"
V2 = "56b1968a071db4b234121510054ab3f903c83350"
V3 = "7daa381aae8409bfe28193e2ed8f767c26371237"


@pytest.fixture
async def github_api() -> AsyncIterator[GitHubApiStandIn]:
    async with GitHubApiStandIn(expected_token=TOKEN) as api:
        api.add_repo("jupyterhub", "binder-example", branches={"main": A, "feature/x": B}, tags={"v1.0": C})
        api.add_repo("binder-examples", "legacy", branches={"master": D, "develop": B}, default_branch="master")
        api.add_repo("binder-examples", "develop-first", branches={"develop": B, "main": A}, default_branch="develop")
        api.add_gist(GIST, "mariusvniekerk", [V3, V2, V1])
        yield api


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., object]]:
    """Providers built from ProviderSettings, closed after the test."""
    made: list[GitHubProvider | GistProvider] = []

    def build(api: GitHubApiStandIn, cls: type = GitHubProvider, **overrides: object) -> object:
        values = {"github_api_url": api.url, "github_token": TOKEN, "http_timeout_seconds": 5.0, "cache_seconds": 300.0}
        extra = {k: overrides.pop(k) for k in ("allow_secret_gist", "clock") if k in overrides}
        provider = cls(msgspec.convert({**values, **overrides}, ProviderSettings), **extra)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


async def _fails(provider: object, spec: str) -> str:
    with pytest.raises(ProviderError) as info:
        await provider.resolve(spec)  # type: ignore[attr-defined]
    return str(info.value)


# -- spec parsing (pure) -----------------------------------------------------------


def test_gh_spec_splits_owner_repo_and_a_ref_that_may_contain_slashes() -> None:
    assert parse_gh_spec("jupyterhub/binder-example/main") == ("jupyterhub", "binder-example", "main")
    assert parse_gh_spec("user/repo/hotfix/squash-bug") == ("user", "repo", "hotfix/squash-bug")
    assert parse_gh_spec("user/repo/feature%2Fsave_world") == ("user", "repo", "feature/save_world")
    assert parse_gh_spec("user/repo.git/HEAD/") == ("user", "repo", "HEAD")
    assert parse_gh_spec("user/re.po_-1/v1.0") == ("user", "re.po_-1", "v1.0")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nothing_to_split", 'Spec is not of the form "owner/repo/ref"'),
        ("short/suggestion", 'Did you mean "short/suggestion/HEAD"?'),
        ("-owner/repo/main", "not a valid GitHub user or organization name"),
        ("own.er/repo/main", "not a valid GitHub user or organization name"),
        ("own%2Fer/repo/main", "not a valid GitHub user or organization name"),
        ("owner/../main", "not a valid GitHub repository name"),
        ("owner/%2E%2E/main", "not a valid GitHub repository name"),
        ("owner/-repo/main", "not a valid GitHub repository name"),
        ("owner/re%20po/main", "not a valid GitHub repository name"),
        ("owner/repo/--upload-pack=touch%20x", "not a valid Git ref name"),
        ("owner/repo/a..b", "not a valid Git ref name"),
    ],
)
def test_malformed_or_unsafe_gh_specs_are_refused(spec: str, expected: str) -> None:
    with pytest.raises(ProviderError, match=re.escape(expected)):
        parse_gh_spec(spec)


def test_short_spec_ending_in_a_default_branch_name_gets_no_suggestion() -> None:
    with pytest.raises(ProviderError) as info:
        parse_gh_spec("short/HEAD")
    assert "Did you mean" not in str(info.value)


def test_rate_limit_message_names_the_reset_time_and_rounds_the_wait_up_to_five_minutes() -> None:
    reset = int(datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc).timestamp())
    message = rate_limit_message("5000", reset, reset - 600)
    assert "GitHub API rate limit exceeded" in message
    assert "all 5000 requests" in message
    assert "2024-05-01 12:30:00 UTC" in message
    assert "try again in 15 minutes" in message
    assert "try again in 5 minutes" in rate_limit_message("60", reset, reset - 10)


# -- gh against the stand-in -------------------------------------------------------


async def test_branch_resolves_to_its_commit_with_binderhub_urls(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api)
    source = await gh.resolve("jupyterhub/binder-example/main")
    assert source == ResolvedSource(
        repo_url="https://github.com/jupyterhub/binder-example",
        ref="main",
        resolved_ref=A,
        ref_url=f"https://github.com/jupyterhub/binder-example/tree/{A}",
        clone_url="https://github.com/jupyterhub/binder-example",
        persistent_spec=f"jupyterhub/binder-example/{A}",
    )
    assert github_api.paths() == ["/repos/jupyterhub/binder-example/commits/main"]


async def test_tag_and_branches_with_slashes_escaped_or_not(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api)
    assert (await gh.resolve("jupyterhub/binder-example/v1.0")).resolved_ref == C
    assert (await gh.resolve("jupyterhub/binder-example/feature/x")).resolved_ref == B
    escaped = await gh.resolve("jupyterhub/binder-example/feature%2Fx")
    assert escaped.resolved_ref == B and escaped.ref == "feature/x"


async def test_head_is_the_default_branch(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api)
    source = await gh.resolve("binder-examples/develop-first/HEAD")
    assert source.resolved_ref == B
    assert source.ref == "HEAD"
    assert github_api.paths() == ["/repos/binder-examples/develop-first", "/repos/binder-examples/develop-first/commits/develop"]


async def test_full_sha_passes_through_without_asking_the_api(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api)
    source = await gh.resolve(f"jupyterhub/binder-example/{C}")
    assert source.resolved_ref == C
    assert source.persistent_spec == f"jupyterhub/binder-example/{C}"
    assert github_api.requests == []


@pytest.mark.parametrize(
    ("spec", "gone", "default_sha"),
    [("jupyterhub/binder-example/master", "master", A), ("binder-examples/legacy/main", "main", D)],
)
async def test_missing_master_or_main_falls_back_to_head_with_binderhubs_hint(
    github_api: GitHubApiStandIn, make, spec: str, gone: str, default_sha: str
) -> None:
    gh = make(github_api)
    source = await gh.resolve(spec)
    assert source.resolved_ref == default_sha
    assert source.ref == "HEAD"
    assert source.request_spec == spec.rsplit("/", 1)[0] + "/HEAD"
    assert source.persistent_spec.endswith(f"/{default_sha}")
    assert 'GitHub recently changed default branches from "master" to "main".' in source.notice
    assert "Tip: HEAD will always resolve to a repository's default branch." in source.notice
    assert f"Trying again with HEAD instead of {gone}. Please update your links." in source.notice


async def test_unknown_ref_or_repository_fails_with_not_found(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api)
    message = await _fails(gh, "jupyterhub/binder-example/no-such-branch")
    assert "Could not resolve ref for gh:jupyterhub/binder-example/no-such-branch" in message
    assert "repository or ref was not found" in message
    assert 'changed default branches from "master" to "main"' in message
    assert "Tip:" not in message
    message = await _fails(gh, "nobody/nothing/master")
    assert "repository or ref was not found" in message and "Tip: HEAD will always resolve" in message
    assert "repository or ref was not found" in await _fails(gh, "nobody/nothing/HEAD")


async def test_private_repository_without_token_looks_missing(github_api: GitHubApiStandIn, make) -> None:
    github_api.add_repo("someone", "secret", branches={"main": A}, private=True)
    assert "not found" in await _fails(make(github_api, github_token=""), "someone/secret/main")
    assert (await make(github_api).resolve("someone/secret/main")).resolved_ref == A


async def test_empty_repository_says_so(github_api: GitHubApiStandIn, make) -> None:
    github_api.add_repo("someone", "empty", branches={})
    assert "is empty" in await _fails(make(github_api), "someone/empty/HEAD")


async def test_renamed_repository_redirect_is_followed(github_api: GitHubApiStandIn, make) -> None:
    github_api.rename("jupyterhub/old-name", github_api.repos["jupyterhub/binder-example"])
    source = await make(github_api).resolve("jupyterhub/old-name/v1.0")
    assert source.resolved_ref == C
    assert github_api.paths()[-1].startswith("/repositories/")


async def test_exhausted_rate_limit_says_when_it_resets(github_api: GitHubApiStandIn, make) -> None:
    github_api.rate_remaining = 0
    github_api.rate_reset = int(time.time()) + 1200
    at = datetime.fromtimestamp(github_api.rate_reset, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    message = await _fails(make(github_api, clock=lambda: github_api.rate_reset - 1200), "jupyterhub/binder-example/main")
    assert "GitHub API rate limit exceeded" in message
    assert f"resets at {at}" in message
    assert "try again in 25 minutes" in message


async def test_server_error_and_bad_token_fail_clearly(github_api: GitHubApiStandIn, make) -> None:
    message = await _fails(make(github_api, github_token="wrong-token-123"), "jupyterhub/binder-example/main")
    assert "refused this Binder's credentials" in message and "wrong-token-123" not in message
    github_api.fail_status = 500
    message = await _fails(make(github_api), "jupyterhub/binder-example/main")
    assert "failed with 500" in message and "try again in a few minutes" in message


async def test_slow_api_times_out_with_a_clear_message(github_api: GitHubApiStandIn, make) -> None:
    github_api.delay = 2.0
    started = time.monotonic()
    message = await _fails(make(github_api, http_timeout_seconds=0.3), "jupyterhub/binder-example/main")
    assert time.monotonic() - started < 1.5
    assert "the GitHub API did not answer within 0.3 seconds" in message


async def test_second_resolve_revalidates_with_etag_and_reuses_the_cached_answer(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api)
    first = await gh.resolve("jupyterhub/binder-example/main")
    remaining = github_api.rate_remaining
    second = await gh.resolve("jupyterhub/binder-example/main")
    assert second == first
    assert github_api.not_modified == 1
    assert "If-None-Match" not in github_api.requests[0].headers
    assert github_api.requests[1].headers["If-None-Match"].startswith('W/"')
    assert github_api.rate_remaining == remaining  # a 304 costs no rate limit
    # A moved branch gets a new ETag: the new commit is seen at once.
    github_api.repos["jupyterhub/binder-example"].branches["main"] = B
    assert (await gh.resolve("jupyterhub/binder-example/main")).resolved_ref == B
    assert github_api.not_modified == 1


async def test_no_cache_when_cache_seconds_is_zero(github_api: GitHubApiStandIn, make) -> None:
    gh = make(github_api, cache_seconds=0.0)
    await gh.resolve("jupyterhub/binder-example/main")
    await gh.resolve("jupyterhub/binder-example/main")
    assert all("If-None-Match" not in r.headers for r in github_api.requests)


async def test_token_is_sent_but_never_in_a_message_or_log_record(github_api: GitHubApiStandIn, make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gh = make(github_api)
    gist = make(github_api, GistProvider)
    await gh.resolve("jupyterhub/binder-example/main")
    await gh.resolve("binder-examples/legacy/main")  # master/main fallback and its notice
    await gist.resolve(f"mariusvniekerk/{GIST}/HEAD")
    assert github_api.requests and all(r.headers.get("Authorization") == f"token {TOKEN}" for r in github_api.requests)
    messages = [await _fails(gh, "nobody/nothing/main"), await _fails(gist, f"mariusvniekerk/{'0' * 32}")]
    github_api.rate_remaining = 0
    messages.append(await _fails(gh, "jupyterhub/binder-example/v1.0"))
    github_api.rate_remaining = 100
    github_api.fail_status = 503
    messages.append(await _fails(gh, "jupyterhub/binder-example/v1.0"))
    github_api.fail_status = None
    github_api.delay = 1.0
    messages.append(await _fails(make(github_api, http_timeout_seconds=0.2), "jupyterhub/binder-example/v1.0"))
    assert len(messages) == 5
    assert all(TOKEN not in m for m in messages)
    assert caplog.records, "providers log their requests"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.args)
    assert TOKEN not in repr(gh) and TOKEN not in repr(gh.api.client)


# -- gist against the stand-in -----------------------------------------------------


async def test_gist_head_and_aliases_resolve_to_the_latest_revision(github_api: GitHubApiStandIn, make) -> None:
    gist = make(github_api, GistProvider)
    for spec in (f"mariusvniekerk/{GIST}/HEAD", f"mariusvniekerk/{GIST}", f"mariusvniekerk/{GIST}/master", f"mariusvniekerk/{GIST}/main"):
        source = await gist.resolve(spec)
        assert source.resolved_ref == V3, spec
    assert source == ResolvedSource(
        repo_url=f"https://gist.github.com/mariusvniekerk/{GIST}.git",
        ref="main",
        resolved_ref=V3,
        ref_url=f"https://gist.github.com/mariusvniekerk/{GIST}/{V3}",
        clone_url=f"https://gist.github.com/{GIST}.git",
        persistent_spec=f"mariusvniekerk/{GIST}/{V3}",
    )
    assert set(github_api.paths()) == {f"/gists/{GIST}"}


async def test_gist_revision_from_history_or_asked_for_when_history_is_short(github_api: GitHubApiStandIn, make) -> None:
    gist = make(github_api, GistProvider)
    assert (await gist.resolve(f"mariusvniekerk/{GIST}/{V2}")).resolved_ref == V2
    github_api.gists[GIST].history_limit = 1
    assert (await gist.resolve(f"mariusvniekerk/{GIST}/{V1}")).resolved_ref == V1
    assert github_api.paths()[-1] == f"/gists/{GIST}/{V1}"
    message = await _fails(gist, f"mariusvniekerk/{GIST}/{A}")
    assert "the gist or revision was not found" in message


async def test_gist_owner_must_match_and_secret_gists_are_refused_unless_allowed(github_api: GitHubApiStandIn, make) -> None:
    gist = make(github_api, GistProvider)
    assert f"belongs to mariusvniekerk, not someone-else" in await _fails(gist, f"someone-else/{GIST}/HEAD")
    assert (await gist.resolve(f"MariusVNiekerk/{GIST}/HEAD")).resolved_ref == V3
    secret = "bd01411ea4bf4eb8135893ef237398ba"
    github_api.add_gist(secret, "mariusvniekerk", [V2], public=False)
    assert "secret Gist" in await _fails(gist, f"mariusvniekerk/{secret}/HEAD")
    allowed = make(github_api, GistProvider, allow_secret_gist=True)
    assert (await allowed.resolve(f"mariusvniekerk/{secret}/HEAD")).resolved_ref == V2


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (GIST, "is not of the form"),
        (f"mariusvniekerk/{GIST}/HEAD/extra", "is not of the form"),
        ("mariusvniekerk/not-hex!/HEAD", "not a valid Gist id"),
        (f"-bad/{GIST}/HEAD", "not a valid GitHub user"),
        (f"mariusvniekerk/{GIST}/some-branch", "not a Gist revision"),
    ],
)
async def test_malformed_gist_specs_are_refused_without_asking_the_api(
    github_api: GitHubApiStandIn, make, spec: str, expected: str
) -> None:
    assert expected in await _fails(make(github_api, GistProvider), spec)
    assert github_api.requests == []


async def test_unknown_gist_is_not_found(github_api: GitHubApiStandIn, make) -> None:
    assert "the gist or revision was not found" in await _fails(make(github_api, GistProvider), f"mariusvniekerk/{'f' * 32}/HEAD")


# -- end to end --------------------------------------------------------------------


@pytest.mark.slow
async def test_gh_launch_reaches_ready_through_the_api_standin_and_banned_specs_fail(make_pipeline, git_server: GitServer) -> None:
    """`gh` resolves against the api.github.com stand-in and clones from `git daemon` (github.com's stand-in)."""
    owner, repo = f"org-{uuid.uuid4().hex[:8]}", "binder-demo"
    git_server.create(f"{owner}/{repo}", {"requirements.txt": "tabulate\n", "README.md": "hello\n"})
    sha = git_server.head(f"{owner}/{repo}")
    github_url = f"git://127.0.0.1:{git_server.port}"
    async with GitHubApiStandIn(expected_token=TOKEN) as api:
        api.add_repo(owner, repo, branches={"main": sha})
        pipeline = make_pipeline(
            BINDERFLOW_PROVIDERS_GITHUB_API_URL=api.url,
            BINDERFLOW_PROVIDERS_GITHUB_URL=github_url,
            BINDERFLOW_PROVIDERS_GITHUB_TOKEN=TOKEN,
            BINDERFLOW_PROVIDERS_BANNED_SPECS=json.dumps({"gh": ["^banned-org/.*"]}),
        ).start_all()
        pipeline.wait_healthy()

        result = await launch(pipeline.gateway_url, "gh", f"{owner}/{repo}/main")
        assert result.last["phase"] == "ready", result.events[-5:]
        ready = result.last
        assert ready["repo_url"] == f"{github_url}/{owner}/{repo}"
        assert ready["binder_ref_url"] == f"{github_url}/{owner}/{repo}/tree/{sha}"
        assert ready["binder_request"] == f"v2/gh/{owner}/{repo}/main"
        assert ready["binder_persistent_request"] == f"v2/gh/{owner}/{repo}/{sha}"
        assert api.requests[0].headers["Authorization"] == f"token {TOKEN}"

        # An old link to `master` still works: a hint first, then the built environment.
        old_link = await launch(pipeline.gateway_url, "gh", f"{owner}/{repo}/master")
        assert old_link.phases == ["waiting", "built", "launching", "ready"], old_link.events
        assert "Trying again with HEAD instead of master. Please update your links." in old_link.events[0]["message"]
        assert old_link.last["binder_request"] == f"v2/gh/{owner}/{repo}/HEAD"
        assert old_link.last["image"] == ready["image"]

        asked = len(api.requests)
        banned = await launch(pipeline.gateway_url, "gh", "Banned-Org/thing/HEAD", timeout=60)
        assert banned.phases == ["failed"]
        assert banned.last["message"] == "Sorry, Banned-Org/thing/HEAD has been temporarily disabled from launching. Please contact admins for more info!\n"
        assert len(api.requests) == asked  # refused before asking GitHub

        everything = json.dumps([result.events, old_link.events, banned.events])
        assert TOKEN not in everything
        for log_file in pipeline.log_dir.glob(f"{pipeline.prefix}-*.log"):
            assert TOKEN not in log_file.read_text(errors="replace"), log_file.name
