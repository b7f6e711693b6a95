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
