"""Sharing in a real browser (`streamlit run` + Debian's chromium), on the real model: a link
to someone's lab opens a copy, never the lab itself, and a class link's lock holds.

Each visitor is a browser context of its own (its own cookies and sessions, as a second
student's laptop). After each step the owner's memory is read from disk beside the server.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from streamlit_browser import click_and_wait, no_exception, shot, streamlit_server, wait_until_quiet

from lab.memory import MemoryStore
from lab.workspace import Workspace

NOTE = "The refund window at Acme Corp is 45 days."


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory):
    return tmp_path_factory.mktemp("sharing-home")


@pytest.fixture(scope="module")
def server(lab_home):
    with streamlit_server(str(lab_home)) as url:
        yield url


def query(page) -> dict:
    return {name: values[-1] for name, values in parse_qs(urlparse(page.url).query).items()}


def stored_texts(lab_home, workspace: str) -> list[str]:
    store = MemoryStore(Workspace.open(workspace, root=Path(lab_home)).memory_dir)
    try:
        return [m.text for m in store.list()]
    finally:
        store.close()


def visitor(browser):
    """A new person: a browser context of their own."""
    return browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()


def goto(page, url: str) -> None:
    page.goto(url)
    wait_until_quiet(page)
    no_exception(page)


def sidebar(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def share_panel_codes(page) -> list[str]:
    """Open Share this lab; the links and keys it shows."""
    body = page.locator("[data-testid='stPopoverBody']")
    if not body.is_visible():
        page.get_by_role("button", name="Share this lab").click()
        body.wait_for(state="visible")
    body.locator("[data-testid='stCode']").first.wait_for(state="visible")
    return [code.inner_text().strip() for code in body.locator("[data-testid='stCode']").all()]


def test_a_copied_link_leaves_the_original_untouched(server, browser, lab_home):
    owner = visitor(browser)
    goto(owner, f"{server}/Memory")
    mine = query(owner)["workspace"]
    assert query(owner)["key"]
    owner.locator(".st-key-memory-add_text textarea").fill(NOTE)
    click_and_wait(owner, owner.locator(".st-key-memory-add button"))
    assert stored_texts(lab_home, mine) == [NOTE]

    # Someone holding only the workspace's name: a copy of their own, marked so.
    other = visitor(browser)
    goto(other, f"{server}/?workspace={mine}")
    assert query(other)["workspace"] != mine and "copied from" in sidebar(other)
    goto(other, f"{server}/Memory?workspace={mine}")
    copy = query(other)["workspace"]
    assert copy != mine and query(other)["key"] != query(owner)["key"]
    assert f"copied from `{mine}`" in sidebar(other) or f"copied from {mine}" in sidebar(other)
    assert NOTE in other.locator("[data-testid='stDataFrame']").inner_text() or stored_texts(lab_home, copy) == [NOTE]
    assert stored_texts(lab_home, copy) == [NOTE]
    shot(other, "sharing-1-a-copy")

    # They wipe it: their copy is empty, the owner's memory on disk is as it was.
    other.get_by_text("I understand").click()
    wait_until_quiet(other)
    click_and_wait(other, other.get_by_role("button", name="Wipe memory"))
    assert stored_texts(lab_home, copy) == []
    assert stored_texts(lab_home, mine) == [NOTE]
    goto(other, f"{server}/Workshop?workspace={mine}")
    assert "0 of 8 exercises done" in other.locator("[data-testid='stProgress']").first.inner_text()

    # The owner's reload keeps their own lab; Share this lab hands out a copy, not the key.
    owner.reload()
    wait_until_quiet(owner)
    assert query(owner)["workspace"] == mine and "1 memory in workspace" in owner.locator("body").inner_text()
    codes = share_panel_codes(owner)
    share = next((c for c in codes if "from=" in c), None)
    assert share, codes
    assert query(owner)["key"] not in share and any(query(owner)["key"] in c for c in codes)  # the edit link, for the owner
    shot(owner, "sharing-2-share-panel")
    third = visitor(browser)
    goto(third, share)
    assert query(third)["workspace"] not in (mine, copy) and stored_texts(lab_home, query(third)["workspace"]) == [NOTE]
    assert not any(query(owner)["key"] in c for c in share_panel_codes(third))  # nobody else's key is ever shown
    assert stored_texts(lab_home, mine) == [NOTE]
    for page in (owner, other, third):
        page.context.close()


def test_a_locked_class_link_stays_locked(server, browser, lab_home):
    teacher = visitor(browser)
    goto(teacher, f"{server}/Workshop?scenario=pirate&k=2&threshold=0.6&teacher=1")
    share_panel_codes(teacher)
    click_and_wait(teacher, teacher.locator(".st-key-ui-make_class button"))
    codes = share_panel_codes(teacher)
    class_url = next(c for c in codes if "class=" in c and "unlock=" not in c)
    unlock_url = next(c for c in codes if "unlock=" in c)
    unlock_key = query_of(unlock_url)["unlock"]
    shot(teacher, "sharing-3-class-link")

    student = visitor(browser)
    goto(student, class_url)
    held = query(student)
    assert (held["scenario"], held["k"], held["threshold"], held["teacher"]) == ("pirate", "2", "0.6", "1")
    toggle = student.locator(".st-key-ui-teacher_toggle input")
    assert toggle.is_disabled() and "only the teacher who made it can unlock it" in sidebar(student)
    assert student.locator(".st-key-workshop-reset").count() == 0  # no "Reset my progress"
    student.locator(".st-key-ui-teacher_toggle label").first.click(force=True)  # tries to switch it off
    wait_until_quiet(student)
    assert query(student)["teacher"] == "1"

    # An edited address (k=50, threshold -1, teacher off): still held, and it says so in one line.
    address = student.url
    goto(student, address + "&k=50&threshold=-1&teacher=0")
    held = query(student)
    assert held["workspace"] == query_of(address)["workspace"]
    assert (held["k"], held["threshold"], held["teacher"]) == ("2", "0.6", "1")
    assert "held by its class link" in student.locator("body").inner_text()
    assert student.locator(".st-key-ui-teacher_toggle input").is_disabled()
    shot(student, "sharing-4-locked")

    # The teacher's unlock link opens an unlocked seat; the key typed into the student's sidebar
    # unlocks that lab alone.
    seat = visitor(browser)
    goto(seat, unlock_url)
    assert not seat.locator(".st-key-ui-teacher_toggle input").is_disabled()
    student.locator(".st-key-ui-unlock_key input").fill(unlock_key)
    student.locator(".st-key-ui-unlock_key input").press("Enter")
    wait_until_quiet(student)
    assert "Unlocked with the teacher's key" in student.locator("body").inner_text()
    student.locator(".st-key-ui-teacher_toggle label").first.click()
    wait_until_quiet(student)
    assert "teacher" not in query(student) and query(student)["workspace"] == held["workspace"]
    no_exception(student)
    for page in (teacher, student, seat):
        page.context.close()


def query_of(url: str) -> dict:
    return {name: values[-1] for name, values in parse_qs(urlparse(url).query).items()}
