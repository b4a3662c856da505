"""BinderHub's build-only launches: the `ready` event that ends one without a server.

A build-only launch (`/build/...?build_only=true`, API-only mode) ends as soon
as its environment exists, whether the resolver found it built or the builder
just built it. Both end it with this event, so its shape lives in one place.
Pure: time and ids come in as arguments.
"""

from __future__ import annotations

from datetime import datetime

from schemas import LaunchRequest, ResolvedRepo, ServerReady

__all__ = ["build_only_ready_event"]


def build_only_ready_event(
    launch_id: str, event_id: str, request: LaunchRequest, repo: ResolvedRepo, message: str, now: datetime
) -> ServerReady:
    """BinderHub's build-only `ready`: it names the image; url and token stay empty (no server runs)."""
    return ServerReady(
        launch_id=launch_id,
        event_id=event_id,
        timestamp=now,
        url="",
        token="",
        image=repo.image_name,
        repo_url=repo.repo_url,
        binder_ref_url=repo.ref_url,
        binder_launch_host=request.launch_host,
        binder_request=repo.binder_request,
        binder_persistent_request=repo.binder_persistent_request,
        message=message,
    )
