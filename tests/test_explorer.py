"""lab/explorer.py on the real model, embedder and memory: the retrieval explorer shows what
the memory arm sends (Agent.prepare's own hits and messages), never a rule of its own."""


from lab.explorer import explore

# Against QUESTION these score about 0.86 and 0.53: both pass the 0.5 threshold, but the
# second is more than recall.MARGIN (0.30) below the best, so the agent sends the first only.
POPULATION = "Population of Vessholm: 4,310."
FIRST_MAYOR = "The first mayor of Vessholm was Anders Tollefsen."
QUESTION = "What is the population of Vessholm?"



def test_the_explorer_shows_only_the_note_the_agent_sends(session):
    session.memory.add_many([{"text": POPULATION}, {"text": FIRST_MAYOR}])
    seen = explore(session.agent, QUESTION, k=2, min_score=0.5)
    scores = [round(c.hit.score, 2) for c in seen.candidates]
    assert [c.hit.text for c in seen.candidates] == [POPULATION, FIRST_MAYOR] and min(scores) >= 0.5, scores
    assert [c.sent for c in seen.candidates] == [True, False]
    assert seen.candidates[1].why.startswith("more than 0.30 below the best note")
    prepared = session.agent.prepare(QUESTION, "memory", k=2, min_score=0.5)
    assert seen.prepared.messages == prepared.messages and [h.id for h in seen.sent] == [h.id for h in prepared.hits]
    assert seen.prompt == session.engine.format_prompt(prepared.messages)
    assert POPULATION in seen.prompt and FIRST_MAYOR not in seen.prompt
    # The extra tokens are the one note's cost, the figure the Memory page's table gives it.
    from lab.pinned import note_tokens
    assert seen.extra_tokens == note_tokens(session.engine, POPULATION)


def test_the_explorer_says_why_a_candidate_stays_out(session):
    session.memory.add_many([{"text": POPULATION}, {"text": FIRST_MAYOR}])
    low = explore(session.agent, QUESTION, k=1, min_score=0.5)
    assert [c.hit.text for c in low.candidates] == [POPULATION] and low.candidates[0].sent
    high = explore(session.agent, QUESTION, k=2, min_score=0.95)
    assert not high.sent and [c.why for c in high.candidates] == ["below the threshold 0.95"] * 2
    assert "Notes:" not in high.prompt and high.extra_tokens == 0
    pinned = session.remember("Always answer in one word.", pinned=True)
    seen = explore(session.agent, QUESTION, k=2, min_score=0.5)
    assert [h.id for h in seen.pinned] == [pinned.id] and pinned.id not in [c.hit.id for c in seen.candidates]
