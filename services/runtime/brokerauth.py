"""Who may connect to the broker, and what each may publish and subscribe to.

The embedded nats-server of `binderflow up` accepts only the users listed here,
each with a password generated on first start into `<data>/nats/credentials.json`
(mode 0600, in the data directory that no sandbox can see) and given to each
service by `up` in its environment. Repository code, which shares the host's
network and so can reach the broker's port, has no password and is refused.

Each service gets the subjects its work needs and no more:

    gateway   issues resolve commands; reads events and heartbeats
    resolver  issues build and launch commands
    builder   issues launch commands; writes build logs, the build index and the builds bucket
    launcher  issues no commands
    operator  the operator's own tools (`binderflow events ...`): reads everything

Every service publishes launch events and its own heartbeat, and uses the
JetStream API of this installation's streams only (not other prefixes' streams
on a shared server). In a cluster the same permissions go into the NATS
server's configuration and the passwords into a Secret (deploy/).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import msgspec

from schemas import Subjects
from schemas.commands import BuildImage, ResolveRef, StartServer

__all__ = [
    "BROKER_USERS",
    "BrokerCredentials",
    "permissions",
    "server_authorization",
    "cluster_authorization",
    "password_variable",
    "load_or_create_credentials",
    "read_credentials",
]

BROKER_USERS = ("gateway", "resolver", "builder", "launcher", "operator")

# The commands each service issues.
_ISSUES = {
    "gateway": (ResolveRef,),
    "resolver": (BuildImage, StartServer),
    "builder": (StartServer,),
    "launcher": (),
}


class BrokerCredentials(msgspec.Struct, frozen=True):
    """User name -> password of every broker user."""

    passwords: dict[str, str]

    def password(self, user: str) -> str:
        return self.passwords[user]


def read_credentials(path: Path) -> BrokerCredentials:
    """The credentials in `path` (OSError if it is missing, msgspec.DecodeError if garbled)."""
    return msgspec.json.decode(path.read_bytes(), type=BrokerCredentials)


def load_or_create_credentials(path: Path) -> BrokerCredentials:
    """The credentials in `path`, made (mode 0600) with a fresh password per user if missing."""
    if path.exists():
        found = read_credentials(path)
        if set(BROKER_USERS) <= set(found.passwords):
            return found
    credentials = BrokerCredentials({user: secrets.token_urlsafe(32) for user in BROKER_USERS})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.encode(credentials))
    os.replace(tmp, path)
    return credentials


def _jetstream_api(subjects: Subjects) -> list[str]:
    """The JetStream API calls on this installation's streams (and nothing on other prefixes')."""
    streams = [subjects.commands_stream, subjects.events_stream, f"KV_{subjects.builds_bucket}"]
    # Stream names (which stream holds a subject) are no secret, and clients look them up.
    allowed = ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"]
    for stream in streams:
        allowed += [
            f"$JS.API.STREAM.*.{stream}",
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.*.{stream}",
            f"$JS.API.CONSUMER.*.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
            f"$JS.ACK.{stream}.>",
            f"$JS.FC.{stream}.>",
        ]
    return allowed


def permissions(user: str, subjects: Subjects) -> dict[str, dict[str, list[str]]]:
    """NATS permissions of `user` (one of BROKER_USERS) in the namespace `subjects`."""
    p = subjects.prefix
    subscribe = ["_INBOX.>"]
    if user == "operator":
        publish = [*_jetstream_api(subjects), f"{p}.>"]
        subscribe.append(f"{p}.>")
        return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}
    publish = [*_jetstream_api(subjects), subjects.heartbeat(user), f"{p}.launch.*.events"]
    publish += [f"{p}.cmd.{command.subject_token}" for command in _ISSUES[user]]
    if user == "builder":
        publish += [f"{p}.launch.*.log", subjects.all_repo_builds, f"$KV.{subjects.builds_bucket}.>"]
    if user == "gateway":
        subscribe.append(subjects.all_heartbeats)
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}


def server_authorization(credentials: BrokerCredentials, subjects: Subjects) -> str:
    """The `authorization` block of a nats-server configuration for these users."""
    users = [
        {"user": user, "password": credentials.password(user), "permissions": permissions(user, subjects)}
        for user in BROKER_USERS
    ]
    # nats-server reads JSON within its configuration format.
    return "authorization " + json.dumps({"users": users}, indent=2) + "\n"


def password_variable(user: str) -> str:
    """The environment variable a cluster's nats-server reads `user`'s password from."""
    return f"NATS_PASSWORD_{user.upper()}"


def cluster_authorization(subjects: Subjects) -> str:
    """The same block with each password a reference to an environment variable
    (password_variable), which nats-server resolves at start: deploy/nats.yaml
    holds this text and the passwords come from a Secret."""
    text = server_authorization(BrokerCredentials({user: f"${password_variable(user)}" for user in BROKER_USERS}), subjects)
    for user in BROKER_USERS:
        text = text.replace(f'"${password_variable(user)}"', f"${password_variable(user)}")
    return text
