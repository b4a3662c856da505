"""The build-executor protocol: turn a pinned repository into an environment.

An executor reports progress as an async iterator of small values; the builder's
handlers turn them into phase events. Implementations sit side by side in this
package and are chosen by the `builder.executor` setting.
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol, Union

import msgspec

from ..errors import BuildError

from schemas import ResolvedRepo

__all__ = ["BuildExecutor", "BuildError", "PhaseChanged", "LogLine", "BuildFinished", "BuildProgress"]



class PhaseChanged(msgspec.Struct, frozen=True):
    """The build entered `phase` ("fetching" or "pushing")."""

    phase: str
    message: str


class LogLine(msgspec.Struct, frozen=True):
    """One line of build output, without its newline."""

    text: str


class BuildFinished(msgspec.Struct, frozen=True):
    """The environment is built and counts as built from now on."""

    image_name: str
    # True when another build had already produced it and this one did nothing.
    was_cached: bool = False


BuildProgress = Union[PhaseChanged, LogLine, BuildFinished]


class BuildExecutor(Protocol):
    def build(self, repo: ResolvedRepo) -> AsyncIterator[BuildProgress]:
        """Build `repo.image_name` from `repo.clone_url` at `repo.resolved_ref`.

        Yields progress while it works and a BuildFinished last. Raises BuildError
        with a message for a person when the build cannot succeed. Cancelling the
        iteration stops the build and leaves nothing that counts as built.
        """
        ...
