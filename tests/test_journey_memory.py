"""Memory page journeys in a real browser (`streamlit run` + Debian's chromium, the real model).

An edited note is trained on with its new answer: editing a note's text once left its old
answer behind, and training on memory (which learns the answers) learned the old fact. And
the Memory page keeps the tab a person chose through an upload and an import: it once
jumped back to its first tab.
"""

import json
from pathlib import Path

import pytest
from streamlit_browser import click_and_wait, no_exception, shot, streamlit_server, wait_until_quiet
from test_journeys import open_page, workspace_of

from lab.adapters import AdapterRegistry
from lab.consolidation import examples_from_memory
from lab.learning import Example, data_hash
from lab.memory import MemoryStore
from lab.workspace import Workspace

HEAD = "The new head of research is Tomasz Wierzbicki."
EDITED = "The new head of research is Amara."
QUESTION = "Who is the new head of research?"


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory):
    return tmp_path_factory.mktemp("memory-journey-home")


@pytest.fixture(scope="module")
def server(lab_home):
    with streamlit_server(str(lab_home)) as url:
        yield url


def stored(lab_home, workspace: str) -> list:
    store = MemoryStore(Workspace.open(workspace, root=Path(lab_home)).memory_dir)
    try:
        return store.list()
    finally:
        store.close()


def test_an_edited_note_is_trained_on_with_its_new_answer(server, browser, lab_home):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/Memory")
    wait_until_quiet(page)
    workspace = workspace_of(page)

    # Remember a note whose answer is its sentence, as the Playground's *Remember the correction* stores it.
    page.get_by_role("textbox", name="Memory", exact=True).fill(HEAD)
    page.get_by_label("The question it answers (optional)").fill(QUESTION)
    page.get_by_label("The answer (optional)").fill(HEAD)
    click_and_wait(page, page.get_by_role("button", name="Add", exact=True))
    wait_until_quiet(page)  # the page reruns itself to show the change
    assert [(m.question, m.answer) for m in stored(lab_home, workspace)] == [(QUESTION, HEAD)]

    # Edit only its text: the page says the answer will follow, and Save brings it along.
    text = page.get_by_role("textbox", name="Text", exact=True)
    text.fill(EDITED)
    text.press("Control+Enter")  # a text area's value is sent on Ctrl+Enter (or when it loses focus)
    wait_until_quiet(page)
    assert "Saving changes its answer to follow the new text" in page.locator("body").inner_text()
    click_and_wait(page, page.get_by_role("button", name="Save changes"))
    wait_until_quiet(page)
    assert "Its answer follows" in page.locator("body").inner_text()
    memory = stored(lab_home, workspace)[0]
    assert (memory.text, memory.answer) == (EDITED, EDITED)
    assert page.get_by_label("Answer (empty: none)").input_value() == EDITED
    no_exception(page)
    shot(page, "memory-edit-1-answer-follows")

    # Learning: train on my memory, briefly and without replay, so the examples are the memory's alone.
    open_page(page, "Learning")
    if page.locator(".st-key-learning-replay input[type='checkbox']").is_checked():
        page.locator(".st-key-learning-replay label").first.click()
        wait_until_quiet(page)
    for _ in range(11):  # 60 -> 5 steps, 5 at a time
        page.locator(".st-key-learning-steps-sft input[type='range']").press("ArrowLeft")
    wait_until_quiet(page)
    page.get_by_label("Adapter name").fill("edited")
    page.get_by_label("Adapter name").press("Enter")
    wait_until_quiet(page)
    click_and_wait(page, page.get_by_role("button", name="Train", exact=True))
    page.get_by_text("Adapter 'edited' trained in").wait_for(timeout=600_000)
    wait_until_quiet(page)
    no_exception(page)
    shot(page, "memory-edit-2-trained")

    # The adapter learned the new answer: its training data is the memory's question and new answer.
    meta = AdapterRegistry(Workspace.open(workspace, root=Path(lab_home)).adapters_dir).get("edited").meta
    assert meta["config"]["steps"] == 5 and meta["config"]["replay"] is False and meta["examples"] == 1
    assert meta["data_sha256"] == data_hash(examples_from_memory(stored(lab_home, workspace)))
    assert meta["data_sha256"] == data_hash([Example(QUESTION, EDITED, "fact")])
    assert meta["data_sha256"] != data_hash([Example(QUESTION, HEAD, "fact")])
    page.close()


def test_the_memory_page_keeps_its_tab_through_an_upload_and_an_import(server, browser, tmp_path):
    export = tmp_path / "memories.json"
    export.write_text(json.dumps({"format": "memory-vs-learning-lab/memories", "version": 1,
                                  "memories": [{"text": HEAD}, {"text": "Our office dog is called Biscuit."}]}))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/Memory")
    wait_until_quiet(page)
    page.get_by_role("textbox", name="Memory", exact=True).fill(HEAD)
    click_and_wait(page, page.get_by_role("button", name="Add", exact=True))
    wait_until_quiet(page)

    def chosen_tab() -> str:
        return page.locator("[role='tab'][aria-selected='true']").first.inner_text()

    page.get_by_role("tab", name="Snapshots and files").click()
    wait_until_quiet(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(export))
    wait_until_quiet(page)
    assert chosen_tab() == "Snapshots and files"  # once: back to Memories as the upload's warning appeared
    page.get_by_text("Skip the duplicates").click()
    wait_until_quiet(page)
    assert chosen_tab() == "Snapshots and files"
    click_and_wait(page, page.get_by_role("button", name="Import", exact=True))
    wait_until_quiet(page)
    assert "Imported 2 memories from memories.json." in page.locator("body").inner_text()
    assert chosen_tab() == "Snapshots and files"
    no_exception(page)
    shot(page, "memory-tab-kept")
    page.close()
