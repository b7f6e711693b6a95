"""The Memory page, driven by Streamlit's AppTest on the real model, embedder and memory store.

Widgets are addressed by their keys, so the layout can change without breaking these tests."""

import json
import sys
from pathlib import Path

import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`

REFUND = "The refund window at Acme Corp is 45 days."
DOG = "Our office dog is called Biscuit."
PENGUINS = "Penguins live almost entirely in the southern hemisphere."


def open_page() -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / "2_Memory.py"), default_timeout=300).run()
    assert not app.exception
    return app


def with_memories(*texts) -> tuple[AppTest, object]:
    """The page over a workspace already holding `texts`; returns (app, the lab session)."""
    app = open_page()
    lab = app.session_state["ui.lab"]
    lab.memory.add_many([{"text": text} for text in texts])
    return app.run(), lab


def editor(app, label: str):
    """An editor field by its label: their keys carry the memory's id and version."""
    widgets = app.text_area if label == "Text" else app.text_input if label.startswith(("Question", "Answer")) \
        else app.selectbox
    return next(w for w in widgets if w.label == label)


def texts(lab) -> list[str]:
    return [m.text for m in lab.memory.list()]


def table(app, column: str):
    """The first dataframe on the page that has `column`."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def charts(app) -> dict[str, dict]:
    """Every Plotly chart on the page, by its title."""
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def test_add_search_and_guarded_wipe():
    app = open_page()
    app.text_area(key="memory.add_text").input(DOG)
    app.button(key="memory.add").click().run()
    lab = app.session_state["ui.lab"]
    assert texts(lab) == [DOG] and not app.exception
    assert app.text_area(key="memory.add_text").value == ""  # cleared for the next one
    app.button(key="memory.add").click().run()  # empty text: one line, nothing stored
    assert len(app.error) == 1 and "empty" in app.error[0].value and texts(lab) == [DOG]

    lab.memory.add(REFUND)
    app.text_input(key="memory.table_search").input("biscuit").run()
    assert table(app, "source")["text"].tolist() == [DOG]

    assert app.button(key="memory.wipe").disabled  # nothing is wiped without the confirmation
    app.checkbox(key="memory.wipe_confirm").check().run()
    app.button(key="memory.wipe").click().run()
    assert len(lab.memory) == 0 and not app.exception
    assert app.checkbox(key="memory.wipe_confirm").value is False and app.button(key="memory.wipe").disabled  # armed again
    app.button(key="memory.undo").click().run()
    assert sorted(texts(lab)) == sorted([DOG, REFUND]) and "Undid wipe of 2 memories." in app.success[0].value


def test_edit_a_memory_then_undo_it():
    app, lab = with_memories(REFUND, DOG)
    dog = lab.memory.list()[1]
    editor(app, "Which memory").select(dog.id).run()
    assert editor(app, "Text").value == DOG
    editor(app, "Text").input("Our office dog is called Pretzel.")
    editor(app, "Question (empty: none)").input("What is the office dog called?")
    app.button(key="memory.edit_save").click().run()
    assert not app.exception and not app.error
    edited = lab.memory.get(dog.id)
    assert (edited.text, edited.question) == ("Our office dog is called Pretzel.", "What is the office dog called?")
    assert editor(app, "Text").value == edited.text and "embedded again" in app.success[0].value
    assert lab.memory.search("What is the dog's name?", k=1)[0].text == edited.text  # found by its new meaning

    editor(app, "Text").input("   ")
    app.button(key="memory.edit_save").click().run()
    assert len(app.error) == 1 and "text must be a non-empty string" in app.error[0].value
    assert lab.memory.get(dog.id) == edited  # a bad edit changes nothing

    app.button(key="memory.undo").click().run()
    assert lab.memory.get(dog.id).text == DOG and not app.exception
    # After an undo the editor's label and its text are the same memory's.
    shown = editor(app, "Which memory").value
    assert editor(app, "Text").value == lab.memory.get(shown).text
    app.button(key="memory.edit_delete").click().run()
    assert texts(lab) == [REFUND]


def test_explorer_marks_what_passes_the_threshold_and_shows_the_prompt_and_the_map():
    app, lab = with_memories(REFUND, DOG, PENGUINS)
    assert "memory_map" in str([chart.proto.id for chart in app.get("plotly_chart")])  # the map needs no query
    app.text_input(key="memory.explore_query").input("How long is the refund window at Acme Corp?")
    app.slider(key="memory.explore_k").set_value(3)
    app.slider(key="memory.explore_threshold").set_value(0.5).run()
    assert not app.exception and not app.error and not app.warning

    candidates = table(app, "prompt")
    assert candidates["text"].tolist()[0] == REFUND and len(candidates) == 3
    assert candidates["prompt"].tolist() == ["✔ sent", "✖ below the threshold 0.50", "✖ below the threshold 0.50"]
    assert candidates["score"].tolist() == sorted(candidates["score"], reverse=True)
    prompt = app.code[0].value
    assert f"- {REFUND}" in prompt and DOG not in prompt
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Memories injected"] == "1" and int(metrics["Extra tokens for memories"]) > 5

    chart = next(spec for title, spec in charts(app).items() if "PCA" in title)
    traces = {trace["name"]: trace for trace in chart["data"]}
    assert set(traces) == {"left out", "sent", "your question"}  # k=3 of 3: every memory is a candidate
    assert REFUND in traces["sent"]["hovertext"][0] and traces["your question"]["marker"]["symbol"] == "star"
    assert "Cosine score of each candidate" in charts(app)

    app.slider(key="memory.explore_threshold").set_value(1.0).run()  # nothing is that close: the base prompt goes out
    assert set(table(app, "prompt")["prompt"]) == {"✖ below the threshold 1.00"}
    assert "Notes:" not in app.code[0].value
    assert {m.label: m.value for m in app.metric}["Extra tokens for memories"] == "0"


@pytest.mark.parametrize("count", [0, 1, 2])
def test_map_and_explorer_with_few_memories(count):
    app, _ = with_memories(*[REFUND, DOG][:count])
    app.text_input(key="memory.explore_query").input("Who is the office dog?").run()
    assert not app.exception and not app.error
    assert any("PCA" in title for title in charts(app)) == (count > 0)
    assert app.code  # the prompt is shown even when nothing is found


def test_snapshot_save_restore_and_delete():
    app, lab = with_memories(REFUND, DOG)
    app.text_input(key="memory.snapshot_name").input("two facts")
    app.button(key="memory.snapshot_save").click().run()
    assert len(app.error) == 1 and "invalid snapshot name" in app.error[0].value  # spaces are not allowed
    app.text_input(key="memory.snapshot_name").input("two-facts")
    app.button(key="memory.snapshot_save").click().run()
    assert not app.error and [s["name"] for s in lab.memory.snapshots()] == ["two-facts"]
    assert table(app, "saved")[["name", "memories"]].values.tolist() == [["two-facts", 2]]

    lab.memory.wipe()
    lab.memory.add(PENGUINS)
    app.run()
    app.selectbox(key="memory.snapshot_pick").select("two-facts")
    app.button(key="memory.snapshot_restore").click().run()
    assert sorted(texts(lab)) == sorted([REFUND, DOG]) and not app.exception
    assert "Restored 'two-facts': 2 memories" in app.success[0].value

    app.button(key="memory.snapshot_delete").click().run()
    assert lab.memory.snapshots() == [] and len(lab.memory) == 2 and not app.exception


@pytest.fixture
def downloads(monkeypatch):
    """Keeps the media storage AppTest makes for each run, so a test can read what a download button offers."""
    made = []

    class KeptStorage(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", KeptStorage)

    def content(url: str) -> bytes:
        return made[-1].get_file(url.rsplit("/", 1)[-1]).content

    return content


def test_export_downloads_the_memories_and_import_refuses_a_bad_file(downloads):
    app, lab = with_memories(REFUND, DOG)
    exported = downloads(app.download_button(key="memory.export").proto.url)
    document = json.loads(exported)
    assert document["format"] == "memory-vs-learning-lab/memories"
    assert [m["text"] for m in document["memories"]] == [REFUND, DOG]

    app.file_uploader(key="memory.import_file").set_value(("broken.json", b'{"format": "nope"', "application/json")).run()
    assert not app.exception and len(app.error) == 1
    assert "cannot import broken.json: it is not valid JSON" in app.error[0].value and "/tmp" not in app.error[0].value
    assert texts(lab) == [REFUND, DOG]  # nothing lost, nothing added

    # The same export again: every memory is a duplicate, said before anything is imported, and skipped.
    app.file_uploader(key="memory.import_file").set_value(("mine.json", exported, "application/json")).run()
    assert "2 of the file's memories are already in this memory" in app.warning[0].value
    assert app.checkbox(key="memory.import_skip").value is True
    app.button(key="memory.import").click().run()
    assert not app.exception and not app.error
    assert texts(lab) == [REFUND, DOG] and "Imported 0 memories from mine.json (2 duplicates skipped)." in app.success[0].value
    app.checkbox(key="memory.import_skip").uncheck().run()
    app.button(key="memory.import").click().run()
    assert texts(lab) == [REFUND, DOG, REFUND, DOG] and "Imported 2 memories from mine.json." in app.success[0].value


def test_the_map_of_a_single_memory_claims_no_spread():
    app, lab = with_memories(DOG)
    chart = charts(app)
    if not chart:  # the map is drawn once a question is typed, or with the memories alone
        app.text_input(key="memory.explore_query").input("Who is the office dog?").run()
        chart = charts(app)
    spec = next(spec for title, spec in chart.items() if title.startswith("Memory embeddings"))
    assert "%" not in spec["layout"]["xaxis"]["title"]["text"] and "%" not in spec["layout"]["yaxis"]["title"]["text"]


# Against QUESTION these score about 0.86 and 0.53: both pass the 0.5 threshold, but the recall
# rule's margin drops the second (more than 0.30 below the best). The explorer once sent both.
POPULATION = "Population of Vessholm: 4,310."
FIRST_MAYOR = "The first mayor of Vessholm was Anders Tollefsen."
QUESTION = "What is the population of Vessholm?"


def test_the_explorer_marks_as_sent_only_what_the_agent_sends():
    app, lab = with_memories(POPULATION, FIRST_MAYOR)
    app.text_input(key="memory.explore_query").input(QUESTION)
    app.slider(key="memory.explore_k").set_value(2)
    app.slider(key="memory.explore_threshold").set_value(0.5).run()
    assert not app.exception and not app.error
    candidates = table(app, "prompt")
    assert candidates["text"].tolist() == [POPULATION, FIRST_MAYOR] and min(candidates["score"]) >= 0.5
    assert candidates["prompt"].tolist()[0] == "✔ sent"
    assert candidates["prompt"].tolist()[1].startswith("✖ more than 0.30 below the best note")
    prompt = app.code[0].value
    sent = lab.engine.format_prompt(lab.agent.prepare(QUESTION, "memory", k=2, min_score=0.5).messages)
    assert prompt.strip() == sent.strip()  # the agent's own prompt (st.code drops the final line break)
    assert POPULATION in prompt and FIRST_MAYOR not in prompt
    assert {m.label: m.value for m in app.metric}["Memories injected"] == "1"
    chart = next(spec for title, spec in charts(app).items() if "PCA" in title)
    assert {trace["name"] for trace in chart["data"]} == {"left out", "sent", "your question"}


HEAD = "The new head of research is Tomasz Wierzbicki."


def test_editing_a_notes_text_brings_its_answer_along_and_a_disagreement_is_said():
    app = open_page()
    lab = app.session_state["ui.lab"]
    memory = lab.memory.add(HEAD, question="Who is the new head of research?", answer=HEAD)
    app.run()
    editor(app, "Text").input("The new head of research is Amara.").run()
    assert any("follow the new text" in i.value for i in app.info)  # said before saving
    app.button(key="memory.edit_save").click().run()
    assert not app.exception and not app.error
    assert lab.memory.get(memory.id).answer == "The new head of research is Amara."  # what training learns
    assert "Its answer follows" in app.success[0].value
    assert editor(app, "Answer (empty: none)").value == "The new head of research is Amara."
    # An answer typed by hand that the text does not hold is kept as typed, and the page says so.
    editor(app, "Answer (empty: none)").input("Tomasz Wierzbicki").run()
    assert any("is not in the text" in w.value for w in app.warning)
    app.button(key="memory.edit_save").click().run()
    assert lab.memory.get(memory.id).answer == "Tomasz Wierzbicki"
    assert any("is not in the text" in w.value for w in app.warning)  # and again after saving


def test_retired_memories_are_listed_as_archived_and_can_be_restored():
    app, lab = with_memories(REFUND, DOG)
    refund = lab.memory.list()[0]
    lab.memory.retire([refund.id], "acme")
    app.run()
    assert texts(lab) == [DOG]
    assert table(app, "adapter")[["id", "text", "adapter"]].values.tolist() == [[refund.id, REFUND, "acme"]]
    assert any("1 memory retired into adapters" in e.label for e in app.expander)
    app.selectbox(key="memory.archive_pick").select(refund.id)
    app.button(key="memory.archive_restore").click().run()
    assert not app.exception and texts(lab) == [REFUND, DOG] and lab.memory.retired() == []
    assert f"Restored [{refund.id}] from the archive" in app.success[0].value
    assert not any("retired into adapters" in e.label for e in app.expander)
    app.button(key="memory.undo").click().run()
    assert texts(lab) == [DOG] and [r["id"] for r in lab.memory.retired()] == [refund.id]


def test_the_chosen_tab_is_kept_through_an_import(downloads):
    app, lab = with_memories(REFUND)
    exported = downloads(app.download_button(key="memory.export").proto.url)
    app.session_state["memory.tab"] = "Snapshots and files"  # what a click on the tab stores
    app.file_uploader(key="memory.import_file").set_value(("mine.json", exported, "application/json")).run()
    app.checkbox(key="memory.import_skip").uncheck().run()
    assert app.session_state["memory.tab"] == "Snapshots and files"
    app.button(key="memory.import").click().run()
    assert not app.exception and texts(lab) == [REFUND, REFUND]
    assert "Imported 1 memory from mine.json." in app.success[0].value
    assert app.session_state["memory.tab"] == "Snapshots and files"  # the browser check: test_journey_memory.py


def test_counts_are_said_in_words():
    app, lab = with_memories(DOG)
    assert any(c.value.startswith("1 memory in workspace") for c in app.caption)
    app.checkbox(key="memory.wipe_confirm").check().run()
    app.button(key="memory.wipe").click().run()
    assert "Wiped 1 memory. Undo brings them back." in app.success[0].value
    app.button(key="memory.undo").click().run()
    assert "Undid wipe of 1 memory." in app.success[0].value


def test_a_locked_lab_says_why_a_wrong_key_or_an_edited_address_changed_nothing():
    from lab.class_lock import make_class

    teacher = AppTest.from_file(str(ROOT / "pages" / "2_Memory.py"), default_timeout=300)
    teacher.query_params.update({"teacher": "1", "k": "2"})
    teacher.run()
    lock, _ = make_class(teacher.session_state["ui.lab"].workspace, teacher.session_state["ui.link"])
    student = AppTest.from_file(str(ROOT / "pages" / "2_Memory.py"), default_timeout=300)
    student.query_params["class"] = lock.token
    student.run()
    assert not student.exception and not student.warning
    student.query_params["k"] = "7"
    student.run()
    assert student.session_state["ui.link"] == lock.settings
    assert any("held by its class link, so k=7 from the address changed nothing" in w.value for w in student.warning)
    student.text_input(key="ui.unlock_key").input("a guess").run()
    assert any("not this class's unlock key" in w.value for w in student.warning)
