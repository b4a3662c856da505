"""Hostile repositories against a real `binderflow up`: every attack fails, and nothing else breaks.

Each repository below is served by the test's `git daemon` and launched through
the gateway as a stranger would. The attacks run as the repository's own code
(postBuild in the build's sandbox, `start` in the server's) and print what they
got; the tests check that the secrets of the installation (the token key, the
configuration, provider tokens, other users' server records and files) never
appear, that no process outlives its build, and that other launches keep working.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from .harness import GitServer, SilentServer, free_port, launch, processes_mentioning, spec_for, wait_http

pytestmark = pytest.mark.slow

BINDERFLOW = str(Path(sys.executable).parent / "binderflow")

# Secrets an attacker would want; none may show in any log or file a repository can read.
BUILD_TOKEN_SECRET = "build-secret-" + uuid.uuid4().hex
GITHUB_TOKEN = "ghp_" + uuid.uuid4().hex


class Binder:
    """A running `binderflow up` with a data directory, configuration and secrets."""

    def __init__(self, root: Path, package_index: str) -> None:
        self.data = root / "data"
        self.config = root / "binderflow.toml"
        self.port = free_port()
        self.config.write_text(
            f"""
data_dir = "{self.data}"
heartbeat_seconds = 1
[gateway]
port = {self.port}
build_token_secret = "{BUILD_TOKEN_SECRET}"
[resolver]
http_port = 0
git_allowed_hosts = ["127.0.0.1"]
git_timeout_seconds = 5
[builder]
http_port = 0
find_links = ["{package_index}"]
no_index = true
build_timeout_seconds = 240
max_concurrent_builds = 3
[launcher]
http_port = 0
[limits]
build_memory_bytes = {768 * 1024**2}
build_max_processes = 200
build_max_file_bytes = {64 * 1024**2}
"""
        )
        self.log_path = root / "up.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_")}
        env["BINDERFLOW_PROVIDERS_GITHUB_TOKEN"] = GITHUB_TOKEN
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([BINDERFLOW, "up", "--config", str(self.config)], stdout=log, stderr=log, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/health", 90)
        self.status = json.loads((self.data / "up.json").read_text())

    @property
    def nats_port(self) -> int:
        return int(self.status["nats_url"].rsplit(":", 1)[1])

    def secrets(self) -> dict[str, str]:
        """Every secret of the installation, by what it is."""
        found = {"build token secret": BUILD_TOKEN_SECRET, "GitHub token": GITHUB_TOKEN}
        key = self.data / "token.key"
        if key.exists():
            found["token key"] = key.read_text().strip()
        for record in (self.data / "servers").glob("*/server.json"):
            found[f"server token {record.parent.name}"] = json.loads(record.read_text())["token"]
        return found

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory, package_index: str) -> Iterator[Binder]:
    b = Binder(tmp_path_factory.mktemp("hostile"), package_index)
    try:
        yield b
    finally:
        b.stop()
        print(b.log_path.read_text(errors="replace")[-6000:])


def _read(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.read().decode()


def _build_log(result) -> str:
    return "".join(e.get("message", "") for e in result.events if e["phase"] in ("fetching", "building", "pushing"))


def _assert_no_secret(text: str, binder: Binder, where: str) -> None:
    for what, value in binder.secrets().items():
        assert value not in text, f"the {what} leaked into {where}"


# What a repository's code tries, in the build (postBuild) and in its server (start).
# {data} and {config} are the installation's real paths, {nats} the broker's port.
ATTACKS = r"""
attempt() {{ name="$1"; shift; if out=$("$@" 2>&1); then echo "ATTACK-OK $name: $(echo "$out" | head -c 300)"; else echo "attack-refused $name"; fi; }}
attempt token-key cat {data}/token.key
attempt config cat {config}
attempt server-records sh -c 'cat {data}/servers/*/server.json'
attempt other-homes sh -c 'cat {data}/servers/*/home/victim-secret.txt'
attempt shadow cat /etc/shadow
attempt parent-environ sh -c 'cat /proc/$PPID/environ /proc/1/environ | tr "\0" "\n" | grep -E "BINDERFLOW|ghp_"'
attempt any-environ sh -c 'for p in /proc/[0-9]*; do tr "\0" "\n" < $p/environ; done | grep -E "BINDERFLOW_|ghp_"'
attempt data-dir ls {data}/nats {data}/servers
attempt write-environment sh -c 'touch {data}/environments/*/venv/bin/pwned && ls {data}/environments/*/venv/bin/pwned'
attempt host-home sh -c 'cat /root/.profile || cat /root/.bashrc'
attempt see-host-processes sh -c 'ls /proc | grep -E "^[0-9]+$" | wc -l | awk "{{ exit !(\$1 > 20) }}"'
attempt nats python3 -c "import socket; s = socket.create_connection(('127.0.0.1', {nats}), timeout=3); s.recv(4096); s.sendall(b'CONNECT {{\"verbose\":true}}\r\nPING\r\n'); r = s.recv(4096).decode(); print(r); assert 'PONG' in r"
"""


def _thief_files(binder: Binder, marker: str) -> dict[str, str]:
    attacks = ATTACKS.format(data=binder.data, config=binder.config, nats=binder.nats_port)
    return {
        "requirements.txt": "tabulate\n",
        "postBuild": f"""#!/bin/bash
{attacks}
# A daemon that tries to outlive the build, and a fork bomb for three seconds.
setsid sleep 600 {marker} < /dev/null > /dev/null 2>&1 &
nohup sleep 601 {marker} < /dev/null > /dev/null 2>&1 &
( bomb() {{ bomb | bomb & }}; bomb ) 2>/dev/null &
sleep 3
echo "forks refused: $(ls /proc | grep -cE '^[0-9]+$') processes seen"
exit 0
""",
        "start": f"""#!/bin/bash
{{
{attacks}
}} > "$HOME/attack.txt" 2>&1
setsid sleep 602 {marker} < /dev/null > /dev/null 2>&1 &
exec "$@"
""",
    }


async def test_a_repository_cannot_reach_secrets_other_users_or_outlive_its_build(binder: Binder, git_server: GitServer) -> None:
    victim_secret = "VICTIM-" + uuid.uuid4().hex
    victim_url = git_server.create(f"victim-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n", "victim-secret.txt": victim_secret})
    victim = await launch(binder.url, "git", spec_for(victim_url, "main"))
    assert victim.phases[-1] == "ready", victim.last
    victim_token = victim.last["token"]

    marker = f"escape-{uuid.uuid4().hex[:12]}"
    thief_url = git_server.create(f"thief-{uuid.uuid4().hex[:8]}", _thief_files(binder, marker))
    thief = await launch(binder.url, "git", spec_for(thief_url, "main"))
    assert thief.phases[-1] == "ready", thief.last
    build_log = _build_log(thief)

    # Every attack ran, and every one was refused.
    assert build_log.count("attack-refused") == ATTACKS.count("\nattempt "), build_log[-3000:]
    assert "ATTACK-OK" not in build_log, build_log[-3000:]
    # The fork bomb hit the build's process limit instead of the host's.
    assert "forks refused" in build_log
    _assert_no_secret(build_log, binder, "the public build log")
    assert victim_token not in build_log and victim_secret not in build_log

    # The server's own `start` ran the same attacks inside the server's sandbox.
    attack_report = _read(thief.last["url"] + "api/contents/attack.txt?content=1", thief.last["token"])
    report = json.loads(attack_report)["content"]
    assert report.count("attack-refused") == ATTACKS.count("\nattempt "), report
    assert "ATTACK-OK" not in report
    _assert_no_secret(report, binder, "a server")
    assert victim_secret not in report and victim_token not in report

    # The build's daemons died with the build; the victim's environment is untouched
    # and its server still answers only its own token.
    assert not [p for p in processes_mentioning(marker) if "sleep 600" in p or "sleep 601" in p]
    assert not list(binder.data.glob("environments/*/venv/bin/pwned"))
    assert "last_activity" in json.loads(_read(victim.last["url"] + "api/status", victim_token))
    with pytest.raises(urllib.error.HTTPError):
        _read(victim.last["url"] + "api/contents/victim-secret.txt", thief.last["token"])


async def test_a_build_that_eats_memory_or_disk_is_stopped_with_a_clear_message(binder: Binder, git_server: GitServer) -> None:
    glutton = git_server.create(
        f"glutton-{uuid.uuid4().hex[:8]}",
        {"requirements.txt": "tabulate\n", "postBuild": "#!/usr/bin/env python3\nblob = b'x' * (2 * 1024**3)\nprint('allocated', len(blob))\n"},
    )
    hoarder = git_server.create(
        f"hoarder-{uuid.uuid4().hex[:8]}",
        {"requirements.txt": "tabulate\n", "postBuild": "#!/bin/bash\nset -e\nhead -c 200000000 /dev/zero > big.bin\necho wrote $(stat -c %s big.bin)\n"},
    )
    eaten, hoarded = await asyncio.gather(
        launch(binder.url, "git", spec_for(glutton, "main")), launch(binder.url, "git", spec_for(hoarder, "main"))
    )
    assert eaten.phases[-1] == "failed" and "ran out of memory" in eaten.last["message"], eaten.last
    assert "allocated" not in _build_log(eaten)
    assert hoarded.phases[-1] == "failed" and "postBuild failed" in hoarded.last["message"], hoarded.last
    assert "File size limit exceeded" in _build_log(hoarded)


async def test_a_flood_of_output_is_cut_off_and_earlier_launches_keep_their_logs(binder: Binder, git_server: GitServer) -> None:
    quiet = git_server.create(f"quiet-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
    first = await launch(binder.url, "git", spec_for(quiet, "main"))
    assert first.phases[-1] == "ready"
    flood = git_server.create(
        f"flood-{uuid.uuid4().hex[:8]}",
        {
            "requirements.txt": "tabulate\n",
            # 42 MB of output in about a second, then one line of 300,000 characters.
            "postBuild": "#!/bin/bash\nhead -c 31500000 /dev/urandom | base64 -w 76\npython3 -c \"print('y' * 300000)\"\necho flood-done\n",
        },
    )
    flooded = await launch(binder.url, "git", spec_for(flood, "main"))
    assert flooded.phases[-1] == "ready", flooded.last
    assert "internal error" not in json.dumps(flooded.events)
    # Past the per-build budget the rest of the output is summarised, not published.
    assert "of build output were not shown" in _build_log(flooded)
    # The earlier launch's build log is still in the event log (evicted, it would answer 404).
    launch_id = first.last["launch_id"]
    with urllib.request.urlopen(f"{binder.url}/launches/{launch_id}/log", timeout=60) as resp:
        assert "tabulate" in resp.read().decode()


@pytest.mark.parametrize(
    "host",
    ["[::]", "[::ffff:127.0.0.1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "198.18.0.1", "224.0.0.1", "240.0.0.1", "0.0.0.0", "2130706433"],
)
async def test_every_form_of_a_private_address_is_refused(binder: Binder, host: str) -> None:
    result = await launch(binder.url, "git", spec_for(f"http://{host}:9/repo.git", "main"), timeout=60)
    assert result.phases[-1] == "failed"
    assert "does not fetch from" in result.last["message"], result.last


async def test_a_git_host_that_never_answers_frees_its_slot(binder: Binder, git_server: GitServer) -> None:
    with SilentServer() as silent:
        started = time.monotonic()
        stuck = await launch(binder.url, "git", spec_for(silent.url(), "main"), timeout=60)
        assert stuck.phases[-1] == "failed"
        assert time.monotonic() - started < 30
    url = git_server.create(f"after-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
    after = await launch(binder.url, "git", spec_for(url, "main"))
    assert after.phases[-1] == "ready"
