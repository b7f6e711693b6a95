"""Identical training done once: the key, and real reuse across workspaces (real training, few steps)."""

import json
import threading
from dataclasses import replace

from lab.learning import Example, TrainingConfig
from lab.training_cache import TrainingCache, training_key

BASE = "ab" * 32
QUICK = TrainingConfig(steps=3, batch_size=4, replay=False)


def test_the_key_names_base_examples_settings_and_seed():
    examples = [Example("Q?", "A."), Example("R?", "B.", "replay")]
    key = training_key(BASE, examples, QUICK)
    assert key == training_key(BASE, list(examples), TrainingConfig(steps=3, batch_size=4, replay=False)) and len(key) == 64
    different = [training_key("cd" * 32, examples, QUICK), training_key(BASE, examples[:1], QUICK),
                 training_key(BASE, examples[::-1], QUICK), training_key(BASE, examples, replace(QUICK, seed=1)),
                 training_key(BASE, examples, replace(QUICK, rank=4)),
                 training_key(BASE, [Example("Q?", "A.", "text"), examples[1]], QUICK)]
    assert len({key, *different}) == len(different) + 1


def test_a_second_identical_training_reuses_the_first(engine, embedder, capsys):
    """Two students train acme with the same settings: the second gets the first one's adapter,
    file for file, registered under its own name, and says it was reused."""
    from lab.cli import main
    from lab.consolidation import consolidate
    from lab.scenario import load_scenario
    from lab.session import LabSession

    acme = load_scenario("acme")
    alice, bob = LabSession.open("alice"), LabSession.open("bob")
    first = consolidate(alice, name="acme", scenario=acme, config=QUICK)
    second = consolidate(bob, name="my-acme", scenario=acme, config=QUICK)
    assert not first.reused and second.reused
    assert second.path.read_bytes() == first.path.read_bytes() and second.path != first.path
    assert second.loss_curve == [round(x, 5) for x in first.loss_curve] and second.steps == 3
    meta = bob.adapters.get("my-acme").meta
    assert meta["reused"] is True and meta["source"] == "scenario:acme" and "reused_in_s" in meta
    assert meta["training_key"] == alice.adapters.get("acme").meta["training_key"]
    assert bob.adapters.active_name() == "my-acme" and (second.path.parent / "peft" / "adapter_config.json").exists()
    # Deleting one student's copy leaves the shared one, and the other student's, intact.
    alice.adapters.delete("acme")
    assert TrainingCache().has(meta["training_key"]) and second.path.read_bytes()

    # The CLI keeps its JSON shape and adds "reused".
    assert main(["train", "--scenario", "acme", "--name", "cli-acme", "--steps", "3", "--batch-size", "4",
                 "--no-replay", "--workspace", "carol", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"name", "path", "seconds", "steps", "final_loss", "train_tokens_per_s"} <= set(out)
    assert out["reused"] is True and out["name"] == "cli-acme"
    # A student's own memory is keyed the same way: the same corrections are the same job.
    for session in (bob, alice):
        session.memory.add("A fact.", question="Q?", answer="A fact.")
    assert not consolidate(bob, name="mine", config=QUICK).reused
    assert consolidate(alice, name="mine", config=QUICK).reused
    assert not consolidate(alice, name="seed-1", config=replace(QUICK, seed=1)).reused


def test_two_identical_requests_at_once_train_once(engine, embedder):
    """Two sessions press Train together: one trains, the other waits in the queue, then finds
    the adapter trained and reuses it; neither sees a half-written file."""
    from lab.jobs import TrainingJob
    from lab.scenario import load_scenario
    from lab.session import LabSession

    pirate = load_scenario("pirate")
    sessions = [LabSession.open(f"twin-{i}") for i in range(2)]
    jobs = [TrainingJob(s, name="pirate", scenario=pirate, config=QUICK) for s in sessions]
    go = threading.Barrier(2)
    starters = [threading.Thread(target=lambda j=j: (go.wait(), j.start())) for j in jobs]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    for job in jobs:
        job.wait(300)
        assert job.state == "done", job.error
    assert sorted(j.result.reused for j in jobs) == [False, True]
    assert jobs[0].result.path.read_bytes() == jobs[1].result.path.read_bytes()
    entries = [p for p in TrainingCache().directory.iterdir()]
    assert [p.name.startswith(".") for p in entries].count(True) == 0  # no staging folder left


def test_prune_removes_only_old_entries_no_workspace_holds(tmp_path):
    """The shared store shrinks: an entry whose workspaces are gone (its file has one link left)
    and that is older than the cut-off goes; one a workspace still links, or a young one, stays."""
    import os

    from lab.adapters import AdapterRegistry

    cache = TrainingCache(tmp_path)
    for key in ("held", "orphan", "young"):
        made = tmp_path / f"{key}.gguf"
        made.write_bytes(b"GGUF" + key.encode())
        cache.store(key, made, None, {"name": key})
    registry = AdapterRegistry(tmp_path / "student" / "adapters")
    cache.register_copy("held", registry, "acme", {"source": "scenario:acme"})
    day = 86400
    for key in ("held", "orphan"):
        os.utime(cache.entry(key) / "meta.json", (1000 * day, 1000 * day))
    leftover = cache.staging_dir()
    os.utime(leftover, (1000 * day, 1000 * day))

    assert cache.prune_unlinked(7 * day, now=1010 * day) == ["orphan"]
    assert cache.has("held") and cache.has("young") and not cache.entry("orphan").exists()
    assert not leftover.exists()  # a crashed training's staging folder, old: gone too
    assert registry.get("acme").path.read_bytes() == b"GGUFheld"

    registry.delete("acme")  # the last workspace lets go: the entry is the store's alone
    assert cache.prune_unlinked(7 * day, now=1010 * day) == ["held"]
