import pytest

from lab.adapters import AdapterRegistry
from lab.errors import LabError, NotFound


def _fake_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"GGUF" + b"\0" * 16)
    return path


def test_register_activate_deactivate_delete(tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    assert registry.list() == [] and registry.active() is None
    registry.register("v1", _fake_file(tmp_path, "a.gguf"), {"steps": 3})
    registry.register("v2", _fake_file(tmp_path, "b.gguf"), {"steps": 5})
    assert [a.name for a in registry.list()] == ["v1", "v2"]
    registry.activate("v2")
    assert registry.active().name == "v2" and registry.get("v2").meta == {"steps": 5}
    assert registry.deactivate() == "v2" and registry.active() is None
    registry.activate("v1")
    registry.delete("v1")
    assert registry.active() is None and [a.name for a in registry.list()] == ["v2"]


def test_unknown_and_invalid_names(tmp_path):
    registry = AdapterRegistry(tmp_path)
    with pytest.raises(NotFound, match="train one"):
        registry.activate("missing")
    with pytest.raises(LabError, match="invalid adapter name"):
        registry.get("../x")


def test_free_name_and_trained_on(tmp_path):
    import os

    from lab.adapters import AdapterRegistry

    registry = AdapterRegistry(tmp_path)
    assert registry.free_name("acme") == "acme" and registry.trained_on("scenario:acme") is None
    for name, source in (("acme", "memory"), ("acme-2", "scenario:acme")):
        (tmp_path / "x.gguf").write_bytes(b"GGUF")
        registry.register(name, tmp_path / "x.gguf", {"source": source})
    assert registry.free_name("acme") == "acme-3"  # neither is replaced
    assert registry.trained_on("scenario:acme").name == "acme-2"
    assert registry.trained_on("scenario:pirate") is None
