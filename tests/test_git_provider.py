"""The git provider and the git policy: pure ref/URL rules, then resolution against a real git daemon."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from schemas import ResolvedRepo
from services.builder.content.git import GitFetcher
from services.builder.errors import BuildError
from services.builder.executors.local import LocalExecutor
from services.resolver.providers.base import ProviderError
from services.resolver.providers.git import GitProvider, parse_ls_remote, pick_ref
from services.runtime.environments import LocalEnvironmentStore
from services.runtime.gitcmd import GitError, GitPolicy, GitTarget, check_ref, check_url, pinned_target, run_git
from services.runtime.redaction import redact_url

from .harness import GitServer, SilentServer, free_port, git, processes_mentioning

PRIVATE = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10")
BLOCKING = GitPolicy(blocked_networks=PRIVATE)
A = "a" * 40
B = "b" * 40
C = "c" * 40
T = "7" * 40  # an annotated tag object


LS_REMOTE = f"""{A}\tHEAD
{A}\trefs/heads/main
{B}\trefs/heads/dev
{C}\trefs/tags/light
{T}\trefs/tags/v1.0
{B}\trefs/tags/v1.0^{{}}
warning: not a ref line
"""


def test_parse_ls_remote_maps_ref_names_to_shas() -> None:
    refs = parse_ls_remote(LS_REMOTE)
    assert refs == {
        "HEAD": A,
        "refs/heads/main": A,
        "refs/heads/dev": B,
        "refs/tags/light": C,
        "refs/tags/v1.0": T,
        "refs/tags/v1.0^{}": B,
    }
    assert parse_ls_remote("") == {}
    assert parse_ls_remote("nonsense\tref\nabc\trefs/heads/x\n" + A + "\t\n") == {}


def test_pick_ref_finds_branches_tags_and_head() -> None:
    refs = parse_ls_remote(LS_REMOTE)
    assert pick_ref(refs, "main") == A
    assert pick_ref(refs, "dev") == B
    assert pick_ref(refs, "light") == C
    assert pick_ref(refs, "HEAD") == A
    assert pick_ref(refs, "refs/heads/dev") == B
    assert pick_ref(refs, "nope") is None
    assert pick_ref({}, "HEAD") is None


def test_pick_ref_peels_annotated_tags() -> None:
    refs = parse_ls_remote(LS_REMOTE)
    assert pick_ref(refs, "v1.0") == B
    assert pick_ref(refs, "refs/tags/v1.0") == B


def test_pick_ref_prefers_branch_over_tag_of_same_name() -> None:
    assert pick_ref({"refs/heads/x": A, "refs/tags/x": B}, "x") == A


def test_pick_ref_unique_short_sha_of_a_tip() -> None:
    refs = {"refs/heads/main": "abcdef1" + "0" * 33, "refs/heads/dev": "abcdef2" + "0" * 33, "refs/heads/same": "abcdef1" + "0" * 33}
    assert pick_ref(refs, "abcdef1") == "abcdef1" + "0" * 33
    assert pick_ref(refs, "abcdef") is None  # too short for a sha, no such name
    assert pick_ref(refs, "abcdef0") is None


def test_pick_ref_ambiguous_short_sha_is_none() -> None:
    refs = {"refs/heads/a": "1234567a" + "0" * 32, "refs/heads/b": "1234567b" + "0" * 32}
    assert pick_ref(refs, "1234567") is None


def test_pick_ref_short_sha_of_annotated_tag_object_gives_its_commit() -> None:
    # resolved_ref must be a commit; a tag object's sha would name a second environment for it.
    refs = parse_ls_remote(LS_REMOTE)
    assert pick_ref(refs, T[:10]) == B


@pytest.mark.parametrize("ref", ["main", "v1.0", "feature/x", "HEAD", A, "abc1234", "release-2024_01+build@x"])
def test_check_ref_accepts_plausible_refs(ref: str) -> None:
    check_ref(ref)


@pytest.mark.parametrize("ref", ["-ufoo", "--upload-pack=x", "a..b", "x.lock", "", "a b", "a\nb", "main@{1}", "@{-1}", "a//b", "x/", "x.", "a\x00b", "a~1", "a^", "a:b"])
def test_check_ref_rejects_option_like_and_invalid_refs(ref: str) -> None:
    with pytest.raises(GitError):
        check_ref(ref)


def test_check_ref_rejects_trailing_newline() -> None:
    # "%0A" in a spec decodes to "\n"; `$` in a regex matches before a final newline.
    with pytest.raises(GitError):
        check_ref("main\n")


@pytest.mark.parametrize(
    "url",
    ["ext::sh -c id", "ext::sh", "file:///etc", "/etc/passwd", "-oProxyCommand=x", "ssh://example.org/x", "", "https://example.org/x\n", "http://"],
)
async def test_check_url_rejects_dangerous_urls(url: str) -> None:
    with pytest.raises(GitError):
        await check_url(url, GitPolicy())


async def test_check_url_rejects_credentials() -> None:
    with pytest.raises(GitError, match="credentials"):
        await check_url("https://user:pass@example.org/x.git", GitPolicy(allowed_hosts=("*",)))


# Every form the address check was once bypassed with (issue 9), beside the plain ones.
NOT_PUBLIC = [
    "http://127.0.0.1/x", "http://[::1]/x", "http://10.1.2.3/x", "git://192.168.0.1/x", "http://169.254.169.254/latest",
    "http://[::]/x",                    # Linux connects the unspecified address to loopback
    "http://0.0.0.0/x",
    "http://[::ffff:127.0.0.1]/x",      # IPv4-mapped
    "http://[::127.0.0.1]/x",           # IPv4-compatible
    "http://[64:ff9b::7f00:1]/x",       # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/x",         # 6to4 of 127.0.0.1
    "http://[2002:a01:203::1]/x",       # 6to4 of 10.1.2.3
    "http://198.18.0.1/x",              # benchmarking network
    "http://224.0.0.1/x", "http://[ff02::1]/x",  # multicast
    "http://240.0.0.1/x",               # reserved
    "http://100.64.0.1/x",              # carrier-grade NAT
    "http://2130706433/x",              # 127.0.0.1 written as a number
    "http://localhost/x",
]


@pytest.mark.parametrize("url", NOT_PUBLIC)
async def test_check_url_refuses_every_address_that_is_not_public(url: str) -> None:
    with pytest.raises(GitError, match="network this Binder does not fetch from"):
        await check_url(url, GitPolicy())


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass_also_when_wrapped_in_ipv6(address: str) -> None:
    assert not GitPolicy().addresses.is_blocked(address)


def test_networks_the_operator_blocks_are_refused_on_top() -> None:
    policy = GitPolicy(blocked_networks=("8.8.8.0/24",))
    assert policy.addresses.is_blocked("8.8.8.8") and policy.addresses.is_blocked("::ffff:8.8.8.8")
    assert not policy.addresses.is_blocked("1.1.1.1")


async def test_check_url_allows_any_address_of_an_allowed_host() -> None:
    assert (await check_url("http://127.0.0.1/x", GitPolicy(allowed_hosts=("127.0.0.1",)))).url == "http://127.0.0.1/x"
    assert (await check_url("git://localhost:9418/x", GitPolicy(allowed_hosts=("*",)))).config == ()


def test_a_checked_name_is_pinned_to_the_addresses_that_were_checked() -> None:
    """git is told where the name resolved when it was checked, so it cannot resolve elsewhere when it connects."""
    assert pinned_target("https://repo.example.org/x.git", ["8.8.8.8", "2606:4700::1111"]) == GitTarget(
        "https://repo.example.org/x.git", ("http.curloptResolve=repo.example.org:443:8.8.8.8,[2606:4700::1111]",)
    )
    assert pinned_target("http://repo.example.org:8080/x.git", ["8.8.8.8"]).config == ("http.curloptResolve=repo.example.org:8080:8.8.8.8",)
    assert pinned_target("git://repo.example.org/x.git", ["2606:4700::1111"]) == GitTarget("git://[2606:4700::1111]:9418/x.git")
    assert pinned_target("https://8.8.8.8/x.git", ["8.8.8.8"]) == GitTarget("https://8.8.8.8/x.git")


async def test_git_connects_to_the_pinned_address_without_resolving_the_name() -> None:
    """A name that does not resolve at all, pinned to a listening server: git reaches that server."""
    with SilentServer() as silent:
        pin = f"http.curloptResolve=repo.binderflow.invalid:{silent.port}:127.0.0.1"
        code, _, err = await run_git(
            ["ls-remote", "--", f"http://repo.binderflow.invalid:{silent.port}/x.git"], GitPolicy(timeout_seconds=1), config=[pin]
        )
        assert code == 124, err  # it connected and waited for an answer, rather than failing to resolve
        assert silent.connections >= 1


def test_redact_url_strips_credentials() -> None:
    assert redact_url("https://user:secret@example.org:8443/r.git") == "https://example.org:8443/r.git"
    assert redact_url("https://token@example.org/r.git") == "https://example.org/r.git"
    assert redact_url("https://example.org/r.git") == "https://example.org/r.git"


def test_redact_url_keeps_ipv6_brackets() -> None:
    assert redact_url("https://user:secret@[::1]:8443/r.git") == "https://[::1]:8443/r.git"


def test_redact_url_never_raises_and_never_leaks() -> None:
    shown = redact_url("https://user:secret@example.org:99999/r.git")
    assert "secret" not in shown


def _provider() -> GitProvider:
    return GitProvider(GitPolicy(allowed_hosts=("127.0.0.1",), blocked_networks=PRIVATE, timeout_seconds=30))


def _spec(url: str, ref: str) -> str:
    return f"{quote(url, safe='')}/{ref}"


def _repo(git_server: GitServer) -> tuple[str, str]:
    name = f"r-{uuid.uuid4().hex[:12]}"
    url = git_server.create(name, {"requirements.txt": "numpy\n"})
    return name, url


async def test_branch_resolves_to_its_tip(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    tip = git_server.commit(name, {"a.txt": "1"})
    source = await _provider().resolve(_spec(url, "main"))
    assert source.resolved_ref == tip
    assert source.ref == "main"
    assert source.repo_url == url
    assert source.persistent_spec == _spec(url, tip)


async def test_branch_with_slash_resolves(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    git("checkout", "--quiet", "-b", "feature/x", cwd=git_server.base / name)
    tip = git_server.commit(name, {"f.txt": "f"})
    assert (await _provider().resolve(_spec(url, "feature/x"))).resolved_ref == tip


async def test_head_resolves_to_default_branch(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    assert (await _provider().resolve(_spec(url, "HEAD"))).resolved_ref == git_server.head(name)


async def test_lightweight_tag_resolves(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    tagged = git_server.head(name)
    git("tag", "light", cwd=git_server.base / name)
    git_server.commit(name, {"later.txt": "x"})
    assert (await _provider().resolve(_spec(url, "light"))).resolved_ref == tagged


async def test_annotated_tag_resolves_to_commit(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    path = git_server.base / name
    tagged = git_server.head(name)
    git("tag", "-a", "v1.0", "-m", "release", cwd=path)
    tag_object = git("rev-parse", "v1.0", cwd=path)
    assert tag_object != tagged
    git_server.commit(name, {"later.txt": "x"})
    assert (await _provider().resolve(_spec(url, "v1.0"))).resolved_ref == tagged


async def test_full_sha_passes_through(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    first = git_server.head(name)
    git_server.commit(name, {"b.txt": "2"})
    source = await _provider().resolve(_spec(url, first))
    assert source.resolved_ref == first
    assert source.ref == first


async def test_short_sha_of_older_commit_resolves_by_fetching_history(git_server: GitServer) -> None:
    name, url = _repo(git_server)
    old = git_server.head(name)
    git_server.commit(name, {"b.txt": "2"})
    git_server.commit(name, {"c.txt": "3"})
    assert (await _provider().resolve(_spec(url, old[:10]))).resolved_ref == old


async def test_nonexistent_ref_names_the_ref(git_server: GitServer) -> None:
    _, url = _repo(git_server)
    with pytest.raises(ProviderError, match="no-such-branch"):
        await _provider().resolve(_spec(url, "no-such-branch"))


async def test_unknown_short_sha_is_an_error(git_server: GitServer) -> None:
    _, url = _repo(git_server)
    with pytest.raises(ProviderError, match="deadbeef00"):
        await _provider().resolve(_spec(url, "deadbeef00"))


async def test_unreachable_repository_says_could_not_reach() -> None:
    url = f"git://127.0.0.1:{free_port()}/nope"
    with pytest.raises(ProviderError, match="Could not reach"):
        await _provider().resolve(_spec(url, "HEAD"))


async def test_missing_repository_on_live_server_is_an_error(git_server: GitServer) -> None:
    with pytest.raises(ProviderError, match="Could not reach"):
        await _provider().resolve(_spec(git_server.url(f"missing-{uuid.uuid4().hex}"), "HEAD"))


async def test_spec_without_ref_is_malformed() -> None:
    with pytest.raises(ProviderError, match="malformed"):
        await _provider().resolve(quote("git://127.0.0.1/x", safe=""))
    with pytest.raises(ProviderError, match="ref"):
        await _provider().resolve(quote("git://127.0.0.1/x", safe="") + "/")


async def test_blocked_host_is_refused_before_git_runs(git_server: GitServer) -> None:
    _, url = _repo(git_server)
    with pytest.raises(ProviderError, match="network"):
        await GitProvider(BLOCKING).resolve(_spec(url, "HEAD"))


async def test_option_like_ref_is_refused(git_server: GitServer) -> None:
    _, url = _repo(git_server)
    with pytest.raises(ProviderError, match="not a valid Git ref"):
        await _provider().resolve(_spec(url, "--upload-pack=touch%20x"))


# -- git that always ends ---------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "git"])
async def test_git_against_a_host_that_never_answers_ends_at_its_timeout_and_leaves_nothing_running(scheme: str) -> None:
    with SilentServer() as silent:
        url = silent.url(scheme=scheme)
        started = time.monotonic()
        code, _, err = await run_git(["ls-remote", "--", url], GitPolicy(allowed_hosts=("127.0.0.1",), timeout_seconds=1))
        took = time.monotonic() - started
        assert code == 124 and "timed out after 1 s" in err
        assert took < 5, took
        # git's helpers (git-remote-http) went with it: nothing still holds the connection.
        assert processes_mentioning(f"127.0.0.1:{silent.port}") == []


async def test_a_build_fetching_from_a_host_that_never_answers_fails_at_the_build_timeout(tmp_path: Path) -> None:
    """The fetch counts against build_timeout_seconds (here 1 s), however long git itself may take."""
    with SilentServer() as silent:
        policy = GitPolicy(allowed_hosts=("127.0.0.1",), timeout_seconds=300)
        executor = LocalExecutor(
            LocalEnvironmentStore(tmp_path / "environments"), {"git": GitFetcher(policy, 300)}, tmp_path / "uv-cache", build_timeout_seconds=1
        )
        url = silent.url()
        repo = ResolvedRepo(
            repo_url=url, ref="main", resolved_ref=A, ref_url=url, clone_url=url, image_name="silent-0123456789abcdef",
            binder_request="v2/git/x/main", binder_persistent_request=f"v2/git/x/{A}",
        )
        started = time.monotonic()
        with pytest.raises(BuildError, match="longer than 1 s and was stopped while fetching"):
            async for _ in executor.build(repo):
                pass
        assert time.monotonic() - started < 5
        assert processes_mentioning(f"127.0.0.1:{silent.port}") == []
        assert not executor.store.is_complete(repo.image_name)
