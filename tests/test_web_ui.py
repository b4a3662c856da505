"""The web UI in a real browser: headless Chromium (Debian's package) driven by Playwright.

Types a repository into the home page, clicks launch, watches build log lines
arrive while the build runs, and lands in JupyterLab on the requested file. A
screenshot is saved under test-artifacts/ when a test fails.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from pathlib import Path
from typing import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from .harness import ROOT, GitServer, Pipeline, spec_for

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    assert shutil.which(CHROMIUM), "Debian's chromium package is required (.ci/run installs it)"
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh page; its screenshot is kept when the test fails."""
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    pg = await context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}.png"
        await pg.screenshot(path=str(path), full_page=True)
        print(f"screenshot saved to {path}")
    await context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


async def test_home_page_builds_link_and_badges_as_you_type(pipeline: Pipeline, page: Page) -> None:
    await page.goto(pipeline.gateway_url + "/")
    await page.select_option("#provider", "git")
    await page.fill("#repository", "https://example.org/some/repo.git")
    await page.fill("#ref", "v1.0")
    await page.fill("#path", "notebooks/index.ipynb")
    share = await page.input_value("#share-url")
    assert share == f"{pipeline.gateway_url}/v2/git/{spec_for('https://example.org/some/repo.git', 'v1.0')}?labpath=notebooks%2Findex.ipynb"
    markdown = await page.input_value("#badge-markdown")
    assert markdown == f"[![Binder]({pipeline.gateway_url}/badge_logo.svg)]({share})"
    assert (await page.input_value("#badge-rst")).startswith(f".. image:: {pipeline.gateway_url}/badge_logo.svg\n :target: {share}")
    await page.select_option("#path-type", "url")
    assert (await page.input_value("#share-url")).endswith("?urlpath=notebooks%2Findex.ipynb")


async def test_launch_from_the_form_streams_the_log_and_lands_on_the_file(pipeline: Pipeline, git_server: GitServer, page: Page) -> None:
    url = git_server.create(f"ui-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n", "analysis.ipynb": NOTEBOOK})
    await page.goto(pipeline.gateway_url + "/")
    await page.select_option("#provider", "git")
    await page.fill("#repository", url)
    await page.fill("#ref", "main")
    await page.fill("#path", "analysis.ipynb")
    # Record what the loading page shows each time its phase or log changes.
    seen: list[tuple[str, str]] = []
    await page.expose_function("reportLoadingPage", lambda phase, log: seen.append((phase, log)))
    await page.add_init_script(
        """document.addEventListener('DOMContentLoaded', () => {
            const phase = document.getElementById('phase'), log = document.getElementById('log');
            if (!phase || !log) return;
            new MutationObserver(() => window.reportLoadingPage(phase.textContent, log.textContent))
                .observe(document.getElementById('loading'), {subtree: true, childList: true, characterData: true});
        });"""
    )
    await page.click("#launch")
    await page.wait_for_url("**/lab/tree/analysis.ipynb?token=*", timeout=180_000)
    await page.wait_for_function("document.title.includes('analysis.ipynb')", timeout=120_000)
    # Build log lines were on screen while the phase still said "building".
    assert any(phase == "building" and "tabulate" in log for phase, log in seen), seen[-3:]
    phases = [phase for phase, _ in seen]
    assert phases.index("building") < phases.index("built") < phases.index("ready")


async def test_failed_launch_keeps_the_whole_log_and_shows_the_error(pipeline: Pipeline, git_server: GitServer, page: Page) -> None:
    url = git_server.create(f"ui-bad-{uuid.uuid4().hex[:8]}", {"requirements.txt": "this-package-does-not-exist-anywhere==9.9\n"})
    await page.goto(f"{pipeline.gateway_url}/v2/git/{spec_for(url, 'main')}")
    await page.wait_for_selector("#error:not([hidden])", timeout=120_000)
    error = await page.text_content("#error")
    assert error and error.startswith("Build failed:")
    log = await page.text_content("#log")
    assert log and "this-package-does-not-exist-anywhere" in log and "Build failed:" in log
    assert (await page.text_content("#phase")) == "failed"


async def test_loading_page_for_unknown_provider_is_404(pipeline: Pipeline) -> None:
    try:
        urllib.request.urlopen(f"{pipeline.gateway_url}/v2/nosuchprovider/a/b/c")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        assert "No provider found for prefix nosuchprovider" in exc.read().decode()
    else:
        raise AssertionError("expected 404")


async def test_about_page_shows_version_and_providers(pipeline: Pipeline, page: Page) -> None:
    await page.goto(pipeline.gateway_url + "/about")
    text = await page.text_content("main")
    assert text and "0.1.0" in text and "Git repository" in text
