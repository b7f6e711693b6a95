"""ui.py across pages, with Streamlit's AppTest running app.py's navigation on the real model.

Every page shares one st.session_state. A Wipe Test report once sat under the very key the
Memory page's wipe button used, so opening the Memory page after a wipe test wiped the
memory. These tests walk every page after each action and check the memory is untouched,
and that every key in the session belongs to one page's (or ui's) namespace.

AppTest does not deliver button clicks to a page reached with switch_page, so the actions
here store what the pages store, computed by the same lab calls; tests/test_journeys.py
clicks the real buttons in a browser.
"""

import re
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lab.evaluate import wipe_test
from lab.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = ["home.py", "pages/1_Playground.py", "pages/2_Memory.py", "pages/3_Wipe_Test.py", "pages/4_Learning.py",
         "pages/5_Experiments.py", "pages/6_Workshop.py", "pages/7_Update_Test.py"]
NAMESPACES = ("ui.", "home.", "playground.", "memory.", "wipe_test.", "learning.", "experiments.", "workshop.",
              "update_test.")
NOTE = "Our office dog is called Biscuit."


def app(**params) -> AppTest:
    test = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    test.query_params.update(params)
    return test.run()


def walk_every_page(test: AppTest, expected: list[str]) -> None:
    for page in PAGES:
        test.switch_page(page).run()
        assert not test.exception, (page, test.exception)
        texts = [m.text for m in test.session_state["ui.lab"].memory.list()]
        assert texts == expected, f"the memory changed on opening {page}"


def test_no_page_changes_the_memory_by_being_opened_after_any_action():
    test = app()
    lab = test.session_state["ui.lab"]
    lab.memory.add(NOTE)
    walk_every_page(test, [NOTE])

    # The action that once wiped the memory: a wipe test, its report kept for the reveal.
    test.session_state["wipe_test.report"] = wipe_test(lab, load_scenario("poisoning"), ["base", "memory"])
    test.session_state["wipe_test.prediction"] = {"memory": "loses it"}
    test.query_params["scenario"] = "poisoning"  # as the Wipe Test's scenario box writes the address
    walk_every_page(test, [NOTE])
    test.switch_page("pages/3_Wipe_Test.py").run()  # the reveal is still there after the walk
    assert any("you said it loses it" in s.value for s in test.success)

    test.session_state["playground.answers"] = {"base": lab.agent.answer("Who is the office dog?", "base")}
    test.session_state["playground.asked"] = "Who is the office dog?"
    walk_every_page(test, [NOTE])


def test_every_session_key_belongs_to_a_page_namespace():
    test = app()
    for page in PAGES:
        test.switch_page(page).run()
    keys = [k for k in test.session_state.keys() if not k.startswith("$$")]  # Streamlit's own
    assert keys and all(k.startswith(NAMESPACES) for k in keys), sorted(k for k in keys if not k.startswith(NAMESPACES))


def test_the_address_carries_the_workspace_and_the_visits_settings():
    test = app(scenario="pirate", k="5")
    workspace = test.query_params["workspace"]
    assert workspace.startswith("browser-")
    for page in PAGES:
        test.switch_page(page).run()
        assert test.query_params["workspace"] == workspace
        assert (test.query_params["scenario"], test.query_params["k"]) == ("pirate", "5"), page
    # The same address again (a reload, or a new tab) opens the same workspace.
    test.session_state["ui.lab"].memory.add(NOTE)
    again = app(**test.query_params)
    assert again.session_state["ui.lab"].workspace.name == workspace
    assert [m.text for m in again.session_state["ui.lab"].memory.list()] == [NOTE]


def test_a_link_followed_during_the_visit_changes_only_what_it_names_and_only_if_valid():
    test = app(scenario="pirate", k="5")
    test.switch_page("pages/1_Playground.py").run()
    test.query_params["threshold"] = "0.7"  # e.g. a teacher's link opened in the same tab
    test.run()
    settings = test.session_state["ui.link"]
    assert (settings.scenario, settings.k, settings.threshold) == ("pirate", 5, 0.7)
    test.query_params["k"] = "lots"
    test.run()
    assert test.session_state["ui.link"].k == 5 and any("k='lots'" in w.value for w in test.warning)
    assert test.query_params["k"] == "5"  # the address is written back with the visit's settings


def test_a_workspace_name_alone_opens_a_copy_and_only_the_key_opens_the_lab():
    owner = app()
    name, key = owner.query_params["workspace"], owner.query_params["key"]
    owner.session_state["ui.lab"].memory.add(NOTE)
    visitor = app(workspace=name)
    assert visitor.query_params["workspace"] != name and visitor.query_params["key"] != key
    assert any(f"copied from `{name}`" in c.value for c in visitor.sidebar.caption)
    assert not any(key in c.value for c in visitor.code)  # the share panel shows the visitor's own key only
    visitor.session_state["ui.lab"].memory.wipe()
    assert [m.text for m in owner.session_state["ui.lab"].memory.list()] == [NOTE]
    assert app(workspace=name, key=key).session_state["ui.lab"].workspace.name == name


def test_a_class_lock_holds_on_every_page():
    from lab.class_lock import make_class

    teacher = app(teacher="1", k="2", scenario="pirate")
    lock, _ = make_class(teacher.session_state["ui.lab"].workspace, teacher.session_state["ui.link"])
    student = app(**{"class": lock.token})
    for page in PAGES:
        student.switch_page(page).run()
        assert not student.exception, page
        assert (student.query_params["teacher"], student.query_params["k"]) == ("1", "2"), page
        toggles = [t for t in student.toggle if t.key == "ui.teacher_toggle"]
        assert all(t.disabled for t in toggles), page
    assert not [b for b in student.button if b.key == "workshop.reset"]
    # A page's own change of a held setting is refused with one line; the settings stay.
    student.query_params["k"] = "50"
    student.run()
    assert student.session_state["ui.link"] == lock.settings
    assert any("held by its class link" in w.value for w in student.warning)


def test_a_bad_link_is_named_in_one_line_on_every_page():
    """Home, Memory and Learning once showed a bad link nothing, and a link with two bad values
    got two sentences. Every page now says it once, in one line, quoting the address literally."""
    test = app(scenario="nonexistent", k="abc")
    for page in PAGES:
        test.switch_page(page).run()
        said = [w.value for w in test.warning if "from the link" in w.value]
        assert len(said) == 1, (page, said)
        assert "scenario='nonexistent'" in said[0] and "k='abc'" in said[0] and said[0].count("Ignored") == 1, said
    away = app(workspace="../../etc")
    for page in PAGES:
        away.switch_page(page).run()
        said = [w.value for w in away.warning if "no lab named" in w.value]
        assert len(said) == 1 and "'\\.\\.\\/\\.\\.\\/etc'" in said[0], (page, said)


def test_literal_markdown_leaves_nothing_for_markdown_to_format():
    """Pure: what each escape is for. The browser journey (tests/test_journey_playground.py)
    checks a Markdown note on the real page: no bold text, no link."""
    import ui

    note = "**markdown** and a [link](javascript:alert(1)) :material/home: $x^2$ <b>hi</b> ~~gone~~ `code`"
    escaped = ui.literal_markdown(note)
    assert escaped.replace("\\", "") == note  # only escapes were added
    assert not re.search(r"(?<!\\)[*\[\]()$:<>~`/]", escaped)  # every mark that formats is escaped
    assert ui.literal_markdown("k='abc' # 1") == "k='abc' \\# 1"  # quotes and = mid-line stay as typed
    lines = ui.literal_markdown("- one\n\n    two\n===").split("  \n")
    assert lines == ["\\- one", "\u00a0", "\u00a0" * 4 + "two", "\\==="]  # no list, code block or heading
    # Streamlit links bare addresses and draws arrows and its logo after parsing, escapes or not:
    # an invisible word joiner inside each keeps them as typed.
    for typed in ["https://example.com", "www.example.com", "ada@example.com", "a -> b", ":streamlit:"]:
        assert "\u2060" in ui.literal_markdown(typed), typed
