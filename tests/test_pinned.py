"""Pinned memory on the real model: sent into every memory-arm prompt whatever it scores,
priced in prompt tokens, bounded by a budget; and the usage signals an ask and *Why?* leave."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.attribution import explain
from lab.errors import LabError

ROOT = Path(__file__).resolve().parent.parent
RULE = "Always answer like a pirate: begin with Arr! and end with matey."
REFUND = "The refund window at Acme Corp is 45 days."
UNRELATED = "What is the capital of France?"



def test_a_pinned_memory_goes_into_every_memory_prompt_and_a_retrieved_one_only_when_it_scores(session):
    session.remember(RULE, pinned=True)
    session.remember(REFUND)
    unrelated = session.agent.answer(UNRELATED, "memory")
    assert [(h.text, h.pinned) for h in unrelated.hits] == [(RULE, True)]  # listed though it scores low
    assert unrelated.hits[0].score < 0.5 and RULE in unrelated.prompt and REFUND not in unrelated.prompt
    related = session.agent.answer("How long is the refund window at Acme Corp?", "memory")
    assert [(h.text, h.pinned) for h in related.hits] == [(RULE, True), (REFUND, False)]
    # Standing rules first, the note retrieved for this question last, beside it.
    assert related.prompt.index(RULE) < related.prompt.index(REFUND)
    assert session.agent.answer(UNRELATED, "base").hits == []  # the base arm carries no memory


def test_the_token_meter_is_what_the_prompt_really_grew_by(session):
    base = session.agent.answer(UNRELATED, "base")
    session.remember(RULE, pinned=True)
    pinned = session.agent.answer(UNRELATED, "memory")
    assert session.pinned_tokens() == pinned.prompt_tokens - base.prompt_tokens > 10
    assert pinned.pinned_tokens == pinned.note_tokens[pinned.hits[0].id] > 0
    assert pinned.to_json()["hits"][0]["pinned"] is True and pinned.to_json()["hits"][0]["tokens"] > 0


def test_the_pinned_budget_refuses_with_one_line_and_stores_nothing(session, monkeypatch):
    monkeypatch.setenv("LAB_PINNED_TOKENS", "30")
    session.remember(RULE, pinned=True)
    with pytest.raises(LabError, match=r"^pinning this would put \d+ tokens of pinned memory into every prompt, "
                                       r"over the budget of 30;"):
        session.remember("Always answer in French, whatever language the question is in.", pinned=True)
    kept = session.remember(REFUND)
    with pytest.raises(LabError, match="over the budget of 30"):
        session.pin(kept.id)
    assert [(m.text, m.pinned) for m in session.memory.list()] == [(RULE, True), (REFUND, False)]


def test_asking_counts_what_was_sent_and_why_counts_what_was_decisive(session):
    refund = session.remember(REFUND)
    session.agent.answer("How long is the refund window at Acme Corp?", "memory")
    session.agent.answer("How long is the refund window at Acme Corp?", "base")  # sends nothing
    assert session.memory.usage()[refund.id].retrievals == 1
    result = explain(session.agent, "How long is the refund window at Acme Corp?")
    usage = session.memory.usage()[refund.id]
    assert usage.retrievals == 2  # and the answer Why? explains; its answer without the note did not send it
    assert usage.tested == 1 and usage.decisive == (1 if refund.id in result.decisive else 0)


def lab(*args, home, env=None):
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "LAB_HOME": str(home), **(env or {})}, timeout=300)


def test_the_cli_pins_lists_and_refuses_past_the_budget(tmp_path):
    pinned = json.loads(lab("remember", RULE, "--pin", "--json", home=tmp_path).stdout)
    assert pinned["pinned"] is True and pinned["pinned_tokens"] > 0 and isinstance(pinned["id"], int)
    plain = json.loads(lab("remember", REFUND, "--json", home=tmp_path).stdout)
    assert plain == {"id": plain["id"], "pinned": False}
    asked = json.loads(lab("ask", UNRELATED, "--arm", "memory", "--json", home=tmp_path).stdout)
    assert [(h["id"], h["pinned"]) for h in asked["hits"]] == [(pinned["id"], True)]
    assert {"id", "text", "score"} <= set(asked["hits"][0])  # the fields that were there before stay
    listed = json.loads(lab("memory", "list", "--json", home=tmp_path).stdout)["memories"]
    assert [(m["pinned"], m["retrievals"]) for m in listed] == [(True, 1), (False, 0)]
    assert {"retrievals", "last_retrieved_at", "decisive"} <= set(listed[0])
    assert json.loads(lab("memory", "unpin", str(pinned["id"]), "--json", home=tmp_path).stdout)["pinned"] is False
    refused = lab("memory", "pin", str(plain["id"]), home=tmp_path, env={"LAB_PINNED_TOKENS": "5"})
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "over the budget of 5" in refused.stderr and "Traceback" not in refused.stderr
    listed = json.loads(lab("memory", "list", "--json", home=tmp_path).stdout)["memories"]
    assert [m["pinned"] for m in listed] == [False, False]
