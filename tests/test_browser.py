"""End to end in a real browser: `streamlit run` on localhost, driven by Playwright in
Debian's chromium (a test tool's own browser download cannot work offline).

The main flow of the lab: ask, see the wrong answer, correct it, see it fixed, wipe,
see it wrong again. Screenshots go to tests/output/.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit_browser import CHROMIUM, CHROMIUM_ARGS, click_and_wait, wait_for_run, watch_runs

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"
QUESTION = "What is the refund window at Acme Corp?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "LAB_HOME": str(tmp_path_factory.mktemp("browser-home"))}
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start: " + process.stdout.read().decode()[-2000:])
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is missing: bash scripts/setup.sh --dev installs it"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _shot(page, name):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def _no_exception(page):
    assert page.locator("[data-testid='stException']").count() == 0


def _memory_answer(page) -> str | None:
    expander = page.locator("[data-testid='stExpander']").filter(has_text="memory:")
    return expander.first.inner_text() if expander.count() else None


def _ask(page) -> str:
    """Click Ask and wait for the whole run (four arms) to finish; return the memory arm's answer."""
    click_and_wait(page, page.get_by_role("button", name="Ask", exact=True))
    answer = _memory_answer(page)
    assert answer is not None, "no memory-arm answer appeared"
    return answer


def test_every_page_loads_without_an_exception(server, browser):
    page = browser.new_page()
    for path, name in [("", "home"), ("Playground", "playground"), ("Memory", "memory"), ("Wipe_Test", "wipe-test"), ("Learning", "learning"),
                       ("Experiments", "experiments"), ("Workshop", "workshop")]:
        page.goto(f"{server}/{path}")
        page.wait_for_selector("h1", timeout=120_000)
        page.wait_for_timeout(1500)
        _no_exception(page)
        _shot(page, f"page-{name}")
    page.close()


def test_a_start_button_opens_the_playground_with_the_scenario(server, browser):
    page = browser.new_page()
    page.goto(server)
    page.get_by_role("button", name="Start").nth(1).wait_for(timeout=120_000)
    page.locator(".st-key-start-pirate button").click()
    page.wait_for_url("**/Playground?scenario=pirate", timeout=60_000)
    page.get_by_text("Example questions from the pirate scenario").wait_for(timeout=60_000)
    _no_exception(page)
    page.close()


def test_ask_correct_fixed_wipe_wrong_again(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/Playground")
    page.get_by_label("Question", exact=True).fill(QUESTION)
    first = _ask(page)
    assert "45" not in first
    _shot(page, "flow-1-wrong")

    page.get_by_label("The right answer").fill("The refund window at Acme Corp is 45 days.")
    page.get_by_role("button", name="Remember the correction").click()
    page.get_by_text("Remembered [").wait_for(timeout=60_000)
    fixed = _ask(page)
    assert "45 days" in fixed
    _shot(page, "flow-2-fixed")

    page.get_by_role("link", name="Memory").first.click()
    page.get_by_text("I understand").click()
    page.get_by_role("button", name="Wipe memory").click()
    page.get_by_text("0 memories").wait_for(timeout=60_000)
    _shot(page, "flow-3-wiped")

    page.get_by_role("link", name="Playground").first.click()
    page.get_by_label("Question", exact=True).fill(QUESTION)
    again = _ask(page)
    assert "45" not in again
    _shot(page, "flow-4-wrong-again")
    _no_exception(page)
    page.close()


def test_ten_sessions_ask_and_remember_at_once(server, browser):
    """Ten students at once on one shared model: no errors, and each sees only its own memory."""
    codes = {i: f"{4000 + 37 * i}" for i in range(10)}
    pages = {i: browser.new_context().new_page() for i in codes}
    for i, page in pages.items():
        page.goto(f"{server}/Playground")
        page.get_by_label("Question", exact=True).wait_for(timeout=120_000)
        page.get_by_label("Question", exact=True).fill(f"What is the code of locker number {i}?")
    for page in pages.values():  # all ten runs start before any is awaited
        watch_runs(page)
        page.get_by_role("button", name="Ask", exact=True).click()
    for page in pages.values():
        wait_for_run(page)
    for i, page in pages.items():
        page.get_by_label("The right answer").fill(f"The code of locker number {i} is {codes[i]}.")
        page.get_by_role("button", name="Remember the correction").click()
    for page in pages.values():
        page.get_by_text("Remembered [1]").wait_for(timeout=120_000)  # each has its own store: id 1
        watch_runs(page)
        page.get_by_role("button", name="Ask", exact=True).click()
    for i, page in pages.items():
        wait_for_run(page)
        _no_exception(page)
        memory = _memory_answer(page)
        assert f"locker number {i} is {codes[i]}" in memory  # its own note was retrieved...
        assert not any(code in memory for j, code in codes.items() if j != i)  # ...and nobody else's
    _shot(pages[0], "ten-sessions-0")
    for page in pages.values():
        page.context.close()
