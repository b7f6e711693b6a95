"""The Playground's stale screens, in a real browser (`streamlit run` + Debian's chromium) on the
real model: a remembered note is counted in the sidebar at once, a note written in Markdown is
shown as typed, and an adapter trained on the Learning page is used by the learned arms when
the student comes back, instead of "No adapter is active yet".
"""

import pytest
from streamlit_browser import OUTPUT, click_and_wait, no_exception, shot, streamlit_server, wait_until_quiet

MARKDOWN_NOTE = "The refund window at **Acme Corp** is 45 days, see [the policy](javascript:alert(1))."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(str(tmp_path_factory.mktemp("playground-journey-home"))) as url:
        yield url


def column(page, arm: str):
    return page.locator(f".st-key-playground-arm-{arm}")


def sidebar(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def open_page(page, title: str) -> None:
    click_and_wait(page, page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).first)
    wait_until_quiet(page)
    no_exception(page)


def test_the_playground_is_current_after_remembering_and_after_training_elsewhere(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/Playground?scenario=acme")
    wait_until_quiet(page)
    ask = page.get_by_role("button", name="Ask", exact=True)
    click_and_wait(page, ask)
    assert "No adapter is active yet" in column(page, "learned").inner_text()
    # Nothing to retrieve yet, so the memory arm sent the base arm's prompt: the cache says whose it was.
    assert "the base arm sent this exact prompt" in column(page, "memory").inner_text()

    # A correction written in Markdown: counted in the sidebar on the same run, not one behind.
    page.get_by_label("The right answer, as a full sentence").fill(MARKDOWN_NOTE)
    click_and_wait(page, page.get_by_role("button", name="Remember the correction"))
    assert "Remembered [1]" in page.locator("body").inner_text()
    assert " 1 memor" in sidebar(page), sidebar(page)

    # Asked again, the note is listed as typed: no bold text, no link.
    click_and_wait(page, ask)
    memory = column(page, "memory")
    assert MARKDOWN_NOTE in memory.inner_text()
    assert page.locator("a[href^='javascript']").count() == 0
    assert memory.locator("strong").filter(has_text="Acme Corp").count() == 0
    assert "the base arm sent this exact prompt" in column(page, "base").inner_text()
    shot(page, "playground-markdown-note")

    # The exact prompts, at full width under the columns, wrapped rather than cut off.
    page.get_by_text("Exact prompts, as each arm sent them").click()
    prompts = page.locator("[data-testid='stExpander']").filter(has_text="Exact prompts")
    prompts.locator("pre").first.wait_for()
    assert prompts.locator("pre").count() == 2  # base and memory: the learned arms have no adapter yet
    assert prompts.locator("pre").evaluate_all("blocks => blocks.every(b => b.scrollWidth <= b.clientWidth + 1)")
    assert "The refund window at **Acme Corp**" in prompts.inner_text()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    prompts.screenshot(path=str(OUTPUT / "playground-exact-prompts.png"))

    # Train on the Learning page (a short run on the one memory), then come back.
    open_page(page, "Learning")
    if page.locator(".st-key-learning-replay input[type='checkbox']").is_checked():
        page.locator(".st-key-learning-replay label").first.click()  # replay's warm-up is not the point here
        wait_until_quiet(page)
    for _ in range(11):  # 60 -> 5 steps
        page.locator(".st-key-learning-steps-sft input[type='range']").press("ArrowLeft")
    wait_until_quiet(page)
    click_and_wait(page, page.get_by_role("button", name="Train", exact=True))
    page.get_by_text("Adapter 'from-memory' trained in").wait_for(timeout=600_000)
    wait_until_quiet(page)

    open_page(page, "Playground")
    wait_until_quiet(page)
    for arm in ("learned", "both"):
        text = column(page, arm).inner_text()
        assert "No adapter is active yet" not in text and "adapter: from-memory" in text, (arm, text)
    assert "adapter: from-memory" in sidebar(page)
    shot(page, "playground-after-training")
    no_exception(page)
    page.close()
