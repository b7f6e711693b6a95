"""Glue between Streamlit and the lab: the one place the pages get their session from.

The model and the embedder are loaded once per server process, starting as the server
starts, and shared by every browser session; each browser session gets its own workspace,
so one student never sees another's memory or adapters. Each page keeps its state under its
own prefix (`keys`), and the visit's settings live here, not in any one page's widgets.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import fields, replace

import streamlit as st

from lab.errors import LabError
from lab.links import LinkSettings, link_params, parse_link
from lab.session import LabSession
from lab.workspace import mark_used

LINK_FIELDS = tuple(f.name for f in fields(LinkSettings))


def keys(page: str):
    """This page's namespace in st.session_state: `key = ui.keys("wipe_test"); key("report")`
    -> "wipe_test.report". Every page shares one session_state, and a widget whose key matches
    a value another page stored reads it as its own state: a stored wipe-test report once
    "clicked" the Memory page's wipe button. Prefixes make such a clash impossible."""
    return lambda name: f"{page}.{name}"


_LAB, _LINK, _LINK_WARNING = "ui.lab", "ui.link", "ui.link_warning"


def _load_models():
    from lab.embedder import get_embedder
    from lab.engine import get_engine

    return get_engine(), get_embedder()


# The first student should not wait for the model: server.py loads it before the server
# opens its port; under a plain `streamlit run` it starts loading when this module is first
# imported, and a page only waits for whatever is left of that load.
_warmup = threading.Thread(target=lambda: _safe(_load_models), name="lab-warmup", daemon=True)


def _safe(load) -> None:
    try:
        load()
    except Exception:  # the page's own load raises it again, as one line
        pass


def start_warmup() -> None:
    if not _warmup.is_alive() and not _warmup.ident:
        _warmup.start()


def wait_for_warmup() -> None:
    _warmup.join()


_models = None  # (engine, embedder) once loaded: a page run should not re-validate the GGUF


def _shared_models():
    global _models
    if _models is None:
        if _warmup.is_alive():
            with st.spinner("Loading the model and the embedder (once, when the server starts)…"):
                _warmup.join()
        _models = _load_models()
    return _models


def _run_through_app_py() -> None:
    """Make sure pages run inside app.py's navigation.

    Until app.py has run once, Streamlit treats a server whose script sits next to a
    `pages/` folder as an old-style multipage app: a link straight to /Playground as the
    server's first visit runs the page alone, and the sidebar calls the home page "app".
    Streamlit keeps that mode in a private flag, which app.py's st.navigation clears;
    clearing it here and running again takes the page through app.py, to the same page
    (both modes name a page by its URL path)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the old mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def session() -> LabSession:
    """This browser session's lab: its own workspace, the shared model.

    The workspace's name and the visit's link settings are written into the page's address
    on every run, so a reload (or the same address in a new tab) opens the same workspace,
    its memory, adapters and Workshop progress, and moving between pages keeps the settings."""
    _run_through_app_py()
    _shared_models()
    params = st.query_params.to_dict()
    if _LAB not in st.session_state:
        name = params.get("workspace") or f"browser-{uuid.uuid4().hex[:12]}"
        st.session_state[_LAB] = LabSession.open(name)
        st.session_state[_LINK], st.session_state[_LINK_WARNING] = parse_link(params)
    else:
        _follow_new_link(params)
        mark_used(st.session_state[_LAB].workspace)  # a long visit is not "unused" to `workspaces prune`
    _write_address()
    return st.session_state[_LAB]


def _follow_new_link(params: dict) -> None:
    """A link followed inside the visit (a Start card, an edited address) changes only what it
    names; a bad value in it changes nothing and is named in the warning."""
    named = {name: value for name, value in params.items() if name in LINK_FIELDS}
    if not named:
        return
    current, warnings, changes = st.session_state[_LINK], [], {}
    for name, value in named.items():
        parsed, warning = parse_link({name: value})
        if warning:
            warnings.append(warning)
        elif getattr(parsed, name) != getattr(current, name):
            changes[name] = getattr(parsed, name)
    if changes or warnings:
        st.session_state[_LINK] = replace(current, **changes)
        st.session_state[_LINK_WARNING] = " ".join(warnings) or None


def _write_address() -> None:
    wanted = {"workspace": st.session_state[_LAB].workspace.name, **link_params(st.session_state[_LINK])}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def page_link(page: str, label: str, icon: str | None = None, **options) -> None:
    """st.page_link, or the label as text where the page is run alone (AppTest: no navigation)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, **options)
    except StreamlitAPIException:
        st.markdown(label)


WAITING = "Waiting for the model: another student's request is running…"


def poll_while(running: bool, every_s: float = 1.0):
    """A fragment decorator that reruns the fragment every `every_s` seconds while `running`,
    and not at all otherwise (the next full run decides again)."""
    return st.fragment(run_every=every_s if running else None)


def model_queue_notice(lab: LabSession) -> None:
    """Say so when the shared model is busy: a long run would otherwise just look stuck."""
    if lab.engine.busy:
        st.info(f"{WAITING} ({lab.engine.waiting} queued). Yours starts as soon as it is free.")


def show_error(error: LabError, where=st) -> None:
    """A LabError as one line, in the app's words (a page or button, never a command line)."""
    where.error(error.app_message, icon=":material/error:")


def _ordinal(n: int) -> str:
    return {1: "next", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def training_progress(job, key) -> None:
    """An unfinished TrainingJob: its place in the server's training queue and when it should
    start, or its progress once it trains; a Cancel button either way. Finished jobs are the
    page's to report. Trainings run one at a time (lab/training_queue.py), so with a class
    pressing Train together most of them wait, and should say so rather than look stuck."""
    import time

    if job is None or job.finished:
        return
    if job.state == "queued":
        start = job.expected_start
        if job.waiting_elsewhere:
            text = ("Queued: waiting for a training started elsewhere on this server (from the command "
                    "line, for instance) to finish. Trainings run one at a time.")
        elif job.position:
            when = (f" Expected to start in about {max(0, start - time.time()):.0f} s "
                    f"({time.strftime('%H:%M:%S', time.localtime(start))}).") if start else ""
            text = (f"Queued: {_ordinal(job.position)} in line. Trainings run one at a time on this server, "
                    f"so questions stay quick.{when}")
        else:  # out of the line already: an identical training done before is being registered
            text = "Getting the adapter ready…"
        st.info(text, icon=":material/hourglass_top:")
        label = "Cancel (leave the queue)"
    else:
        last = job.progress[-1] if job.progress else None
        st.progress(last.step / last.steps if last else 0.0,
                    text=(f"training: step {last.step}/{last.steps} · loss {last.loss:.3f} · "
                          f"{last.tokens_per_s:.0f} tokens/s · about {last.eta_s:.0f} s left") if last else
                    "preparing the base model for training (the first time only: it is converted once and "
                    "kept), then training…")
        label = "Cancel training"
    if st.button(label, key=key("cancel")):
        job.cancel()



# ---- teacher mode and shareable links ------------------------------------------------------


def link_settings() -> LinkSettings:
    """The settings of this visit: from the link it opened with (?scenario=&arm=&k=&threshold=
    &teacher=), then as changed on the pages. A bad value in a link falls back to its default,
    with one warning line instead of a traceback."""
    if warning := st.session_state.get(_LINK_WARNING):
        st.warning(warning, icon=":material/link:")
    return st.session_state[_LINK]


def update_link(**changes) -> LinkSettings:
    """Change the visit's settings (and so the address): what one page sets holds on every page."""
    st.session_state[_LINK] = replace(st.session_state[_LINK], **changes)
    st.session_state[_LINK_WARNING] = None
    _write_address()
    return st.session_state[_LINK]


def _toggle_teacher_mode() -> None:
    update_link(teacher=st.session_state["ui.teacher_toggle"])


def teacher_mode() -> bool:
    """Whether advanced controls are hidden: on with ?teacher=1 in the link or the sidebar
    toggle. Draws the toggle, so call it once per page run. Only the teacher flag changes:
    the other settings of the visit stay as they were."""
    teacher = current_settings().teacher
    st.sidebar.toggle("Teacher mode", value=teacher, key="ui.teacher_toggle", on_change=_toggle_teacher_mode,
                      help="Hides advanced controls (raw details, resets, fine-tuning) for a class. "
                           "The setting goes into the page's link.")
    return teacher


def current_settings() -> LinkSettings:
    """The visit's settings, without drawing the link's warning."""
    return st.session_state[_LINK]


start_warmup()
