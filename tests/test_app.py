"""The (placeholder) home page renders with the real model and shows the key idea."""

from pathlib import Path

import sys

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
sys.path.insert(0, str(Path(APP).parent))


def test_home_page_renders_the_key_idea_and_model_status():
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert "Memory" in text and "Learning" in text and "wipe test" in text.lower()
    assert any("SmolLM2" in s.value or "Smollm2" in s.value for s in app.success)
