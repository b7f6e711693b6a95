"""Shared fixtures. Tests use the real model, embedder, hnswlib and SQLite; each test gets
its own LAB_HOME so no state leaks between tests or into the developer's workspaces."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helpers such as lora_factory


@pytest.fixture(autouse=True)
def _isolated_lab_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab-home"))
    monkeypatch.delenv("LAB_MODEL", raising=False)


@pytest.fixture(scope="session")
def engine():
    from lab.engine import get_engine

    return get_engine()


@pytest.fixture(scope="session")
def embedder():
    from lab.embedder import get_embedder

    return get_embedder()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium under Playwright (a test tool's own browser download cannot work offline)."""
    from playwright.sync_api import sync_playwright
    from streamlit_browser import CHROMIUM, CHROMIUM_ARGS

    assert CHROMIUM, "chromium is missing: bash scripts/setup.sh --dev installs it"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def session():
    """A lab session on the test's own LAB_HOME, closed afterwards."""
    from lab.session import LabSession

    opened = LabSession.open("test")
    yield opened
    opened.close()
