"""lab/class_lock.py: the lock file behind a class link, and the record each locked workspace keeps.
(What a class link opens, end to end, is in tests/test_sharing.py and tests/test_journey_sharing.py.)"""

import json

import pytest

from lab import class_lock
from lab.errors import LabError
from lab.links import LinkSettings
from lab.workspace import Workspace, list_workspaces


def test_a_class_holds_teacher_mode_and_keeps_only_the_unlock_keys_hash(tmp_path):
    teacher = Workspace.open("teacher", root=tmp_path)
    lock, unlock_key = class_lock.make_class(teacher, LinkSettings(scenario="pirate", k=2), root=tmp_path)
    assert lock.settings == LinkSettings(scenario="pirate", k=2, teacher=True) and lock.source == "teacher"
    stored = (tmp_path / class_lock.CLASSES_DIR / f"{lock.token}.json").read_text()
    assert unlock_key not in stored and json.loads(stored)["unlock_hash"] == lock.unlock_hash
    assert class_lock.load_class(lock.token, root=tmp_path) == lock
    assert class_lock.unlock_matches(lock.unlock_hash, unlock_key)
    assert not any(class_lock.unlock_matches(lock.unlock_hash, wrong) for wrong in (None, "", unlock_key[:-1], "ключ"))
    assert list_workspaces(tmp_path) == ["teacher"]  # the classes folder is no workspace


@pytest.mark.parametrize("content, said", [("{not json", "cannot be read"), ('{"token": 1}', "is damaged"),
                                           ('{"settings": {"k": "lots"}}', "is damaged")])
def test_a_damaged_class_file_is_one_line(tmp_path, content, said):
    (tmp_path / class_lock.CLASSES_DIR).mkdir()
    (tmp_path / class_lock.CLASSES_DIR / "abcdefgh.json").write_text(content)
    with pytest.raises(LabError, match=said) as error:
        class_lock.load_class("abcdefgh", root=tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("token", ["short", "../../etc/passwd", "a b c d e f", "x" * 65])
def test_a_token_the_lab_never_makes_is_refused(tmp_path, token):
    with pytest.raises(LabError, match="not one the lab makes"):
        class_lock.load_class(token, root=tmp_path)


def test_a_workspace_stays_locked_until_its_teachers_key(tmp_path):
    student = Workspace.open("student", root=tmp_path)
    lock, unlock_key = class_lock.make_class(Workspace.open("teacher", root=tmp_path), LinkSettings(), root=tmp_path)
    class_lock.lock_workspace(student, lock)
    (tmp_path / class_lock.CLASSES_DIR / f"{lock.token}.json").unlink()  # the class file gone: still held
    assert class_lock.workspace_lock(student) == lock
    assert not class_lock.unlock_workspace(student, "a guess") and class_lock.workspace_lock(student) == lock
    assert class_lock.unlock_workspace(student, unlock_key) and class_lock.workspace_lock(student) is None
