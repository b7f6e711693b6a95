import json
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.importers import import_dataset
from lab.scenario import load_scenario

ZSRE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "zsre_sample.json"
# One record in the CounterFact release format (ROME), as published.
COUNTERFACT = [{
    "case_id": 0, "pararel_idx": 2796,
    "requested_rewrite": {"prompt": "The mother tongue of {} is", "relation_id": "P103",
                          "target_new": {"str": "English", "id": "Q1860"},
                          "target_true": {"str": "French", "id": "Q150"}, "subject": "Danielle Darrieux"},
    "paraphrase_prompts": ["Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native",
                           "An album was recorded for Capitol Nashville but never released. Danielle Darrieux spoke the language"],
    "neighborhood_prompts": ["The mother tongue of L\u00e9on Blum is", "The native language of Montesquieu is"],
    "attribute_prompts": ["J.\u00a0R.\u00a0R. Tolkien is a native speaker of"],
    "generation_prompts": ["Danielle Darrieux's mother tongue is"],
}]


@pytest.mark.skipif(not ZSRE.exists(), reason="the shared zsRE sample is beside the project")
def test_zsre_sample_becomes_a_valid_scenario(tmp_path):
    count, out = import_dataset("zsre", ZSRE, tmp_path / "zsre.json")
    records = json.loads(ZSRE.read_text())
    scenario = load_scenario(out)
    assert count == len(records) == len(scenario.items) == 24
    first, record = scenario.items[0], records[0]
    assert first.question == record["src"] and first.answer == record["alt"]
    assert first.paraphrases == (record["rephrase"],) and first.matches(f"It was {record['alt']}.")
    assert scenario.locality[0].matches(record["loc_ans"]) and not scenario.locality[0].question.startswith("nq")


def test_counterfact_record_becomes_a_valid_scenario(tmp_path):
    source = tmp_path / "counterfact.json"
    source.write_text(json.dumps(COUNTERFACT))
    count, out = import_dataset("counterfact", source, tmp_path / "cf.json", name="cf")
    scenario = load_scenario(out)
    item = scenario.items[0]
    assert count == 1 and scenario.name == "cf"
    assert item.answer == "The mother tongue of Danielle Darrieux is English." and item.matches("English")
    assert len(item.paraphrases) == 2
    assert [p.question for p in scenario.locality] == COUNTERFACT[0]["neighborhood_prompts"]
    assert scenario.locality[0].matches("French")


@pytest.mark.parametrize("content, message", [
    ("", "non-empty list"), ("{bad", "neither JSON"), ("[]", "non-empty list"), ('[{"alt": "x"}]', r"bad.json\[0\]\.src"),
    ('{"src": "x"}', "non-empty list"),
])
def test_bad_dataset_files(tmp_path, content, message):
    source = tmp_path / "bad.json"
    source.write_text(content)
    with pytest.raises(LabError, match=message):
        import_dataset("zsre", source, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
