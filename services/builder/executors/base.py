"""The build-executor protocol: turn a pinned repository into an environment.

An executor reports progress as an async iterator of small values; the builder's
handlers turn them into phase events. Implementations sit side by side in this
package and are chosen by the `builder.executor` setting.
"""

from __future__ import annotations

from typing import AsyncIterator, Literal, Protocol, Union

import msgspec

from schemas import ResolvedRepo
from services.runtime.settings import Settings

from ..errors import BuildError

__all__ = ["BuildExecutor", "BuildError", "PhaseChanged", "LogLine", "BuildFinished", "BuildProgress"]


class PhaseChanged(msgspec.Struct, frozen=True):
    """The build entered `phase`; its message is shown as that phase's event."""

    phase: Literal["fetching", "building", "pushing"]
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
    """Turns a pinned repository into an environment (BinderHub's build pod).

    Chosen by `builder.executor`: a name in services.runtime.plugins.EXECUTORS or
    a `module:Class` import string.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> "BuildExecutor":
        """The executor as configured."""
        ...

    def build(self, repo: ResolvedRepo) -> AsyncIterator[BuildProgress]:
        """Build `repo.image_name` from `repo.clone_url` at `repo.resolved_ref`.

        Yields progress while it works and a BuildFinished last. Raises BuildError
        with a message for a person when the build cannot succeed. Cancelling the
        iteration stops the build and leaves nothing that counts as built.
        """
        ...
