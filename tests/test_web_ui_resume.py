"""The loading page survives its gateway going away mid-build (headless Chromium).

The gateway is killed while the browser watches a build and another is started
on the same address; the page's EventSource reconnects with the id of the last
event it saw, gets exactly the events it missed, and still lands in JupyterLab.
"""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.async_api import Page

from .harness import GitServer, spec_for, wait_http
from .test_web_ui import browser, page, pytest_runtest_makereport  # noqa: F401 - fixtures and the screenshot hook

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

SLOW_POST_BUILD = "#!/bin/sh\nfor i in $(seq 1 25); do echo \"postBuild line $i\"; sleep 0.2; done\n"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


async def test_loading_page_reconnects_after_the_gateway_dies_and_shows_each_line_once(make_pipeline, git_server: GitServer, page: Page) -> None:  # noqa: F811
    pipeline = make_pipeline(BINDERFLOW_EVENTS_CLIENT_RETRY_MS="300").start_all()
    pipeline.wait_healthy()
    url = git_server.create(f"ui-resume-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n", "postBuild": SLOW_POST_BUILD, "nb.ipynb": NOTEBOOK})
    logs: list[str] = []
    await page.expose_function("reportLog", lambda text: logs.append(text))
    await page.add_init_script(
        """document.addEventListener('DOMContentLoaded', () => {
            const log = document.getElementById('log');
            if (!log) return;
            new MutationObserver(() => window.reportLog(log.textContent))
                .observe(log, {subtree: true, childList: true, characterData: true});
        });"""
    )
    await page.goto(f"{pipeline.gateway_url}/v2/git/{spec_for(url, 'main')}?labpath=nb.ipynb")
    await page.wait_for_function("document.getElementById('log').textContent.includes('postBuild line 3')", timeout=180_000)
    old = pipeline.procs["gateway"][0]
    old.kill()
    old.wait(10)
    pipeline.start("gateway")  # same address
    wait_http(pipeline.gateway_url + "/health", 60, status=None)

    await page.wait_for_url("**/lab/tree/nb.ipynb?token=*", timeout=180_000)
    final = logs[-1]
    for i in range(1, 26):
        assert final.count(f"postBuild line {i}\n") == 1, (i, final[-2000:])
