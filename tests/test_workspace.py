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


def test_usage_counts_memories_adapters_and_bytes_without_loading_a_model(tmp_path):
    from lab.memory import MemoryStore
    from lab.workspace import usage

    ws = Workspace.open("class-3b", root=tmp_path)
    store = MemoryStore(ws.memory_dir)
    store.add("Our office dog is called Biscuit.")
    store.close()
    (ws.adapters_dir / "pirate").mkdir()
    (ws.adapters_dir / "pirate" / "adapter.gguf").write_bytes(b"GGUF" + bytes(100))
    row = usage("class-3b", tmp_path)
    assert row["name"] == "class-3b" and row["memories"] == 1 and row["adapters"] == 1
    assert row["bytes"] > 104 and row["last_used"].endswith("Z")


def test_prune_removes_only_old_browser_workspaces(tmp_path):
    import os
    import time

    from lab.workspace import LAST_USED_FILE, mark_used, prune

    old_browser, new_browser, old_named = (Workspace.open(n, root=tmp_path)
                                           for n in ("browser-0123456789ab", "browser-ba9876543210", "class-3b"))
    for ws in (old_browser, new_browser, old_named):
        mark_used(ws)
    month_ago = time.time() - 30 * 86400
    for ws in (old_browser, old_named):
        os.utime(ws.root / LAST_USED_FILE, (month_ago, month_ago))
    assert prune(7, tmp_path) == ["browser-0123456789ab"]
    assert list_workspaces(tmp_path) == ["browser-ba9876543210", "class-3b"]  # a named one is never pruned
    with pytest.raises(LabError):
        prune(-1, tmp_path)


def test_workspaces_cli_lists_and_prunes(tmp_path, monkeypatch, capsys):
    import json

    from lab.cli import main

    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    Workspace.open("named-one")
    assert main(["workspaces", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["workspaces"]
    assert [r["name"] for r in rows] == ["named-one"] and set(rows[0]) == {"name", "memories", "adapters", "bytes",
                                                                             "last_used"}
    assert main(["workspaces", "list"]) == 0
    assert "0 adapters" in capsys.readouterr().out  # counts in words: never "1 adapters"
    assert main(["workspaces", "prune", "--older-than", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"pruned": [], "shared_adapters_pruned": 0}
    assert main(["workspaces", "prune", "--older-than", "-3"]) != 0
    assert capsys.readouterr().err.count("\n") == 1


def test_metadata_is_read_and_updated_without_creating_anything(tmp_path):
    from lab.workspace import exists, read_meta, update_meta

    assert not exists("nobody", tmp_path) and not exists("../x", tmp_path) and not any(tmp_path.iterdir())
    ws = Workspace.open("alice", root=tmp_path)
    assert exists("alice", tmp_path) and read_meta(ws) == {}
    update_meta(ws, copied_from="bob", settings={"k": "2"})
    assert update_meta(ws, copied_from=None) == {"settings": {"k": "2"}} == read_meta(ws)
    (ws.root / "lab.json").write_text("{damaged")
    assert read_meta(ws) == {}
