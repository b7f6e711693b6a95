"""What a note costs, defined once (lab/pinned.py) and shown the same on every page.

For one pinned note the app once gave four figures: the Memory page's meter 17, its table
11, the Playground "+17, 11 of them pinned", the Learning page "9 per note". Each is now the
tokens the note adds to a prompt, formatting included, on the real model and pages."""

import re
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lab.pinned import each_note_tokens, note_tokens, notes_tokens

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # pages import `ui` from the project root, as under `streamlit run`
RULE = "Always answer like a pirate: begin with Arr! and end with matey."
REFUND = "The refund window at Acme Corp is 45 days."
UNRELATED = "What is the capital of France?"
RELATED = "What is the refund window at Acme Corp?"



def test_a_notes_cost_is_what_it_adds_to_the_prompt_and_the_charges_add_up(session):
    session.remember(RULE, pinned=True)
    session.remember(REFUND)
    base = session.agent.answer(UNRELATED, "base", max_tokens=4)
    alone = session.agent.answer(UNRELATED, "memory", max_tokens=4)
    cost = note_tokens(session.engine, RULE)
    assert cost == session.pinned_tokens() == alone.pinned_tokens == alone.note_tokens[alone.hits[0].id] \
        == alone.prompt_tokens - base.prompt_tokens > len(session.engine.tokenize(f"- {RULE}\n", special=False))
    # With a retrieved note as well, the heading is paid once: each note is charged what it adds
    # after the ones before it, so the charges are the prompt's extra tokens, the pinned part the meter.
    related = session.agent.answer(RELATED, "memory", max_tokens=4)
    related_base = session.agent.answer(RELATED, "base", max_tokens=4)
    assert [h.text for h in related.hits] == [RULE, REFUND]
    assert sum(related.note_tokens.values()) == related.prompt_tokens - related_base.prompt_tokens \
        == notes_tokens(session.engine, [RULE, REFUND])
    assert related.pinned_tokens == cost and each_note_tokens(session.engine, [RULE, REFUND])[0] == cost
    assert notes_tokens(session.engine, [RULE, REFUND]) < cost + note_tokens(session.engine, REFUND)


def page(name: str, workspace: str | None = None, key: str | None = None) -> AppTest:
    test = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=300)
    if workspace:
        test.query_params.update({"workspace": workspace, "key": key})
    return test.run()


def test_every_page_gives_one_pinned_note_the_same_cost():
    memory = page("2_Memory.py")
    lab = memory.session_state["ui.lab"]
    workspace, key = memory.query_params["workspace"], memory.query_params["key"]
    lab.remember(RULE, pinned=True)
    memory.run()
    cost = note_tokens(lab.engine, RULE)
    meter = {m.label: m.value for m in memory.metric}["Pinned tokens per answer"]
    row = next(f.value for f in memory.dataframe if "prompt tokens" in f.value.columns)["prompt tokens"].tolist()
    assert int(meter) == row[0] == cost, (meter, row)

    playground = page("1_Playground.py", workspace, key)
    playground.text_input(key="playground.question_box").input(UNRELATED)
    playground.button(key="playground.ask").click().run()
    line = next(c.value for c in playground.caption if c.value.startswith("Prompt tokens per arm"))
    extra, pinned = map(int, re.search(r"memory \d+ \(\+(\d+), (\d+) of them pinned\)", line).groups())
    assert extra == pinned == cost, line

    learning = page("4_Learning.py", workspace, key)
    figure = {m.label: m.value for m in learning.metric}["prompt tokens a memory adds"]
    assert figure == f"{cost} per note"
