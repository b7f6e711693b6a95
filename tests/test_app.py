"""The home page: the key idea without a click, the model status, a start button per scenario."""

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lab.scenario import bundled_names

APP = str(Path(__file__).resolve().parent.parent / "app.py")  # routes to home.py
sys.path.insert(0, str(Path(APP).parent))


def test_home_page_renders_the_key_idea_and_model_status():
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert "Memory" in text and "Learning" in text and "wipe test" in text.lower()
    assert any("SmolLM2-135M-Instruct" in s.value for s in app.success)  # not the GGUF's run label


def test_every_bundled_scenario_has_a_start_button():
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert {b.key for b in app.button} >= {f"home.start-{name}" for name in bundled_names()}
