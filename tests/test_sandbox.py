"""The sandbox around repository code (services/runtime/sandbox.py) and its limits (limits.py).

The command lines are checked without running them; the slow tests run real
bubblewrap sandboxes on this host, as builds and servers do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.runtime.limits import ResourceLimits, control_groups
from services.runtime.sandbox import (
    BubblewrapSandbox,
    Confinement,
    Unconfined,
    View,
    find_bwrap,
    make_sandbox,
    sandbox_environment,
)

from .harness import free_port, processes_mentioning

BINDERFLOW = str(Path(sys.executable).parent / "binderflow")


def _pairs(args: list[str], flag: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == flag]


def test_the_command_binds_only_what_the_view_names_at_the_same_paths(tmp_path: Path) -> None:
    view = View(writable=(tmp_path / "venv", tmp_path / "repo"), readable=(Path("/opt/python"),), private_layers=(tmp_path / "cache",))
    args = BubblewrapSandbox("/x/bwrap").command(["python", "-c", "1"], view, tmp_path / "repo")
    assert args[0] == "/x/bwrap" and args[-3:] == ["python", "-c", "1"]
    assert _pairs(args, "--bind") == [(str(tmp_path / "venv"),) * 2, (str(tmp_path / "repo"),) * 2]
    assert ("/opt/python", "/opt/python") in _pairs(args, "--ro-bind")
    assert ("--overlay-src", str(tmp_path / "cache")) == tuple(args[args.index("--overlay-src"):args.index("--overlay-src") + 2])
    for flag in ("--unshare-all", "--die-with-parent", "--new-session"):
        assert flag in args
    # Nothing of the host is bound writable but the view's folders, and / itself is not bound.
    assert ("/", "/") not in _pairs(args, "--ro-bind") + _pairs(args, "--bind")


def test_files_only_root_may_read_are_masked(tmp_path: Path) -> None:
    args = BubblewrapSandbox("/x/bwrap").command(["true"], View(), tmp_path)
    masked = {dest for src, dest in _pairs(args, "--ro-bind") if src == "/dev/null"}
    if os.path.exists("/etc/shadow"):
        assert "/etc/shadow" in masked


def test_the_environment_of_repository_code_is_an_allow_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BINDERFLOW_PROVIDERS_GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    env = sandbox_environment({"EXTRA": "1"}, tmp_path)
    assert "ghp_secret" not in env.values() and "aws-secret" not in env.values()
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["EXTRA"] == "1"
    assert env["HOME"] == str(tmp_path) and env["USER"] == "jovyan"


def test_none_runs_commands_as_they_are(tmp_path: Path) -> None:
    assert Unconfined().command(["a", "b"], View(writable=(tmp_path,)), tmp_path) == ["a", "b"]
    assert make_sandbox("none").name == "none"


def test_limits_describe_themselves_for_the_log() -> None:
    assert ResourceLimits(2 * 1024**3, 10, 0).describe() == "memory 2.0 GiB, 10 processes, files of any size"
    assert ResourceLimits(0, 0, 1024**3).describe() == "memory unlimited, unlimited processes, files up to 1.0 GiB"


# -- real sandboxes -------------------------------------------------------------


def _run(argv: list[str], view: View, cwd: Path, limits: ResourceLimits = ResourceLimits(), timeout: float = 60) -> subprocess.CompletedProcess[str]:
    confinement = Confinement.create("bubblewrap", limits)
    command, preexec, group = confinement.prepare(argv, view, cwd, f"test-{uuid.uuid4().hex[:8]}")
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=preexec, env=sandbox_environment({}, cwd))
    finally:
        if group is not None:
            group.remove()


@pytest.mark.slow
def test_a_sandbox_writes_only_its_own_folder_and_sees_no_data(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "token.key").write_text("secret")
    done = _run(
        ["/bin/bash", "-c", f"id -u; echo hi > {mine}/ok; cat {data}/token.key; touch /usr/x; touch {tmp_path}/x; ls /root; cat /etc/shadow; true"],
        View(writable=(mine,)),
        mine,
    )
    assert done.stdout.splitlines()[0] == "1000"
    assert (mine / "ok").read_text() == "hi\n"
    assert "secret" not in done.stdout
    assert not (tmp_path / "x").exists()
    assert "No such file" in done.stderr and "Read-only file system" in done.stderr


@pytest.mark.slow
def test_daemons_die_with_the_sandbox(tmp_path: Path) -> None:
    marker = f"sandbox-daemon-{uuid.uuid4().hex[:8]}"
    done = _run(["/bin/bash", "-c", f"setsid sleep 300 {marker} </dev/null >/dev/null 2>&1 & nohup sleep 301 {marker} >/dev/null 2>&1 & echo started"], View(), Path("/"))
    assert done.stdout.strip() == "started"
    assert processes_mentioning(marker) == []


@pytest.mark.slow
def test_limits_stop_a_fork_bomb_and_a_huge_file(tmp_path: Path) -> None:
    if control_groups() is None:
        pytest.skip("this host lets binderflow make no control groups: the process count is not limited")
    work = tmp_path / "work"
    work.mkdir()
    bomb = _run(
        ["/bin/bash", "-c", "for i in $(seq 200); do sleep 5 & done 2>&1 | tail -1; echo spawned $(jobs -p | wc -l)"],
        View(), Path("/"), ResourceLimits(max_processes=50),
    )
    assert "spawned" in bomb.stdout and int(bomb.stdout.split("spawned")[1]) < 50
    big = _run(["/bin/bash", "-c", f"head -c 5000000 /dev/zero > {work}/big"], View(writable=(work,)), work, ResourceLimits(max_file_bytes=1_000_000))
    assert big.returncode != 0 and (work / "big").stat().st_size <= 1_000_000


@pytest.mark.slow
def test_a_tree_over_its_memory_limit_is_killed_and_reported(tmp_path: Path) -> None:
    groups = control_groups()
    if groups is None:
        pytest.skip("no control groups here: memory is limited per process only")
    confinement = Confinement.create("bubblewrap", ResourceLimits(memory_bytes=200 * 1024**2))
    command, preexec, group = confinement.prepare(["python3", "-c", "x = b'x' * (600 * 1024**2); print('survived')"], View(), Path("/"), f"test-{uuid.uuid4().hex[:8]}")
    assert group is not None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=preexec)
        assert done.returncode != 0 and "survived" not in done.stdout
        assert group.ran_out_of_memory()
    finally:
        group.remove()


@pytest.mark.slow
def test_without_control_groups_memory_is_limited_per_process() -> None:
    """A host (or a non-root user) where binderflow may make no control groups: rlimits."""
    confinement = Confinement(make_sandbox("bubblewrap"), ResourceLimits(memory_bytes=300 * 1024**2), groups=None)
    command, preexec, group = confinement.prepare(["python3", "-c", "x = b'x' * (600 * 1024**2)"], View(), Path("/"), "unused")
    assert group is None
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=preexec)
    assert done.returncode != 0 and "MemoryError" in done.stderr


@pytest.mark.slow
def test_up_refuses_to_start_where_repository_code_cannot_be_contained(tmp_path: Path) -> None:
    """A host without user namespaces, made with bubblewrap itself: `up` runs nested
    in a namespace that forbids further ones (--disable-userns)."""
    bwrap = find_bwrap()
    assert bwrap is not None
    data = tmp_path / "data"
    config = tmp_path / "binderflow.toml"
    config.write_text(f'data_dir = "{data}"\n[gateway]\nport = {free_port()}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_")}
    nested = [bwrap, "--dev-bind", "/", "/", "--unshare-user", "--disable-userns", "--", BINDERFLOW, "up", "--config", str(config)]
    done = subprocess.run(nested, capture_output=True, text=True, timeout=60, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "refusing to start" in output and 'sandbox = "none"' in output
    assert not (data / "nats").exists(), "the broker was started anyway"
