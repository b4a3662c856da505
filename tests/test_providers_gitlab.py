"""The `gl` provider against a stand-in for gitlab.com's API.

The internet is unreachable here, so tests/standins/gitlab_api.py serves
gitlab.com's API v4 answers (recorded-style bodies, status codes and headers)
on 127.0.0.1.
"""

from __future__ import annotations

import logging
import time
from typing import AsyncIterator, Callable

import msgspec
import pytest

from services.resolver.providers.base import ProviderError, ResolvedSource
from services.resolver.providers.gitlab import GitLabProvider, parse_gl_spec
from services.runtime.settings import ProviderSettings

from .standins.gitlab_api import GitLabApiStandIn

TOKEN = "glpat-secret-token-xyz"
A = "2a9d2b119a87b8411993096a22d41a3eb857e8c1"
B = "b3344b7f17c335a817c5d7608c5e47fd7cabc023"
C = "7e2b826e406c4250dd0d7efb53c650cac406a2c0"


@pytest.fixture
async def gitlab_api() -> AsyncIterator[GitLabApiStandIn]:
    async with GitLabApiStandIn(expected_token=TOKEN) as api:
        api.add_project("gitlab-org/gitlab-foss", branches={"master": A, "10-0-stable": C}, tags={"v10.0.6": B}, default_branch="master")
        api.add_project("group/sub-group/my-project", branches={"main": C, "feature/x": B})
        yield api


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., GitLabProvider]]:
    made: list[GitLabProvider] = []

    def build(api: GitLabApiStandIn, **overrides: object) -> GitLabProvider:
        values = {"gitlab_url": api.url, "gitlab_token": TOKEN, "http_timeout_seconds": 5.0}
        provider = GitLabProvider(msgspec.convert({**values, **overrides}, ProviderSettings))
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


async def _fails(provider: GitLabProvider, spec: str) -> str:
    with pytest.raises(ProviderError) as info:
        await provider.resolve(spec)
    return str(info.value)


def test_gl_spec_is_an_escaped_namespace_then_a_ref() -> None:
    assert parse_gl_spec("gitlab-org%2Fgitlab-foss/HEAD") == ("gitlab-org/gitlab-foss", "HEAD")
    assert parse_gl_spec("group%2Fsub%2Fproject/feature/x") == ("group/sub/project", "feature/x")
    assert parse_gl_spec("group%2Fproject.git/v1%2E0") == ("group/project", "v1.0")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("group%2Fproject", "is not of the form"),
        ("project/main", "needs a group and a project"),
        ("group%2F..%2Fproject/main", "not a valid GitLab project path"),
        ("group%2F-project/main", "not a valid GitLab project path"),
        ("group%2Fpro%20ject/main", "not a valid GitLab project path"),
        ("group%2Fproject/--upload-pack=x", "not a valid Git ref name"),
    ],
)
def test_malformed_or_unsafe_gl_specs_are_refused(spec: str, expected: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_gl_spec(spec)
    assert expected in str(info.value)


async def test_head_branch_and_tag_resolve_with_binderhub_urls(gitlab_api: GitLabApiStandIn, make) -> None:
    gl = make(gitlab_api)
    source = await gl.resolve("gitlab-org%2Fgitlab-foss/HEAD")
    assert source == ResolvedSource(
        repo_url=f"{gitlab_api.url}/gitlab-org/gitlab-foss.git",
        ref="HEAD",
        resolved_ref=A,
        ref_url=f"{gitlab_api.url}/gitlab-org/gitlab-foss/tree/{A}",
        clone_url=f"{gitlab_api.url}/gitlab-org/gitlab-foss.git",
        persistent_spec=f"gitlab-org%2Fgitlab-foss/{A}",
    )
    assert gitlab_api.paths() == ["/api/v4/projects/gitlab-org%2Fgitlab-foss/repository/commits/HEAD"]
    assert (await gl.resolve("gitlab-org%2Fgitlab-foss/v10.0.6")).resolved_ref == B
    assert (await gl.resolve("gitlab-org%2Fgitlab-foss/10-0-stable")).resolved_ref == C


async def test_nested_groups_and_refs_with_slashes(gitlab_api: GitLabApiStandIn, make) -> None:
    gl = make(gitlab_api)
    source = await gl.resolve("group%2Fsub-group%2Fmy-project/feature/x")
    assert source.resolved_ref == B
    assert source.persistent_spec == f"group%2Fsub-group%2Fmy-project/{B}"
    assert gitlab_api.paths()[-1] == "/api/v4/projects/group%2Fsub-group%2Fmy-project/repository/commits/feature%2Fx"


async def test_full_sha_passes_through(gitlab_api: GitLabApiStandIn, make) -> None:
    assert (await make(gitlab_api).resolve(f"group%2Fproject/{A}")).resolved_ref == A
    assert gitlab_api.requests == []


async def test_unknown_ref_or_project_is_not_found(gitlab_api: GitLabApiStandIn, make) -> None:
    gl = make(gitlab_api)
    message = await _fails(gl, "gitlab-org%2Fgitlab-foss/nosuchref")
    assert "Could not resolve ref for gl:gitlab-org%2Fgitlab-foss/nosuchref" in message and "not found" in message
    assert "not found" in await _fails(gl, "nobody%2Fnothing/HEAD")


async def test_private_project_needs_the_token_which_is_sent_as_private_token(gitlab_api: GitLabApiStandIn, make, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gitlab_api.add_project("team/private-thing", branches={"main": C}, private=True)
    assert (await make(gitlab_api).resolve("team%2Fprivate-thing/main")).resolved_ref == C
    assert gitlab_api.requests[-1].headers["PRIVATE-TOKEN"] == TOKEN
    assert all(TOKEN not in r.path for r in gitlab_api.requests)
    assert "not found" in await _fails(make(gitlab_api, gitlab_token=""), "team%2Fprivate-thing/main")
    assert "PRIVATE-TOKEN" not in gitlab_api.requests[-1].headers
    message = await _fails(make(gitlab_api, gitlab_token="wrong-token-123"), "team%2Fprivate-thing/main")
    assert "refused this Binder's credentials" in message
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and "wrong-token-123" not in record.getMessage()


async def test_rate_limit_server_error_and_timeout_fail_clearly(gitlab_api: GitLabApiStandIn, make) -> None:
    gitlab_api.rate_remaining = 0
    gitlab_api.rate_reset = int(time.time()) + 90
    message = await _fails(make(gitlab_api), "gitlab-org%2Fgitlab-foss/HEAD")
    assert "GitLab API rate limit exceeded" in message and "try again in 2 minutes" in message
    gitlab_api.rate_remaining = 100
    gitlab_api.fail_status = 500
    assert "failed with 500" in await _fails(make(gitlab_api), "gitlab-org%2Fgitlab-foss/HEAD")
    gitlab_api.fail_status = None
    gitlab_api.delay = 2.0
    assert "did not answer within 0.3 seconds" in await _fails(make(gitlab_api, http_timeout_seconds=0.3), "gitlab-org%2Fgitlab-foss/HEAD")


async def test_second_resolve_revalidates_with_etag(gitlab_api: GitLabApiStandIn, make) -> None:
    gl = make(gitlab_api)
    first = await gl.resolve("gitlab-org%2Fgitlab-foss/HEAD")
    second = await gl.resolve("gitlab-org%2Fgitlab-foss/HEAD")
    assert first == second
    assert gitlab_api.not_modified == 1
    assert "If-None-Match" in gitlab_api.requests[1].headers and "If-None-Match" not in gitlab_api.requests[0].headers
