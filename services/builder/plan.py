"""What to build, read from a repository's files by repo2docker's conventions.

Pure apart from reading the checked-out repository; no subprocesses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import msgspec

from .errors import BuildError

__all__ = ["BuildPlan", "plan_build", "UNSUPPORTED_FILES"]

# Files the local executor cannot honour, and why. repo2docker (the builder of
# BinderHub, and so of mybinder.org) handles all of them; binderflow has no
# executor that runs it yet.
UNSUPPORTED_FILES = {
    "environment.yml": "a conda environment",
    "apt.txt": "system (apt) packages",
    "Dockerfile": "a Dockerfile",
    "install.R": "an R environment",
    "DESCRIPTION": "an R package",
    "Project.toml": "a Julia environment",
    "REQUIRE": "a Julia environment",
    "manifest.xml": "a Stencila document",
    "default.nix": "a Nix environment",
    "Pipfile": "a Pipenv environment",
    "Pipfile.lock": "a Pipenv environment",
}

# The configuration files the local executor reads or hands on.
_CONFIG_FILES = ("requirements.txt", "runtime.txt", "postBuild", "start", "setup.py", "pyproject.toml")

_RUNTIME_RE = re.compile(r"^python-(\d+)\.(\d+)(?:\.\d+)?$")


class BuildPlan(msgspec.Struct, frozen=True, kw_only=True):
    # Folder the configuration files come from, relative to the repository ("" = top).
    binder_dir: str = ""
    requirements: str = ""
    # Install the repository itself as a package (setup.py or pyproject.toml at the top).
    install_repository: bool = False
    # "X.Y" asked for by runtime.txt; empty means the host's default Python.
    python_version: str = ""
    post_build: str = ""
    start: str = ""


def plan_build(repo: Path) -> BuildPlan:
    """Read `repo` and decide what to build. Raises BuildError for what cannot be built here."""
    has_binder = (repo / "binder").is_dir()
    has_dot_binder = (repo / ".binder").is_dir()
    if has_binder and has_dot_binder:
        raise BuildError("The repository has both a 'binder' and a '.binder' folder; keep only one of them.")
    binder_dir = "binder" if has_binder else ".binder" if has_dot_binder else ""
    config = repo / binder_dir if binder_dir else repo

    def rel(name: str) -> str:
        return f"{binder_dir}/{name}" if binder_dir else name

    # The builder reads these files with its own rights: a link out of the
    # repository (runtime.txt -> the token key, say) would put a secret in the
    # public build log.
    inside = os.path.realpath(repo)
    for name in ("", *_CONFIG_FILES, *UNSUPPORTED_FILES):
        path = config / name if name else config
        if os.path.lexists(path) and os.path.commonpath([inside, os.path.realpath(path)]) != inside:
            raise BuildError(f"{rel(name) if name else binder_dir} is a link to outside the repository, which a Binder does not follow.")

    for name, what in UNSUPPORTED_FILES.items():
        if (config / name).exists():
            raise BuildError(
                f"{rel(name)} asks for {what}, which this Binder's local executor cannot build "
                "(it builds Python environments with uv). Describe a Python environment with "
                "requirements.txt, or use a Binder that builds with repo2docker, such as mybinder.org."
            )

    python_version = ""
    runtime = config / "runtime.txt"
    if runtime.is_file():
        text = runtime.read_text(errors="replace").strip()
        match = _RUNTIME_RE.match(text)
        if match:
            python_version = f"{match.group(1)}.{match.group(2)}"
        elif text.startswith("r-"):
            raise BuildError(
                f"{rel('runtime.txt')} asks for R ({text}), which this Binder's local executor cannot build; "
                "use a Binder that builds with repo2docker, such as mybinder.org."
            )
        else:
            raise BuildError(f"{rel('runtime.txt')} says {text[:80]!r}; expected a line like python-3.11")

    def existing(name: str) -> str:
        return rel(name) if (config / name).is_file() else ""

    install_repository = not binder_dir and ((repo / "setup.py").is_file() or (repo / "pyproject.toml").is_file())
    return BuildPlan(
        binder_dir=binder_dir,
        requirements=existing("requirements.txt"),
        install_repository=install_repository,
        python_version=python_version,
        post_build=existing("postBuild"),
        start=existing("start"),
    )
