"""lab/sharing.py and lab/class_lock.py on the real SQLite, hnswlib and embedder: a link can
open a copy of someone's lab, never the lab itself, and a class link's lock holds."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lora_factory import random_adapter

from lab import class_lock, sharing
from lab.adapters import AdapterRegistry
from lab.links import LinkSettings
from lab.memory import MemoryStore
from lab.workshop import load_progress, save_progress
from lab.workspace import Workspace, list_workspaces

ROOT = Path(__file__).resolve().parent.parent
NOTES = ["The refund window at Acme Corp is 45 days.", "Our office dog is called Biscuit."]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "lab-home"


def texts(workspace: Workspace) -> list[str]:
    with MemoryStore(workspace.memory_dir) as store:
        return [m.text for m in store.list()]


def fingerprint(workspace: Workspace) -> dict:
    """Every file of a workspace and its content's hash: "untouched" means this is equal.
    (The index's lock file is left out: opening a store may create it, empty.)"""
    return {str(p.relative_to(workspace.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(workspace.root.rglob("*")) if p.is_file() and not p.name.endswith((".lock", "-shm", "-wal"))}


@pytest.fixture
def owner(home, embedder):
    """alice's lab: two notes (one pinned), an active adapter, pinned settings, some Workshop progress."""
    workspace, key = sharing.create_workspace("alice", home)
    with MemoryStore(workspace.memory_dir, embedder) as store:
        store.add(NOTES[0], question="What is the refund window at Acme Corp?", answer="45 days", source="playground")
        store.add(NOTES[1], pinned=True)
    registry = AdapterRegistry(workspace.adapters_dir)
    registry.register("pirate", random_adapter(home / "pirate.gguf"), {"source": "scenario:pirate"})
    registry.activate("pirate")
    sharing.pin_settings(workspace, LinkSettings(scenario="pirate", k=2))
    save_progress(workspace, {"memory-answer": {"done": True, "state": {}}})
    return workspace, key


def test_a_new_workspace_gets_its_own_edit_key_and_only_it_matches(home):
    first, first_key = sharing.create_workspace(None, home)
    second, second_key = sharing.create_workspace(None, home)
    assert first.name.startswith("browser-") and first_key != second_key and len(first_key) >= 20
    assert sharing.key_matches(first, first_key) and not sharing.key_matches(first, second_key)
    for wrong in (None, "", " ", first_key[:-1], first_key + "x", "naïve-ключ"):
        assert not sharing.key_matches(first, wrong)
    assert (first.root / sharing.KEY_FILE).stat().st_mode & 0o077 == 0  # readable by the server only
    assert sharing.create_workspace(first.name, home) is None  # a name is claimed once


def test_the_owners_edit_link_opens_the_lab_itself(owner, home):
    workspace, key = owner
    arrival = sharing.arrive({"workspace": "alice", "key": key, "k": "4"}, home)
    assert arrival.workspace.name == "alice" and arrival.key == key and arrival.notice is None
    assert (arrival.settings.scenario, arrival.settings.k) == ("pirate", 4)  # pinned, then the link's own


@pytest.mark.parametrize("params", [{"workspace": "alice"}, {"workspace": "alice", "key": "guessed"},
                                    {"workspace": "alice", "key": ["guessed"]}, {"from": "alice"}])
def test_a_workspace_id_alone_gives_no_access_to_that_workspace(owner, home, params):
    workspace, key = owner
    before = fingerprint(workspace)
    arrival = sharing.arrive(params, home)
    assert arrival.workspace.name != "alice" and arrival.workspace.name.startswith("browser-")
    assert arrival.key != key and sharing.key_matches(arrival.workspace, arrival.key)
    assert "copied from alice" in arrival.notice and "alice itself is unchanged" in arrival.notice
    assert fingerprint(workspace) == before


def test_the_copy_notice_tells_a_wrong_key_from_none_and_counts_in_words(owner, home):
    assert "without its edit key" in sharing.arrive({"workspace": "alice"}, home).notice
    wrong = sharing.arrive({"workspace": "alice", "key": "guessed"}, home).notice
    assert "edit key in your link is not this lab's" in wrong and "without its edit key" not in wrong
    assert "(2 memories and the adapter 'pirate')" in wrong
    single, _ = sharing.create_workspace("bob", home)
    with MemoryStore(single.memory_dir) as store:
        store.add(NOTES[0])
    assert "(1 memory)" in sharing.arrive({"from": "bob"}, home).notice


def test_a_copied_link_leaves_the_original_untouched(owner, home, embedder):
    workspace, _ = owner
    before = fingerprint(workspace)
    copy = sharing.arrive({"from": "alice", "arm": "base"}, home)
    mine = copy.workspace
    # The copy has what the lab had: the memories with their fields, the active adapter, the settings...
    with MemoryStore(mine.memory_dir, embedder) as store:
        memories = store.list()
        assert [(m.text, m.pinned) for m in memories] == [(NOTES[0], False), (NOTES[1], True)]
        assert (memories[0].question, memories[0].answer, memories[0].source) == (
            "What is the refund window at Acme Corp?", "45 days", "playground")
        assert store.search("How long do I have to return things to Acme?", k=1)[0].text == NOTES[0]
    assert AdapterRegistry(mine.adapters_dir).active_name() == "pirate"
    assert (copy.settings.scenario, copy.settings.k, copy.settings.arm) == ("pirate", 2, "base")
    assert sharing.copied_from(mine) == "alice"
    # ...but not the owner's progress, nor their key.
    assert load_progress(mine) == {} and sharing.edit_key(mine) != sharing.edit_key(workspace)

    # The visitor wipes and poisons their copy, deletes its adapter: the original is as it was.
    with MemoryStore(mine.memory_dir, embedder) as store:
        store.wipe()
        store.add("The refund window at Acme Corp is 2 days.")
    AdapterRegistry(mine.adapters_dir).delete("pirate")
    assert fingerprint(workspace) == before
    assert texts(workspace) == NOTES and AdapterRegistry(workspace.adapters_dir).active_name() == "pirate"


def test_a_workspace_without_a_key_is_copied_never_claimed(home):
    cli_made = Workspace.open("class-notes", root=home)  # as the CLI makes one: no key
    arrival = sharing.arrive({"workspace": "class-notes", "key": ""}, home)
    assert arrival.workspace.name != "class-notes" and sharing.edit_key(cli_made) is None
    key = sharing.ensure_edit_key(cli_made)  # `python -m lab share` on the server
    assert sharing.arrive({"workspace": "class-notes", "key": key}, home).workspace.name == "class-notes"


def test_a_new_name_is_made_for_whoever_names_it_first(home):
    arrival = sharing.arrive({"workspace": "my-lab"}, home)
    assert arrival.workspace.name == "my-lab" and sharing.key_matches(arrival.workspace, arrival.key)
    assert sharing.arrive({"workspace": "my-lab"}, home).workspace.name != "my-lab"  # the second gets a copy


@pytest.mark.parametrize("params, said", [
    ({"from": "nobody"}, "There is no lab named 'nobody' to copy"),
    ({"from": "../etc"}, "There is no lab named '../etc' to copy"),
    ({"workspace": "a/b"}, "There is no lab named 'a/b'"),
    ({"class": "nonexistent-code"}, "No class link with the code"),
    ({"class": "../../x"}, "is not one the lab makes"),
])
def test_a_bad_link_gives_a_fresh_lab_and_one_line(home, params, said):
    before = list_workspaces(home)
    arrival = sharing.arrive(params, home)
    assert arrival.workspace.name.startswith("browser-") and said in arrival.warning and "\n" not in arrival.warning
    assert list_workspaces(home) == sorted(before + [arrival.workspace.name])


def test_two_bad_values_in_a_link_are_named_in_one_sentence(home):
    """Each bad value once had a sentence of its own ("Ignored from the link: ... Ignored from the link: ...")."""
    arrival = sharing.arrive({"workspace": "../../etc", "scenario": "nonexistent", "k": "abc"}, home)
    warning = arrival.warning
    assert warning.count("Ignored from the link") == 1 and "scenario='nonexistent'" in warning and "k='abc'" in warning
    assert warning.startswith("There is no lab named '../../etc'") and "\n" not in warning
    assert arrival.settings.k == LinkSettings().k and arrival.settings.scenario == LinkSettings().scenario


def test_a_locked_class_link_stays_locked(owner, home):
    teacher, _ = owner
    lock, unlock_key = class_lock.make_class(teacher, LinkSettings(scenario="pirate", arm="memory", k=2, threshold=0.6))
    assert lock.settings.teacher and unlock_key not in (home / ".classes" / f"{lock.token}.json").read_text()
    assert ".classes" not in list_workspaces(home)

    student = sharing.arrive({"class": lock.token, "k": "50", "teacher": "0"}, home)
    assert "copied from alice" in student.notice and sharing.copied_from(student.workspace) == "alice"
    assert student.settings == lock.settings and "k=50" in student.warning and "teacher=0" in student.warning
    held = student.workspace
    save_progress(held, {"memory-answer": {"done": True, "state": {}}})  # the student's own work

    # A reload with an edited address: still held.
    again = sharing.arrive({"workspace": held.name, "key": student.key, "k": "50", "threshold": "-1",
                            "teacher": "0"}, home)
    assert again.workspace == held and again.settings == lock.settings
    assert "k=50, threshold=-1, teacher=0" in again.warning and "Only the teacher's key" in again.warning
    assert sharing.settings_for(held, {"arm": "base"}, again.settings)[0].arm == "memory"

    # A damaged or deleted lock file sets no one free; a copy of the locked lab is locked too.
    (home / ".classes" / f"{lock.token}.json").write_text("{not json")
    assert class_lock.workspace_lock(held).settings == lock.settings
    assert class_lock.workspace_lock(sharing.arrive({"from": held.name}, home).workspace) is not None
    assert "cannot be read" in sharing.arrive({"class": lock.token}, home).warning

    # A damaged record in the workspace itself keeps it locked too (at the lab's defaults).
    damaged = sharing.arrive({"class": "x" * 8}, home).workspace  # (an unknown code: a fresh, unlocked lab)
    assert class_lock.workspace_lock(damaged) is None
    (damaged.root / class_lock.LOCK_FILE).write_text("[1, 2")
    assert class_lock.workspace_lock(damaged).settings == LinkSettings(teacher=True)

    # A wrong key changes nothing; the teacher's key unlocks this lab alone, its progress kept.
    assert "stays locked" in sharing.arrive({"workspace": held.name, "key": student.key, "unlock": "guess"}, home).warning
    assert not class_lock.unlock_workspace(held, "guess") and class_lock.workspace_lock(held) is not None
    unlocked = sharing.arrive({"workspace": held.name, "key": student.key, "unlock": unlock_key, "k": "7"}, home)
    assert "Unlocked" in unlocked.notice and class_lock.workspace_lock(held) is None and unlocked.settings.k == 7
    assert load_progress(held)["memory-answer"]["done"] is True


def test_the_unlock_key_on_a_class_link_opens_an_unlocked_copy(owner, home):
    teacher, _ = owner
    lock, unlock_key = class_lock.make_class(teacher, LinkSettings(k=2))
    seat = sharing.arrive({"class": lock.token, "unlock": unlock_key}, home)
    assert class_lock.workspace_lock(seat.workspace) is None and seat.settings.teacher  # starts as the class does
    class_lock.remember_class_made(teacher, lock, unlock_key)
    assert class_lock.classes_made(teacher)[-1]["unlock_key"] == unlock_key
    assert "classes_made" not in json.loads((seat.workspace.root / "lab.json").read_text())  # never copied


def test_links_name_what_they_open():
    settings = LinkSettings(k=2)
    assert sharing.share_link("alice", settings, "Memory") == "/Memory?from=alice&scenario=acme&arm=memory&k=2&threshold=0.5"
    assert sharing.edit_link("alice", "KEY", settings) == "/?workspace=alice&key=KEY&scenario=acme&arm=memory&k=2&threshold=0.5"
    assert sharing.class_link("T0KEN123", unlock_key="U") == "/Workshop?class=T0KEN123&unlock=U"


def test_the_cli_prints_the_share_link_and_the_owners_edit_link(tmp_path):
    env = {**os.environ, "LAB_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "lab", "share", "--workspace", "alice", "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    key = sharing.edit_key(Workspace.open("alice", root=tmp_path))
    assert data == {"workspace": "alice",
                    "share_link": "http://localhost:8501/?from=alice&scenario=acme&arm=memory&k=2&threshold=0.5",
                    "edit_link": f"http://localhost:8501/?workspace=alice&key={key}&scenario=acme&arm=memory&k=2"
                                 "&threshold=0.5"}
