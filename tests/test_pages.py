"""Every page, driven by Streamlit's AppTest on the real model, embedder and memory."""

import re
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / name), default_timeout=300)


def test_playground_ask_correct_and_ask_again():
    app = page("1_Playground.py").run()
    assert not app.exception
    app.text_input(key="playground.question_box").input("What is the refund window at Acme Corp?")
    app.button(key="playground.ask").click().run()
    answers = app.session_state["playground.answers"]
    assert "45" not in answers["memory"].answer
    # The learned arms explain themselves in the app's words, with a way to the Learning page.
    assert isinstance(answers["learned"], str) and "Learning page" in answers["learned"]
    assert not any("python -m lab" in i.value for i in app.info)
    # The scenario's own answer is offered as the correction.
    assert app.text_input(key="playground.correction_box").value == "The refund window at Acme Corp is 45 days."
    app.button(key="playground.remember").click().run()
    assert not app.exception and app.success
    app.button(key="playground.remember").click().run()  # pressed twice: stored once
    assert any("already remembered" in e.value for e in app.error)
    assert len(app.session_state["ui.lab"].memory) == 1
    # The answers stay on screen after another click, until the next Ask.
    assert "45" not in app.session_state["playground.answers"]["memory"].answer
    app.button(key="playground.ask").click().run()
    assert "45 days" in app.session_state["playground.answers"]["memory"].answer
    # Why? Leaving the one memory out brings the base answer back: it was decisive.
    app.button(key="playground.why_button").click().run()
    assert not app.exception and app.session_state["playground.why"].decisive == [1]
    assert any("changed the answer" in s.value for s in app.success)
    assert app.session_state["playground.answers"]["memory"].hits  # still shown beside the Why? verdict


def test_playground_reads_the_link_and_teacher_mode_hides_the_knobs():
    app = page("1_Playground.py")
    app.query_params.update({"k": "2", "threshold": "0.7", "scenario": "pirate", "teacher": "1", "arm": "base"})
    app.run()
    assert not app.exception and not app.slider  # no knobs for the class
    assert any("k = 2 · threshold = 0.7" in c.value for c in app.sidebar.caption)
    pick = app.selectbox(key="playground.pick")
    pick.select(pick.options[1]).run()
    assert app.text_input(key="playground.question_box").value == app.selectbox(key="playground.pick").options[1]
    bad = page("1_Playground.py")
    bad.query_params["k"] = "lots"
    bad.run()
    assert not bad.exception and bad.slider(key="playground.k").value == 2
    assert any("k='lots'" in w.value for w in bad.warning)


def test_wipe_test_page_reveals_against_the_prediction():
    app = page("3_Wipe_Test.py").run()
    assert not app.exception
    app.selectbox(key="wipe_test.scenario_box").select("poisoning").run()
    assert app.button(key="wipe_test.run").disabled  # predict first
    assert any("scratch memory" in c.value for c in app.caption)  # it says whose corrections it uses
    app.radio(key="wipe_test.predict_memory").set_value("loses it").run()
    app.button(key="wipe_test.run").click().run()
    assert not app.exception
    report = app.session_state["wipe_test.report"]
    assert report["before"]["memory"]["reliability"] > report["after"]["memory"]["reliability"]
    assert any("**memory**: you said it loses it; it loses it" in s.value for s in app.success)
    assert len(app.get("plotly_chart")) >= 3  # one chart per metric with questions


def test_learning_page_trains_off_thread_and_lists_the_adapter():
    import time

    app = page("4_Learning.py").run()
    assert not app.exception
    lab = app.session_state["ui.lab"]
    lab.memory.add("The refund window at Acme Corp is 45 days.", question="What is the refund window at Acme Corp?",
                   answer="The refund window at Acme Corp is 45 days.")
    app.slider(key="learning.steps-sft").set_value(10)
    app.text_input[0].input("v1")
    [b for b in app.button if b.label == "Train"][0].click().run()
    job = app.session_state["learning.job"]
    job.wait(300)
    assert job.state == "done", job.error
    time.sleep(0.1)
    app.run()
    assert not app.exception
    assert lab.adapters.active_name() == "v1"
    assert any("v1" in m.value for m in app.markdown)
    costs = {m.label: m.value for m in app.metric}
    assert costs["to remember one correction"].endswith(" ms") and costs["active adapter on disk"].endswith(" MB")
    [b for b in app.button if b.label == "Make permanent"][0].click().run()
    assert not app.exception and (lab.adapters.get("v1").path.parent / "merged.gguf").exists()
    assert any("merged.gguf" in c.value for c in app.caption)


def test_teacher_mode_hides_the_advanced_knobs():
    learning = page("4_Learning.py")
    learning.query_params["teacher"] = "1"
    learning.run()
    assert not learning.exception and [s.label for s in learning.slider] == ["training steps"]
    # Replay and the learning rate stay: the forgetting exercise asks for them.
    assert [c.label for c in learning.checkbox] == [
        "replay general knowledge",  # short: a long label was cut off in its column
        "Retire the notes the adapter verifies"]  # the Consolidate section's, which a class uses too
    assert [s.label for s in learning.select_slider] == ["learning rate"]
    memory = page("2_Memory.py")
    memory.query_params["teacher"] = "1"
    memory.run()
    assert not memory.exception and len(memory.tabs) == 2 and memory.expander


def test_wipe_test_reveal_names_the_adapter_and_an_arm_with_nothing_to_keep():
    """An adapter trained on something else improves nothing here: the reveal says so instead
    of "it loses it", and names the adapter and what it was trained on."""
    from lab.consolidation import consolidate
    from lab.learning import TrainingConfig

    app = page("3_Wipe_Test.py")
    app.query_params["scenario"] = "poisoning"
    app.run()
    lab = app.session_state["ui.lab"]
    lab.memory.add("Our office dog is called Biscuit.", question="What is the office dog called?",
                   answer="Our office dog is called Biscuit.")
    consolidate(lab, name="dog", config=TrainingConfig(steps=10, replay=False))
    app.run()
    assert any("**dog** was trained on your memory, not on these corrections" in w.value for w in app.warning)
    app.radio(key="wipe_test.predict_memory").set_value("loses it").run()
    app.radio(key="wipe_test.predict_learned").set_value("loses it").run()
    app.button(key="wipe_test.run").click().run()
    assert not app.exception
    report = app.session_state["wipe_test.report"]
    assert set(report["before"]) == {"base", "memory", "learned", "both"}
    assert all(v is None for v in report["survived"]["learned"].values())  # no improvement to keep
    [said] = [i.value for i in app.info if i.value.startswith("**learned**")]
    assert "adapter **dog**, trained on your memory" in said and "nothing to keep or lose" in said
    assert not any(s.value.startswith("**learned**") for s in [*app.success, *app.warning])
    assert [m.text for m in lab.memory.list()] == ["Our office dog is called Biscuit."]  # given back


def test_learning_page_asks_before_replacing_an_adapter_and_has_help_for_its_knobs():
    from lab.consolidation import consolidate
    from lab.learning import TrainingConfig

    app = page("4_Learning.py").run()
    lab = app.session_state["ui.lab"]
    lab.memory.add("The refund window at Acme Corp is 45 days.", question="What is the refund window at Acme Corp?",
                   answer="The refund window at Acme Corp is 45 days.")
    consolidate(lab, name="from-memory", config=TrainingConfig(steps=5, replay=False))
    app.run()
    train = [b for b in app.button if b.label == "Train"][0]
    assert train.disabled  # the name is taken: nothing is overwritten without asking
    app.checkbox(key="learning.replace-from-memory").check().run()
    assert not [b for b in app.button if b.label == "Train"][0].disabled
    assert all(s.help for s in app.slider) and all(s.help for s in app.select_slider)
    remember_cost = {m.label: m.value for m in app.metric}["to remember one correction"]
    assert remember_cost != "0 ms" and remember_cost.endswith(" ms")


def test_a_queued_training_shows_its_place_and_is_cancelled_from_the_page():
    """Another training holds the server's one training slot: the Wipe Test page's training
    waits in line, says so with its expected start, and Cancel takes it out with nothing changed."""
    import threading
    import time

    from lab.training_queue import QUEUE

    holder, entered, release = QUEUE.join("someone-else", 40), threading.Event(), threading.Event()

    def hold():
        with QUEUE.turn(holder):
            entered.set()
            release.wait(120)

    blocker = threading.Thread(target=hold)
    blocker.start()
    try:
        entered.wait(10)
        app = page("3_Wipe_Test.py").run()
        app.button(key="wipe_test.train").click().run()
        job = app.session_state["wipe_test.job"]
        assert job.state == "queued" and job.position == 1 and job.expected_start is not None
        # First it prepares its replay answers, and says so (not "Expected to start in about 0 s").
        preparing = [i.value for i in app.info if i.value.startswith("Preparing the training data")]
        assert preparing and "replay questions" in preparing[0] and "left" in preparing[0], preparing
        while job.ticket.preparing and not job.finished:
            time.sleep(0.5)
        app.run()
        queued = [i.value for i in app.info if i.value.startswith("Queued")]
        assert queued and "next in line" in queued[0] and "Expected to start in about" in queued[0], queued
        app.button(key="wipe_test.cancel").click().run()
        job.wait(30)
        assert job.state == "cancelled" and app.session_state["ui.lab"].adapters.list() == []
    finally:
        release.set()
        blocker.join(10)


MARKDOWN_NOTE = "The refund window at **Acme Corp** is 45 days, see [the policy](javascript:alert(1))."


def test_playground_shows_notes_questions_and_replies_literally_in_the_prompts_order():
    """User text is data: a note written in Markdown is listed as typed, not as bold text and a
    link. The notes are listed as the prompt holds them (the best match last, beside the
    question), and the exact prompts sit at full width, not cut off in four narrow columns."""
    import ui

    app = page("1_Playground.py")
    app.query_params.update({"k": "3", "threshold": "0.3"})
    app.run()
    lab = app.session_state["ui.lab"]
    lab.memory.add("Acme Corp refunds take 45 days to reach your card.")
    lab.memory.add(MARKDOWN_NOTE)
    app.text_input(key="playground.question_box").input("What is the refund window at **Acme Corp**?")
    app.button(key="playground.ask").click().run()
    assert not app.exception
    answer = app.session_state["playground.answers"]["memory"]
    ordered = answer.notes_in_prompt
    assert len(ordered) == 2 and ordered[-1].score >= ordered[0].score
    [listing] = [m.value for m in app.markdown if m.value.startswith("**Notes put in the prompt**")]
    lines = listing.split("  \n")[1:]
    assert [line.split("]", 1)[0] for line in lines] == [f"[{h.id}" for h in ordered]  # the prompt's order
    assert "closest to the question" in lines[-1] and "closest" not in lines[0]
    markdown_line = next(line for line in lines if "Acme Corp\\*\\*" in line)
    assert ui.literal_markdown(MARKDOWN_NOTE) in markdown_line and "**Acme Corp**" not in markdown_line
    assert "](javascript" not in listing
    asked = [c.value for c in app.caption if c.value.startswith("Asked:")]
    assert asked and "\\*\\*Acme Corp\\*\\*" in asked[0]
    replies = [m.value for m in app.markdown]
    assert all(ui.literal_markdown(app.session_state["playground.answers"][arm].answer) in replies
               for arm in ("base", "memory"))
    [prompts] = [e for e in app.expander if e.label.startswith("Exact prompts")]
    assert [c.value for c in prompts.code] == [app.session_state["playground.answers"][arm].prompt.rstrip()
                                               for arm in ("base", "memory")]  # st.code drops the last newline
    assert not any(e.label == "exact prompt (chat template)" for e in app.expander)  # none left in the columns


def test_playground_first_ask_says_the_base_arm_sent_the_memory_arms_prompt_and_counts_a_new_memory_at_once():
    app = page("1_Playground.py").run()
    app.text_input(key="playground.question_box").input("What is the refund window at Acme Corp?")
    app.button(key="playground.ask").click().run()
    answers = app.session_state["playground.answers"]
    assert answers["memory"].cached and answers["memory"].prompt == answers["base"].prompt  # no notes yet
    said = [c.value for c in app.caption if "reply cache" in c.value]
    assert len(said) == 1 and "the base arm sent this exact prompt" in said[0] and " s ago" in said[0], said
    assert any(" 0 memories" in c.value for c in app.sidebar.caption)
    app.button(key="playground.remember").click().run()
    assert any("Remembered [1]" in s.value for s in app.success)
    # The sidebar on the same run, not one behind.
    assert any(re.search(r" 1 memor(y|ies)", c.value) for c in app.sidebar.caption), \
        [c.value for c in app.sidebar.caption]
    # Asked again: the base arm's prompt is the one it sent itself, not the memory arm's copy of it.
    app.button(key="playground.ask").click().run()
    said = [c.value for c in app.caption if "reply cache" in c.value]
    assert len(said) == 1 and "the base arm sent this exact prompt" in said[0], said


def test_playground_refuses_a_too_long_question_once_without_echoing_it():
    app = page("1_Playground.py").run()
    question = "Why " + "is the sky blue and " * 250 + "?"
    app.text_input(key="playground.question_box").input(question)
    app.button(key="playground.ask").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [f"the question is too long ({len(question)} characters, max 2000)"]
    assert "playground.answers" not in app.session_state and not app.info
    shown = [m.value for m in [*app.markdown, *app.caption, *app.error]]
    assert not any(question in text or len(text) > 500 for text in shown)


def test_playground_learned_arms_answer_once_an_adapter_is_active_elsewhere(tmp_path):
    """Trained (or activated) on another page after an Ask: back here the learned arms answer
    with it, instead of still saying that no adapter is active."""
    from lora_factory import random_adapter

    app = page("1_Playground.py").run()
    app.text_input(key="playground.question_box").input("What is the capital of Spain?")
    app.button(key="playground.ask").click().run()
    assert all(isinstance(app.session_state["playground.answers"][arm], str) for arm in ("learned", "both"))
    lab = app.session_state["ui.lab"]
    lab.adapters.register("elsewhere", random_adapter(tmp_path / "r.gguf", seed=5), {})
    lab.adapters.activate("elsewhere")
    app.run()  # coming back to the page
    assert not app.exception
    answers = app.session_state["playground.answers"]
    assert all(answers[arm].adapter for arm in ("learned", "both")), answers
    assert not any("No adapter is active yet" in i.value for i in app.info)
    assert any(c.value == "adapter: elsewhere" for c in app.caption)
    lab.adapters.activate(lab.adapters.register("newer", random_adapter(tmp_path / "n.gguf", seed=6), {}).name)
    app.run()  # an answer made with another adapter says so, and is not silently swapped
    assert any("adapter: elsewhere (the active adapter is now newer" in c.value for c in app.caption)
