"""End to end in a real browser: `streamlit run` on localhost, driven by Playwright in
Debian's chromium (a test tool's own browser download cannot work offline).

The main flow of the lab: ask, see the wrong answer, correct it, see it fixed, wipe,
see it wrong again. Screenshots go to tests/output/.
"""


import pytest
from streamlit_browser import (click_and_wait, no_exception, shot, streamlit_server, wait_for_run,
                              wait_until_quiet, watch_runs)

QUESTION = "What is the refund window at Acme Corp?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(str(tmp_path_factory.mktemp("browser-home"))) as url:
        yield url




def _memory_answer(page) -> str | None:
    """The memory arm's reply alone (not the token counts and milliseconds under it)."""
    reply = page.locator(".st-key-playground-reply-memory")
    return reply.first.inner_text() if reply.count() else None


def _memory_column(page) -> str:
    """Everything the memory arm shows: its reply and the notes put in its prompt."""
    return page.locator(".st-key-playground-arm-memory").first.inner_text()


def _ask(page) -> str:
    """Click Ask and wait for the whole run (four arms) to finish; return the memory arm's answer."""
    click_and_wait(page, page.get_by_role("button", name="Ask", exact=True))
    answer = _memory_answer(page)
    assert answer is not None, "no memory-arm answer appeared"
    return answer


def test_every_page_loads_without_an_exception(server, browser):
    page = browser.new_page()
    for path, name in [("", "home"), ("Playground", "playground"), ("Memory", "memory"), ("Wipe_Test", "wipe-test"), ("Learning", "learning"),
                       ("Experiments", "experiments"), ("Workshop", "workshop"), ("Update_Test", "update-test")]:
        page.goto(f"{server}/{path}")
        page.wait_for_selector("h1", timeout=120_000)
        page.wait_for_timeout(1500)
        no_exception(page)
        shot(page, f"page-{name}")
    page.close()


def test_a_start_button_opens_the_playground_with_the_scenario(server, browser):
    page = browser.new_page()
    page.goto(server)
    page.get_by_role("button", name="Start").nth(1).wait_for(timeout=120_000)
    page.locator(".st-key-home-start-pirate button").click()
    page.wait_for_url("**/Playground?*scenario=pirate*", timeout=60_000)
    label = page.get_by_text("Example questions from")
    label.wait_for(timeout=60_000)
    assert "pirate" in label.inner_text()
    no_exception(page)
    page.close()


def test_ask_correct_fixed_wipe_wrong_again(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/Playground")
    page.get_by_label("Question", exact=True).fill(QUESTION)
    first = _ask(page)
    assert "45" not in first
    shot(page, "flow-1-wrong")

    page.get_by_label("The right answer").fill("The refund window at Acme Corp is 45 days.")
    page.get_by_role("button", name="Remember the correction").click()
    page.get_by_text("Remembered [").wait_for(timeout=60_000)
    fixed = _ask(page)
    assert "45 days" in fixed
    shot(page, "flow-2-fixed")

    page.get_by_role("link", name="Memory").first.click()
    page.get_by_text("I understand").click()
    page.get_by_role("button", name="Wipe memory").click()
    page.get_by_text("0 memories").wait_for(timeout=60_000)
    shot(page, "flow-3-wiped")

    page.get_by_role("link", name="Playground").first.click()
    page.get_by_label("Question", exact=True).fill(QUESTION)
    again = _ask(page)
    assert "45" not in again
    shot(page, "flow-4-wrong-again")
    no_exception(page)
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
        no_exception(page)
        memory = _memory_column(page)
        assert f"locker number {i} is {codes[i]}" in memory  # its own note was retrieved...
        assert not any(code in memory for j, code in codes.items() if j != i)  # ...and nobody else's
    shot(pages[0], "ten-sessions-0")
    for page in pages.values():
        page.context.close()


def test_a_link_straight_to_a_page_runs_inside_the_app(browser, tmp_path):
    """A server whose first visit is a shared link to a page (not the home page) still runs
    it through app.py: the sidebar says "Home", not the script's name, and the link's
    workspace is kept."""
    with streamlit_server(str(tmp_path / "deep-link-home")) as url:
        page = browser.new_page()
        page.goto(f"{url}/Memory?workspace=shared-link")
        wait_until_quiet(page)  # the first run reruns itself through app.py
        navigation = page.locator("[data-testid='stSidebarNav']").inner_text().split()
        assert navigation[0] == "Home" and "app" not in navigation
        assert page.locator("h1").first.inner_text() == "Memory" and "workspace=shared-link" in page.url
        no_exception(page)
        page.close()
