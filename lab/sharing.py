"""Sharing a lab without handing it over: edit keys, copies, and what an address opens.

A workspace's name is no secret: the pages show it and the address carries it. What opens a
workspace *itself* is its **edit key**, a random string made with the workspace and kept in
its folder (`.edit_key`). The owner's address carries it, so a reload (or the same address in
a new tab) brings their lab back. Anyone else gets a **copy**: a new workspace of their own
with the memories, the pinned settings and the active adapter, marked "copied from NAME".
Whatever they change, wipe or poison there, the original is left exactly as it was.

The query strings the app understands (the settings `scenario`, `arm`, `k`, `threshold`,
`teacher` of lab/links.py may go with any of them):

    ?workspace=NAME&key=KEY   the owner's edit link: NAME itself
    ?workspace=NAME           NAME exists: a copy of it (no key, or a wrong one, opens nothing else);
                              NAME is new: it is made, and this visitor gets its key
    ?from=NAME                the share link (*Share this lab*): a copy of NAME
    ?class=TOKEN              a class link: a copy of the teacher's lab, locked (lab/class_lock.py)
    ?class=TOKEN&unlock=KEY   the same copy, unlocked; `&unlock=KEY` on a locked lab's own edit
                              link lifts that lab's lock
    (none of these)           a fresh browser-<id> workspace

`arrive(params)` makes that choice for a new browser session and never raises: a bad link
gives a fresh lab of the visitor's own and one line saying why. Workshop progress and
results are never copied: they are the visitor's own to earn.
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping
from urllib.parse import urlencode

from lab import class_lock
from lab.errors import LabError
from lab.links import LinkSettings, link_params, link_warning, parse_link, parse_setting
from lab.workspace import BROWSER_PREFIX, Workspace, exists, home, read_meta, update_meta, validate_name
from lab.plural import plural

KEY_FILE = ".edit_key"
SETTINGS_FIELDS = tuple(f.name for f in fields(LinkSettings))
ACCESS_PARAMS = ("workspace", "key", "from", "class", "unlock")


# ---- edit keys ------------------------------------------------------------------------------


def _new_key() -> str:
    import secrets

    return secrets.token_urlsafe(16)  # 128 random bits


def _write_key(workspace: Workspace, key: str) -> None:
    """Write the key only if the workspace has none (O_EXCL): a key is never replaced."""
    descriptor = os.open(workspace.root / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())


def edit_key(workspace: Workspace) -> str | None:
    """The workspace's edit key, or None if it has none (one made by the CLI, or before keys)."""
    try:
        return (workspace.root / KEY_FILE).read_text(encoding="ascii").strip() or None
    except (OSError, ValueError):
        return None


def ensure_edit_key(workspace: Workspace) -> str:
    """The edit key, made now if the workspace has none. Only for whoever already holds the
    workspace (the CLI, on the server): the app never mints a key for a workspace that exists,
    or the first visitor to name an old one would own it."""
    if key := edit_key(workspace):
        return key
    try:
        _write_key(workspace, _new_key())
    except FileExistsError:  # made meanwhile by another process: that one counts
        pass
    return edit_key(workspace)


def key_matches(workspace: Workspace, key: str | None) -> bool:
    """Whether `key` is the workspace's edit key (in constant time); False if it has none."""
    stored = edit_key(workspace)
    if not stored or not isinstance(key, str) or not key.strip():
        return False
    return hmac.compare_digest(stored.encode("utf-8"), key.strip().encode("utf-8"))


def create_workspace(name: str | None = None, root: Path | None = None) -> tuple[Workspace, str] | None:
    """A new workspace and its edit key; None if `name` is taken. Without a name, browser-<id>.
    Making the folder is the claim (mkdir is atomic): two visitors naming the same new
    workspace at once cannot both own it."""
    base = (root or home()).resolve()
    base.mkdir(parents=True, exist_ok=True)
    while True:
        chosen = validate_name(name or f"{BROWSER_PREFIX}{uuid.uuid4().hex[:12]}")
        try:
            (base / chosen).mkdir()
        except FileExistsError:
            if name:
                return None
            continue
        workspace = Workspace.open(chosen, root=base)
        key = _new_key()
        _write_key(workspace, key)
        return workspace, key


# ---- pinned settings -------------------------------------------------------------------------


def pin_settings(workspace: Workspace, settings: LinkSettings) -> None:
    """Keep the owner's current settings with the workspace: a copy opens with them."""
    wanted = link_params(settings)
    if read_meta(workspace).get("settings") != wanted:
        update_meta(workspace, settings=wanted)


def pinned_settings(workspace: Workspace) -> LinkSettings:
    """The settings pinned to the workspace (the lab's defaults if none; a bad value is dropped)."""
    pinned = read_meta(workspace).get("settings")
    if not isinstance(pinned, dict):
        return LinkSettings()
    settings, _ = parse_link({name: str(value) for name, value in pinned.items()})
    return settings


def settings_for(workspace: Workspace, params: Mapping[str, str], base: LinkSettings) -> tuple[LinkSettings, str | None]:
    """The settings a link gives this workspace, and one warning line (or None).

    Unlocked: `base` with each setting the link names, if its value is good. Locked by a class:
    the lock's settings, whatever the link says (`k=50`, `teacher=0` ...), and a line saying so.
    """
    named = {name: _last(value) for name, value in params.items() if name in SETTINGS_FIELDS}
    lock = class_lock.workspace_lock(workspace)
    if lock is not None:
        ignored = [f"{name}={value[:20]}" for name, value in named.items()
                   if parse_setting(name, value)[0] != getattr(lock.settings, name)]
        warning = (f"This lab is held by its class link, so {', '.join(ignored)} from the address "
                   "changed nothing. Only the teacher's key unlocks it.") if ignored else None
        return lock.settings, warning
    changes, problems = {}, []
    for name, value in named.items():
        parsed, problem = parse_setting(name, value)
        if problem:
            problems.append(problem)
        else:
            changes[name] = parsed
    return replace(base, **changes), link_warning(problems)  # one line, however many were bad


def _last(value) -> str:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value).strip()


# ---- copies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copied:
    """What a copy took along."""

    memories: int
    adapter: str | None


def copy_workspace(source: Workspace, into: Workspace) -> Copied:
    """Copy `source`'s memories, its active adapter and its pinned settings (and its class
    lock, if it has one: a copy must not be a way out of a lock) into `into`, and record
    where they came from. `source` is only read. Progress, results, other adapters and the
    edit key stay behind, and so do the undo history and the snapshots: they can hold what
    the owner deleted, so only the memories as they are now travel (through the store's
    own API, embedded again by the same embedder: the same vectors)."""
    from lab.adapters import AdapterRegistry
    from lab.memory import DB_FILE, MemoryStore

    items = []
    if (source.memory_dir / DB_FILE).exists():  # opening a store that was never used would create one
        with MemoryStore(source.memory_dir) as store:
            items = [{"text": m.text, "question": m.question, "answer": m.answer, "source": m.source,
                      "pinned": m.pinned}
                     for m in store.list()]
    if items:
        with MemoryStore(into.memory_dir) as store:
            store.add_many(items)

    active = AdapterRegistry(source.adapters_dir).active()
    if active is not None:
        registry = AdapterRegistry(into.adapters_dir)
        # Copied beside the registry first, then moved in whole: a half-copied file is never active.
        handle, partial = tempfile.mkstemp(dir=into.adapters_dir, prefix=".copy-", suffix=".gguf")
        os.close(handle)
        try:
            shutil.copyfile(active.path, partial)
            registry.register(active.name, Path(partial), {**active.meta, "copied_from": source.name})
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        registry.activate(active.name)

    if (lock := class_lock.workspace_lock(source)) is not None:
        class_lock.lock_workspace(into, lock)
    update_meta(into, copied_from=source.name,
                copied_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                settings=read_meta(source).get("settings"))
    return Copied(memories=len(items), adapter=active.name if active else None)


def copied_from(workspace: Workspace) -> str | None:
    name = read_meta(workspace).get("copied_from")
    return name if isinstance(name, str) else None


# ---- arriving: what a new browser session's address opens ------------------------------------


@dataclass(frozen=True)
class Arrival:
    """The workspace a new session owns, its key (for the address), the visit's settings, and
    what to tell the visitor: `notice` (what happened) and `warning` (what the link could not do)."""

    workspace: Workspace
    key: str
    settings: LinkSettings
    notice: str | None = None
    warning: str | None = None


def arrive(params: Mapping[str, str | list[str]], root: Path | None = None) -> Arrival:
    """Open what a new session's address asks for (see the module docstring); never raises a
    LabError for a bad link: the visitor gets a fresh lab and one line saying why."""
    params = {name: _last(value) for name, value in params.items()}
    if token := params.get("class"):
        try:
            lock = class_lock.load_class(token, root)
        except LabError as error:
            return _fresh(params, root, f"{_sentence(error.app_message)}: this is a fresh lab of your own instead.")
        return _copy_of(lock.source, params, root, lock=lock)
    if "from" in params:
        return _copy_of(params["from"], params, root)
    name = params.get("workspace")
    if not name:
        return _fresh(params, root)
    try:
        validate_name(name)
    except LabError:
        return _fresh(params, root, f"There is no lab named {name[:40]!r}: this is a fresh lab of your own.")
    if not exists(name, root):
        created = create_workspace(name, root)
        if created is not None:
            workspace, key = created
            settings, warning = settings_for(workspace, params, LinkSettings())
            return Arrival(workspace, key, settings, warning=warning)
    workspace = Workspace.open(name, root=(root or home()))
    if key_matches(workspace, params.get("key")):
        return _own(workspace, params)
    return _copy_of(name, params, root, without_key=True)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fresh(params: dict, root: Path | None, warning: str | None = None) -> Arrival:
    workspace, key = create_workspace(None, root)
    settings, link_warning = settings_for(workspace, params, LinkSettings())
    return Arrival(workspace, key, settings, warning=" ".join(filter(None, (warning, link_warning))) or None)


def _own(workspace: Workspace, params: dict) -> Arrival:
    notice = warning = None
    if "unlock" in params and class_lock.workspace_lock(workspace) is not None:
        if class_lock.unlock_workspace(workspace, params["unlock"]):
            notice = "Unlocked with the teacher's key: teacher mode and the settings are yours to change."
        else:
            warning = "That unlock key is not this class's: the lab stays locked."
    settings, link_warning = settings_for(workspace, params, pinned_settings(workspace))
    return Arrival(workspace, edit_key(workspace), settings, notice,
                   " ".join(filter(None, (warning, link_warning))) or None)


def _copy_of(name: str, params: dict, root: Path | None, *, lock=None, without_key: bool = False) -> Arrival:
    if not exists(name, root):
        return _fresh(params, root, f"There is no lab named {name[:40]!r} to copy: this is a fresh lab of your own.")
    source = Workspace.open(name, root=(root or home()))
    workspace, key = create_workspace(None, root)
    problem = None
    try:
        copied = copy_workspace(source, workspace)
    except Exception as error:  # a damaged source: the visitor still gets a lab, and the reason
        copied, problem = None, (f"Part of {name!r} could not be copied ({_sentence(str(error))[:120]}); "
                                 "what is here is your own.")
    unlocked = lock is not None and class_lock.unlock_matches(lock.unlock_hash, params.get("unlock"))
    if lock is not None and not unlocked:
        class_lock.lock_workspace(workspace, lock)
    elif lock is not None:
        update_meta(workspace, unlocked=lock.token)
    what = (plural(copied.memories, "memory")
            + (f" and the adapter {copied.adapter!r}" if copied.adapter else "")) if copied else "what could be read"
    if lock is not None:
        notice = (f"Your own copy of the class lab, copied from {name} ({what}). "
                  + ("Unlocked with the teacher's key." if unlocked else
                     "Teacher mode and the class's settings are held by the class link; "
                     "your memories and progress are yours."))
    else:
        # A key that does not match is not the same as none: say which, so the owner checks their link.
        how = ("The edit key in your link is not this lab's, so this" if without_key and params.get("key")
               else "You opened it without its edit key, so this" if without_key else "This")
        notice = (f"{how} is your own copy, copied from {name} ({what}). Whatever you change here stays "
                  f"here: {name} itself is unchanged.")
    base = lock.settings if lock is not None else pinned_settings(workspace)
    settings, link_warning = settings_for(workspace, params, base)
    return Arrival(workspace, key, settings, notice, " ".join(filter(None, (problem, link_warning))) or None)


# ---- the links themselves ---------------------------------------------------------------------


def share_link(name: str, settings: LinkSettings, page: str = "") -> str:
    """The link to hand out: each visitor gets a copy of `name`.
    share_link("alice", LinkSettings()) -> '/?from=alice&scenario=acme&arm=memory&k=2&threshold=0.5'"""
    return f"/{page}?" + urlencode({"from": name, **link_params(settings)})


def edit_link(name: str, key: str, settings: LinkSettings, page: str = "") -> str:
    """The owner's own link (what their address holds): whoever has it can change the lab."""
    return f"/{page}?" + urlencode({"workspace": name, "key": key, **link_params(settings)})


def class_link(token: str, page: str = "Workshop", unlock_key: str | None = None) -> str:
    """A class link: `/Workshop?class=TOKEN`, and with the unlock key an unlocked seat in it."""
    return f"/{page}?" + urlencode({"class": token, **({"unlock": unlock_key} if unlock_key else {})})
