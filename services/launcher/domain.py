"""The launcher's events as pure functions."""

from __future__ import annotations

from datetime import datetime

from schemas import LaunchFailed, ServerLaunching, ServerReady, StartServer
from schemas.identity import launcher_event_id

from .backends.base import RunningServer

__all__ = ["launching", "ready", "launch_failed"]


def launching(command: StartServer, now: datetime) -> ServerLaunching:
    lid = command.launch_id
    return ServerLaunching(launch_id=lid, event_id=launcher_event_id(lid, "launching"), timestamp=now, message="Launching server...\n")


def ready(command: StartServer, server: RunningServer, sealed_token: str, now: datetime) -> ServerReady:
    """The ready event as stored: the token only sealed (the gateway unseals it for the client)."""
    lid = command.launch_id
    repo = command.repo
    return ServerReady(
        launch_id=lid,
        event_id=launcher_event_id(lid, "ready"),
        timestamp=now,
        message=f"server running at {server.url}\n",
        url=server.url,
        token="",
        image=server.image,
        repo_url=repo.repo_url,
        binder_ref_url=repo.ref_url,
        binder_launch_host=command.request.launch_host,
        binder_request=repo.binder_request,
        binder_persistent_request=repo.binder_persistent_request,
        token_sealed=sealed_token,
    )


def launch_failed(command: StartServer, reason: str, now: datetime) -> LaunchFailed:
    lid = command.launch_id
    return LaunchFailed(launch_id=lid, event_id=launcher_event_id(lid, "failed"), timestamp=now, message=f"Launch failed: {reason.rstrip()}\n")
