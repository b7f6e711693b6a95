"""The Workshop: guided exercises, each checked against the lab's real state.

An exercise says what to do (which page or command, what to type) and then checks the
result by looking at what is really there: the workspace's memory, its adapters and
fresh answers from the model. Nothing is ticked by hand, and a check only reads: it
never adds, deletes, trains or activates anything.

Each check sits right above the exercise it judges, so the text a student reads and the
code that marks it are one screen apart.

    ctx = Context(session, LinkSettings(), state={})
    EXERCISES[0].check(ctx)  # -> CheckResult(passed=False, detail='memory arm said "..."; ...')

Exercises that need history (poison first, then repair; predict first, then run) keep
what was seen in `ctx.state`, a JSON-able dict per exercise. The page holds all of them
in one progress dict and saves it in the workspace (results/workshop.json). Beside each verdict,
run_check keeps digests of what it judged (the memory, the adapters, the settings, the exercise's
own inputs: `Exercise.looks_at`); once one of them changes, changed_since() says so and the page
withdraws the verdict instead of showing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import time
import weakref
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from lab.adapters import write_json_atomic
from lab.agent import Answer
from lab.errors import LabError
from lab.evaluate import EVAL_MAX_TOKENS, METRICS, survivors, wipe_test
from lab.links import LinkSettings
from lab.scenario import Probe, load_scenario, target_matches

PROGRESS_FILE = "workshop.json"  # in the workspace's results folder
MAX_LOCALITY = 15  # locality questions a forgetting check asks at most (each costs two model calls)


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check. `detail` is one plain line saying what was seen, answers included."""

    passed: bool
    detail: str
    in_progress: bool = False  # a stage reached on the way (not a failure): the page shows it as progress


@dataclass
class Context:
    """What a check may look at: the lab session, the link's settings, the exercise's saved state."""

    session: Any  # lab.session.LabSession
    settings: LinkSettings = field(default_factory=LinkSettings)
    state: dict = field(default_factory=dict)
    # Told what a check is doing while it runs (a check can take a minute and a half on a busy
    # server): on_progress(done, total, what), e.g. (2, 10, "asking unrelated question 3 of 10").
    on_progress: Callable[[int, int, str], None] | None = None

    def progress(self, done: int, total: int, what: str) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, what)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    goal: str
    steps: tuple[str, ...]
    check: Callable[[Context], CheckResult]
    # What the verdict rests on (parts of lab_snapshot, and "state": the exercise's own inputs).
    # When one of them changes, the verdict no longer holds and the page says so.
    looks_at: tuple[str, ...] = ("memory", "adapters", "settings", "scenario", "state")


# ---- pure helpers ------------------------------------------------------------------------


def quote(text: str, limit: int = 90) -> str:
    """A reply on one line, shortened, in quotes: quote("Arr!\\n  Rome, matey.") -> '"Arr! Rome, matey."'"""
    text = " ".join(str(text).split())
    return f'"{text if len(text) <= limit else text[:limit - 1] + "…"}"'


def compare_prediction(prediction: dict[str, str], before: dict, after: dict) -> CheckResult:
    """Judge a wipe-test prediction ({"memory": "keeps" | "loses", ...}) against survivors(before, after).

    An arm counts only if the report has it and it improved on the base arm before the wipe
    (otherwise there was nothing to keep or lose). The first such metric is used, in the
    order of evaluate.METRICS (reliability for facts, adherence for a behaviour).
    """
    survived = survivors(before, after)
    verdicts, skipped = [], []
    for arm, guess in prediction.items():
        metric = next((m for m in METRICS if survived.get(arm, {}).get(m) is not None), None)
        if metric is None:
            skipped.append(arm if arm in before else f"{arm} (not in the run)")
            continue
        kept = survived[arm][metric]
        actual = "keeps" if kept else "loses"
        verdicts.append((guess == actual, f"{arm}: you said it {guess} the improvement, it {actual} it "
                                          f"({metric} {before[arm][metric]:.2f} → {after[arm][metric]:.2f})"))
    if not verdicts:
        return CheckResult(False, "No arm in this run improved on the base arm, so there was nothing to keep or "
                                  f"lose ({', '.join(skipped) or 'no prediction'}); run it on a scenario the "
                                  "memory helps with, such as acme.")
    note = f"; not judged: {', '.join(skipped)} (no improvement to keep)" if skipped else ""
    passed = all(ok for ok, _ in verdicts)
    return CheckResult(passed, "; ".join(("✓ " if ok else "✗ ") + text for ok, text in verdicts) + note)


def done_count(progress: dict) -> int:
    """How many exercises have passed at least once: done_count({"a": {"done": True}, "b": {}}) -> 1"""
    return sum(bool(entry.get("done")) for entry in progress.values())


# ---- asking the model --------------------------------------------------------------------------

# Replies of the frozen model, by prompt: without an adapter a prompt always gets the same
# (greedy) reply, so a second check need not ask again. Arms with an adapter are always asked:
# the adapter file behind a name can be retrained.
_frozen_replies: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _ask(ctx: Context, question: str, arm: str, **options) -> Answer:
    """One answer with the link's k and threshold."""
    cache = None
    if arm in ("base", "memory"):
        cache = _frozen_replies.setdefault(ctx.session.engine, {})
        if len(cache) > 2000:
            cache.clear()
    return ctx.session.agent.answer(question, arm, k=ctx.settings.k, min_score=ctx.settings.threshold,
                                    reply_cache=cache, **options)


def _note(hit, limit: int = 60) -> str:
    """A note that was sent, as pinned or retrieved: a pinned note goes into every prompt whatever
    it scores, so its score would wrongly suggest it was chosen for this question."""
    how = "pinned" if hit.pinned else f"score {hit.score:.2f}"
    return f"[{hit.id}] {quote(hit.text, limit)} ({how})"


def _hits(answer: Answer) -> str:
    return ", ".join(_note(h) for h in answer.hits) or "none"


def _need_adapter(ctx: Context) -> CheckResult | None:
    if ctx.session.adapters.active() is None:
        return CheckResult(False, "No adapter is active: train one on the Learning page, which also activates "
                                  "it, then check again.")
    return None


# ---- 1. make the memory arm answer ------------------------------------------------------------

# acme.json's first item: an invented fact, so the base model cannot know it.
REFUND_QUESTION = "What is the refund window at Acme Corp?"
REFUND_NOTE = "The refund window at Acme Corp is 45 days."
REFUND_TARGET = r"\b45\b"


def check_memory_answers(ctx: Context) -> CheckResult:
    """Passes when the memory arm gives 45 days and the base arm (the same frozen model) does not.
    What made the difference is *Why?*'s own leave-one-out (lab/attribution.py): only a note whose
    removal loses the 45 is credited; a pinned rule that rides along is named as pinned."""
    from lab.attribution import explain

    why = explain(ctx.session.agent, REFUND_QUESTION, k=ctx.settings.k, min_score=ctx.settings.threshold,
                  on_progress=ctx.progress)
    seen = f"memory arm said {quote(why.answer)}; base arm said {quote(why.base_answer)}"
    says = [target_matches(REFUND_TARGET, a) for a in (why.answer, why.base_answer)]
    if says[1]:
        return CheckResult(False, f"{seen}. The base arm already says 45, so memory fixed nothing here.")
    retrieved = [a for a in why.ablations if not a.pinned]
    pinned = [a for a in why.ablations if a.pinned]
    also = f" (pinned, sent whatever it scores: {', '.join(_note(a) for a in pinned)})" if pinned else ""
    if not says[0] and not retrieved:
        return CheckResult(False, f"{seen}. No note was retrieved (k={ctx.settings.k}, threshold "
                                  f"{ctx.settings.threshold:g}){also}: remember the right refund window first.")
    if not says[0]:
        return CheckResult(False, f"{seen}. Sent: {', '.join(_note(a) for a in why.ablations)}, but the reply "
                                  "has no 45: is the right number in the note?")
    # Each note left out in turn, as *Why?* does: which ones the 45 depended on.
    needed = [a for a in why.ablations if not target_matches(REFUND_TARGET, a.answer_without)]
    others = [f"{_note(a)} {'changed only the wording' if a.changed else 'changed nothing'}"
              for a in why.ablations if a not in needed]
    credit = ("; ".join(f"without {_note(a)} it says {quote(a.answer_without, 60)}, so that note made the "
                        "difference" for a in needed) if needed
              else "no single note was needed on its own: each one left out, the others still carried the 45")
    rest = f"; left out, {'; '.join(others)}" if others else ""
    return CheckResult(True, f"{seen}. Same model, same question, each note left out in turn (as Why? does): "
                             f"{credit}{rest}.")


MEMORY_ANSWER = Exercise(
    id="memory-answer",
    title="Make the memory arm answer",
    goal="Acme Corp is invented, so the model cannot know its refund window (45 days). Teach it through "
         "memory alone: no training, the model stays frozen.",
    steps=(f"Ask **{REFUND_QUESTION}** (Try it here, above, or on the **Playground**). Base and memory both guess.",
           f"Remember the correction **{REFUND_NOTE}** (type it under *A note to remember* above and press "
           "**Remember**, or use the Playground's *Correct this*).",
           "Ask again with the memory arm, then press **Check my work**: the memory arm must say 45 days, "
           "the base arm must not."),
    check=check_memory_answers,
    looks_at=("memory", "settings"),
)


# ---- 2. show forgetting ----------------------------------------------------------------------------


def _locality_questions(scenario_name: str) -> tuple[Probe, ...]:
    """The scenario's locality questions, or acme's when it has none (pirate)."""
    locality = load_scenario(scenario_name).locality or load_scenario("acme").locality
    return locality[:MAX_LOCALITY]


def check_forgetting(ctx: Context) -> CheckResult:
    """Passes when a question the base model gets right is got wrong by the learned arm (active adapter)."""
    if missing := _need_adapter(ctx):
        return missing
    adapter = ctx.session.adapters.active_name()
    known, forgotten = 0, []
    questions = _locality_questions(ctx.settings.scenario)
    for number, probe in enumerate(questions, 1):
        ctx.progress(number - 1, len(questions), f"asking unrelated question {number} of {len(questions)} "
                                                 "(base arm, then learned arm)")
        options = dict(stop_when=probe.matches, max_tokens=EVAL_MAX_TOKENS)  # stop once the answer shows
        base = _ask(ctx, probe.question, "base", **options)
        if not probe.matches(base.answer):
            continue  # the base model never knew it: nothing to forget
        known += 1
        learned = _ask(ctx, probe.question, "learned", **options)
        if not probe.matches(learned.answer):
            forgotten.append(f"{quote(probe.question)} base {quote(base.answer, 50)} → learned "
                             f"{quote(learned.answer, 50)}")
    if not forgotten:
        if ctx.session.adapters.active().meta.get("config", {}).get("replay"):
            return CheckResult(False, f"Adapter {adapter!r} was trained with replay and the learned arm still gets "
                                      f"all {known} unrelated questions right that the base model knows: replay "
                                      "held them in place. That is what step 3 shows.", in_progress=True)
        harder = "more steps or a higher learning rate" + (
            "" if ctx.session.adapters.active().meta.get("source") == "scenario:pirate"
            else ", or the pirate scenario, whose behaviour reaches further")
        return CheckResult(False, f"With adapter {adapter!r} the learned arm still gets all {known} unrelated "
                                  f"questions right that the base model knows. Train harder ({harder}) on the "
                                  "Learning page, replay off, and check again.")
    more = f" and {len(forgotten) - 2} more" if len(forgotten) > 2 else ""
    return CheckResult(True, f"Adapter {adapter!r} forgot {len(forgotten)} of {known} unrelated facts the base "
                             f"model knew: {'; '.join(forgotten[:2])}{more}.")


FORGETTING = Exercise(
    id="forgetting",
    title="Show forgetting",
    goal="Training changes weights that other knowledge shares. Find an unrelated question the base model "
         "answers right and the learned arm now gets wrong.",
    steps=("On the **Learning** page train an adapter: *a scenario* → **pirate**, 40 steps, and untick *replay* "
           "(it is on by default, because it forgets less), then **Train**. It is activated when it finishes.",
           "Press **Check my work**. The check asks the scenario's unrelated (locality) questions — acme's "
           "when the scenario has none — to the base arm and to the learned arm.",
           "Nothing forgotten? Train again with more steps or a higher learning rate. Then tick *replay* again "
           "(with the default 60 steps: replay shares them) and see whether fewer facts are lost."),
    check=check_forgetting,
    looks_at=("adapters", "scenario"),
)


# ---- 3. poison the memory and repair it -------------------------------------------------------------

POISON_QUESTION = "What is the capital of France?"
POISON_NOTE = "The capital of France is Lyon."
POISON, TRUTH = r"\blyon\b", r"\bparis\b"


def check_poison_and_repair(ctx: Context) -> CheckResult:
    """Two stages, in order. Stage 1 is seen when a stored note saying Lyon is retrieved and the memory
    arm repeats it (recorded in ctx.state["poisoned"]). Stage 2 passes once, after that, no stored note
    says Lyon and the memory arm says Paris again."""
    ctx.progress(0, 1, f"asking the memory arm {quote(POISON_QUESTION)}")
    answer = _ask(ctx, POISON_QUESTION, "memory")
    retrieved = [h for h in answer.hits if target_matches(POISON, h.text)]
    if retrieved and target_matches(POISON, answer.answer):
        ctx.state["poisoned"] = {"ids": [h.id for h in retrieved], "answer": answer.answer, "at": time.time()}
        return CheckResult(False, f"Stage 1 of 2 done: the memory arm says {quote(answer.answer)} because of "
                                  f"{_hits(answer)}. Now delete that note (or undo) and check again.",
                           in_progress=True)
    if retrieved:
        return CheckResult(False, f"The bad note {_hits(answer)} is retrieved, but the model still says "
                                  f"{quote(answer.answer)}. Try k=1 so it is the only note, and check again.")
    if "poisoned" not in ctx.state:
        return CheckResult(False, f"Stage 1 not seen yet: the memory arm says {quote(answer.answer)}. Remember "
                                  f"{quote(POISON_NOTE)} and check while the memory arm repeats it.")
    stored = [m for m in ctx.session.memory.list() if target_matches(POISON, m.text)]
    if stored:
        return CheckResult(False, f"Note [{stored[0].id}] {quote(stored[0].text, 60)} is still stored (only "
                                  "hidden from this question): delete it or undo, then check again.")
    if not target_matches(TRUTH, answer.answer):
        return CheckResult(False, f"The bad note is gone, but the memory arm says {quote(answer.answer)}, not Paris.")
    return CheckResult(True, f"Repaired: it said {quote(ctx.state['poisoned']['answer'])} while the bad note was "
                             f"stored; with it deleted it says {quote(answer.answer)}. One deletion fixed it.")


POISON_AND_REPAIR = Exercise(
    id="poison-repair",
    title="Poison the memory and repair it",
    goal="Memory believes whatever it is told. Store a wrong correction, watch the model repeat it, then "
         "delete it and watch the answer recover — something a trained adapter cannot do so easily.",
    steps=(f"Remember the wrong note **{POISON_NOTE}** (the button below).",
           f"Press **Check my work**: the memory arm should now answer *{POISON_QUESTION}* with Lyon (stage 1).",
           "Delete the note: **Undo the last memory change** above, or *Edit or delete* on the **Memory** page.",
           "Press **Check my work** again: Lyon must be gone from the store and the answer back to Paris (stage 2)."),
    check=check_poison_and_repair,
    looks_at=("memory", "settings", "state"),
)


# ---- 4. behaviour generalises with learning, not with memory ----------------------------------------


def check_behaviour_generalises(ctx: Context) -> CheckResult:
    """Passes when, on the pirate scenario's held-out probes, the learned arm keeps the pirate voice more
    often than memory does either way: the examples retrieved, or the rule pinned into every prompt.
    Reports each way's prompt tokens per answer (the price of keeping a rule in context)."""
    pirate = load_scenario("pirate")
    stored = {m.text: m for m in ctx.session.memory.list()}
    remembered = sum(item.correction_text in stored for item in pirate.items)
    if remembered < len(pirate.items) // 2:
        return CheckResult(False, f"Only {remembered} of the {len(pirate.items)} pirate examples are in memory: "
                                  "load them (Load the pirate examples into memory, above) and check again.")
    rule = stored.get(pirate.rule)
    if rule is None or not rule.pinned:
        return CheckResult(False, "The pirate rule is not pinned yet: pin it (Pin the pirate rule, above), so the "
                                  "check can compare keeping the rule in every prompt with retrieving examples.")
    if missing := _need_adapter(ctx):
        return missing
    questions, n = [p.question for p in pirate.probes], len(pirate.probes)
    agent, options = ctx.session.agent, dict(k=ctx.settings.k, min_score=ctx.settings.threshold,
                                             max_tokens=EVAL_MAX_TOKENS)
    # Four batches of the ten questions; each is one call to the model, so progress is per batch.
    asks = {"retrieved": ("memory without the rule", dict(exclude_ids={rule.id})),
            "pinned": ("memory with the rule pinned", {}), "learned": ("the learned arm", {}),
            "base": ("the base arm, for the token counts", {})}
    ways = {}
    for number, (way, (label, extra_options)) in enumerate(asks.items()):
        ctx.progress(number, len(asks), f"asking the {n} held-out questions to {label} "
                                        f"({number + 1} of {len(asks)})")
        arm = way if way in ("learned", "base") else "memory"
        ways[way] = agent.answer_many(questions, arm, **options, **extra_options)
    base = ways.pop("base")
    follows = {way: [p.matches(a.answer) for p, a in zip(pirate.probes, answers)]
               for way, answers in ways.items()}
    followed = {way: sum(marks) for way, marks in follows.items()}
    extra = {way: round(sum(a.prompt_tokens - b.prompt_tokens for a, b in zip(answers, base)) / n)
             for way, answers in ways.items()}
    example = habit_examples(questions, {way: [a.answer for a in answers] for way, answers in ways.items()}, follows)
    seen = (f"held-out questions answered like a pirate: examples retrieved {followed['retrieved']}/{n} "
            f"(+{extra['retrieved']} prompt tokens per answer), rule pinned {followed['pinned']}/{n} "
            f"(+{extra['pinned']} tokens), learned {followed['learned']}/{n} (+0: adapter "
            f"{ctx.session.adapters.active_name()!r}); {example}")
    if followed["learned"] > max(followed["retrieved"], followed["pinned"]):
        return CheckResult(True, f"{seen}. The adapter carries the habit in its weights; memory needs the rule "
                                 "in the prompt, and pays for it on every answer.")
    return CheckResult(False, f"{seen}. Learned is not ahead: train an adapter on the pirate scenario and check again.")


def habit_examples(questions: list[str], replies: dict[str, list[str]], follows: dict[str, list[bool]]) -> str:
    """Two quoted answers that agree with the counts beside them: one that shows the habit and one
    that does not, each with the way (arm) that gave it. The learned arm's are preferred, and a
    habit shown where the pinned rule missed it, since that is the contrast the exercise is about.

    habit_examples(["Q1?", "Q2?"], {"learned": ["Madrid.", "Arr, Rome!"], "pinned": ["Madrid.", "Rome."]},
                   {"learned": [False, True], "pinned": [False, False]})
    -> 'with the habit: "Q2?" learned "Arr, Rome!" (pinned "Rome."); without it: "Q1?" learned "Madrid."'
    """
    ways = [w for w in ("learned", "pinned", "retrieved") if w in follows]

    def find(want: bool) -> tuple[str, int] | None:
        for way in ways:
            indices = [i for i, ok in enumerate(follows[way]) if ok == want]
            if want and way == "learned":  # where memory missed it: the adapter's advantage, shown
                indices.sort(key=lambda i: follows.get("pinned", [False] * len(questions))[i])
            if indices:
                return way, indices[0]
        return None

    shown, missed = find(True), find(False)
    parts = []
    if shown:
        way, i = shown
        contrast = (f" (pinned {quote(replies['pinned'][i], 60)})"
                    if way == "learned" and "pinned" in follows and not follows["pinned"][i] else "")
        # Whole, or nearly: the habit may show only at the end ("…, matey").
        parts.append(f"with the habit: {quote(questions[i])} {way} {quote(replies[way][i])}{contrast}")
    else:
        parts.append("no answer showed the habit")
    if missed:
        way, i = missed
        parts.append(f"without it: {quote(questions[i])} {way} {quote(replies[way][i])}")
    else:
        parts.append("every answer showed it")
    return "; ".join(parts)


def remember_pirate_examples(session) -> int:
    """Helper for exercise 4 (the student's action, not a check): add the pirate examples not yet stored."""
    pirate = load_scenario("pirate")
    stored = {m.text for m in session.memory.list()}
    new = [{"text": i.correction_text, "question": i.question, "answer": i.answer, "source": "scenario:pirate"}
           for i in pirate.items if i.correction_text not in stored]
    return len(session.memory.add_many(new)) if new else 0


def pin_pirate_rule(session) -> str:
    """Helper for exercise 4: pin the pirate rule (stored first if need be). Returns what was done."""
    rule = load_scenario("pirate").rule
    stored = session.memory.find_text(rule)
    if stored is None:
        session.remember(rule, source="scenario:pirate", pinned=True)
    elif not stored.pinned:
        session.pin(stored.id)
    else:
        return "The pirate rule is already pinned."
    return f"Pinned the rule: {session.pinned_tokens()} prompt tokens now go with every memory-arm answer."


BEHAVIOUR = Exercise(
    id="behaviour",
    title="Behaviour: learning generalises, memory has to carry it",
    goal="Twelve examples answer like a pirate. On new questions, which keeps the habit: memory retrieving the "
         "examples, memory with the rule pinned into every prompt, or an adapter trained on the examples?",
    steps=("Load the pirate examples into memory (button below).",
           "Pin the pirate rule (button below): agents keep rules like this in every prompt. Watch the pinned "
           "tokens on the **Memory** page.",
           "Train an adapter on the **pirate** scenario on the **Learning** page; it is activated when done.",
           "Press **Check my work**: ten held-out questions, never stored or trained on, go to memory without the "
           "rule, memory with it, and the learned arm. The learned arm must sound like a pirate more often."),
    check=check_behaviour_generalises,
    looks_at=("memory", "adapters", "settings"),
)


# ---- 5. predict the wipe test --------------------------------------------------------------------

PREDICTION_CHOICES = ("keeps", "loses")


def save_prediction(state: dict, prediction: dict[str, str]) -> None:
    """Record a prediction per arm; a wipe test run before this moment no longer counts."""
    for arm, guess in prediction.items():
        if arm not in ("memory", "learned") or guess not in PREDICTION_CHOICES:
            raise LabError(f"a prediction is memory/learned → keeps/loses, got {arm}={guess!r}")
    state["prediction"], state["predicted_at"] = dict(prediction), time.time()


def run_wipe_test(session, scenario_name: str, state: dict) -> dict:
    """Helper for exercise 5 (the student's action): the wipe test on `scenario_name`, learned arm
    included when an adapter is active. wipe_test gives the memory back afterwards."""
    arms = ["base", "memory"] + (["learned"] if session.adapters.active() else [])
    report = wipe_test(session, load_scenario(scenario_name), arms)
    state["report"], state["report_at"] = report, time.time()
    return report


def check_wipe_prediction(ctx: Context) -> CheckResult:
    """Passes when the prediction, made before the run, matches survivors() of the wipe-test report."""
    prediction, report = ctx.state.get("prediction"), ctx.state.get("report")
    if not prediction:
        return CheckResult(False, "No prediction yet: choose keeps or loses for each arm and save it first.")
    if not report:
        return CheckResult(False, "Prediction saved; now run the wipe test (Run the wipe test, above).")
    if ctx.state.get("report_at", 0) < ctx.state.get("predicted_at", 0):
        return CheckResult(False, "That wipe test ran before your latest prediction: run it again.")
    return compare_prediction(prediction, report["before"], report["after"])


WIPE_PREDICTION = Exercise(
    id="wipe-prediction",
    title="Predict the wipe test",
    goal="Both memory and learning can fix the answers. If the memory is wiped, which fix survives? "
         "Commit to a guess before you look.",
    steps=("No adapter trained on the wipe test's scenario yet? Press **Train the learned arm** below first "
           "(beside it: how long it should take on this server), so learning is in the test too.",
           "For the memory arm and the learned arm choose *keeps* or *loses* below and **Save my prediction**.",
           "Press **Run the wipe test** below (the same test as the **Wipe Test** page: remember the scenario, "
           "evaluate, wipe, evaluate again; your own memory is put back afterwards).",
           "Press **Check my work**: your prediction is compared with what survived."),
    check=check_wipe_prediction,
    looks_at=("state",),
)


# ---- 6. a threshold that keeps an unrelated note out ----------------------------------------------

NEAR_MISS_QUESTION = "How long is the warranty on a new laptop?"  # scores about 0.3 against the refund note


def check_threshold(ctx: Context) -> CheckResult:
    """Passes when, at the chosen threshold (ctx.state["threshold"]), the refund question still retrieves
    the refund note and the memory arm says 45, while the laptop question retrieves nothing."""
    threshold = float(ctx.state.get("threshold", ctx.settings.threshold))
    memory, k = ctx.session.memory, ctx.settings.k
    if not any(target_matches(REFUND_TARGET, m.text) for m in memory.list()):
        return CheckResult(False, f"No note about the 45-day refund window is stored: remember {quote(REFUND_NOTE)}.")
    at = replace(ctx, settings=replace(ctx.settings, threshold=threshold))
    leaked = memory.search(NEAR_MISS_QUESTION, k=k, min_score=threshold)
    if leaked:
        ctx.progress(0, 1, f"asking the memory arm {quote(NEAR_MISS_QUESTION)}")
        answer = _ask(at, NEAR_MISS_QUESTION, "memory")
        return CheckResult(False, f"At threshold {threshold:.2f} the laptop question still pulls in "
                                  f"{_hits(answer)} and the memory arm says {quote(answer.answer)}: raise it.")
    related = [h for h in memory.search(REFUND_QUESTION, k=k, min_score=threshold)
               if target_matches(REFUND_TARGET, h.text)]
    if not related:
        best = memory.search(REFUND_QUESTION, k=1, min_score=-1.0)
        return CheckResult(False, f"At threshold {threshold:.2f} the refund question retrieves no refund note "
                                  f"either (its best score is {best[0].score:.2f}): lower it.")
    ctx.progress(0, 1, f"asking the memory arm {quote(REFUND_QUESTION)}")
    answer = _ask(at, REFUND_QUESTION, "memory")
    if not target_matches(REFUND_TARGET, answer.answer):
        return CheckResult(False, f"The refund note is retrieved but the memory arm says {quote(answer.answer)}.")
    nearest = memory.search(NEAR_MISS_QUESTION, k=1, min_score=-1.0)
    return CheckResult(True, f"At threshold {threshold:.2f} the laptop question retrieves nothing (best score "
                             f"{nearest[0].score:.2f}) and the refund question still gets note [{related[0].id}] "
                             f"(score {related[0].score:.2f}): the memory arm says {quote(answer.answer)}.")


THRESHOLD = Exercise(
    id="threshold",
    title="Find the threshold that keeps an unrelated note out",
    goal="Retrieval returns the closest notes even when none is relevant, and a small model copies whatever "
         "it is given. The similarity threshold decides what counts as relevant.",
    steps=(f"Make sure the note **{REFUND_NOTE}** is stored (exercise 1).",
           f"With the threshold below at 0, press **Ask the laptop question**: the memory arm is asked "
           f"*{NEAR_MISS_QUESTION}* and the refund note leaks into an answer about laptops.",
           "Raise the threshold until **Check my work** passes: the laptop question retrieves nothing while the "
           "refund question still gets its note."),
    check=check_threshold,
    looks_at=("memory", "settings", "state"),
)


# ---- 7. a fact changed: memory is edited, the adapter keeps the old value --------------------------

# changing-facts.json's Kestrel Hotel item (tests/test_workshop.py checks they agree): invented
# people, so only what was remembered or trained can name them.
CHANGED_QUESTION = "Who is the manager of the Kestrel Hotel?"
OLD_FACT = "The manager of the Kestrel Hotel is Tomasz Wierzbicki."
NEW_FACT = "The manager of the Kestrel Hotel is Amara Okafor."
OLD_VALUE, NEW_VALUE = r"Tomasz|Wierzbicki", r"Amara|Okafor"


def remember_old_fact(session) -> int:
    """Helper for exercise 7 (the student's action): remember the old manager, unless a note
    already names them. Returns the note's id."""
    stored = next((m for m in session.memory.list() if target_matches(OLD_VALUE, m.text)), None)
    if stored is not None:
        return stored.id
    return session.memory.add(OLD_FACT, question=CHANGED_QUESTION, answer=OLD_FACT, source="workshop").id


def check_fact_changed(ctx: Context) -> CheckResult:
    """Passes when the memory names the new manager and not the old one, the memory arm gives the new
    one, and the learned arm (an adapter trained on the old facts) still gives the old one."""
    notes = ctx.session.memory.list()
    old = [m for m in notes if target_matches(OLD_VALUE, m.text)]
    new = [m for m in notes if target_matches(NEW_VALUE, m.text)]
    if old:
        hint = (" Edit it in place (the Memory page's Edit or delete, or Edit the note in place above) to "
                f"{quote(NEW_FACT)}." if not new else " Two notes now disagree: delete or edit the old one.")
        return CheckResult(False, f"Note [{old[0].id}] {quote(old[0].text, 60)} still names the old manager.{hint}")
    if not new:
        return CheckResult(False, f"No note names the manager yet: remember {quote(OLD_FACT)} first (Remember the "
                                  "old manager, above).")
    if missing := _need_adapter(ctx):
        return missing
    ctx.progress(0, 2, f"asking the memory arm {quote(CHANGED_QUESTION)}")
    memory = _ask(ctx, CHANGED_QUESTION, "memory")
    ctx.progress(1, 2, "asking the learned arm the same question")
    learned = _ask(ctx, CHANGED_QUESTION, "learned")
    seen = f"memory arm said {quote(memory.answer)}; learned arm said {quote(learned.answer)}"
    edited = new[0].updated_at != new[0].created_at
    how = f"note [{new[0].id}] was edited in place" if edited else f"note [{new[0].id}] names the new manager"
    if not target_matches(NEW_VALUE, memory.answer):
        return CheckResult(False, f"{seen}. The {how}, but the memory arm does not name Amara Okafor: retrieved "
                                  f"{_hits(memory)}.")
    if target_matches(NEW_VALUE, learned.answer):
        return CheckResult(False, f"{seen}. The learned arm already names the new manager: its adapter "
                                  f"{ctx.session.adapters.active_name()!r} was trained on the new facts. Activate "
                                  "one trained on the old facts (Train the learned arm on the old facts, above) "
                                  "and check again.", in_progress=True)
    if not target_matches(OLD_VALUE, learned.answer):
        return CheckResult(False, f"{seen}. The learned arm names neither manager: its adapter "
                                  f"{ctx.session.adapters.active_name()!r} never learnt this fact. Train it on the "
                                  "old facts (Train the learned arm on the old facts, above) and check again.")
    return CheckResult(True, f"{seen}. The {how}, and the very next answer used it; the adapter still holds "
                             "Tomasz Wierzbicki in its weights and will until it is retrained on the new facts "
                             "(the Update Test page times both).")


FACT_CHANGED = Exercise(
    id="fact-changed",
    title="A fact changed",
    goal="The Kestrel Hotel has a new manager: Tomasz Wierzbicki left, Amara Okafor took over. A note in memory "
         "is edited in milliseconds; a fact trained into an adapter stays until the adapter is retrained.",
    steps=("Press **Remember the old manager** below: the note names Tomasz Wierzbicki.",
           "Press **Train the learned arm on the old facts** below (the changing-facts scenario as it was; "
           "reused in a second if this server trained it before). It is activated when it finishes.",
           f"The manager changes. Edit the note in place to **{NEW_FACT}** (the **Memory** page's *Edit or "
           "delete*, or **Edit the note in place** below).",
           "Press **Check my work**: the memory arm must name Amara Okafor, the learned arm still Tomasz "
           "Wierzbicki. Then open the **Update Test** page to time the edit against a retraining."),
    check=check_fact_changed,
    looks_at=("memory", "adapters", "settings"),
)

# ---- 8. consolidate what proved itself: the note becomes weights, and retires ------------------------

CONSOLIDATE_QUESTION = "How many vacation days do Acme Corp employees get?"
CONSOLIDATE_NOTE = "Acme Corp employees get 28 vacation days a year."
CONSOLIDATE_VALUE = r"\b28\b"


def prove_vacation_note(session) -> str:
    """Helper for exercise 8 (the student's action): remember the vacation note if need be, ask the memory
    arm its question three times and press *Why?* once, as a student using the note would."""
    from lab.attribution import explain

    stored = session.memory.find_text(CONSOLIDATE_NOTE)
    if stored is None:
        stored = session.memory.add(CONSOLIDATE_NOTE, question=CONSOLIDATE_QUESTION, answer=CONSOLIDATE_NOTE,
                                    source="workshop")
    for _ in range(3):
        session.agent.answer(CONSOLIDATE_QUESTION, "memory", max_tokens=EVAL_MAX_TOKENS)
    result = explain(session.agent, CONSOLIDATE_QUESTION)
    usage = session.memory.usage().get(stored.id)
    decisive = "it was decisive" if stored.id in result.decisive else "leaving it out did not change the answer"
    return (f"Note [{stored.id}] was sent into {usage.retrievals if usage else 0} answers; *Why?* left it out: "
            f"{decisive}.")


def check_consolidated(ctx: Context) -> CheckResult:
    """Passes when the vacation note has been retired into an adapter, and that adapter, with no note at
    all, answers the question right. Reports the memory arm's prompt tokens the retirement saved."""
    from lab.pinned import note_tokens

    memory = ctx.session.memory
    if memory.find_text(CONSOLIDATE_NOTE) is not None:
        return CheckResult(False, "The vacation note is still in memory: consolidate it on the Learning page "
                                  "with “Retire the notes the adapter verifies” ticked.")
    retired = [r for r in memory.retired() if r["text"] == CONSOLIDATE_NOTE]
    if not retired:
        return CheckResult(False, f"No note says {quote(CONSOLIDATE_NOTE)} yet: press Use the vacation note, "
                                  "above, first.")
    adapter = retired[-1]["adapter"]
    if adapter not in [a.name for a in ctx.session.adapters.list()]:
        return CheckResult(False, f"The note was retired into the adapter {adapter!r}, which is gone now: undo the "
                                  "retirement on the Memory page and consolidate again.")
    ctx.progress(0, 1, f"asking adapter {adapter!r}, with no note, {quote(CONSOLIDATE_QUESTION)}")
    learned = _ask(ctx, CONSOLIDATE_QUESTION, "learned", adapter=adapter)
    seen = f"adapter {adapter!r}, with no note, said {quote(learned.answer)}"
    if not target_matches(CONSOLIDATE_VALUE, learned.answer):
        return CheckResult(False, f"{seen}: not 28. Undo the retirement on the Memory page and consolidate again "
                                  "with more steps.")
    from lab.consolidation import memory_prompts

    saved = note_tokens(ctx.session.engine, CONSOLIDATE_NOTE)
    # As the Learning page says it: a note that passes the threshold may take the retired note's place.
    _, fillers = memory_prompts(ctx.session, [CONSOLIDATE_QUESTION])
    place = (f"; but {', '.join(f'[{i}]' for i in sorted(fillers))}, which also pass{'es' if len(fillers) == 1 else ''} "
             "the retrieval threshold, took its place there, so that prompt is no shorter (a higher threshold "
             "keeps unrelated notes out)" if fillers else ", which is that much shorter")
    return CheckResult(True, f"{seen}. The fact moved from memory into the weights: the note's {saved} prompt "
                             f"tokens left the memory arm's prompt for this question{place}. The answer stays.")


CONSOLIDATE = Exercise(
    id="consolidate",
    title="Consolidate what proved itself",
    goal="Memory is the staging ground. A note that keeps being used, and makes the difference when it is left "
         "out, has proved itself: train it into the weights, check the adapter answers without it, retire it.",
    steps=("Press **Use the vacation note** below: it remembers the note, asks its question three times and "
           "presses *Why?* once, so the note has a record of being sent and being decisive.",
           "On the **Learning** page, under *Consolidate what proved itself*, tick the vacation note (show every "
           "memory if it is not listed: a note counts as proven only once it has gone unedited for half an "
           "hour), keep *Retire the notes the adapter verifies* ticked, and press **Consolidate**.",
           "Press **Check my work**: the note must be retired, and its adapter must answer 28 without it."),
    check=check_consolidated,
    looks_at=("memory", "adapters"),
)


EXERCISES = (MEMORY_ANSWER, FORGETTING, POISON_AND_REPAIR, BEHAVIOUR, WIPE_PREDICTION, THRESHOLD, FACT_CHANGED,
             CONSOLIDATE)


# ---- running checks and keeping progress -------------------------------------------------------


def run_check(exercise: Exercise, session, settings: LinkSettings, progress: dict,
              on_progress: Callable[[int, int, str], None] | None = None) -> CheckResult:
    """Run one exercise's check and record it in `progress` ({id: {"done", "result", "judged", "state"}}).
    `done` stays true once the exercise has passed, even if later work undoes it. `judged` holds
    digests of what the verdict rests on, so a page can tell when it no longer holds."""
    entry = progress.setdefault(exercise.id, {})
    state = entry.setdefault("state", {})
    result = exercise.check(Context(session, settings, state, on_progress))
    entry["result"] = asdict(result)
    entry["judged"] = judged(exercise, lab_snapshot(session, settings, exercise.looks_at), state)
    entry["done"] = bool(entry.get("done")) or result.passed
    return result


# ---- does a verdict still hold? ------------------------------------------------------------------

# What each part of a verdict's ground is called on the page.
PART_NAMES = {"memory": "your memory", "adapters": "your adapters", "settings": "the settings (k, threshold)",
              "scenario": "the scenario", "state": "what you saved in this exercise"}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def lab_snapshot(session, settings: LinkSettings,
                 parts=("memory", "adapters", "settings", "scenario")) -> dict[str, str]:
    """Short digests of what checks look at: the memories' contents (times left out, so a wipe
    test that gives the memory back leaves it equal), the adapters (a retrained file counts) and
    the settings. Only the `parts` asked for are read."""
    snapshot = {}
    if "memory" in parts:
        snapshot["memory"] = _digest([(m.id, m.text, m.question, m.answer, m.pinned) for m in session.memory.list()])
    if "adapters" in parts:
        snapshot["adapters"] = _digest([(a.name, a.active, a.path.stat().st_mtime_ns if a.path.exists() else 0)
                                        for a in session.adapters.list()])
    if "settings" in parts:
        snapshot["settings"] = _digest([settings.k, float(settings.threshold)])
    if "scenario" in parts:
        snapshot["scenario"] = _digest(settings.scenario)
    return snapshot


def judged(exercise: Exercise, snapshot: dict[str, str], state: dict) -> dict[str, str]:
    """The digests an exercise's verdict rests on: its `looks_at` parts of the snapshot, and its state."""
    return {part: _digest(state) if part == "state" else snapshot[part] for part in exercise.looks_at}


def changed_since(exercise: Exercise, entry: dict, snapshot: dict[str, str]) -> list[str]:
    """What changed since the entry's verdict was given (names of PART_NAMES); [] while it holds,
    or when the verdict predates these records.

    changed_since(POISON_AND_REPAIR, {"judged": {"memory": "a", ...}}, {"memory": "b", ...}) -> ["memory"]"""
    before = entry.get("judged")
    if not isinstance(before, dict) or "result" not in entry:
        return []
    now = judged(exercise, snapshot, entry.get("state", {}))
    return [part for part in exercise.looks_at if before.get(part) != now[part]]


def stale_notice(changed: list[str], done: bool) -> str:
    """One line for a verdict that no longer holds: stale_notice(["memory"], False) ->
    'Your memory changed since the last check, so its verdict no longer holds: press Check my work again.'"""
    what = " and ".join(PART_NAMES[part] for part in changed)
    kept = " You finished this exercise earlier; it stays done." if done else ""
    return f"{what[0].upper()}{what[1:]} changed since the last check, so its verdict no longer holds: press " \
           f"Check my work again.{kept}"


# ---- how long a training takes here --------------------------------------------------------------


def training_estimate_s(steps: int) -> float:
    """Seconds a training of `steps` steps should take on this server, to say before pressing Train:
    the pace of the latest training stored here (its meta: setup and export, then train_seconds
    over its steps), or before any, the README's measured rates (lab/experiments.py)."""
    from lab.experiments import SECONDS_PER_ADAPTER, SECONDS_PER_TRAINING_STEP
    from lab.training_cache import TrainingCache

    def modified(path):
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    for path in sorted(TrainingCache().directory.glob("*/meta.json"), key=modified, reverse=True):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            trained_steps, seconds, training = int(meta["config"]["steps"]), float(meta["seconds"]), \
                float(meta["train_seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged or half-written entry says nothing about the pace
        if trained_steps > 0 and seconds >= training > 0:
            return (seconds - training) + training / trained_steps * steps
    return SECONDS_PER_ADAPTER + SECONDS_PER_TRAINING_STEP * steps


def load_progress(workspace) -> dict:
    """The saved progress of a workspace, or {} when there is none (or it is unreadable)."""
    try:
        data = json.loads((workspace.results_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # Keep only well-formed entries: a hand-edited file must not break the page.
    return {key: entry for key, entry in data.items()
            if isinstance(entry, dict) and isinstance(entry.get("state", {}), dict)}


def save_progress(workspace, progress: dict) -> None:
    write_json_atomic(workspace.results_dir / PROGRESS_FILE, progress)
