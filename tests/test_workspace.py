import pytest

from lab.errors import LabError
from lab.workspace import Workspace, list_workspaces, validate_name


@pytest.mark.parametrize("name", ["default", "class-3b", "alice_1", "run.2", "A" * 64])
def test_valid_names_open_a_folder_with_its_parts(name, tmp_path):
    ws = Workspace.open(name, root=tmp_path)
    assert ws.root == tmp_path / name
    assert ws.memory_dir.is_dir() and ws.adapters_dir.is_dir() and ws.results_dir.is_dir()
    assert name in list_workspaces(tmp_path)


@pytest.mark.parametrize("name", ["", "..", ".", "../escape", "a/b", "/etc", ".hidden", "a\x00b",
                                  "with space", "A" * 65, "naïve", "trailing\n"])
def test_bad_names_are_refused_with_one_line(name, tmp_path):
    with pytest.raises(LabError) as error:
        Workspace.open(name, root=tmp_path)
    assert "\n" not in str(error.value)
    assert not any(tmp_path.iterdir())


def test_root_comes_from_lab_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    ws = Workspace.open("x")
    assert ws.root == (tmp_path / "home" / "x").resolve()


def test_validate_name_returns_the_name():
    assert validate_name("ok") == "ok"
