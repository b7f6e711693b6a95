import json

import pytest

from lab.errors import LabError
from lab.scenario import bundled_names, load_scenario


def test_bundled_acme_scenario_is_valid():
    assert "acme" in bundled_names()
    acme = load_scenario("acme")
    assert acme.kind == "facts" and len(acme.items) == 20 and acme.locality
    assert all(item.paraphrases for item in acme.items)
    assert acme.items[0].matches("It is 45 days.") and not acme.items[0].matches("30 days")


def _write(tmp_path, data):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


GOOD = {"name": "t", "title": "T", "kind": "facts", "items": [{"question": "Q?", "answer": "A.", "target": "A"}]}


@pytest.mark.parametrize("data, message", [
    ("{not json", "not valid JSON"),
    ({**GOOD, "kind": "vibes"}, "kind"),
    ({k: v for k, v in GOOD.items() if k != "items"}, "'items' is a required property"),
    ({**GOOD, "items": [{"question": "Q?", "answer": "A."}]}, "items[0]: 'target' is a required property"),
    ({**GOOD, "items": [{"question": "", "answer": "A.", "target": "A"}]}, "items[0].question"),
    ({**GOOD, "items": [{"question": "Q?", "answer": "A.", "target": "(unclosed"}]}, "items[0].target: invalid regex"),
    ({**GOOD, "locality": [{"question": "Q?"}]}, "locality[0]"),
])
def test_schema_errors_name_the_file_the_field_and_the_problem(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(LabError) as error:
        load_scenario(path)
    assert str(path) in str(error.value) and message in str(error.value) and "\n" not in str(error.value)


def test_unknown_names_and_missing_files():
    with pytest.raises(LabError, match="no scenario named 'nope'; bundled: .*acme"):
        load_scenario("nope")
    with pytest.raises(LabError, match="not found"):
        load_scenario("/no/such/file.json")


def test_every_bundled_scenario_is_valid_and_the_kinds_are_covered():
    scenarios = {name: load_scenario(name) for name in bundled_names()}
    assert {"acme", "fix-the-model", "preferences", "pirate", "poisoning"} <= set(scenarios)
    assert scenarios["pirate"].kind == "behavior" and scenarios["pirate"].probes
    # Probes are held out: never one of the trained or remembered questions.
    for scenario in scenarios.values():
        asked = {i.question for i in scenario.items}
        assert not asked & {p.question for p in scenario.probes}
        assert not asked & {p.question for p in scenario.locality}


def test_bundled_scenarios_speak_the_apps_language():
    """Their descriptions are shown on the Home page and the Wipe Test: no command lines there."""
    for name in bundled_names():
        assert "python -m lab" not in load_scenario(name).description, name


UPDATES = {"name": "u", "title": "U", "kind": "updates",
           "items": [{"question": "What does a day pass cost?", "answer": "A day pass costs £6.", "target": r"\b6\b",
                      "update": {"answer": "A day pass costs £9.", "target": r"\b9\b"}}]}


def _item(**changes):
    return {**UPDATES, "items": [{**UPDATES["items"][0], **changes}]}


def test_an_updates_scenario_gives_the_facts_before_and_after(tmp_path):
    scenario = load_scenario(_write(tmp_path, UPDATES))
    assert scenario.kind == "updates" and scenario.items[0].update.target == r"\b9\b"
    old, new = scenario.before_update(), scenario.after_update()
    assert old.items[0].answer == "A day pass costs £6." and old.items[0].update is None and old.name == "u"
    assert new.items[0].answer == "A day pass costs £9." and new.items[0].correction_text.endswith("£9.")
    assert new.name == "u-updated" and new.kind == "facts" and new.items[0].matches("It is 9 pounds.")
    with pytest.raises(LabError, match="not 'updates'"):
        load_scenario("acme").after_update()
    assert load_scenario("changing-facts").kind == "updates"


@pytest.mark.parametrize("data, message", [
    (_item(update=None), "items[0].update: None is not of type 'object'"),
    ({**UPDATES, "items": [{k: v for k, v in UPDATES["items"][0].items() if k != "update"}]},
     "items[0]: 'update' is a required property in a scenario of kind 'updates'"),
    (_item(update={"answer": "A day pass costs £9."}), "items[0].update: 'target' is a required property"),
    (_item(update={"answer": "A day pass costs £9.", "target": "9", "price": 9}), "items[0].update: Additional"),
    (_item(update={"answer": "A day pass costs £9.", "target": "(9"}), "items[0].update.target: invalid regex"),
    (_item(update={"answer": "A day pass costs £9.", "target": "day pass"}),
     "items[0].update.target 'day pass' also matches the old answer"),
    (_item(target="costs"), "items[0].target 'costs' also matches the new answer"),
    (_item(update={"answer": "A day pass costs £9.", "target": r"\b7\b"}), "does not match its own answer"),
    ({**GOOD, "items": [{**GOOD["items"][0], "update": {"answer": "B.", "target": "B"}}]},
     "items[0].update: only a scenario of kind 'updates' has updates (this one is 'facts')"),
])
def test_bad_updates_are_one_line_naming_the_field(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(LabError) as error:
        load_scenario(path)
    assert str(path) in str(error.value) and message in str(error.value) and "\n" not in str(error.value)
