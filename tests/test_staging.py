"""Memory as the staging ground: the candidate rule on a real store with real usage counts."""

from datetime import datetime, timedelta, timezone

import pytest

from lab.memory import MemoryStore
from lab.staging import CandidateRule, age_days, candidates, reason, standings


@pytest.fixture
def store(tmp_path, embedder):
    with MemoryStore(tmp_path / "memory", embedder) as opened:
        yield opened


def later(days: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=days)


def test_only_memories_that_were_sent_decisive_and_left_alone_qualify(store):
    proven = store.add("The refund window at Acme Corp is 45 days.", question="What is the refund window at Acme Corp?",
                       answer="45 days")
    unused = store.add("Acme Corp was founded in 1999.", question="When was Acme founded?", answer="1999")
    never_decisive = store.add("Acme Corp is in Leeds.", question="Where is Acme Corp?", answer="Leeds")
    bare = store.add("Acme sells anvils.")  # no question: nothing to train or verify it on
    for _ in range(3):
        store.record_use(sent=[proven.id, never_decisive.id, bare.id])
    store.record_use(tested=[proven.id, never_decisive.id, bare.id], decisive=[proven.id, bare.id])
    found = candidates(store, now=later(1))
    assert [c.memory.id for c in found] == [proven.id]
    assert found[0].to_json() == {"id": proven.id, "text": proven.text, "retrievals": 3, "decisive": 1,
                                  "age_days": pytest.approx(1.0, abs=0.01), "reason": found[0].reason}
    assert "sent 3 times; decisive 1 of 1 times tested; unchanged for 1.0 days" == found[0].reason
    assert unused.id not in [c.memory.id for c in found]
    # The thresholds are options.
    assert {c.memory.id for c in candidates(store, CandidateRule(min_decisive=0), now=later(1))} == \
        {proven.id, never_decisive.id}


def test_an_edit_restarts_the_clock(store):
    memory = store.add("The refund window at Acme Corp is 45 days.", question="What is the refund window?",
                       answer="45 days")
    for _ in range(3):
        store.record_use(sent=[memory.id], tested=[memory.id], decisive=[memory.id])
    assert candidates(store) == []  # written moments ago: still being corrected, perhaps
    assert [c.memory.id for c in candidates(store, now=later(0.5))] == [memory.id]
    edited = store.update(memory.id, text="The refund window at Acme Corp is 60 days.")
    assert age_days(edited) < 0.01 and candidates(store) == []


def test_a_pinned_rule_needs_no_question(store):
    rule = store.add("Always answer like a pirate.", pinned=True)
    for _ in range(3):
        store.record_use(sent=[rule.id], tested=[rule.id], decisive=[rule.id])
    assert [c.memory.id for c in candidates(store, now=later(1))] == [rule.id]


def test_the_reason_reads_in_the_right_unit():
    from lab.memory import Usage

    assert reason(Usage(5, None, 3, 2), 2.04).endswith("unchanged for 2.0 days")
    assert reason(Usage(5, None, 3, 2), 0.25).endswith("unchanged for 6.0 hours")
    assert reason(Usage(5, None, 3, 2), 0.02).endswith("unchanged for 29 minutes")


def test_every_memory_has_its_counts_against_the_rule_and_what_it_lacks(store):
    """The Learning page's Consolidate table once marked every memory "not a candidate (yet)"
    and never said why: each memory's standing holds its counts and what it still needs."""
    proven = store.add("The refund window at Acme Corp is 45 days.", question="What is the refund window?",
                       answer="45 days")
    fresh = store.add("Acme Corp is in Leeds.", question="Where is Acme Corp?", answer="Leeds")
    bare = store.add("Acme sells anvils.")
    for _ in range(3):
        store.record_use(sent=[proven.id])
    store.record_use(sent=[fresh.id], tested=[proven.id, fresh.id], decisive=[proven.id])
    by_id = {s.memory.id: s for s in standings(store, now=later(0.01))}  # about 14 minutes after writing
    assert list(by_id) == [proven.id, fresh.id, bare.id]  # every memory, candidate or not
    assert (by_id[proven.id].sent, by_id[proven.id].decisive) == ("3 of 3", "1 of 1 (tested 1)")
    assert by_id[proven.id].unchanged == "14 minutes of 29 minutes"
    assert by_id[proven.id].lacks() == "unchanged for 14 minutes more" and not by_id[proven.id].candidate
    assert by_id[fresh.id].lacks() == ("sent 2 more times; decisive when *Why?* leaves it out (tested 1 time, "
                                       "never decisive); unchanged for 14 minutes more")
    assert by_id[bare.id].lacks().endswith("a question to train and check it on")
    later_on = {s.memory.id: s for s in standings(store, now=later(1))}
    assert later_on[proven.id].candidate and later_on[proven.id].lacks() == ""
    # The candidates are exactly the standings that pass.
    assert [c.memory.id for c in candidates(store, now=later(1))] == [proven.id]
