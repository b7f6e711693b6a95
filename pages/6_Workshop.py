"""Workshop: guided exercises, each checked against what is really in the lab (lab/workshop.py)."""

import streamlit as st

import ui
from lab import workshop
from lab.agent import ARMS
from lab.errors import LabError
from lab.links import build_link
from lab.jobs import TrainingJob
from lab.learning import TrainingConfig
from lab.scenario import bundled_names, load_scenario

DONE_ICON, OPEN_ICON = ":material/check_circle:", ":material/radio_button_unchecked:"


def sent_notes(hits) -> str:
    """The notes an answer was sent, as literal text: pinned ones as pinned (they go into every
    prompt whatever they score), retrieved ones with the score that chose them."""
    pinned = "; ".join(f"[{h.id}] {ui.literal_markdown(h.text)}" for h in hits if h.pinned)
    retrieved = "; ".join(f"[{h.id}] {ui.literal_markdown(h.text)} ({h.score:.2f})" for h in hits if not h.pinned)
    return (f"pinned (in every prompt): {pinned} · " if pinned else "") + f"retrieved: {retrieved or 'none'}"


st.set_page_config(page_title="Workshop · Memory vs Learning Lab", layout="wide")
st.title("Workshop")
st.caption("Guided exercises. Each check looks at your workspace's real memory and adapters and asks the "
           "model afresh: there is nothing to tick by hand.")
key = ui.keys("workshop")
lab = ui.session()
teacher = ui.teacher_mode()
settings = ui.link_settings()
bar = st.empty()  # filled at the end, once this run's checks are counted

# The visit's settings are the defaults. Teacher mode hides the fine-tuning: the class gets the link's.
if not teacher:
    with st.sidebar:
        st.subheader("Settings")
        names = bundled_names()
        st.selectbox("scenario (forgetting, wipe test)", names, index=names.index(settings.scenario),
                     key=key("scenario"), on_change=lambda: ui.update_link(scenario=st.session_state[key("scenario")]))
        st.number_input("memories to retrieve (k)", 1, 50, settings.k, key=key("k"),
                        on_change=lambda: ui.update_link(k=int(st.session_state[key("k")])))
        st.slider("similarity threshold", -1.0, 1.0, float(settings.threshold), 0.05, key=key("threshold"),
                  on_change=lambda: ui.update_link(threshold=st.session_state[key("threshold")]))
settings = ui.current_settings()

# Progress is read from the workspace on every run (it is saved there after each change), so a
# reload, or the same link in a new tab, shows exactly what was done.
progress = workshop.load_progress(lab.workspace)

with st.container(border=True):
    st.markdown("**Try it here**: the same calls as the Playground, with the settings in the sidebar.")
    question_col, arm_col = st.columns([4, 1])
    question = question_col.text_input("Question", workshop.REFUND_QUESTION, key=key("question"))
    arm = arm_col.selectbox("Arm", ARMS, index=ARMS.index(settings.arm), key=key("arm"),
                            on_change=lambda: ui.update_link(arm=st.session_state[key("arm")]),
                            disabled=ui.settings_locked())
    note = st.text_input("A note to remember", key=key("note"),
                         help=f"For exercise 1, type: {workshop.REFUND_NOTE}")
    ask_col, remember_col, undo_col = st.columns(3)
    try:
        if ask_col.button("Ask", key=key("ask"), type="primary"):
            st.session_state[key("answer")] = lab.agent.answer(question, arm, k=settings.k,
                                                               min_score=settings.threshold)
        if remember_col.button("Remember", key=key("remember")):
            if not note.strip():
                st.error("Type a note first, then press Remember.")
            else:
                st.success(f"Remembered [{lab.memory.add(note, unique=True).id}].")
        if undo_col.button("Undo the last memory change", key=key("undo")):
            st.info(ui.literal_markdown(lab.memory.undo()))
    except LabError as error:
        ui.show_error(error)
    if answer := st.session_state.get(key("answer")):
        st.markdown(f"**{answer.arm}:** {ui.literal_markdown(answer.answer)}")
        if answer.arm in ("memory", "both"):
            st.caption(sent_notes(answer.hits))
    lab_status = st.empty()


def show_status():
    """The workspace line: drawn now, and again at the end of the run, after the exercises' buttons,
    so its counts include what they did (a check that runs meanwhile leaves it in place)."""
    count = len(lab.memory)
    lab_status.caption(f"workspace `{lab.workspace.name}` · {count} {'memory' if count == 1 else 'memories'} · "
                       f"adapter: {lab.adapters.active_name() or 'none'}")


show_status()


def training_panel():
    """The wipe exercise's training: its place in the queue, its progress, then one notice."""
    job = st.session_state.get(key("job"))
    if job is None or st.session_state.get(key("job_shown")) is job:
        return
    ui.training_progress(job, key)
    if job.state == "done":
        st.session_state[key("job_shown")] = job
        result = job.result
        how = (f"reused the same training done earlier on this server ({result.seconds:.1f} s)" if result.reused
               else f"in {result.seconds:.0f} s")
        st.session_state[key("trained_notice")] = (f"Trained {result.name!r} on the {job.scenario.name} "
                                                   f"corrections, {how}; it is active.")
        st.rerun(scope="app")  # the predictions below now include the learned arm
    elif job.finished:
        st.warning(job.error)


# Helpers that shorten a step. They change the lab because the student asks them to; checks never do.
def poison_helpers(state):
    if st.button("Remember the wrong note", key=key("poison")):
        st.success(f"Remembered [{lab.memory.add(workshop.POISON_NOTE).id}] {workshop.POISON_NOTE}")


def behaviour_helpers(state):
    load, pin = st.columns(2)
    if load.button("Load the pirate examples into memory", key=key("pirate")):
        st.success(f"Added {workshop.remember_pirate_examples(lab)} pirate examples.")
    if pin.button("Pin the pirate rule", key=key("pirate_rule")):
        try:
            st.success(workshop.pin_pirate_rule(lab))
        except LabError as error:
            ui.show_error(error)


def wipe_helpers(state):
    scenario = load_scenario(settings.scenario)
    active = lab.adapters.active()
    if not (active and active.meta.get("source") == f"scenario:{scenario.name}"):
        why = (f"The active adapter **{active.name}** was not trained on {scenario.name}" if active
               else "No adapter is active")
        estimate = workshop.training_estimate_s(TrainingConfig().steps)  # the steps TrainingJob uses
        st.info(f"{why}, so the learned arm would have nothing to keep or lose in this test. Training it takes "
                f"about {estimate:.0f} s on this server, at the pace of its last training.")
        job = st.session_state.get(key("job"))
        if st.button(f"Train the learned arm on the {scenario.name} corrections first", key=key("train"),
                     disabled=bool(job and not job.finished)):
            try:
                st.session_state[key("job")] = TrainingJob(lab, name=lab.adapters.free_name(scenario.name),
                                                           scenario=scenario).start()
            except LabError as error:
                ui.show_error(error)
        job = st.session_state.get(key("job"))
        # Polls only while the training is queued or runs (see ui.poll_while).
        ui.poll_while(bool(job and not job.finished))(training_panel)()
    if notice := st.session_state.get(key("trained_notice")):
        st.success(notice)
    arms = ["memory"] + (["learned"] if lab.adapters.active() else [])
    guesses = {arm: st.radio(f"After the wipe the **{arm}** arm…", workshop.PREDICTION_CHOICES, horizontal=True,
                             key=key(f"predict-{arm}"), format_func=lambda c: f"{c} the improvement")
               for arm in arms}
    save_col, run_col = st.columns(2)
    if save_col.button("Save my prediction", key=key("save_prediction")):
        workshop.save_prediction(state, guesses)
        workshop.save_progress(lab.workspace, progress)
    if run_col.button(f"Run the wipe test ({settings.scenario})", key=key("run_wipe"),
                      disabled="prediction" not in state):
        with st.status("Running the wipe test: remembering, evaluating, wiping, evaluating again…") as status:
            report = workshop.run_wipe_test(lab, settings.scenario, state)
            status.update(label=f"Wipe test finished in {report['seconds']:.0f} s. Now press Check my work.",
                          state="complete")
        workshop.save_progress(lab.workspace, progress)
    if "prediction" in state:
        st.caption("Saved prediction: " + ", ".join(f"{arm} {guess}" for arm, guess in state["prediction"].items()))


def threshold_helpers(state):
    # Starts where it was saved, so a reload does not undo the threshold the verdict was given at.
    if key("exercise_threshold") not in st.session_state:
        st.session_state[key("exercise_threshold")] = float(state.get("threshold", 0.0))
    state["threshold"] = st.slider("threshold for this exercise", 0.0, 1.0, step=0.05, key=key("exercise_threshold"))
    if st.button("Ask the laptop question at this threshold", key=key("ask_laptop")):
        answer = lab.agent.answer(workshop.NEAR_MISS_QUESTION, "memory", k=settings.k, min_score=state["threshold"])
        st.markdown(f"**memory:** {ui.literal_markdown(answer.answer)}")
        st.caption(sent_notes(answer.hits))




def fact_changed_panel():
    """Exercise 7's training: its place in the queue and its progress, then one notice."""
    job = st.session_state.get(key("fact_job"))
    if job is None or st.session_state.get(key("fact_job_shown")) is job:
        return
    ui.training_progress(job, lambda name: key(f"fact_{name}"))
    if job.state == "done":
        st.session_state[key("fact_job_shown")] = job
        how = "reused from this server" if job.result.reused else f"in {job.result.seconds:.0f} s"
        st.session_state[key("fact_notice")] = f"Trained {job.result.name!r} on the old facts ({how}); it is active."
        st.rerun(scope="app")
    elif job.finished:
        st.warning(job.error)


def fact_changed_helpers(state):
    from lab.update_test import default_config

    st.caption(f"Training on the old facts takes about {workshop.training_estimate_s(default_config().steps):.0f} s "
               "on this server, at the pace of its last training (a second if it was trained here before).")
    old_col, train_col, edit_col = st.columns(3)
    if old_col.button("Remember the old manager", key=key("fact_old")):
        st.success(f"Note [{workshop.remember_old_fact(lab)}] names the old manager.")
    job = st.session_state.get(key("fact_job"))
    if train_col.button("Train the learned arm on the old facts", key=key("fact_train"),
                        disabled=bool(job and not job.finished)):
        try:
            facts = load_scenario("changing-facts").before_update()
            st.session_state[key("fact_job")] = TrainingJob(lab, name=lab.adapters.free_name("changing-facts-old"),
                                                            scenario=facts, config=default_config()).start()
        except LabError as error:
            ui.show_error(error)
    if edit_col.button("Edit the note in place", key=key("fact_edit")):
        old = [m for m in lab.memory.list() if workshop.target_matches(workshop.OLD_VALUE, m.text)]
        if not old:
            st.info("No note names the old manager: remember it first.")
        for memory in old:
            lab.memory.update(memory.id, text=workshop.NEW_FACT, answer=workshop.NEW_FACT)
            st.success(f"Note [{memory.id}] now says: {workshop.NEW_FACT}")
    job = st.session_state.get(key("fact_job"))
    ui.poll_while(bool(job and not job.finished))(fact_changed_panel)()
    if notice := st.session_state.get(key("fact_notice")):
        st.success(notice)


def consolidate_helpers(state):
    if st.button("Use the vacation note", key=key("prove_note")):
        try:
            with st.spinner("remembering, asking three times, then Why?…"):
                st.success(workshop.prove_vacation_note(lab))
        except LabError as error:
            ui.show_error(error)
    ui.page_link("pages/4_Learning.py", "Open the Learning page to consolidate", icon=":material/school:")


HELPERS = {"poison-repair": poison_helpers, "behaviour": behaviour_helpers,
           "wipe-prediction": wipe_helpers, "threshold": threshold_helpers, "fact-changed": fact_changed_helpers,
           "consolidate": consolidate_helpers}

first_open = next((e.id for e in workshop.EXERCISES if not progress.get(e.id, {}).get("done")), None)
verdicts = []  # (exercise, entry, slot): drawn after every exercise's buttons have run
for number, exercise in enumerate(workshop.EXERCISES, 1):
    entry = progress.setdefault(exercise.id, {})
    state = entry.setdefault("state", {})
    # Streamlit's own icons: emoji check boxes render as empty squares in Debian's chromium.
    with st.expander(f"{number}. {exercise.title}", icon=DONE_ICON if entry.get("done") else OPEN_ICON,
                     expanded=exercise.id in st.session_state.get(key("open"), [first_open])):
        st.markdown(f"**Goal.** {exercise.goal}")
        st.markdown("\n".join(f"{i}. {step}" for i, step in enumerate(exercise.steps, 1)))
        try:
            if exercise.id in HELPERS:
                HELPERS[exercise.id](state)
            if st.button("Check my work", key=key(f"check-{exercise.id}"), type="primary"):
                shown = st.empty()

                def show_progress(done, total, what):  # a check can take a minute or more: say which step
                    shown.progress(min(1.0, done / total) if total else 0.0, text=f"Checking: {what}…")

                show_progress(0, 1, "starting")
                result = workshop.run_check(exercise, lab, settings, progress, show_progress)
                workshop.save_progress(lab.workspace, progress)
                # This one stays open with its verdict; once it passes, the next open exercise unfolds too.
                following = [e.id for e in workshop.EXERCISES[number:] if not progress.get(e.id, {}).get("done")]
                st.session_state[key("open")] = [exercise.id] + (following[:1] if result.passed else [])
                st.rerun()  # redraw the marks and the progress bar
        except LabError as error:
            ui.show_error(error)
        verdicts.append((exercise, entry, st.empty()))
        if not teacher and st.toggle("raw details", key=key(f"raw-{exercise.id}")):
            st.json(entry)

# The verdicts and the status line, now that every button of this run has done its work: a verdict
# whose ground (memory, adapters, settings, the exercise's inputs) changed since is withdrawn.
snapshot = workshop.lab_snapshot(lab, settings)
for exercise, entry, slot in verdicts:
    if not (result := entry.get("result")):
        continue
    detail = ui.literal_markdown(result["detail"])  # it quotes notes and replies: data, not Markdown
    if changed := workshop.changed_since(exercise, entry, snapshot):
        slot.info(workshop.stale_notice(changed, bool(entry.get("done"))), icon=":material/update:")
    elif result["passed"]:
        slot.success(detail, icon=":material/check_circle:")
    elif result.get("in_progress"):
        slot.info(detail, icon=":material/pending:")
    elif entry.get("done"):
        slot.info(detail + " (You finished this exercise earlier; it stays done.)", icon=":material/info:")
    else:
        slot.warning(detail, icon=":material/cancel:")
show_status()

done = workshop.done_count(progress)
bar.progress(done / len(workshop.EXERCISES), text=f"{done} of {len(workshop.EXERCISES)} exercises done")

with st.sidebar:
    st.markdown("**Link to share**")
    link = build_link(settings)
    base = getattr(st.context, "url", None)
    if base:  # the whole address, so it can be pasted as it is
        link = base.split("?")[0].rsplit("/", 1)[0] + link
    st.code(link, language=None, wrap_lines=True)
    st.caption("It opens the Workshop with these settings, each student in a fresh workspace of their own. "
               "For a copy of your lab, or a class link that holds teacher mode, use *Share this lab*.")
    if not teacher and not ui.settings_locked() and st.button("Reset my progress", key=key("reset")):
        workshop.save_progress(lab.workspace, {})
        st.rerun()
