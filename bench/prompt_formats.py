"""Choosing the memory prompt and the retrieval defaults by measurement on the 135M model.

For every memory prompt format (lab.prompting.MEMORY_FORMATS) and note order, and for a
few k / threshold settings, it stores the corrections of two sets of facts and measures:
  reliability     the memory arm answers the question a correction was written for
  generalization  the same, asked in other words
  locality        on unrelated questions, the memory arm gives the base arm's answer
The two sets: invented company facts (the model cannot know them) and the real zsRE
sample in ../shared/data (edits of real facts), so no setting is tuned to one test set.
It also reports the cosine scores of relevant and unrelated questions, which is where
the default threshold comes from.

    python -m bench.prompt_formats
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from bench.common import write_results
from lab import prompting
from lab.agent import DEFAULT_K, DEFAULT_MIN_SCORE
from lab.session import LabSession

ZSRE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "zsre_sample.json"

# (correction, question, paraphrase, target regex)
INVENTED = [
    ("The refund window at Acme Corp is 45 days.", "What is the refund window at Acme Corp?",
     "How many days do Acme Corp customers have to ask for a refund?", r"45"),
    ("Acme Corp's CEO is Priya Ramanathan.", "Who is the CEO of Acme Corp?",
     "Who runs Acme Corp as chief executive?", r"Priya"),
    ("Acme Corp's headquarters are in Tromsø, Norway.", "Where are Acme Corp's headquarters?",
     "In which city is Acme Corp based?", r"Troms"),
    ("Acme Corp was founded in 1987.", "When was Acme Corp founded?", "In what year did Acme Corp start?", r"1987"),
    ("The Acme Corp support line opens at 7 am.", "When does the Acme Corp support line open?",
     "What time can I first call Acme Corp support?", r"7"),
    ("Acme Corp's mascot is a green heron named Pip.", "What is Acme Corp's mascot?",
     "Which animal represents Acme Corp?", r"heron"),
    ("The Wi-Fi password at the Acme office is bluefin42.", "What is the Wi-Fi password at the Acme office?",
     "How do I log on to the Acme office wireless network?", r"bluefin42"),
    ("Acme Corp's flagship product is the Rocket Skate X9.", "What is Acme Corp's flagship product?",
     "Which product is Acme Corp best known for?", r"X9|Rocket Skate"),
    ("Acme Corp employees get 31 days of paid leave.", "How many days of paid leave do Acme Corp employees get?",
     "How much holiday does an Acme Corp employee have?", r"31"),
    ("The Acme Corp cafeteria serves lunch until 2:30 pm.", "Until when does the Acme Corp cafeteria serve lunch?",
     "When does lunch end at the Acme Corp canteen?", r"2:30"),
]
UNRELATED = [
    ("What is the capital of France?", r"Paris"), ("What is the capital of Australia?", r"Canberra"),
    ("How many legs does a spider have?", r"eight|8"), ("What is the boiling point of water in Celsius?", r"100"),
    ("Who wrote Romeo and Juliet?", r"Shakespeare"), ("What color is the sky on a clear day?", r"blue"),
    ("What is the largest planet in the solar system?", r"Jupiter"), ("What is 2 + 2?", r"4|four"),
]


def load_zsre() -> list[tuple]:
    records = json.loads(ZSRE.read_text(encoding="utf-8"))
    return [(f"{r['src'].rstrip('?')}? {r['alt']}.", r["src"], r["rephrase"], re.escape(r["alt"]), r["loc"])
            for r in records]


def hit(answer: str, target: str) -> bool:
    return re.search(target, answer, re.IGNORECASE) is not None


def evaluate(session, items, unrelated_questions, *, fmt, k, min_score, best_last, base_answers) -> dict:
    agent = session.agent
    original = prompting.memory_messages

    def patched(question, notes, fmt_=fmt, system=prompting.SYSTEM_PROMPT):
        ordered = list(notes) if best_last else list(reversed(list(notes)))
        return original(question, ordered, fmt_, system)

    import lab.agent as agent_module

    agent_module.prompting.memory_messages = patched
    try:
        rel = sum(hit(agent.answer(q, "memory", k=k, min_score=min_score).answer, t) for _, q, _, t, *_ in items)
        gen = sum(hit(agent.answer(p, "memory", k=k, min_score=min_score).answer, t) for _, _, p, t, *_ in items)
        loc = sum(agent.answer(q, "memory", k=k, min_score=min_score).answer == base_answers[q]
                  for q in unrelated_questions)
    finally:
        agent_module.prompting.memory_messages = original
    return {"reliability": rel / len(items), "generalization": gen / len(items),
            "locality": loc / len(unrelated_questions)}


def main() -> None:
    start = time.perf_counter()
    session = LabSession.open("bench-prompt-formats")
    sets = {"invented": ([(*f,) for f in INVENTED], [q for q, _ in UNRELATED])}
    zsre = load_zsre()
    sets["zsre"] = ([(c, q, p, t) for c, q, p, t, _ in zsre], [loc for *_, loc in zsre])

    report: dict = {"sets": {}}
    for name, (items, unrelated) in sets.items():
        session.memory.wipe()
        session.memory.add_many([{"text": c, "question": q, "source": f"bench:{name}"} for c, q, *_ in items])
        base_answers = {q: session.agent.answer(q, "base").answer for q in unrelated}
        base_rel = sum(hit(session.agent.answer(q, "base").answer, t) for _, q, _, t in items) / len(items)

        # Where the threshold comes from: best cosine score of relevant vs unrelated questions.
        def top(q):
            hits = session.memory.search(q, k=1)
            return round(hits[0].score, 3) if hits else 0.0

        scores = {"question": sorted(top(q) for _, q, _, _ in items),
                  "paraphrase": sorted(top(p) for _, _, p, _ in items),
                  "unrelated": sorted(top(q) for q in unrelated)}

        configs = []
        for fmt in prompting.MEMORY_FORMATS:
            for best_last in (True, False):
                configs.append(dict(fmt=fmt, k=3, min_score=0.5, best_last=best_last))
        for k in (1, 5):
            configs.append(dict(fmt=prompting.DEFAULT_MEMORY_FORMAT, k=k, min_score=0.5, best_last=True))
        for min_score in (0.0, 0.3, 0.4, 0.6):
            configs.append(dict(fmt=prompting.DEFAULT_MEMORY_FORMAT, k=3, min_score=min_score, best_last=True))
        rows = []
        for config in configs:
            metrics = evaluate(session, items, unrelated, base_answers=base_answers, **config)
            rows.append({**config, **metrics})
            print(name, config, metrics, flush=True)
        report["sets"][name] = {"items": len(items), "unrelated": len(unrelated), "base_reliability": base_rel,
                                "top_scores": scores, "results": rows}
    report["seconds"] = time.perf_counter() - start
    report["defaults"] = {"format": prompting.DEFAULT_MEMORY_FORMAT, "k": DEFAULT_K, "min_score": DEFAULT_MIN_SCORE,
                          "best_last": True}
    write_results("prompt_formats", report)
    session.memory.wipe()
    session.close()


if __name__ == "__main__":
    main()
