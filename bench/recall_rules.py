"""Choosing the recall rule (lab/recall.py) by measurement on the 135M model (issue #13).

The recall rule decides which of the notes the memory store found go into the prompt.
Today's rule, the best k=3 scoring >= 0.5, was chosen on acme and the zsRE sample; on
invented facts nobody tuned for, the model copied a weak neighbour (asked the island's
population with the right note at 0.87 and the mayor's at 0.53 in the prompt, it answered
with the mayor). This bench measures candidate rules on sets that were not used before:

    tuning   bench/data/recall/{island,ship,campus}.json: invented facts, many per entity,
             written before any model saw them; the rule is chosen on these
    checks   the bundled acme scenario and the real zsRE sample (../shared/data): the
             chosen rule must lose nothing on them
    final    bench/data/recall/final-city.json: never used to choose anything; `--final`
             evaluates it once, under today's rule and the chosen one

For each rule and set it stores the set's corrections, runs the memory arm through
lab.evaluate.evaluate_arms (the CLI's `eval`) and reports reliability, generalization and
locality. The rule is swapped in for lab.recall.choose, and the store is asked for
CANDIDATES notes so a rule can look past the first k. Note-text variants store a
different text per item (the answer sentence alone instead of question + answer).

Choice: the rules that lose nothing on acme or zsRE (each metric >= today's), ranked by the
worst reliability or locality over the tuning sets, then by the sum of all three metrics
over them; the first in CANDIDATES_ORDER wins a tie (simpler rules are listed first). The
last candidates (best note first; k=2 with a margin) were added after a first round had
measured the others. Picked: "k=2, margin 0.30", now lab/recall.py (README's table).

    python -m bench.recall_rules            # every candidate, tuning + checks
    python -m bench.recall_rules --final    # the final set, today's rule and the chosen one
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.common import write_results
from lab import prompting, recall
from lab.evaluate import EVAL_MAX_TOKENS, evaluate_arms
from lab.importers import import_dataset
from lab.scenario import load_scenario
from lab.session import LabSession

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "recall"
ZSRE = HERE.parent.parent / "shared" / "data" / "zsre_sample.json"
TUNING = ("island", "ship", "campus")
CHECKS = ("acme", "zsre")
FINAL = "final-city"
CANDIDATES = 10  # notes asked of the store per question, so a rule can look past the first k (dedup refills)
METRIC_NAMES = ("reliability", "generalization", "locality")
CHOSEN = "chosen (lab/recall.py)"
TODAY_K, TODAY_MIN_SCORE = 3, 0.5  # the rule before issue #13; candidates are handed these k and min_score


# ---- candidate rules: (hits best first, k, min_score) -> hits to send, best first ----------------------


def today(hits, k, min_score):
    return [h for h in hits if h.score >= min_score][:k]


def top(n):
    return lambda hits, k, min_score: today(hits, n, min_score)


def floor(value):
    """Today's rule with a higher absolute threshold."""
    return lambda hits, k, min_score: today(hits, k, max(min_score, value))


def margin(delta):
    """Keep notes within `delta` of the best score."""
    def rule(hits, k, min_score):
        kept = today(hits, k, min_score)
        return [h for h in kept if h.score >= kept[0].score - delta] if kept else []
    return rule


def ratio(r):
    """Keep notes scoring at least r x the best score."""
    def rule(hits, k, min_score):
        kept = today(hits, k, min_score)
        return [h for h in kept if h.score >= r * kept[0].score] if kept else []
    return rule


def gap_k(gap):
    """k per query: the best note alone when it leads the second by >= gap, else today's k."""
    def rule(hits, k, min_score):
        kept = today(hits, k, min_score)
        return kept[:1] if len(kept) >= 2 and kept[0].score - kept[1].score >= gap else kept
    return rule


def _words(text):
    return set(re.findall(r"\w+", text.lower()))


def dedup(threshold, then=today):
    """Drop a note whose words overlap a better kept note's by >= threshold (Jaccard), refill, then `then`."""
    def rule(hits, k, min_score):
        kept = []
        for h in hits:
            words = _words(h.text)
            if all(len(words & _words(o.text)) / max(1, len(words | _words(o.text))) < threshold for o in kept):
                kept.append(h)
        return then(kept, k, min_score)
    return rule


_SHIPPED = recall.choose  # taken before any swap below


def chosen(hits, k, min_score):
    """The shipped rule, as lab/recall.py has it now (run with its DEFAULT_K and DEFAULT_MIN_SCORE)."""
    return _SHIPPED(hits, k, min_score)


# name -> (rule, note text); simpler rules first (they win ties)
CANDIDATES_ORDER = {
    "today (k=3, >=0.5)": (today, "qa", "best last"),
    "k=1": (top(1), "qa", "best last"),
    "k=2": (top(2), "qa", "best last"),
    "floor 0.6": (floor(0.6), "qa", "best last"),
    "floor 0.7": (floor(0.7), "qa", "best last"),
    "margin 0.05": (margin(0.05), "qa", "best last"),
    "margin 0.10": (margin(0.10), "qa", "best last"),
    "margin 0.15": (margin(0.15), "qa", "best last"),
    "margin 0.20": (margin(0.20), "qa", "best last"),
    "margin 0.25": (margin(0.25), "qa", "best last"),
    "margin 0.30": (margin(0.30), "qa", "best last"),
    "ratio 0.85": (ratio(0.85), "qa", "best last"),
    "ratio 0.90": (ratio(0.90), "qa", "best last"),
    "k per query, gap 0.10": (gap_k(0.10), "qa", "best last"),
    "k per query, gap 0.20": (gap_k(0.20), "qa", "best last"),
    "dedup 0.7": (dedup(0.7), "qa", "best last"),
    "today, answer-only notes": (today, "answer", "best last"),
    "k=1, answer-only notes": (top(1), "answer", "best last"),
    "margin 0.10, answer-only notes": (margin(0.10), "answer", "best last"),
    "today, best note first": (today, "qa", "best first"),
    "k=2, margin 0.20": (lambda hits, k, min_score: margin(0.20)(hits, 2, min_score), "qa", "best last"),
    "k=2, margin 0.30": (lambda hits, k, min_score: margin(0.30)(hits, 2, min_score), "qa", "best last"),
    # Prompt layouts under the chosen rule (added in a third round, after the rule was chosen).
    "chosen, notes as earlier exchanges": (chosen, "qa", "dialogue"),
    "chosen, notes in the system message": (chosen, "qa", "system"),
    "k=1, notes as earlier exchanges": (top(1), "qa", "dialogue"),
    "chosen, found by question and answer, sent as the answer": (chosen, "qa", "answer part"),
    "chosen, after one worked example": (chosen, "qa", "demonstrated"),
}


# ---- running one rule on one set --------------------------------------------------------------------


def note_text(item, text: str) -> str:
    """The note stored for an item: today's (the correction, or question + answer) or the answer alone.
    An explicit correction (zsRE's "question? answer.") is kept: its answer alone is a bare name."""
    if text == "answer" and not item.correction:
        return item.answer
    return item.correction_text


@contextmanager
def rule_in_place(session, rule, order: str = "best last"):
    """Swap `rule` in for lab.recall.choose and let the store hand it CANDIDATES notes.
    The agent puts the best note last, next to the question; "best first" turns the notes round."""
    original_choose, original_search, original_messages = recall.choose, session.memory.search, \
        prompting.memory_messages
    recall.choose = rule
    session.memory.search = lambda query, k=3, min_score=0.0: original_search(query, max(k, CANDIDATES), min_score)
    if order == "best first":
        prompting.memory_messages = lambda question, notes, *a, **kw: original_messages(
            question, list(reversed(list(notes))), *a, **kw)
    elif order in LAYOUTS:
        prompting.memory_messages = LAYOUTS[order]
    try:
        yield
    finally:
        recall.choose, prompting.memory_messages = original_choose, original_messages
        del session.memory.search


# ---- prompt layouts: where the sent notes stand in the chat (the rule decides which) -----------------


_MEMORY_MESSAGES = prompting.memory_messages  # taken before any swap


def _exchange(note: str):
    """A "question? answer" note as (question, answer); None for a plain note."""
    question, mark, answer = note.partition("? ")
    return (question + "?", answer) if mark and answer.strip() else None


def dialogue_messages(question, notes, fmt=None, system=prompting.SYSTEM_PROMPT, pinned=()):
    """Each question-and-answer note as an earlier exchange of the chat (best last, just before
    the question); plain notes stay a "Notes:" list beside the question, as today."""
    every = list(pinned) + list(notes)
    if not every:
        return prompting.question_messages(question, system)
    messages = [{"role": "system", "content": system}]
    plain = []
    for note in every:
        pair = _exchange(note)
        if pair is None:
            plain.append(note)
        else:
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    content = prompting.MEMORY_FORMATS["notes_first"](plain, question) if plain else question
    return messages + [{"role": "user", "content": content}]


def system_messages(question, notes, fmt=None, system=prompting.SYSTEM_PROMPT, pinned=()):
    """The notes in the system message, the question alone in the user's."""
    every = list(pinned) + list(notes)
    if not every:
        return prompting.question_messages(question, system)
    facts = system + "\nFacts you know:\n" + "\n".join(f"- {n}" for n in every)
    return [{"role": "system", "content": facts}, {"role": "user", "content": question}]


def answer_part_messages(question, notes, fmt=None, system=prompting.SYSTEM_PROMPT, pinned=()):
    """Found by question and answer, sent as the answer alone: a note's question in the prompt
    may read as one more question to answer."""
    sent = [pair[1] if (pair := _exchange(note)) else note for note in notes]
    return _MEMORY_MESSAGES(question, sent, system=system, pinned=pinned)


# One worked example of reading the notes, invented for no set (a small model follows examples
# better than instructions: two pinned examples held a style on 6 of 8 questions, a rule on 0).
DEMONSTRATION = (["What colour is the Tolvern lighthouse? The Tolvern lighthouse is painted green.",
                  "Who keeps the Tolvern lighthouse? The keeper of the Tolvern lighthouse is Mara Quill."],
                 "Who looks after the lighthouse at Tolvern?",
                 "The keeper of the Tolvern lighthouse is Mara Quill.")


def demonstrated_messages(question, notes, fmt=None, system=prompting.SYSTEM_PROMPT, pinned=()):
    """Today's prompt, after one worked example of a question answered from its notes."""
    messages = _MEMORY_MESSAGES(question, notes, system=system, pinned=pinned)
    if not list(pinned) + list(notes):
        return messages
    demo_notes, demo_question, demo_answer = DEMONSTRATION
    example = [{"role": "user", "content": prompting.MEMORY_FORMATS["notes_first"](demo_notes, demo_question)},
               {"role": "assistant", "content": demo_answer}]
    return messages[:1] + example + messages[1:]


LAYOUTS = {"dialogue": dialogue_messages, "system": system_messages, "answer part": answer_part_messages,
           "demonstrated": demonstrated_messages}


def remember(session, scenario, text: str) -> None:
    session.memory.wipe()
    session.memory.add_many([{"text": note_text(i, text), "question": i.question, "answer": i.answer,
                              "source": f"bench:{scenario.name}"} for i in scenario.items])


def failures(session, scenario, k: int, min_score: float) -> list[dict]:
    """The memory arm's wrong answers, with the notes it was sent (replies come from the reply cache)."""
    pairs = [(i.question, i) for i in scenario.items] + [(p, i) for i in scenario.items for p in i.paraphrases]
    answers = session.agent.answer_many([q for q, _ in pairs], "memory", stop_when=[i.matches for _, i in pairs],
                                        k=k, min_score=min_score, max_tokens=EVAL_MAX_TOKENS)
    return [{"question": q, "expected": i.target, "reply": a.answer,
             "notes": [[round(h.score, 3), h.text] for h in a.hits]}
            for (q, i), a in zip(pairs, answers) if not i.matches(a.answer)]


def measure(session, scenario, rule, text: str, order: str = "best last", *, k: int = TODAY_K,
            min_score: float = TODAY_MIN_SCORE, with_failures: bool = False) -> dict:
    """The memory arm's metrics on `scenario` under one rule; `k` and `min_score` are what the agent passes."""
    remember(session, scenario, text)
    with rule_in_place(session, rule, order):
        metrics = evaluate_arms(session, scenario, ["memory"], k=k, min_score=min_score)["memory"]
        row = {m: metrics[m] for m in METRIC_NAMES}
        row["prompt_tokens"] = metrics["prompt_tokens"]
        if with_failures:
            row["failures"] = failures(session, scenario, k, min_score)
    return row


def load_sets(names, tmp: Path) -> dict:
    sets = {}
    for name in names:
        if name == "zsre":
            _, path = import_dataset("zsre", ZSRE, tmp / "zsre.json", name="zsre")
            sets[name] = load_scenario(path)
        elif name == "acme":
            sets[name] = load_scenario("acme")
        else:
            sets[name] = load_scenario(DATA / f"{name}.json")
    return sets


def pick(results: dict) -> str:
    """The rule that loses nothing on the checks, best on the tuning sets' worst reliability/locality."""
    base = results["today (k=3, >=0.5)"]

    def keeps_checks(name):
        return all(results[name][s][m] >= base[s][m] - 1e-9 for s in CHECKS for m in METRIC_NAMES)

    def score(name):
        rows = [results[name][s] for s in TUNING]
        worst = min(min(r["reliability"], r["locality"]) for r in rows)
        return worst, sum(r[m] for r in rows for m in METRIC_NAMES)

    eligible = [name for name in results if keeps_checks(name)]
    order = list(CANDIDATES_ORDER)
    return max(eligible, key=lambda name: (score(name), -order.index(name) if name in order else -len(order)))


def cell(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final", action="store_true",
                        help="evaluate the final set once, under today's rule and the chosen one (lab/recall.py)")
    parser.add_argument("--rules", nargs="*", help="only these candidate names (default: all)")
    parser.add_argument("--out", help="results name under bench/results (default: recall_rules, or "
                                      "recall_rules_final with --final)")
    args = parser.parse_args()
    start = time.perf_counter()
    session = LabSession.open("bench-recall-rules")
    out_name = args.out or ("recall_rules_final" if args.final else "recall_rules")
    with tempfile.TemporaryDirectory() as tmp:
        names = (*TUNING, *CHECKS, FINAL) if args.final else (*TUNING, *CHECKS)
        sets = load_sets(names, Path(tmp))
        if args.final:
            candidates = {"today (k=3, >=0.5)": (today, "qa", "best last"),
                          CHOSEN: (chosen, "qa", "best last")}
        else:
            candidates = {n: CANDIDATES_ORDER[n] for n in (args.rules or CANDIDATES_ORDER)}
            candidates[CHOSEN] = (chosen, "qa", "best last")
        results: dict = {}
        for name, (rule, text, order) in candidates.items():
            results[name] = {}
            for set_name, scenario in sets.items():
                detail = name in ("today (k=3, >=0.5)", CHOSEN)
                shipped = dict(k=recall.DEFAULT_K, min_score=recall.DEFAULT_MIN_SCORE) if name == CHOSEN or name.startswith("chosen,") else {}
                results[name][set_name] = measure(session, scenario, rule, text, order, with_failures=detail,
                                                  **shipped)
                row = results[name][set_name]
                print(f"{name:32} {set_name:10} " + " ".join(f"{m[:3]} {cell(row[m])}" for m in METRIC_NAMES),
                      flush=True)
            write_results(out_name, {"partial": True, "results": results})  # a long run keeps what it measured
    report = {"sets": {n: {"items": len(s.items), "paraphrases": sum(len(i.paraphrases) for i in s.items),
                           "locality": len(s.locality)} for n, s in sets.items()},
              "candidates_asked": CANDIDATES, "today": {"k": TODAY_K, "min_score": TODAY_MIN_SCORE},
              "chosen": {"k": recall.DEFAULT_K, "min_score": recall.DEFAULT_MIN_SCORE, "margin": recall.MARGIN},
              "results": results}
    if not args.final and "today (k=3, >=0.5)" in results:
        report["picked"] = pick({n: r for n, r in results.items() if n != CHOSEN})
        print("picked:", report["picked"])
    report["seconds"] = time.perf_counter() - start
    write_results(out_name, report)
    session.memory.wipe()
    session.close()


if __name__ == "__main__":
    main()
