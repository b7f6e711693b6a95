"""Glue between Streamlit and the lab: the one place the pages get their session from.

The model and the embedder are loaded once per server process, starting as the server
starts, and shared by every browser session; each browser session gets its own workspace,
so one student never sees another's memory or adapters. Each page keeps its state under its
own prefix (`keys`), and the visit's settings live here, not in any one page's widgets.
Which workspace an address opens (the owner's own with its key, a copy for anyone else) and
whether a class lock holds it are lab/sharing.py's and lab/class_lock.py's business; this
module writes the answer into the address and draws *Share this lab* in every sidebar.
"""

from __future__ import annotations

import re
import threading
from dataclasses import fields, replace
from urllib.parse import urlsplit

import streamlit as st

from lab import class_lock, sharing
from lab.errors import LabError
from lab.links import LinkSettings, link_params
from lab.session import LabSession
from lab.workspace import mark_used

LINK_FIELDS = tuple(f.name for f in fields(LinkSettings))

# The marks that can start Markdown (or Streamlit's own $math$, :red[colour], :material/icons:)
# anywhere in a line, and those that only count at a line's start (lists, headings'
# underlines). Quotes, commas and = mid-line mean nothing, so `k='abc'` stays as it is. The
# slash is escaped because Streamlit rewrites ":material/" in the source before parsing it.
_ANYWHERE = re.compile(r"([\\`*_~\[\](){}<>$:&|!^@.#/])")
_LINE_START = re.compile(r"^([+\-=])", re.MULTILINE)
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
# Bare addresses (https://…, www.…, name@host) are linked after parsing, escapes or not: an
# invisible word joiner (U+2060) inside each keeps it plain text.
_AUTOLINK = re.compile(r"(?i)(https?\\:|www)")
_JOINER = "\u2060"
# Streamlit also turns a lone "->" into an arrow (and --, <=, >=, ~=, <-, <->) and :streamlit:
# into its logo, after parsing: the joiner goes inside those too.
_SUGAR = re.compile(r"(?<!\S)(<->|->|<-|--|>=|<=|~=)(?!\S)|:streamlit:")


def literal_markdown(text: str) -> str:
    """`text` escaped so st.markdown (and st.caption, st.info…) shows it exactly as typed.

    Notes, questions and replies are data, not formatting: a note `**bold** [link](javascript:x)`
    must not become bold text and a clickable link. Line breaks stay line breaks, and an
    indented line stays indented instead of turning into a code block.

    literal_markdown("**hi** [a](b)") -> '\\*\\*hi\\*\\* \\[a\\]\\(b\\)'
    """
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    text = _SUGAR.sub(lambda m: m.group()[0] + _JOINER + m.group()[1:], text)
    escaped = _LINE_START.sub(r"\\\1", _ANYWHERE.sub(r"\\\1", text))
    escaped = _AUTOLINK.sub(lambda m: m.group() + _JOINER, escaped).replace("\\@", _JOINER + "\\@")
    # Leading blanks as no-break spaces: four spaces would start a code block, and a line of
    # blanks alone would end the paragraph.
    escaped = _INDENT.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), escaped)
    escaped = "\n".join(line if line.strip() else "\u00a0" for line in escaped.split("\n"))
    return escaped.replace("\n", "  \n")  # a hard line break: a soft one would show as a space


def keys(page: str):
    """This page's namespace in st.session_state: `key = ui.keys("wipe_test"); key("report")`
    -> "wipe_test.report". Every page shares one session_state, and a widget whose key matches
    a value another page stored reads it as its own state: a stored wipe-test report once
    "clicked" the Memory page's wipe button. Prefixes make such a clash impossible."""
    return lambda name: f"{page}.{name}"


_LAB, _LINK, _LINK_WARNING = "ui.lab", "ui.link", "ui.link_warning"
_KEY, _NOTICE = "ui.edit_key", "ui.notice"  # this session's own workspace key; what its arrival did


def _load_models():
    from lab.embedder import get_embedder
    from lab.engine import get_engine

    return get_engine(), get_embedder().load()


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
    """This browser session's lab: a workspace it owns, the shared model.

    What the address opens is lab/sharing.py's choice: the owner's own workspace when it
    carries the edit key, otherwise a copy of the named lab in a new workspace of the
    visitor's own (a name alone opens nothing of anyone else's). The workspace, its key and
    the visit's settings are then written into the address on every run, so a reload (or the
    same address in a new tab) opens the same workspace, and moving between pages keeps the
    settings. The Share this lab panel is drawn in the sidebar of every page."""
    _run_through_app_py()
    _shared_models()
    params = st.query_params.to_dict()
    if _LAB not in st.session_state:
        arrival = sharing.arrive(params)
        st.session_state[_LAB] = LabSession.open(arrival.workspace.name)
        st.session_state[_KEY] = arrival.key
        st.session_state[_NOTICE] = arrival.notice
        st.session_state[_LINK], st.session_state[_LINK_WARNING] = arrival.settings, arrival.warning
    else:
        _follow_new_link(params)
        mark_used(st.session_state[_LAB].workspace)  # a long visit is not "unused" to `workspaces prune`
    _hold_to_lock()
    _write_address()
    _share_panel(st.session_state[_LAB])
    _show_link_warning()
    _trainings_in_sidebar(st.session_state[_LAB])
    return st.session_state[_LAB]


def _follow_new_link(params: dict) -> None:
    """A link followed inside the visit (a Start card, an edited address) changes only what it
    names; a bad value in it changes nothing and is named in the warning. A locked lab keeps
    its class's settings whatever the link says."""
    named = {name: value for name, value in params.items() if name in LINK_FIELDS}
    if not named:
        return
    current = st.session_state[_LINK]
    settings, warning = sharing.settings_for(st.session_state[_LAB].workspace, named, current)
    if settings != current or warning:
        st.session_state[_LINK], st.session_state[_LINK_WARNING] = settings, warning


def _hold_to_lock() -> None:
    """While a class lock holds the workspace its settings are the visit's, on every run (the
    lock is read from the workspace, so an unlock in another tab counts here too)."""
    lock = class_lock.workspace_lock(st.session_state[_LAB].workspace)
    if lock is not None and st.session_state[_LINK] != lock.settings:
        st.session_state[_LINK] = lock.settings


def settings_locked() -> bool:
    """Whether a class lock holds this lab's settings (and teacher mode): pages disable the
    widgets that would change them."""
    return class_lock.workspace_lock(st.session_state[_LAB].workspace) is not None


def _write_address() -> None:
    lab = st.session_state[_LAB]
    wanted = {"workspace": lab.workspace.name, "key": st.session_state[_KEY], **link_params(st.session_state[_LINK])}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
    if class_lock.workspace_lock(lab.workspace) is None:
        sharing.pin_settings(lab.workspace, st.session_state[_LINK])  # what a copy of this lab opens with


# ---- Share this lab: the panel in every page's sidebar ----------------------------------------


def _app_url() -> tuple[str, str]:
    """(the app's root URL, this page's name), e.g. ("http://host:8501", "Memory"), kept under
    any server.baseUrlPath a proxy needs; ("", "") where Streamlit does not know (AppTest)."""
    url = getattr(st.context, "url", None)
    if not url:
        return "", ""
    parts = urlsplit(url)
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{prefix}" if prefix else ""
    path = parts.path[len(prefix):] if parts.path.startswith(prefix) else parts.path
    return f"{parts.scheme}://{parts.netloc}{prefix}", path.strip("/")


def _make_class_link() -> None:
    lab = st.session_state[_LAB]
    lock, unlock_key = class_lock.make_class(lab.workspace, st.session_state[_LINK])
    class_lock.remember_class_made(lab.workspace, lock, unlock_key)


def _unlock_here() -> None:
    typed = st.session_state.get("ui.unlock_key", "")
    if class_lock.unlock_workspace(st.session_state[_LAB].workspace, typed):
        st.session_state[_NOTICE] = "Unlocked with the teacher's key: teacher mode and the settings are yours to change."
    else:
        st.session_state[_LINK_WARNING] = "That is not this class's unlock key: the lab stays locked."


def _share_panel(lab: LabSession) -> None:
    """Where this lab came from, the Share this lab button, and the lock, in the sidebar.
    Every session owns the workspace it holds, so the edit link shown is always the viewer's own."""
    workspace, settings = lab.workspace, st.session_state[_LINK]
    root, page = _app_url()
    if notice := st.session_state.pop(_NOTICE, None):
        st.info(literal_markdown(notice), icon=":material/content_copy:")  # it can quote the link
    with st.sidebar:
        if source := sharing.copied_from(workspace):
            st.caption(f"Your own lab `{workspace.name}`, copied from `{source}`: changes stay here.")
        with st.popover("Share this lab", icon=":material/share:", width="stretch"):
            locked = settings_locked()
            if settings.teacher and not locked:
                st.markdown("**A class link** holds teacher mode and these settings for every student who "
                            "opens it; each gets a copy of this lab of their own.")
                st.button("Make a locked class link", key="ui.make_class", on_click=_make_class_link)
                if made := class_lock.classes_made(workspace):
                    last = made[-1]
                    st.code(root + sharing.class_link(last["token"]), language=None, wrap_lines=True)
                    st.markdown("**Unlock key** (only you see it): lifts the lock on one student's lab when typed "
                                "into its sidebar, or add it to the class link for an unlocked copy:")
                    st.code(last["unlock_key"], language=None)
                    st.code(root + sharing.class_link(last["token"], unlock_key=last["unlock_key"]),
                            language=None, wrap_lines=True)
                st.divider()
            st.markdown("**Share a copy.** Everyone who opens this link gets a copy of this lab (its memories, "
                        "the active adapter, these settings) in a workspace of their own; yours stays as it is.")
            st.code(root + sharing.share_link(workspace.name, settings, page), language=None,
                    wrap_lines=True)
            st.markdown("**Your edit link** opens this lab itself: anyone holding it can change or wipe it, so "
                        "keep it to yourself. Your address bar holds it, which is how a reload keeps your lab.")
            st.code(root + sharing.edit_link(workspace.name, st.session_state[_KEY], settings, page),
                    language=None, wrap_lines=True)


def page_link(page: str, label: str, icon: str | None = None, **options) -> None:
    """st.page_link, or the label as text where the page is run alone (AppTest: no navigation)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, **options)
    except StreamlitAPIException:
        st.markdown(label)


WAITING = "Waiting for the shared model: other sessions' requests are being answered…"


def poll_while(running: bool, every_s: float = 1.0):
    """A fragment decorator that reruns the fragment every `every_s` seconds while `running`,
    and not at all otherwise (the next full run decides again)."""
    return st.fragment(run_every=every_s if running else None)


def model_queue_notice(lab: LabSession) -> None:
    """Say so when the shared model is busy: a long run would otherwise just look stuck."""
    if lab.engine.waiting:
        st.info(f"{WAITING} ({lab.engine.waiting} requests queued). They are answered together in rounds, "
                "so yours joins one soon.", icon=":material/hourglass_top:")


def show_error(error: LabError, where=st) -> None:
    """A LabError as one line, in the app's words (a page or button, never a command line)."""
    where.error(error.app_message, icon=":material/error:")


def _ordinal(n: int) -> str:
    return {1: "next", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def training_progress(job, key) -> None:
    """An unfinished TrainingJob: what it is doing (preparing its data, its place in the
    server's training queue and when it should start, loading, its steps, saving), with a
    Cancel button throughout. Finished jobs are the page's to report. Trainings run one at a
    time (lab/training_queue.py), so with a class pressing Train together most of them wait,
    and should say so rather than look stuck; the estimates are this server's measured pace."""
    import time

    from lab.jobs import describe, stage_of

    if job is None or job.finished:
        return
    stage = stage_of(job)
    if stage == "queued":
        start = job.expected_start
        if job.waiting_elsewhere:
            text = ("Queued: waiting for a training started elsewhere on this server (from the command "
                    "line, for instance) to finish. Trainings run one at a time.")
        elif not job.position:  # 0: its turn has come, this very moment
            text = "Its turn has come: starting…"
        else:
            when = (f" Expected to start in about {max(0, start - time.time()):.0f} s "
                    f"({time.strftime('%H:%M:%S', time.localtime(start))}), from this server's measured "
                    "pace.") if start else ""
            text = (f"Queued: {_ordinal(job.position)} in line. Trainings run one at a time on this server, "
                    f"so questions stay quick.{when}")
        st.info(text, icon=":material/hourglass_top:")
        label = "Cancel (leave the queue)"
    elif stage in ("preparing", "registering"):
        st.info(describe(job), icon=":material/hourglass_top:")
        label = "Cancel (before it trains)"
    else:
        last = job.progress[-1] if job.progress else None
        text = describe(job) if stage in ("loading", "saving") else (
            f"training: step {last.step}/{last.steps} · loss {last.loss:.3f} · "
            f"{last.tokens_per_s:.0f} tokens/s · about {last.eta_s:.0f} s left")
        st.progress(last.step / last.steps if last else 0.0, text=text)
        label = "Cancel training"
    if st.button(label, key=key("cancel")):
        job.cancel()


def kept_job(lab: LabSession, state_key: str):
    """This session's job under `state_key`, or the one a reload left running: a reload is a
    new session (st.session_state starts empty) while the training goes on in the server, so
    the page must find it on lab.jobs.BOARD, by workspace and slot, and show it again."""
    from lab.jobs import BOARD

    found = BOARD.find(lab.workspace.name, state_key)
    if found is not None and st.session_state.get(state_key) is not found:
        st.session_state[state_key] = found
    return st.session_state.get(state_key)


def _trainings_in_sidebar(lab: LabSession) -> None:
    """Every page's sidebar names the workspace's trainings that run, or ended with nobody
    told: an adapter never turns active unseen, whichever page is open."""
    from lab.jobs import BOARD, stage_of

    for job in BOARD.unseen(lab.workspace.name):
        if job.finished:
            job.announced = True  # said once; the page that started it still reports it in full
        if job.state == "done":
            st.sidebar.caption(f":material/check_circle: The training of **{job.name}** finished, and its adapter "
                               "was made the active one.")
        elif job.finished:
            st.sidebar.caption(f":material/cancel: The training of **{job.name}** ended: {job.error}")
        else:
            last = job.progress[-1] if job.progress else None
            doing = f"step {last.step} of {last.steps}" if last and stage_of(job) == "training" else stage_of(job)
            st.sidebar.caption(f":material/model_training: Training **{job.name}** ({doing}). It becomes the "
                               "active adapter when it finishes.")


# ---- teacher mode and shareable links ------------------------------------------------------


def _show_link_warning() -> None:
    """What the link could not do (a bad value, a lab that does not exist, a lock that held), in
    one line. Drawn by session(), which every page calls first, so no page can leave it out:
    Home, Memory and Learning once showed a bad link nothing. Quoted literally: it repeats
    what the address said."""
    if warning := st.session_state.get(_LINK_WARNING):
        st.warning(literal_markdown(warning), icon=":material/link:")


def link_settings() -> LinkSettings:
    """The settings of this visit: from the link it opened with (?scenario=&arm=&k=&threshold=
    &teacher=), then as changed on the pages. A bad value in a link falls back to its default;
    session() has already said so in one line."""
    return st.session_state[_LINK]


def update_link(**changes) -> LinkSettings:
    """Change the visit's settings (and so the address): what one page sets holds on every page.
    A class lock refuses the change, with one line."""
    if settings_locked():
        st.session_state[_LINK_WARNING] = ("This lab is held by its class link: its settings and teacher mode stay "
                                           "as the teacher set them. Only the teacher's key unlocks it.")
        return st.session_state[_LINK]
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
    teacher, locked = current_settings().teacher, settings_locked()
    st.sidebar.toggle("Teacher mode", value=teacher, key="ui.teacher_toggle", on_change=_toggle_teacher_mode,
                      disabled=locked,
                      help="Hides advanced controls (raw details, resets, fine-tuning) for a class. "
                           "The setting goes into the page's link.")
    if locked:
        st.sidebar.caption("Locked by the class link: only the teacher who made it can unlock it, with their key.")
        st.sidebar.text_input("Teacher's unlock key", key="ui.unlock_key", type="password", on_change=_unlock_here)
    return teacher


def current_settings() -> LinkSettings:
    """The visit's settings, without drawing the link's warning."""
    return st.session_state[_LINK]


start_warmup()
