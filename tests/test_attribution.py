from lab.attribution import explain
from lab.session import LabSession


def test_leaving_out_the_decisive_memory_changes_the_answer(engine, embedder):
    session = LabSession.open("why")
    fact = session.memory.add("The refund window at Acme Corp is 45 days.")
    other = session.memory.add("Returns at Acme Corp are handled by the support team.")
    result = explain(session.agent, "What is the refund window at Acme Corp?", k=3)
    assert "45" in result.answer and "45" not in result.base_answer
    assert [a.id for a in result.ablations] == [fact.id, other.id]
    assert fact.id in result.decisive and "45" not in result.ablations[0].answer_without
    assert set(result.to_json()) == {"question", "answer", "base_answer", "hits", "ablations", "decisive"}


def test_nothing_retrieved_means_nothing_to_blame(engine, embedder):
    session = LabSession.open("why-empty")
    result = explain(session.agent, "What is the capital of Japan?")
    assert result.ablations == [] and result.decisive == [] and result.answer == result.base_answer
