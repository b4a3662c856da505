"""deploy/: the Kubernetes manifests agree with the code they run.

No Kubernetes API server runs here, so the manifests are checked against what
does: the CLI parser that reads each container's arguments, the settings loader
that reads the ConfigMap and the environment a pod would get, and real
nats-servers started from the ConfigMap's nats.conf as a three-server cluster,
on 127.0.0.1, holding binderflow's streams in three copies.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import nats
import pytest
import yaml

from schemas import LaunchRequested, Subjects
from schemas.subjects import SERVICE_NAMES
from services.builder.handlers import ClaimBucket
from services.cli import _parser
from services.runtime.brokerauth import BROKER_USERS, cluster_authorization, password_variable
from services.runtime.bus import EventPublisher, ensure_streams
from services.runtime.embedded import find_nats_server
from services.runtime.eventlog import read_launch
from services.runtime.settings import Settings, load_settings

from .harness import free_port, wait_http

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


# The binderflow-secrets Secret an operator creates (deploy/README.md), with realistic values.
SECRETS = {
    "token_key": base64.b64encode(os.urandom(32)).decode(),
    "build_token_secret": "s3cret-signing-key",
    "github_token": "ghp_" + "x" * 36,
    "gitlab_token": "glpat-" + "x" * 20,
    **{f"nats_password_{user}": f"nats-{user}-" + os.urandom(8).hex() for user in BROKER_USERS},
}


def _pod_environ(container: dict[str, Any]) -> dict[str, str]:
    """The environment Kubernetes would give the container, with realistic secret values."""
    environ: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            environ[var["name"]] = str(var["value"])
        elif "secretKeyRef" in var["valueFrom"]:
            environ[var["name"]] = SECRETS[var["valueFrom"]["secretKeyRef"]["key"]]
        elif var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name":
            environ[var["name"]] = "nats-0"
        else:
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
            environ[var["name"]] = "10.42.0.7"
    return environ


def _pod_settings(deployment: dict[str, Any], tmp_path: Path) -> Settings:
    container = _container(deployment)
    args = _parser().parse_args(container["args"])
    config = _one("ConfigMap", "binderflow-config")["data"]
    # The ConfigMap is mounted where the container's --config points.
    mounted = tmp_path / Path(args.config).name
    mounted.write_text(config[Path(args.config).name])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(args.config).parent == Path(mounts["config"])
    return load_settings(mounted, _pod_environ(container))


def test_kustomization_lists_every_manifest_and_each_parses() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    kinds = {d["kind"] for d in _documents()}
    assert kinds <= {"Namespace", "ConfigMap", "Service", "StatefulSet", "Deployment", "PersistentVolumeClaim"}
    assert {i["name"] for i in kustomization["images"]} == {"binderflow"}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_is_a_deployment_that_runs_it_with_probes_on_its_port(service: str, tmp_path: Path) -> None:
    deployment = _one("Deployment", f"binderflow-{service}")
    container = _container(deployment)
    assert container["image"] == "binderflow"
    args = _parser().parse_args(container["args"])
    assert args.command == service

    settings = _pod_settings(deployment, tmp_path)
    port = settings.gateway.port if service == "gateway" else getattr(settings, service).http_port
    (declared,) = container["ports"]
    assert declared["containerPort"] == port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": declared["name"]}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"
    # /health and the gateway answer the kubelet, not only the pod's loopback.
    if service == "gateway":
        assert settings.gateway.host == "0.0.0.0"
    else:
        assert settings.http_host == "0.0.0.0"


def test_services_reach_the_nats_service_and_keep_as_many_copies_as_there_are_servers(tmp_path: Path) -> None:
    settings = _pod_settings(_one("Deployment", "binderflow-gateway"), tmp_path)
    host, port = re.fullmatch(r"nats://([^:]+):(\d+)", settings.nats_url).groups()  # type: ignore[union-attr]
    service = _one("Service", host)
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert settings.events.replicas == _one("StatefulSet", "nats")["spec"]["replicas"] == 3


def test_the_launcher_and_the_gateway_share_the_token_key_and_builders_share_environments_with_launchers(tmp_path: Path) -> None:
    gateway = _pod_settings(_one("Deployment", "binderflow-gateway"), tmp_path)
    launcher_deployment = _one("Deployment", "binderflow-launcher")
    launcher = _pod_settings(launcher_deployment, tmp_path)
    key_refs = {
        name: next(v["valueFrom"]["secretKeyRef"] for v in _container(_one("Deployment", f"binderflow-{name}"))["env"] if v["name"] == "BINDERFLOW_EVENTS_TOKEN_KEY")
        for name in ("gateway", "launcher")
    }
    assert key_refs["gateway"] == key_refs["launcher"]
    assert gateway.events.token_key and launcher.launcher.server_host == "10.42.0.7"

    def claim_mounted_at(deployment: dict[str, Any], path: Path) -> tuple[str, str]:
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        for mount in _container(deployment)["volumeMounts"]:
            base = Path(mount["mountPath"])
            if path == base or base in path.parents:
                claim = volumes[mount["name"]].get("persistentVolumeClaim", {}).get("claimName", "")
                sub = Path(mount.get("subPath", "")) / path.relative_to(base)
                return claim, str(sub)
        raise AssertionError(f"{path} is not mounted")

    builder_deployment = _one("Deployment", "binderflow-builder")
    builder = _pod_settings(builder_deployment, tmp_path)
    # The launcher's environments are the builders' environments: the same claim, the same directory in it.
    assert claim_mounted_at(builder_deployment, builder.environments_path) == claim_mounted_at(launcher_deployment, launcher.environments_path)
    assert claim_mounted_at(builder_deployment, builder.environments_path)[0] == _one("PersistentVolumeClaim", "binderflow-environments")["metadata"]["name"]
    # Each launcher keeps its own server records (they hold process ids of its own pod).
    assert claim_mounted_at(launcher_deployment, launcher.servers_path)[0] == ""


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_connects_to_the_broker_as_its_own_user(service: str, tmp_path: Path) -> None:
    settings = _pod_settings(_one("Deployment", f"binderflow-{service}"), tmp_path)
    assert settings.nats_user == service and settings.nats_password == SECRETS[f"nats_password_{service}"]


def test_the_broker_accepts_the_users_and_permissions_binderflow_defines(tmp_path: Path) -> None:
    """deploy/nats.yaml holds brokerauth.cluster_authorization's text, and reads every
    user's password from the Secret."""
    settings = _pod_settings(_one("Deployment", "binderflow-gateway"), tmp_path)
    conf = _one("ConfigMap", "nats-config")["data"]["nats.conf"]
    expected = cluster_authorization(Subjects(settings.subject_prefix))
    assert expected in conf
    env = {v["name"]: v for v in _container(_one("StatefulSet", "nats"))["env"]}
    for user in BROKER_USERS:
        assert env[password_variable(user)]["valueFrom"]["secretKeyRef"]["key"] == f"nats_password_{user}"


def test_no_secret_is_written_into_a_manifest() -> None:
    for doc in _documents():
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for var in container.get("env", []):
                if re.search(r"TOKEN|SECRET|KEY|PASSWORD", var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} must come from a Secret"
    assert not [d for d in _documents() if d["kind"] == "Secret"]


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    """Three real nats-servers from the ConfigMap's nats.conf, moved to 127.0.0.1 ports."""
    template = _one("ConfigMap", "nats-config")["data"]["nats.conf"]
    ports = [(free_port(), free_port(), free_port()) for _ in range(3)]
    servers: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for i, (client, monitor, route) in enumerate(ports):
            conf = template.replace("0.0.0.0:4222", f"127.0.0.1:{client}").replace("0.0.0.0:8222", f"127.0.0.1:{monitor}")
            conf = conf.replace("0.0.0.0:6222", f"127.0.0.1:{route}")
            for j, (_, _, other_route) in enumerate(ports):
                conf = conf.replace(f"nats-{j}.nats-cluster:6222", f"127.0.0.1:{other_route}")
            conf = conf.replace("/data/jetstream", str(tmp_path / f"nats-{i}")).replace("/var/run/nats/nats.pid", str(tmp_path / f"nats-{i}.pid"))
            assert "0.0.0.0" not in conf and "nats-cluster" not in conf
            conf_file = tmp_path / f"nats-{i}.conf"
            conf_file.write_text(conf)
            proc = subprocess.Popen(
                [find_nats_server(), "--config", str(conf_file)],
                env={**os.environ, **_pod_environ(_container(_one("StatefulSet", "nats"))), "POD_NAME": f"nats-{i}"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers.append((proc, f"nats://127.0.0.1:{client}"))
        # Up, as the readiness probe asks; a full /healthz also waits for the
        # cluster's JetStream to settle, which the test below waits for itself.
        for _, monitor, _ in ports:
            wait_http(f"http://127.0.0.1:{monitor}/healthz?js-server-only=true", timeout=30)
        yield servers
    finally:
        # Their stores are temporary: no need to wait for an orderly shutdown.
        for proc, _ in servers:
            proc.kill()
            proc.wait()


@pytest.mark.slow
async def test_the_nats_cluster_keeps_the_log_through_the_loss_of_a_server(nats_cluster: list[tuple[subprocess.Popen[bytes], str]], tmp_path: Path) -> None:
    settings = _pod_settings(_one("Deployment", "binderflow-builder"), tmp_path)
    # The deployment's own namespace: its broker users may use no other (a fresh cluster per test).
    subjects = Subjects(settings.subject_prefix)
    # As the builder connects: with its own broker user from the Secret.
    nc = await nats.connect(
        servers=[url for _, url in nats_cluster], max_reconnect_attempts=-1, reconnect_time_wait=0.2,
        user=settings.nats_user, password=settings.nats_password,
    )
    try:
        js = nc.jetstream()
        # A fresh cluster elects its meta leader within seconds; streams wait for it.
        for attempt in range(60):
            try:
                await ensure_streams(js, subjects, settings)
                break
            except Exception:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        await ClaimBucket.open(js, subjects, settings.events.replicas)
        for stream in (subjects.events_stream, subjects.commands_stream, f"KV_{subjects.builds_bucket}"):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3
            assert info.cluster is not None and len(info.cluster.replicas or []) == 2

        launch_id = uuid.uuid4().hex
        event = LaunchRequested(launch_id=launch_id, event_id=uuid.uuid4().hex, timestamp=datetime.now(timezone.utc), provider="gh", spec="owner/repo/HEAD")
        await EventPublisher(js, subjects).event(event)

        # Lose the server that leads the event log: the other two elect a new leader and still have it.
        leader = (await js.stream_info(subjects.events_stream)).cluster.leader  # type: ignore[union-attr]
        proc, _ = nats_cluster[int(leader.rsplit("-", 1)[1])]  # type: ignore[union-attr]
        proc.kill()
        proc.wait()
        for attempt in range(60):
            try:
                stored = await read_launch(js, subjects, launch_id)
                break
            except Exception:
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
        assert [s.event for s in stored] == [event]
    finally:
        await nc.close()
