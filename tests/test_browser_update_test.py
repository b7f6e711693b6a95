"""The Update Test page in chromium on the bundled changing-facts scenario, real model and
training: press Run, watch it go through its phases, read the results. Screenshots go to
tests/output/ (update-test-running.png, update-test-done.png)."""

import pytest
from streamlit_browser import click_and_wait, no_exception, shot, streamlit_server, wait_until_quiet


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(str(tmp_path_factory.mktemp("update-home"))) as url:
        yield url


def test_the_update_test_runs_in_the_page_and_shows_before_after_and_retrain(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/Update_Test?scenario=changing-facts")
    wait_until_quiet(page)
    no_exception(page)
    click_and_wait(page, page.locator(".st-key-update_test-run button"))
    # It runs off the page's thread: the page says what it is doing and draws each phase as it comes.
    page.get_by_text("asking every arm, with the old facts").first.wait_for(timeout=900_000)
    page.get_by_text("of 12 measured)").first.wait_for(timeout=120_000)
    shot(page, "update-test-running")
    page.get_by_text("What each arm said").wait_for(timeout=1_500_000)
    wait_until_quiet(page)
    no_exception(page)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "After the update memory gives the new value" in body
    assert "editing memory" in body and "retraining the adapter" in body
    assert page.locator("[data-testid='stPlotlyChart']").count() == 4
    shot(page, "update-test-done")
    page.close()
