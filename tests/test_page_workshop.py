"""The Workshop page, driven by Streamlit's AppTest on the real model, embedder and memory."""

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`


def workshop(**params) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / "6_Workshop.py"), default_timeout=300)
    for name, value in params.items():
        app.query_params[name] = value
    return app.run()


def share_link(app) -> str:
    return "/Workshop?" + [c.value for c in app.code if "/Workshop?" in c.value][0].split("/Workshop?", 1)[1]


def test_loads_with_every_exercise_and_a_default_link():
    app = workshop()
    assert not app.exception and not app.warning
    labels = [e.label for e in app.expander]
    assert len(labels) >= 5 and all(e.proto.icon == ":material/radio_button_unchecked:" for e in app.expander)
    assert any("Poison the memory" in label for label in labels)
    assert share_link(app) == "/Workshop?scenario=acme&arm=memory&k=2&threshold=0.5"
    assert app.number_input(key="workshop.k").value == 2  # advanced controls are there outside teacher mode
    assert app.button(key="workshop.reset") and app.toggle(key="workshop.raw-memory-answer")


def test_query_parameters_are_the_defaults():
    app = workshop(scenario="pirate", arm="base", k="2", threshold="0.3")
    assert not app.exception and not app.warning
    assert app.selectbox(key="workshop.scenario").value == "pirate"
    assert app.selectbox(key="workshop.arm").value == "base"
    assert app.number_input(key="workshop.k").value == 2
    assert app.slider(key="workshop.threshold").value == 0.3
    assert share_link(app) == "/Workshop?scenario=pirate&arm=base&k=2&threshold=0.3"
    app.number_input(key="workshop.k").set_value(5).run()  # changing a setting changes the link
    assert "k=5" in share_link(app)


def test_bad_query_parameters_give_one_warning_and_the_defaults():
    app = workshop(k="500", arm="brain", threshold="0.2")
    assert not app.exception
    assert len(app.warning) == 1 and "k='500'" in app.warning[0].value and "arm='brain'" in app.warning[0].value
    assert app.number_input(key="workshop.k").value == 2 and app.slider(key="workshop.threshold").value == 0.2


def test_teacher_mode_hides_the_advanced_controls():
    app = workshop(teacher="1", k="2")
    assert not app.exception
    keys = {w.key for kind in ("number_input", "slider", "selectbox", "button", "toggle") for w in getattr(app, kind)}
    assert {"workshop.k", "workshop.threshold", "workshop.scenario", "workshop.reset", "workshop.raw-memory-answer"}.isdisjoint(keys)
    assert app.button(key="workshop.check-memory-answer")  # the exercises themselves stay
    assert share_link(app) == "/Workshop?scenario=acme&arm=memory&k=2&threshold=0.5&teacher=1"
    app.toggle(key="ui.teacher_toggle").set_value(False).run()  # switched off: the controls come back
    assert app.number_input(key="workshop.k").value == 2 and "teacher" not in app.query_params


def test_the_teacher_toggle_writes_the_link():
    app = workshop()
    app.toggle(key="ui.teacher_toggle").set_value(True).run()
    assert not app.exception and app.query_params["teacher"] == "1"
    assert share_link(app).endswith("&teacher=1")
    assert not [w for w in app.number_input if w.key == "workshop.k"]


def lab_status(app) -> str:
    """The status line under Try it here: workspace, memory count, adapter."""
    return [c.value for c in app.caption if c.value.startswith("workspace `")][0]


def test_notes_and_replies_are_shown_literally_and_a_pinned_note_as_pinned():
    import ui

    app = workshop()
    lab = app.session_state["ui.lab"]
    text = "**markdown** and a [link](javascript:alert(1))"
    rule = lab.remember(text, pinned=True)
    app.text_input(key="workshop.note").input("The refund window at Acme Corp is 45 days.")
    app.button(key="workshop.remember").click().run()
    app.button(key="workshop.ask").click().run()
    assert not app.exception
    [sent] = [c.value for c in app.caption if "retrieved:" in c.value]
    # Pinned, not "retrieved … (0.16)": it goes into every prompt whatever it scores; its text escaped.
    assert sent.startswith(f"pinned (in every prompt): [{rule.id}] {ui.literal_markdown(text)} · retrieved: [")
    assert "\\*\\*markdown\\*\\*" in sent and "\\[link\\]\\(" in sent
    answer = app.session_state["workshop.answer"]
    assert f"**memory:** {ui.literal_markdown(answer.answer)}" in [m.value for m in app.markdown]
    app.button(key="workshop.check-memory-answer").click().run()
    [verdict] = [s.value for s in app.success if s.icon == ":material/check_circle:"]
    assert "\\*\\*markdown\\*\\*" in verdict and ui.literal_markdown("(pinned)") in verdict
    assert "**markdown**" not in verdict


def test_the_markdown_fallback_escapes_every_special_character():
    import ui

    workshop()  # the page defines it until ui.py has its own
    for mark in "\\`*_{}[]()#+-.!|<>~$":
        assert ui.literal_markdown(mark) == "\\" + mark, mark


def test_exercise_one_on_an_empty_memory_shows_a_cross_and_what_was_seen():
    app = workshop()
    app.button(key="workshop.check-memory-answer").click().run()
    assert not app.exception
    [result] = [w for w in app.warning if w.icon == ":material/cancel:"]
    assert "memory arm said" in result.value and "No note was retrieved" in result.value
    assert "\n" not in result.value
    lab = app.session_state["ui.lab"]
    assert len(lab.memory) == 0  # the check changed nothing
    from lab.workshop import load_progress

    assert load_progress(lab.workspace)["memory-answer"]["done"] is False


def test_exercise_one_passes_after_remembering_on_the_page():
    app = workshop()
    app.text_input(key="workshop.note").input("The refund window at Acme Corp is 45 days.")
    app.button(key="workshop.remember").click().run()
    app.button(key="workshop.check-memory-answer").click().run()
    assert not app.exception
    [result] = [s for s in app.success if s.icon == ":material/check_circle:"]
    assert "45 days" in result.value
    assert app.expander[0].proto.icon == ":material/check_circle:"


def test_poison_and_repair_through_the_page_helpers():
    app = workshop()
    app.button(key="workshop.poison").click().run()
    app.text_input(key="workshop.question").input("What is the capital of France?")
    app.button(key="workshop.ask").click().run()  # Try it here: the memory arm repeats the poison
    assert "Lyon" in [m.value for m in app.markdown if m.value.startswith("**memory:**")][0]
    app.button(key="workshop.check-poison-repair").click().run()
    # Stage 1 is progress, not a failure: shown as such, not with a cross.
    assert any("Stage 1 of 2 done" in i.value for i in app.info) and not app.warning
    app.button(key="workshop.undo").click().run()
    assert len(app.session_state["ui.lab"].memory) == 0
    app.button(key="workshop.check-poison-repair").click().run()
    assert not app.exception
    assert any("Repaired" in s.value for s in app.success)
    assert app.get("progress")[0].proto.text == "1 of 8 exercises done"
    assert "· 0 memories ·" in lab_status(app)
    # The poison, stored again: the header counts it at once, and "Repaired" no longer holds.
    app.button(key="workshop.poison").click().run()
    assert not app.exception and len(app.session_state["ui.lab"].memory) == 1
    assert "· 1 memory ·" in lab_status(app)
    assert not any("Repaired" in s.value for s in app.success)
    assert any(i.value.startswith("Your memory changed since the last check") and "stays done" in i.value
               for i in app.info)


def test_the_wipe_test_runs_only_after_a_prediction_is_saved():
    from lab.learning import TrainingConfig
    from lab.workshop import training_estimate_s

    app = workshop()
    assert app.button(key="workshop.run_wipe").disabled
    # How long its training takes, from the measured rate rather than "about a minute".
    expected = f"Training it takes about {training_estimate_s(TrainingConfig().steps):.0f} s on this server"
    assert any(expected in i.value for i in app.info)
    app.radio(key="workshop.predict-memory").set_value("loses")
    app.button(key="workshop.save_prediction").click().run()
    assert not app.exception and not app.button(key="workshop.run_wipe").disabled
    from lab.workshop import load_progress

    progress = load_progress(app.session_state["ui.lab"].workspace)
    assert progress["wipe-prediction"]["state"]["prediction"] == {"memory": "loses"}
    app.button(key="workshop.check-wipe-prediction").click().run()
    assert any("now run the wipe test" in w.value for w in app.warning)


def test_remember_with_an_empty_note_says_what_to_do_and_stores_nothing():
    app = workshop()
    app.button(key="workshop.remember").click().run()
    assert not app.exception and [e.value for e in app.error] == ["Type a note first, then press Remember."]
    assert len(app.session_state["ui.lab"].memory) == 0
    assert not app.text_input(key="workshop.note").value  # no grey example that looks filled in
    assert "sidebar" in " ".join(m.value for m in app.markdown)  # "the settings in the sidebar", not "above"


def test_a_fact_changed_helpers_remember_and_edit_the_note_in_place():
    from lab import workshop as lesson

    app = workshop()
    app.button(key="workshop.fact_edit").click().run()
    assert any("remember it first" in i.value for i in app.info)
    app.button(key="workshop.fact_old").click().run()
    lab = app.session_state["ui.lab"]
    [note] = lab.memory.list()
    assert note.text == lesson.OLD_FACT and note.question == lesson.CHANGED_QUESTION
    app.button(key="workshop.fact_edit").click().run()
    [edited] = lab.memory.list()
    assert (edited.id, edited.text, edited.answer) == (note.id, lesson.NEW_FACT, lesson.NEW_FACT)  # in place
    app.button(key="workshop.check-fact-changed").click().run()
    assert not app.exception and any("No adapter is active" in w.value for w in app.warning)
    assert not app.button(key="workshop.fact_train").disabled
