import json

from lab.curves import learning_curve, memory_curve
from lab.learning import TrainingConfig
from lab.scenario import load_scenario
from lab.session import LabSession
from test_evaluate import SMALL


def test_memory_curve_rises_with_each_correction_and_learning_curve_with_steps(engine, embedder, tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL))
    scenario = load_scenario(path)
    session = LabSession.open("curves")
    memory = memory_curve(session, scenario)
    assert [p["corrections"] for p in memory] == [0, 1, 2]
    assert memory[0]["reliability"] == 0.0 and memory[-1]["reliability"] == 1.0
    learned = learning_curve(session, scenario, [30], TrainingConfig(batch_size=2, learning_rate=3e-3, replay=False))
    assert [p["steps"] for p in learned] == [0, 30]
    assert learned[0]["reliability"] == 0.0 and learned[-1]["reliability"] >= 0.5
    assert session.adapters.list() == [] and len(session.memory) == 0
