"""Identical training done once: trained adapters shared by what they were trained on.

Thirty students pressing *train acme* ask for the same job: the same base model file, the
same examples (the scenario's items, plus the replay answers, which the base model gives
greedily and so the same every time), the same settings and seed. The key below names
exactly that. The first request trains and stores the result under
$LAB_HOME/.shared/adapters/KEY/; every later request gets it registered in its own
workspace under the name it chose, in well under a second. A student's own memory is
keyed the same way: identical corrections are an identical job.

    key = training_key(base_sha256(base_path), examples, config)
    cache = TrainingCache()              # under $LAB_HOME/.shared
    if not cache.has(key): cache.store(key, gguf_file, peft_dir, meta)
    cache.register_copy(key, registry, "acme", {"source": "scenario:acme"})

Readers never see half an entry: it is written in a hidden staging folder and renamed into
place whole. Trainings are one at a time (lab/training_queue.py, with a file lock across
processes), and a waiting request looks again once its turn comes, so two requests for the
same key train once. The folder starts with a dot so it is never taken for a workspace.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from lab.adapters import AdapterInfo, AdapterRegistry, write_json_atomic
from lab.learning import RECIPE_VERSION, Example, TrainingConfig, example_record

PRUNE_FLOOR_S = 3600  # prune_unlinked never removes anything younger
SHARED_DIR = ".shared"  # under $LAB_HOME; a dot name is never a workspace (lab/workspace.py)


def shared_dir(root: Path | None = None) -> Path:
    from lab.workspace import home

    return (root or home()) / SHARED_DIR


def training_key(base_sha256: str, examples: list[Example], config: TrainingConfig) -> str:
    """sha256 of everything that decides what train() computes: the base file, the exact
    examples in order (replay rows included), every TrainingConfig field (the seed too) and
    the recipe version.

    >>> training_key("ab" * 32, [Example("Q?", "A.")], TrainingConfig()) == \\
    ...     training_key("ab" * 32, [Example("Q?", "A.")], TrainingConfig(seed=0))
    True
    """
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
    blob = json.dumps({"recipe": RECIPE_VERSION, "base_sha256": base_sha256,
                       "examples": [example_record(e) for e in examples], "config": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no second copy on disk; nobody writes an adapter file in place), or a copy
    where links are impossible (another file system)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class TrainingCache:
    """The trained adapters of every workspace under one LAB_HOME, by training key."""

    def __init__(self, root: Path | None = None):
        self.directory = shared_dir(root) / "adapters"

    def entry(self, key: str) -> Path:
        return self.directory / key

    def has(self, key: str) -> bool:
        folder = self.entry(key)
        return (folder / "adapter.gguf").is_file() and (folder / "meta.json").is_file()

    def meta(self, key: str) -> dict:
        return json.loads((self.entry(key) / "meta.json").read_text(encoding="utf-8"))

    def size_bytes(self, key: str) -> int:
        return sum(f.stat().st_size for f in self.entry(key).rglob("*") if f.is_file())

    def staging_dir(self) -> Path:
        """A fresh hidden folder, on the same file system as the entries, to train into."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.directory, prefix=".staging-"))

    def store(self, key: str, gguf_file: Path, peft_dir: Path | None, meta: dict) -> Path:
        """Move a finished adapter (and its peft copy) in as entry `key`, whole or not at all."""
        staging = self.staging_dir()
        try:
            os.replace(gguf_file, staging / "adapter.gguf")
            if peft_dir is not None and Path(peft_dir).exists():
                os.replace(peft_dir, staging / "peft")
            write_json_atomic(staging / "meta.json", {**meta, "training_key": key})
            final = self.entry(key)
            if final.exists() and not self.has(key):
                shutil.rmtree(final)  # a damaged entry (a disk filled up mid-copy): replaced
            try:
                os.rename(staging, final)  # atomic: the entry appears complete
            except OSError:
                if not self.has(key):
                    raise
                # Stored meanwhile by a process that ignored the lock: the same job, keep that one.
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.entry(key)

    def prune_unlinked(self, older_than_s: float, *, now: float | None = None) -> list[str]:
        """Delete the entries no workspace holds any more, stored over `older_than_s` ago.

        A workspace's adapter is a hard link to its entry's file, so an entry whose file has
        one link left is held by the store alone (its workspaces were pruned, or they deleted
        or replaced it). Younger entries stay: a student may be about to ask for the same
        training. Staging folders left by a crash are removed by the same age rule. On a file
        system without hard links every entry looks unheld; pruning one only costs a
        retraining. Returns the keys removed."""
        import time

        if not self.directory.exists():
            return []
        # Never younger than an hour, whatever DAYS says: a staging folder may be a training
        # still running, and a fresh entry may be about to be linked (store, then register).
        cutoff = (time.time() if now is None else now) - max(older_than_s, PRUNE_FLOOR_S)
        removed = []
        for folder in sorted(self.directory.iterdir()):
            try:
                if folder.name.startswith(".staging-"):
                    if folder.stat().st_mtime < cutoff:
                        shutil.rmtree(folder, ignore_errors=True)
                    continue
                gguf = folder / "adapter.gguf"
                held = gguf.is_file() and gguf.stat().st_nlink > 1
                stored = (folder / "meta.json").stat().st_mtime if (folder / "meta.json").exists() \
                    else folder.stat().st_mtime
            except OSError:  # removed meanwhile by another process
                continue
            if not held and stored < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed

    def register_copy(self, key: str, registry: AdapterRegistry, name: str, extra_meta: dict) -> AdapterInfo:
        """Register entry `key` in a workspace under `name`: the files linked, the meta the entry's
        plus `extra_meta` (where it came from, whether it was reused)."""
        folder = self.entry(key)
        meta = {**self.meta(key), **extra_meta}
        registry.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=registry.directory, prefix=f".{name}.shared-"))
        try:
            _link_or_copy(folder / "adapter.gguf", tmp / "adapter.gguf")
            if (folder / "peft").is_dir():
                shutil.copytree(folder / "peft", tmp / "peft", copy_function=_link_or_copy)
            info = registry.register(name, tmp / "adapter.gguf", meta,
                                     incoming_bytes=self.size_bytes(key))
            target = info.path.parent / "peft"
            shutil.rmtree(target, ignore_errors=True)
            if (tmp / "peft").exists():
                os.replace(tmp / "peft", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return info
