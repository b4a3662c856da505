"""What a reader knows about each launch (provider, spec, repository) and which events it wants.

Pure: events go in, facts and yes/no answers come out. The tools feed it the
log as they read it, and look up launches that began before they started.
"""

from __future__ import annotations

import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass, field

from schemas import AnyEvent, BuildStarted, LaunchRequested, RefResolved, ServerReady

__all__ = ["LaunchFacts", "LaunchDirectory", "EventFilter", "EVENT_KINDS"]

# Everything `--phase` accepts: BinderHub's phases and binderflow's launch facts.
EVENT_KINDS = ("requested", "resolved", "waiting", "fetching", "build_started", "building", "pushing", "build_ended", "built", "launching", "ready", "failed")


@dataclass(slots=True)
class LaunchFacts:
    """Who asked for what: the parts of a launch's first events that filters and lines use."""

    launch_id: str
    provider: str = ""
    spec: str = ""
    repo_url: str = ""
    # Set once the launch's first events were looked up in the log, so that is done once.
    was_looked_up: bool = False

    @property
    def is_known(self) -> bool:
        """True once the launch's `requested` or `resolved` fact has been seen."""
        return bool(self.provider)

    def learn(self, event: AnyEvent) -> None:
        """Take what `event` tells about the launch."""
        if isinstance(event, LaunchRequested):
            self.provider, self.spec = event.provider, event.spec
        elif isinstance(event, RefResolved):
            self.provider, self.spec = event.provider or self.provider, event.spec or self.spec
            self.repo_url = event.repo_url
        elif isinstance(event, (BuildStarted, ServerReady)) and event.repo_url and not self.repo_url:
            self.repo_url = event.repo_url

    @property
    def label(self) -> str:
        """How a line names the launch's repository: its URL once resolved, else provider/spec."""
        if self.repo_url:
            return self.repo_url
        if self.provider:
            return f"{self.provider}/{self.spec}"
        return "?"


class LaunchDirectory:
    """Facts of the launches seen recently, by launch id (the oldest are forgotten past `capacity`)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._facts: OrderedDict[str, LaunchFacts] = OrderedDict()

    def facts(self, launch_id: str) -> LaunchFacts:
        """The facts of `launch_id` (empty ones, remembered, if never seen)."""
        found = self._facts.get(launch_id)
        if found is None:
            found = self._facts[launch_id] = LaunchFacts(launch_id)
            if len(self._facts) > self._capacity:
                self._facts.popitem(last=False)
        return found

    def learn(self, event: AnyEvent) -> LaunchFacts:
        """Record what `event` tells and return its launch's facts."""
        facts = self.facts(event.launch_id)
        facts.learn(event)
        return facts


def _unquoted(spec: str) -> str:
    return urllib.parse.unquote(spec)


@dataclass(frozen=True)
class EventFilter:
    """Which events a tool shows. Empty fields match everything.

    `providers` are spec prefixes (`gh`, `git`, ...); `repo` is a substring of the
    repository URL, or of the spec (percent-decoded) until the launch is resolved,
    compared without regard to case; `phases` are phases or fact kinds.
    """

    providers: frozenset[str] = field(default_factory=frozenset)
    repo: str = ""
    phases: frozenset[str] = field(default_factory=frozenset)

    @property
    def needs_facts(self) -> bool:
        """True when matching depends on which launch an event belongs to."""
        return bool(self.providers or self.repo)

    @property
    def wants_log_lines(self) -> bool:
        """True when `building` lines can match (so the log subjects must be read)."""
        return not self.phases or "building" in self.phases

    def matches(self, event: AnyEvent, facts: LaunchFacts | None) -> bool:
        """Whether `event` (of the launch `facts` describe) passes the filter."""
        if self.phases and event.phase not in self.phases:
            return False
        if not self.needs_facts:
            return True
        if facts is None or not facts.is_known:
            return False
        if self.providers and facts.provider not in self.providers:
            return False
        if self.repo:
            wanted = self.repo.casefold()
            if wanted not in facts.repo_url.casefold() and wanted not in _unquoted(facts.spec).casefold():
                return False
        return True
