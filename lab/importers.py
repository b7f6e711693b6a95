"""Importers: knowledge-editing datasets turned into lab scenarios.

    zsRE (MEND/EasyEdit format): src -> question, alt -> the new answer, rephrase ->
        paraphrase, loc / loc_ans -> a locality question and its answer.
    CounterFact (ROME format): requested_rewrite {prompt, subject, target_new, target_true}
        -> the item, paraphrase_prompts -> paraphrases, neighborhood_prompts -> locality
        questions whose answer is still target_true.

The output is validated against the scenario schema before it is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lab.adapters import write_json_atomic
from lab.errors import LabError

MAX_INPUT_BYTES = 200 * 1024 * 1024


def _read(path: Path) -> list:
    if not path.is_file():
        raise LabError(f"dataset file not found: {path}")
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise LabError(f"{path}: larger than {MAX_INPUT_BYTES // 2**20} MB")
    text = path.read_text(encoding="utf-8", errors="strict")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Some releases are JSON Lines.
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise LabError(f"{path}: neither JSON nor JSON Lines ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise LabError(f"{path}: expected a non-empty list of records")
    return data


def _field(record, key, where, kind=str):
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise LabError(f"{where}.{key}: missing or not a {'non-empty string' if kind is str else kind.__name__}")
    return value


def _question(text: str) -> str:
    text = re.sub(r"^nq question:\s*", "", text.strip())
    return text[0].upper() + text[1:] + ("" if text.endswith("?") else "?")


def from_zsre(records: list, source: str) -> tuple[list, list]:
    items, locality = [], []
    for n, r in enumerate(records):
        where = f"{source}[{n}]"
        src, alt = _field(r, "src", where), _field(r, "alt", where)
        item = {"question": src, "answer": alt, "target": re.escape(alt.strip()),
                "correction": f"{src.rstrip('?').strip()}? {alt.strip()}."}
        rephrase = r.get("rephrase")
        if isinstance(rephrase, str) and rephrase.strip():
            item["paraphrases"] = [rephrase]
        items.append(item)
        if isinstance(r.get("loc"), str) and isinstance(r.get("loc_ans"), str) and r["loc_ans"].strip():
            locality.append({"question": _question(r["loc"]), "target": re.escape(r["loc_ans"].strip())})
    return items, locality


def from_counterfact(records: list, source: str) -> tuple[list, list]:
    items, locality = [], []
    for n, r in enumerate(records):
        where = f"{source}[{n}]"
        rewrite = _field(r, "requested_rewrite", where, dict)
        prompt, subject = _field(rewrite, "prompt", f"{where}.requested_rewrite"), \
            _field(rewrite, "subject", f"{where}.requested_rewrite")
        new = _field(_field(rewrite, "target_new", f"{where}.requested_rewrite", dict), "str",
                     f"{where}.requested_rewrite.target_new")
        true = rewrite.get("target_true", {}).get("str") if isinstance(rewrite.get("target_true"), dict) else None
        try:
            stem = prompt.format(subject) if "{}" in prompt else f"{subject} {prompt}"
        except (IndexError, KeyError):
            raise LabError(f"{where}.requested_rewrite.prompt: cannot fill in the subject") from None
        item = {"question": stem + " ...", "answer": f"{stem} {new}.", "target": re.escape(new.strip())}
        paraphrases = [p for p in r.get("paraphrase_prompts", []) if isinstance(p, str) and p.strip()]
        if paraphrases:
            item["paraphrases"] = paraphrases[:50]
        items.append(item)
        if true:
            locality += [{"question": p, "target": re.escape(true.strip())}
                         for p in r.get("neighborhood_prompts", [])[:5] if isinstance(p, str) and p.strip()]
    return items, locality


def import_dataset(fmt: str, path: str | Path, out: str | Path, name: str | None = None) -> tuple[int, Path]:
    """Convert a dataset file into a scenario file; returns (items, output path)."""
    from lab.scenario import load_scenario

    path, out = Path(path), Path(out)
    records = _read(path)
    convert = {"zsre": from_zsre, "counterfact": from_counterfact}.get(fmt)
    if convert is None:
        raise LabError(f"unknown dataset format {fmt!r}: choose zsre or counterfact")
    items, locality = convert(records, path.name)
    slug = re.sub(r"[^a-z0-9_-]+", "-", (name or out.stem).lower()).strip("-")[:64] or fmt
    scenario = {"name": slug, "title": f"{fmt} import of {path.name}", "kind": "facts",
                "description": f"Imported from {path.name} ({len(items)} edits) by python -m lab import {fmt}.",
                "items": items, "locality": locality, "probes": []}
    tmp = out.with_name(f".{out.name}.tmp")
    write_json_atomic(tmp, scenario)
    try:
        load_scenario(tmp)  # refuse to write a scenario the lab itself would reject
    except LabError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return len(items), out
