"""Whole journeys across pages in a real browser (`streamlit run` + Debian's chromium), on the
real model: the README's five-minute demo as a teacher does it, without a terminal.

After every step the teacher's own memory is read from disk (the workspace named in the
page's address) and must be exactly what they stored: a clash of two pages' session keys
once wiped it just by opening the Memory page after a wipe test.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit_browser import click_and_wait, no_exception, shot, streamlit_server, wait_until_quiet

from lab.memory import MemoryStore
from lab.workspace import Workspace

REFUND_NOTE = "The refund window at Acme Corp is 45 days."
PAGES = ["Home", "Playground", "Memory", "Wipe Test", "Learning", "Experiments", "Workshop"]


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory):
    return tmp_path_factory.mktemp("journey-home")


@pytest.fixture(scope="module")
def server(lab_home):
    with streamlit_server(str(lab_home)) as url:
        yield url




def workspace_of(page) -> str:
    return parse_qs(urlparse(page.url).query)["workspace"][0]


def stored_texts(lab_home, workspace: str) -> list[str]:
    """The workspace's memories as SQLite holds them, read beside the server (a second process)."""
    store = MemoryStore(Workspace.open(workspace, root=Path(lab_home)).memory_dir)
    try:
        return [m.text for m in store.list()]
    finally:
        store.close()


def arm_text(page, arm: str) -> str:
    """The arm's reply alone, or why it did not run (never the token counts and timings under it)."""
    reply = page.locator(f".st-key-playground-reply-{arm}")
    return (reply if reply.count() else page.locator(f".st-key-playground-arm-{arm}")).first.inner_text()


def open_page(page, title: str) -> None:
    """Through the sidebar, as a person does (the address is not typed)."""
    link = page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).first
    try:
        click_and_wait(page, link, timeout_ms=90_000)
    except PlaywrightTimeout:
        # Once, in a full run of the suite, a sidebar click's run was not seen to finish within
        # 180 s; the same journey then passed alone and after the demo. Keep a picture of it
        # (tests/output/lost-click-*.png) and click again, as a person would.
        shot(page, f"lost-click-{title.replace(' ', '_')}")
        click_and_wait(page, link)
    wait_until_quiet(page)
    no_exception(page)


def test_the_five_minute_demo_without_a_terminal(server, browser, lab_home):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server)
    wait_until_quiet(page)

    # Home -> Start on the acme card -> Playground with acme's questions offered.
    click_and_wait(page, page.locator(".st-key-home-start-acme button"))
    wait_until_quiet(page)
    assert "/Playground" in page.url and "scenario=acme" in page.url
    workspace = workspace_of(page)
    assert stored_texts(lab_home, workspace) == []

    # Ask: the base model invents an answer, and so does the memory arm with nothing stored.
    click_and_wait(page, page.get_by_role("button", name="Ask", exact=True))
    assert "45" not in arm_text(page, "memory")
    assert "No adapter is active yet" in arm_text(page, "learned")  # said in the app's words...
    assert "python -m lab" not in page.locator("body").inner_text()  # ...never as a command line
    shot(page, "journey-1-wrong")

    # Correct this: the scenario's answer is offered; remember it; ask again: fixed.
    assert page.get_by_label("The right answer, as a full sentence").input_value() == REFUND_NOTE
    click_and_wait(page, page.get_by_role("button", name="Remember the correction"))
    assert stored_texts(lab_home, workspace) == [REFUND_NOTE]
    click_and_wait(page, page.get_by_role("button", name="Remember the correction"))  # pressed twice
    assert "already remembered" in page.locator("body").inner_text()
    assert stored_texts(lab_home, workspace) == [REFUND_NOTE]
    click_and_wait(page, page.get_by_role("button", name="Ask", exact=True))
    assert "45 days" in arm_text(page, "memory") and "45" not in arm_text(page, "base")
    # The base arm's prompt and weights are what they were: its reply comes from the class's cache, and says so.
    assert "reply cache" in page.locator(".st-key-playground-arm-base").inner_text()
    assert "reply cache" not in page.locator(".st-key-playground-arm-memory").inner_text()
    shot(page, "journey-2-fixed")

    # Wipe Test: train the learned arm from the page, predict, run, reveal.
    open_page(page, "Wipe Test")
    assert page.get_by_role("combobox").first.input_value() == "acme" or "acme" in page.locator(
        ".st-key-wipe_test-scenario_box").inner_text()
    click_and_wait(page, page.get_by_role("button", name="Train the learned arm on these 20 corrections first"))
    page.get_by_text("on these corrections in").wait_for(timeout=600_000)  # "Trained adapter … in N s"
    wait_until_quiet(page)
    assert stored_texts(lab_home, workspace) == [REFUND_NOTE]  # training did not touch the memory
    page.locator(".st-key-wipe_test-predict_memory").get_by_text("loses it").click()
    wait_until_quiet(page)
    page.locator(".st-key-wipe_test-predict_learned").get_by_text("keeps it").click()
    wait_until_quiet(page)
    click_and_wait(page, page.get_by_role("button", name="Run the wipe test"), timeout_ms=600_000)
    page.get_by_text("Wipe test finished").wait_for(timeout=600_000)  # its status line, whatever reran meanwhile
    wait_until_quiet(page)
    body = page.locator("body").inner_text()
    assert "Wipe test finished" in body
    assert "memory: you said it loses it; it loses it" in body
    assert "learned (adapter acme, trained on the acme scenario): you said it keeps it; it keeps it" in body
    assert stored_texts(lab_home, workspace) == [REFUND_NOTE]  # given back after the test
    shot(page, "journey-3-reveal")

    # Every page once, through the sidebar: the memory stays exactly as it was.
    for title in PAGES:
        open_page(page, title)
        assert stored_texts(lab_home, workspace) == [REFUND_NOTE], f"the memory changed on opening {title}"
        assert workspace_of(page) == workspace and "scenario=acme" in page.url
        assert "python -m lab" not in page.locator("body").inner_text(), f"a command line on {title}"
        if title == "Playground":  # the question and the four answers are still there
            assert page.get_by_label("Question", exact=True).input_value() == "What is the refund window at Acme Corp?"
            assert "45 days" in arm_text(page, "memory")
    shot(page, "journey-4-workshop")

    # Back on the Wipe Test, the reveal is still there; a reload keeps the workspace.
    open_page(page, "Wipe Test")
    assert "you said it keeps it; it keeps it" in page.locator("body").inner_text()
    page.reload()
    wait_until_quiet(page)
    assert workspace_of(page) == workspace
    open_page(page, "Playground")
    assert "1 memory ·" in page.locator("[data-testid='stSidebar']").inner_text()
    assert stored_texts(lab_home, workspace) == [REFUND_NOTE]
    no_exception(page)
    page.close()


def test_a_class_links_settings_hold_on_every_page_and_through_the_teacher_toggle(server, browser, lab_home):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/Playground?scenario=pirate&arm=base&k=5&threshold=0.4")
    wait_until_quiet(page)
    assert "pirate" in page.get_by_text("Example questions from").first.inner_text().lower() or \
        "Pirate" in page.locator("body").inner_text()
    for title in ["Memory", "Wipe Test", "Workshop", "Playground"]:
        open_page(page, title)
        query = parse_qs(urlparse(page.url).query)
        assert (query["scenario"], query["k"], query["threshold"]) == (["pirate"], ["5"], ["0.4"]), (title, page.url)
    # The teacher toggle changes only the teacher flag.
    page.locator(".st-key-ui-teacher_toggle label").first.click()
    wait_until_quiet(page)
    query = parse_qs(urlparse(page.url).query)
    assert (query["scenario"], query["arm"], query["k"], query["threshold"], query["teacher"]) == \
        (["pirate"], ["base"], ["5"], ["0.4"], ["1"])
    assert "k = 5 · threshold = 0.4 (set by the link)" in page.locator("[data-testid='stSidebar']").inner_text()
    no_exception(page)
    page.close()


def exercise_button(page, exercise_id: str, name: str):
    """A button inside an exercise, unfolding the exercise first if it is folded."""
    button = page.locator(f".st-key-workshop-{name} button") if name != "check" else \
        page.locator(f".st-key-workshop-check-{exercise_id} button")
    if not button.is_visible():
        title = {"memory-answer": "1. ", "forgetting": "2. ", "poison-repair": "3. ", "behaviour": "4. ",
                 "wipe-prediction": "5. ", "threshold": "6. "}[exercise_id]
        page.locator("[data-testid='stExpander'] summary").filter(has_text=title).first.click()
        button.wait_for(state="visible")
    return button


def check(page, exercise_id: str) -> str:
    """Press Check my work; return the verdict shown in that exercise."""
    click_and_wait(page, exercise_button(page, exercise_id, "check"), timeout_ms=600_000)
    wait_until_quiet(page)
    no_exception(page)
    expander = page.locator("[data-testid='stExpander']").filter(
        has=page.locator(f".st-key-workshop-check-{exercise_id}"))
    return expander.locator("[data-testid='stAlert']").last.inner_text()


def progress_text(page) -> str:
    return page.locator("[data-testid='stProgress']").first.inner_text()


def train_on_learning_page(page, scenario: str, name: str, *, replay: bool = True, steps_right: int = 0) -> None:
    """Train from the Learning page with replay set to `replay` (on by default there);
    `steps_right` moves the steps slider 5 steps at a time from where it stands (negative: down)."""
    open_page(page, "Learning")
    page.get_by_text("a scenario", exact=True).click()
    wait_until_quiet(page)
    page.locator(".st-key-learning-scenario").click()
    page.get_by_role("option", name=scenario, exact=True).click()
    wait_until_quiet(page)
    if page.locator(".st-key-learning-replay input[type='checkbox']").is_checked() != replay:
        page.locator(".st-key-learning-replay label").first.click()
        wait_until_quiet(page)
    assert page.locator(".st-key-learning-replay input[type='checkbox']").is_checked() == replay
    for _ in range(abs(steps_right)):  # the steps slider moves 5 at a time
        page.locator(".st-key-learning-steps-sft input[type='range']").press("ArrowRight" if steps_right > 0
                                                                         else "ArrowLeft")
    wait_until_quiet(page)
    page.get_by_label("Adapter name").fill(name)
    page.get_by_label("Adapter name").press("Enter")
    wait_until_quiet(page)
    click_and_wait(page, page.get_by_role("button", name="Train", exact=True))
    page.get_by_text(f"Adapter '{name}' trained in").wait_for(timeout=600_000)
    wait_until_quiet(page)
    # The list is fresh without another click: the new adapter is the active one.
    page.get_by_text(f"active · {name}").wait_for(timeout=30_000)
    no_exception(page)


def test_a_student_does_the_six_exercises_in_order_with_a_reload(server, browser, lab_home):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/Workshop")
    wait_until_quiet(page)
    workspace = workspace_of(page)
    assert "0 of 8 exercises done" in progress_text(page)

    # 1. Make the memory arm answer: remember the note (typed, as step 2 says) and check.
    page.locator(".st-key-workshop-note input").fill(REFUND_NOTE)
    page.locator(".st-key-workshop-note input").press("Enter")
    wait_until_quiet(page)
    click_and_wait(page, exercise_button(page, "memory-answer", "remember"))
    assert "made the difference" in check(page, "memory-answer")
    assert "1 of 8 exercises done" in progress_text(page)

    # 2. Show forgetting: train on pirate (Learning page), check; then with replay, check again.
    train_on_learning_page(page, "pirate", "pirate", replay=False, steps_right=-4)  # 40 steps, as step 1 says
    open_page(page, "Workshop")
    verdict = check(page, "forgetting")
    assert "forgot" in verdict, verdict
    assert "2 of 8 exercises done" in progress_text(page)
    train_on_learning_page(page, "pirate", "pirate-replay", replay=True, steps_right=4)  # back to 60 steps
    open_page(page, "Workshop")
    verdict = check(page, "forgetting")
    assert "replay held them" in verdict or "forgot" in verdict, verdict  # what replay did, said as it is
    assert "2 of 8 exercises done" in progress_text(page)  # the exercise stays done

    # 3. Poison and repair: stage 1 is progress, not a failure; undo repairs it.
    click_and_wait(page, exercise_button(page, "poison-repair", "poison"))
    assert "Stage 1 of 2 done" in check(page, "poison-repair")
    click_and_wait(page, page.locator(".st-key-workshop-undo button"))
    assert "Repaired" in check(page, "poison-repair")
    assert stored_texts(lab_home, workspace) == [REFUND_NOTE]

    # A reload in the middle: same workspace, same progress.
    page.reload()
    wait_until_quiet(page)
    assert workspace_of(page) == workspace and "3 of 8 exercises done" in progress_text(page)

    # 4. Behaviour: the pirate examples in memory, the pirate adapter active (Learning page), check.
    click_and_wait(page, exercise_button(page, "behaviour", "pirate"))
    click_and_wait(page, exercise_button(page, "behaviour", "pirate_rule"))
    open_page(page, "Learning")
    click_and_wait(page, page.locator(".st-key-learning-activate-pirate button"))
    open_page(page, "Workshop")
    verdict = check(page, "behaviour")
    assert "rule pinned" in verdict and "The adapter carries the habit" in verdict, verdict

    # 5. Predict the wipe test: train the learned arm on acme from the exercise, predict, run, check.
    click_and_wait(page, exercise_button(page, "wipe-prediction", "train"), timeout_ms=600_000)
    # The training runs (or waits in the server's queue) off the page; its notice says when it is done.
    page.get_by_text("on the acme corrections,").wait_for(timeout=600_000)
    wait_until_quiet(page)
    page.locator(".st-key-workshop-predict-memory").get_by_text("loses the improvement").click()
    page.locator(".st-key-workshop-predict-learned").get_by_text("keeps the improvement").click()
    wait_until_quiet(page)
    click_and_wait(page, exercise_button(page, "wipe-prediction", "save_prediction"))
    click_and_wait(page, exercise_button(page, "wipe-prediction", "run_wipe"), timeout_ms=600_000)
    verdict = check(page, "wipe-prediction")
    assert "learned" in verdict and "not judged" not in verdict, verdict

    # 6. The threshold: raise it until the laptop question retrieves nothing.
    slider = exercise_button(page, "threshold", "ask_laptop")  # unfolds the exercise
    for _ in range(10):  # 0 -> 0.5, in steps of 0.05
        page.locator(".st-key-workshop-exercise_threshold input[type='range']").press("ArrowRight")
    wait_until_quiet(page)
    assert slider.is_visible()
    assert "retrieves nothing" in check(page, "threshold")
    assert "6 of 8 exercises done" in progress_text(page)  # the seventh and eighth (A fact changed, Consolidate): tests/test_workshop.py
    shot(page, "journey-workshop-done")

    page.reload()
    wait_until_quiet(page)
    assert "6 of 8 exercises done" in progress_text(page)
    assert REFUND_NOTE in stored_texts(lab_home, workspace)
    no_exception(page)
    page.close()


def test_the_workshop_status_follows_a_poison_stored_again(server, browser, lab_home):
    """Exercise 3 after its repair: remembering the poison again shows in the header's memory count
    at once, and the "Repaired" verdict, whose memory is gone, is withdrawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{server}/Workshop")
    wait_until_quiet(page)
    workspace = workspace_of(page)
    click_and_wait(page, exercise_button(page, "poison-repair", "poison"))
    assert "Stage 1 of 2 done" in check(page, "poison-repair")
    click_and_wait(page, page.locator(".st-key-workshop-undo button"))
    assert "Repaired" in check(page, "poison-repair")
    assert "· 0 memories ·" in page.locator("body").inner_text()

    click_and_wait(page, exercise_button(page, "poison-repair", "poison"))  # the poison, stored again
    wait_until_quiet(page)
    assert stored_texts(lab_home, workspace) == ["The capital of France is Lyon."]
    assert "· 1 memory ·" in page.locator("body").inner_text()
    expander = page.locator("[data-testid='stExpander']").filter(
        has=page.locator(".st-key-workshop-check-poison-repair"))
    verdict = expander.locator("[data-testid='stAlert']").last.inner_text()
    assert "Your memory changed since the last check" in verdict and "Repaired" not in expander.inner_text()
    shot(page, "journey-workshop-stale-verdict")
    no_exception(page)
    page.close()


def stored_kinds(lab_home, workspace: str) -> list[tuple[str, bool, int]]:
    """(text, pinned, times sent into an answer) per memory, as SQLite holds them."""
    store = MemoryStore(Workspace.open(workspace, root=Path(lab_home)).memory_dir)
    try:
        usage = store.usage()
        return [(m.text, m.pinned, usage[m.id].retrievals if m.id in usage else 0) for m in store.list()]
    finally:
        store.close()


PIRATE_RULE = "Always answer like a pirate: start with Arr! and end with matey."


def test_a_pinned_rule_travels_to_every_answer_is_priced_and_unpins_with_undo(server, browser, lab_home):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/Memory?scenario=pirate")
    wait_until_quiet(page)
    workspace = workspace_of(page)

    # Memory page: a pinned rule and a retrieved fact.
    page.get_by_role("textbox", name="Memory", exact=True).fill(PIRATE_RULE)
    page.get_by_text("Pin it: send it with every question").click()
    wait_until_quiet(page)
    click_and_wait(page, page.get_by_role("button", name="Add", exact=True))
    wait_until_quiet(page)  # the page reruns itself to show the change
    assert "Remembered [1], pinned." in page.locator("body").inner_text()
    page.get_by_role("textbox", name="Memory", exact=True).fill(REFUND_NOTE)
    click_and_wait(page, page.get_by_role("button", name="Add", exact=True))
    wait_until_quiet(page)  # the page reruns itself to show the change
    assert stored_kinds(lab_home, workspace) == [(PIRATE_RULE, True, 0), (REFUND_NOTE, False, 0)]
    pinned_metric = page.locator("[data-testid='stMetric']").filter(has_text="Pinned tokens per answer")
    assert int(pinned_metric.locator("[data-testid='stMetricValue']").inner_text()) > 10
    shot(page, "pinned-1-memory")

    # Playground: an unrelated question still carries the rule, marked pinned, and the arm pays for it.
    open_page(page, "Playground")
    page.get_by_label("Question", exact=True).fill("What is the capital of Spain?")
    click_and_wait(page, page.get_by_role("button", name="Ask", exact=True))
    memory_column = page.locator(".st-key-playground-arm-memory").inner_text()
    assert "pinned, score" in memory_column and PIRATE_RULE in memory_column and REFUND_NOTE not in memory_column
    assert "of them pinned" in page.locator("body").inner_text()  # prompt tokens per arm
    shot(page, "pinned-2-playground")

    # Back on the Memory page: the rule went into the memory arm's answer (the both arm has no adapter
    # here); unpin, then undo.
    open_page(page, "Memory")
    assert stored_kinds(lab_home, workspace) == [(PIRATE_RULE, True, 1), (REFUND_NOTE, False, 0)]
    click_and_wait(page, page.locator(".st-key-memory-edit_pin").get_by_role("button", name="Unpin"))
    wait_until_quiet(page)
    assert "Unpinned [1]" in page.locator("body").inner_text()
    assert stored_kinds(lab_home, workspace)[0][:2] == (PIRATE_RULE, False)
    click_and_wait(page, page.locator(".st-key-memory-undo").get_by_role("button", name="Undo the last change"))
    wait_until_quiet(page)
    assert stored_kinds(lab_home, workspace)[0][:2] == (PIRATE_RULE, True)
    shot(page, "pinned-3-undone")
    for title in PAGES:  # and no page changes either kind
        open_page(page, title)
        assert [kind[:2] for kind in stored_kinds(lab_home, workspace)] == [(PIRATE_RULE, True), (REFUND_NOTE, False)]
    no_exception(page)
    page.close()


LABEL_CUT = """(el) => [...el.querySelectorAll('[data-testid="stWidgetLabel"] [data-testid="stMarkdownContainer"]')]
    .some(label => label.scrollWidth > label.clientWidth + 1)"""


def test_a_reload_during_a_training_shows_its_progress_and_cancel(server, browser, lab_home):
    """Name an adapter, Train, reload at a step: the reloaded page shows the training with its
    progress and Cancel (it once showed nothing, and the adapter turned active a minute later)."""
    from lab.adapters import AdapterRegistry

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/Learning")
    wait_until_quiet(page)
    workspace = workspace_of(page)
    assert not page.locator(".st-key-learning-replay").evaluate(LABEL_CUT)  # the replay label reads whole
    page.get_by_text("a scenario", exact=True).click()
    wait_until_quiet(page)
    page.locator(".st-key-learning-scenario").click()
    page.get_by_role("option", name="acme", exact=True).click()
    wait_until_quiet(page)
    page.locator(".st-key-learning-replay label").first.click()  # no replay answers to prepare: quicker to the steps
    wait_until_quiet(page)
    page.locator(".st-key-learning-steps-sft input[type='range']").press("End")  # 200 steps: still running at the reload
    wait_until_quiet(page)
    page.get_by_label("Adapter name").fill("reload-me")
    page.get_by_label("Adapter name").press("Enter")
    wait_until_quiet(page)
    assert "About " in page.locator("body").inner_text()  # the estimate, from the measured pace
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(r"() => /training: step ([3-9]|\d\d+)\/200/.test(document.body.innerText)",
                           timeout=600_000)  # a few steps in, as a person would reload
    assert page.get_by_role("button", name="Train", exact=True).is_disabled()  # no second training by a second click
    shot(page, "reload-1-training")

    page.reload()  # a new session of the same workspace; the page polls while the training runs
    page.wait_for_function("() => document.body.innerText.includes('training: step')", timeout=120_000)
    assert workspace_of(page) == workspace
    cancel = page.get_by_role("button", name="Cancel training")
    assert cancel.is_visible() and page.get_by_role("button", name="Train", exact=True).is_disabled()
    assert "Training reload-me" in page.locator("[data-testid='stSidebar']").inner_text()
    assert "Training reload-me on the acme scenario, 200 steps" in page.locator("body").inner_text()
    shot(page, "reload-2-after-reload")
    cancel.click()
    page.get_by_text("training was cancelled").wait_for(timeout=120_000)
    wait_until_quiet(page)
    shot(page, "reload-3-cancelled")
    # The whole page is drawn again once it ended: Train is back, the sidebar has nothing running.
    assert page.get_by_role("button", name="Train", exact=True).is_enabled()
    assert "Training reload-me" not in page.locator("[data-testid='stSidebar']").inner_text()
    registry = AdapterRegistry(Workspace.open(workspace, root=Path(lab_home)).adapters_dir)
    assert registry.list() == [] and registry.active_name() is None  # nothing turned active, seen or unseen
    no_exception(page)
    page.close()
