"""The environment binderflow hands to the processes it starts (builds, Jupyter servers)."""

from __future__ import annotations

import os

__all__ = ["host_environment"]


def host_environment() -> dict[str, str]:
    """This host's environment (proxies, CA bundles, locale) without binderflow's own settings."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT", "CONDA_PREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_") and k not in dropped}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env
