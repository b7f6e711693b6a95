"""`python -m lab`: the lab from a terminal. A thin layer over lab.session.

Every command takes --workspace and --json. With --json, stdout is one JSON object
(the shapes are a contract other tools rely on). Errors print one line on stderr and
exit non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lab import __version__
from lab.agent import ARMS, DEFAULT_K, DEFAULT_MIN_SCORE
from lab.consolidation import DEFAULT_METHOD, DISTILL_STEPS, METHODS, default_steps
from lab.errors import LabError
from lab.learning import TrainingConfig
from lab.plural import plural

EXIT_ERROR = 2  # a user error: bad input, missing file, unknown id
EXIT_BUG = 1  # anything unexpected


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr, like every other error here."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"error: {message} (see: {self.prog} --help)\n")


def _common() -> argparse.ArgumentParser:
    """Options every command accepts, before or after the command name."""
    common = OneLineParser(add_help=False)
    common.add_argument("--workspace", "-w", default=argparse.SUPPRESS,
                        help="workspace name under $LAB_HOME (default: 'default')")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON object instead of text")
    common.add_argument("--model", default=argparse.SUPPRESS,
                        help="path to a GGUF model (default: $LAB_MODEL or SmolLM2-135M-Instruct)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = OneLineParser(prog="python -m lab", parents=[common],
                                     description="Memory vs Learning Lab: compare a model that recalls "
                                                 "corrections with one that was trained on them.")
    parser.add_argument("--version", action="version", version=f"lab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    ask = commands.add_parser("ask", parents=[common], help="answer a question with one arm")
    ask.add_argument("question")
    ask.add_argument("--arm", choices=ARMS, default="base")
    ask.add_argument("--k", type=int, default=DEFAULT_K, help=f"memories to retrieve (default {DEFAULT_K})")
    ask.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                     help=f"lowest cosine similarity a memory needs to be used (default {DEFAULT_MIN_SCORE})")
    ask.add_argument("--adapter", help="adapter name for the learned/both arms (default: the active one)")
    ask.add_argument("--show-prompt", action="store_true", help="also print the exact prompt sent")

    remember = commands.add_parser("remember", parents=[common], help="store a correction in memory")
    remember.add_argument("text")
    remember.add_argument("--question")
    remember.add_argument("--answer")
    remember.add_argument("--source", default="user")
    remember.add_argument("--pin", action="store_true",
                          help="pin it: in every memory-arm prompt, not only when retrieved (costs tokens on every answer)")

    memory = commands.add_parser("memory", parents=[common], help="inspect and manage the memory")
    ops = memory.add_subparsers(dest="op", metavar="OP")
    ops.required = True
    ops.add_parser("list", parents=[common], help="list every memory")
    search = ops.add_parser("search", parents=[common], help="semantic search")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--min-score", type=float, default=0.0)
    edit = ops.add_parser("edit", parents=[common], help="change a memory's text (re-embeds it)")
    edit.add_argument("id", type=int)
    edit.add_argument("text")
    delete = ops.add_parser("delete", parents=[common], help="delete one memory")
    delete.add_argument("id", type=int)
    pin = ops.add_parser("pin", parents=[common], help="put a memory into every memory-arm prompt")
    pin.add_argument("id", type=int)
    unpin = ops.add_parser("unpin", parents=[common], help="make a pinned memory retrieved again")
    unpin.add_argument("id", type=int)
    ops.add_parser("undo", parents=[common], help="undo the last change")
    ops.add_parser("wipe", parents=[common], help="delete every memory (undo brings them back)")
    snapshot = ops.add_parser("snapshot", parents=[common], help="save the memory under a name")
    snapshot.add_argument("name")
    restore = ops.add_parser("restore", parents=[common], help="replace the memory with a snapshot")
    restore.add_argument("name")
    ops.add_parser("snapshots", parents=[common], help="list snapshots")
    export = ops.add_parser("export", parents=[common], help="write the memory to a JSON file")
    export.add_argument("file")
    import_ = ops.add_parser("import", parents=[common], help="add the memories in a JSON file")
    import_.add_argument("file")

    adapters = commands.add_parser("adapters", parents=[common], help="list and choose LoRA adapters")
    adapter_ops = adapters.add_subparsers(dest="op", metavar="OP")
    adapter_ops.required = True
    adapter_ops.add_parser("list", parents=[common])
    activate = adapter_ops.add_parser("activate", parents=[common])
    activate.add_argument("name")
    adapter_ops.add_parser("deactivate", parents=[common])
    remove = adapter_ops.add_parser("delete", parents=[common])
    remove.add_argument("name")
    permanent = adapter_ops.add_parser("make-permanent", parents=[common],
                                       help="merge an adapter into a standalone GGUF model")
    permanent.add_argument("name")

    train = commands.add_parser("train", parents=[common],
                                help="consolidate corrections into a LoRA adapter (and activate it)")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-memory", action="store_true", help="train on the workspace memory")
    source.add_argument("--scenario", help="train on a scenario file or bundled scenario name")
    train.add_argument("--name", required=True, help="adapter name")
    train.add_argument("--steps", type=int,
                       help=f"training steps (default: {TrainingConfig.steps} for sft, {DISTILL_STEPS} for distill)")
    train.add_argument("--rank", type=int, default=TrainingConfig.rank)
    train.add_argument("--alpha", type=float, help="LoRA alpha (default: 2 x rank)")
    train.add_argument("--lr", type=float, default=TrainingConfig.learning_rate)
    train.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    train.add_argument("--top-layers", type=int, default=TrainingConfig.top_layers,
                       help="adapt only the top N layers (faster; default %(default)s)")
    train.add_argument("--layers", help="adapt exactly these layers, e.g. 0,4,8 or 10-29 (overrides --top-layers)")
    train.add_argument("--paraphrases", action="store_true", help="also train on each item's paraphrases")
    train.add_argument("--replay", action=argparse.BooleanOptionalAction, default=TrainingConfig.replay,
                       help="hold the base model's answers to general questions while learning (less "
                            "forgetting: the replayed answers share the steps); --no-replay for the "
                            "forgetting exercise (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                       help="sft: learn each correction's answer; distill: learn what the notes did in the "
                            "prompt (the base model's reply with them), without the notes")

    for command, text in (("eval", "measure each arm on a scenario"),
                          ("wipe-test", "evaluate, wipe the memory, evaluate again: what survives?")):
        sub = commands.add_parser(command, parents=[common], help=text)
        sub.add_argument("--scenario", required=True, help="a scenario file or bundled scenario name")
        sub.add_argument("--arms", default=",".join(ARMS), help="comma-separated arms (default: all four)")
        sub.add_argument("--adapter", help="adapter for the learned arms (default: train one on the items)")
        if command == "wipe-test":
            sub.add_argument("--train", action="store_true", help="train a fresh adapter on the items first")
        else:
            sub.add_argument("--logprob", action="store_true",
                             help="also the mean teacher-forced log-probability of the answers")

    consolidate = commands.add_parser(
        "consolidate", parents=[common],
        help="train an adapter on memories that proved themselves, verify it, and retire what it answers for")
    chosen = consolidate.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--ids", help="comma-separated memory ids, e.g. 1,2,3")
    chosen.add_argument("--candidates", action="store_true",
                        help="the memories the usage rule picks (alone, without --name: list them)")
    chosen.add_argument("--all", action="store_true", help="every memory")
    consolidate.add_argument("--name", help="adapter name (needed to train)")
    consolidate.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD)
    consolidate.add_argument("--retire", action="store_true",
                             help="move the verified memories out of the store (undo brings them back)")
    consolidate.add_argument("--steps", type=int,
                             help=f"training steps (default: {TrainingConfig.steps} for sft, {DISTILL_STEPS} for distill)")
    consolidate.add_argument("--replay", action=argparse.BooleanOptionalAction, default=TrainingConfig.replay,
                             help="replay the base model's answers while training (default: %(default)s)")
    consolidate.add_argument("--min-retrievals", type=int, default=3, help="candidates: sent into at least N answers")
    consolidate.add_argument("--min-decisive", type=int, default=1,
                             help="candidates: leaving it out changed the answer at least N times")
    consolidate.add_argument("--min-age-days", type=float, default=0.02, help="candidates: unchanged for D days")

    behaviour = commands.add_parser("behaviour", parents=[common],
                                    help="a behaviour held three ways: retrieved notes, pinned notes, learned weights")
    behaviour.add_argument("--scenario", required=True, help="a behavior scenario file or bundled name (pirate)")
    behaviour.add_argument("--adapter", help="adapter for the learned way (default: train one on the items)")

    update = commands.add_parser("update-test", parents=[common],
                                 help="the facts change: memory is edited in place, the adapter must be retrained")
    update.add_argument("--scenario", required=True, help="a scenario of kind updates (bundled: changing-facts)")
    update.add_argument("--steps", type=int, help="training steps of both trainings (default: 30)")

    importer = commands.add_parser("import", parents=[common], help="turn a zsRE or CounterFact file into a scenario")
    importer.add_argument("format", choices=("zsre", "counterfact"))
    importer.add_argument("file")
    importer.add_argument("--out", required=True, help="scenario JSON to write")
    importer.add_argument("--name", help="scenario name (default: from the output file name)")

    curve = commands.add_parser("curve", parents=[common],
                                help="score against corrections remembered and against training steps")
    curve.add_argument("--scenario", required=True)
    curve.add_argument("--steps", default="10,20,30,40", help="training steps to measure (comma-separated)")
    curve.add_argument("--no-learning", action="store_true", help="only the memory curve (no training)")

    explain = commands.add_parser("explain", parents=[common], help="which retrieved memory changed the answer?")
    explain.add_argument("question")
    explain.add_argument("--arm", choices=("memory", "both"), default="memory")
    explain.add_argument("--k", type=int, default=3)
    explain.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE)

    commands.add_parser("status", parents=[common], help="model, embedder, llama.cpp and workspace status")
    share = commands.add_parser("share", parents=[common],
                                help="the link that hands out copies of the workspace, and its owner's edit link")
    share.add_argument("--url", default="http://localhost:8501", help="the app's address (default %(default)s)")
    share.add_argument("--page", default="", help="the page the links open, e.g. Workshop (default: Home)")
    spaces = commands.add_parser("workspaces", parents=[common], help="list or prune the workspaces under $LAB_HOME")
    space_ops = spaces.add_subparsers(dest="op", required=True)
    space_ops.add_parser("list", parents=[common])
    prune = space_ops.add_parser("prune", parents=[common],
                                 help="delete the app's browser workspaces unused for DAYS (never a named one), "
                                      "and shared trained adapters no workspace holds any more")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    cache = commands.add_parser("cache", parents=[common], help="the class's reply and embedding caches: size, or --clear them")
    cache.add_argument("--clear", action="store_true",
                       help="forget every cached reply and embedding (they are computed again)")
    commands.add_parser("check", parents=[common],
                        help="answer one test question in a child process: does llama.cpp work on this machine?")
    return parser


# ---- command handlers: each returns (json_object, text) -----------------------------------


def _hits_text(hits) -> str:
    if not hits:
        return "  (no memory retrieved)"
    return "\n".join(f"  [{h.id}] {'pinned' if getattr(h, 'pinned', False) else 'score'} {h.score:.3f}  {h.text}"
                     for h in hits)


def cmd_ask(session, args):
    result = session.agent.answer(args.question, args.arm, k=args.k, min_score=args.min_score,
                                  adapter=args.adapter)
    lines = [f"[{result.arm}] {result.answer}"]
    if result.arm in ("memory", "both"):
        lines += ["memories used:", _hits_text(result.hits)]
    lines.append(f"{result.prompt_tokens} prompt tokens, {result.completion_tokens} completion tokens, "
                 f"{result.latency_ms:.0f} ms")
    if args.show_prompt:
        lines += ["--- prompt sent ---", result.prompt]
    return result.to_json(verbose=args.show_prompt), "\n".join(lines)


def _memory_json(m, usage=None) -> dict:
    from lab.memory import Usage

    usage = usage or Usage()
    return {"id": m.id, "text": m.text, "question": m.question, "answer": m.answer, "source": m.source,
            "created_at": m.created_at, "updated_at": m.updated_at, "pinned": m.pinned,
            "retrievals": usage.retrievals, "last_retrieved_at": usage.last_retrieved_at,
            "decisive": usage.decisive, "tested": usage.tested}


def cmd_remember(session, args):
    memory = session.remember(args.text, question=args.question, answer=args.answer, source=args.source,
                              pinned=args.pin)
    data = {"id": memory.id, "pinned": memory.pinned}
    if memory.pinned:
        cost = session.pinned_tokens()
        data["pinned_tokens"] = cost
        return data, f"remembered [{memory.id}] {memory.text} (pinned: {cost} prompt tokens on every answer)"
    return data, f"remembered [{memory.id}] {memory.text}"


def cmd_memory(session, args):
    store = session.memory
    if args.op == "list":
        items, usage = store.list(), store.usage()
        text = "\n".join(f"[{m.id}]{' (pinned)' if m.pinned else ''} {m.text}"
                         f"{f'  · sent {usage[m.id].retrievals}x' if m.id in usage else ''}" for m in items)
        return {"memories": [_memory_json(m, usage.get(m.id)) for m in items]}, text or "(memory is empty)"
    if args.op in ("pin", "unpin"):
        m = session.pin(args.id, args.op == "pin")
        cost = session.pinned_tokens()
        return ({"id": m.id, "pinned": m.pinned, "pinned_tokens": cost},
                f"{'pinned' if m.pinned else 'unpinned'} [{m.id}] {m.text}; pinned memory now costs {cost} "
                "prompt tokens per answer")
    if args.op == "search":
        hits = store.search(args.query, k=args.k, min_score=args.min_score)
        return ({"hits": [{"id": h.id, "text": h.text, "score": round(float(h.score), 4)} for h in hits]},
                _hits_text(hits))
    if args.op == "edit":
        m = store.update(args.id, text=args.text)  # an answer that was the old fact follows the new text
        return ({"id": m.id, "text": m.text, "answer": m.answer},
                f"updated [{m.id}] {m.text}" + (f" (answer: {m.answer})" if m.answer and m.answer != m.text else ""))
    if args.op == "delete":
        m = store.delete(args.id)
        return {"deleted": m.id}, f"deleted [{m.id}] {m.text}"
    if args.op == "undo":
        what = store.undo()
        return {"undone": what}, f"undone: {what}"
    if args.op == "wipe":
        n = store.wipe()
        return {"wiped": n}, f"wiped {plural(n, 'memory')} (memory undo brings them back)"
    if args.op == "snapshot":
        n = store.snapshot(args.name)
        return {"snapshot": args.name, "count": n}, f"saved snapshot {args.name!r} ({plural(n, 'memory')})"
    if args.op == "restore":
        n = store.restore(args.name)
        return {"restored": args.name, "count": n}, f"restored snapshot {args.name!r} ({plural(n, 'memory')})"
    if args.op == "snapshots":
        snaps = store.snapshots()
        text = "\n".join(f"{s['name']}: {plural(s['count'], 'memory')}, {s['created_at']}" for s in snaps)
        return {"snapshots": snaps}, text or "(no snapshots)"
    if args.op == "export":
        n = store.export(args.file)
        return {"exported": n, "path": os.path.abspath(args.file)}, f"exported {plural(n, 'memory')} to {args.file}"
    if args.op == "import":
        n = store.import_(args.file)
        return {"imported": n}, f"imported {plural(n, 'memory')} from {args.file}"
    raise LabError(f"unknown memory operation {args.op!r}")


def cmd_adapters(session, args):
    registry = session.adapters
    if args.op == "list":
        items = registry.list()
        text = "\n".join(f"{'*' if a.active else ' '} {a.name}  {a.path}" for a in items) or "(no adapters)"
        return {"adapters": [a.to_json() for a in items]}, text
    if args.op == "activate":
        info = registry.activate(args.name)
        session.engine.load_adapter(info.path)  # refuse a corrupt file now, not at the next ask
        return {"active": info.name}, f"active adapter: {info.name}"
    if args.op == "deactivate":
        previous = registry.deactivate()
        return {"active": None, "previous": previous}, "no adapter is active"
    if args.op == "delete":
        registry.delete(args.name)
        return {"deleted": args.name}, f"deleted adapter {args.name}"
    if args.op == "make-permanent":
        from lab.merge import make_permanent

        data = make_permanent(session, args.name)
        return data, (f"wrote {data['model']} ({data['size_bytes'] / 1e6:.0f} MB, {data['seconds']:.1f} s); "
                      f"use it with: python -m lab ask --model {data['model']} QUESTION")
    raise LabError(f"unknown adapters operation {args.op!r}")


def cmd_status(session, args):
    from lab import llama_runtime
    from lab.models import embedder_path

    info = session.engine.info
    active = session.adapters.active_name()
    data = {"model": {"path": str(info.path), "name": info.name, "architecture": info.architecture,
                      "size_bytes": info.size_bytes, "chat_template": info.has_chat_template},
            "embedder": {"path": str(embedder_path())},
            "workspace": {"name": session.workspace.name, "path": str(session.workspace.root),
                          "memories": session.memory.count(), "active_adapter": active},
            "llama_cpp": llama_runtime.describe()}
    from lab import embedding_cache
    from lab.reply_cache import shared_cache

    cache, vectors = shared_cache(), embedding_cache.shared_cache()
    data["reply_cache"] = {"path": str(cache.path), "entries": len(cache), "max_entries": cache.max_entries}
    data["embedding_cache"] = {"path": str(vectors.path), "entries": len(vectors), "max_entries": vectors.max_entries}
    text = (f"model:     {info.name} ({info.architecture}, {info.size_bytes / 1e6:.0f} MB) {info.path}\n"
            f"embedder:  all-MiniLM-L6-v2 {data['embedder']['path']}\n"
            f"workspace: {session.workspace.name} at {session.workspace.root}: "
            f"{plural(data['workspace']['memories'], 'memory')}, active adapter: {active or 'none'}\n"
            f"llama.cpp: {data['llama_cpp']['version']}, CPU features "
            f"{' '.join(data['llama_cpp']['cpu_features'])}, AMX {'ON' if data['llama_cpp']['amx'] else 'off'}\n"
            f"replies:   {data['reply_cache']['entries']} cached for the class (of at most "
            f"{data['reply_cache']['max_entries']}) in {cache.path}\n"
            f"vectors:   {data['embedding_cache']['entries']} embeddings cached for the class in {vectors.path}")
    return data, text


def cmd_share(session, args):
    """Whoever runs the CLI holds the server's files, so it may see (and make) the edit key."""
    from lab import sharing

    workspace, base = session.workspace, args.url.rstrip("/")
    settings = sharing.pinned_settings(workspace)
    key = sharing.ensure_edit_key(workspace)
    data = {"workspace": workspace.name,
            "share_link": base + sharing.share_link(workspace.name, settings, args.page),
            "edit_link": base + sharing.edit_link(workspace.name, key, settings, args.page)}
    return data, (f"share (each visitor gets a copy): {data['share_link']}\n"
                  f"edit (opens {workspace.name} itself; keep it to yourself): {data['edit_link']}")


def cmd_workspaces(args):
    """Needs no session: opening one would create a workspace and mark it used."""
    from lab.workspace import list_workspaces, prune, usage

    if args.op == "list":
        rows = [usage(name) for name in list_workspaces()]
        lines = [f"{r['name']:30} {plural(r['memories'], 'memory') if r['memories'] is not None else '? memories':>15} "
                 f"{plural(r['adapters'], 'adapter'):>11} {r['bytes'] / 1e6:8.1f} MB  last used {r['last_used']}"
                 for r in rows]
        return {"workspaces": rows}, "\n".join(lines) or "no workspaces yet"
    from lab.training_cache import TrainingCache

    pruned = prune(args.older_than)
    # After the workspaces: a pruned workspace's adapters let go of their shared entries first.
    shared = TrainingCache().prune_unlinked(args.older_than * 86400)
    return ({"pruned": pruned, "shared_adapters_pruned": len(shared)},
            f"pruned {len(pruned)} browser workspaces unused for {args.older_than:g} days"
            + (": " + ", ".join(pruned) if pruned else "")
            + (f"; {len(shared)} shared adapters no workspace holds" if shared else ""))


def cmd_check(args):
    """Needs no session: loading the model in this process is exactly what might crash."""
    from lab.llama_runtime import CHECK_QUESTION, check_answers

    result = check_answers(getattr(args, "model", None))
    return result.to_json(), (f"llama.cpp answers: {CHECK_QUESTION!r} -> {result.answer.strip()!r} "
                              f"({result.seconds:.1f} s; CPU features {' '.join(result.cpu_features)})")


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    """'0,4,8' or '10-29' or '0-3,8' -> layer indices."""
    if not text:
        return None
    layers: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            layers += range(int(low), int(high or low) + 1)
    except ValueError:
        raise LabError(f"--layers must look like 0,4,8 or 10-29, got {text!r}") from None
    return tuple(layers)


def cmd_train(session, args):
    from lab.consolidation import consolidate
    from lab.scenario import load_scenario

    scenario = load_scenario(args.scenario) if args.scenario else None
    steps = default_steps(args.method) if args.steps is None else args.steps  # each method's own default
    config = TrainingConfig(steps=steps, rank=args.rank, alpha=args.alpha or 2.0 * args.rank,
                            learning_rate=args.lr, batch_size=args.batch_size, paraphrases=args.paraphrases,
                            top_layers=args.top_layers, layers=_parse_layers(args.layers),
                            replay=args.replay, seed=args.seed)
    show = sys.stderr.isatty() and not getattr(args, "json", False)

    def progress(p):
        if show:
            print(f"\rstep {p.step}/{p.steps}  loss {p.loss:.3f}  {p.tokens_per_s:.0f} tok/s  "
                  f"ETA {p.eta_s:.0f} s ", end="", file=sys.stderr, flush=True)

    result = consolidate(session, name=args.name, scenario=scenario, config=config, on_progress=progress,
                         method=args.method)
    if show:
        print(file=sys.stderr)
    if result.reused:
        return result.to_json(), (f"adapter {result.name!r} ready in {result.seconds:.1f} s: the same training "
                                  f"(same data, settings and seed) was done before on this server, in "
                                  f"{result.training_seconds:.1f} s, and is reused ({result.steps} steps, final "
                                  f"loss {result.final_loss:.3f}); it is now active\n{result.path}")
    return result.to_json(), (f"trained adapter {result.name!r} in {result.seconds:.1f} s "
                              f"({result.steps} steps, final loss {result.final_loss:.3f}, "
                              f"{result.train_tokens_per_s:.0f} train tokens/s); it is now active\n"
                              f"{result.path}")


def _parse_arms(text: str) -> list[str]:
    arms = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise LabError(f"unknown arm(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(ARMS)}")
    return arms


def _adapter_for(session, scenario, arms, name, train_now):
    """The adapter file the learned arms use: --adapter NAME, or one trained on the items
    (named SCENARIO-auto, reused on later runs unless --train asks for a fresh one)."""
    from lab.consolidation import consolidate

    if not {"learned", "both"} & set(arms):
        return None
    if name and not train_now:
        return session.adapters.get(name).path
    auto = name or f"{scenario.name}-auto"
    if not train_now and auto in [a.name for a in session.adapters.list()]:
        return session.adapters.get(auto).path
    return consolidate(session, name=auto, scenario=scenario, activate=False).path


def _evaluation(session, args, run):
    """Run `run` on the scenario with the workspace memory put back afterwards."""
    from lab.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    arms = _parse_arms(args.arms)
    adapter = _adapter_for(session, scenario, arms, args.adapter, getattr(args, "train", False))
    from lab.evaluate import memory_given_back

    with memory_given_back(session):  # the evaluation starts from an empty memory; yours comes back
        return scenario, run(scenario, arms, adapter)


def cmd_eval(session, args):
    from lab.evaluate import METRICS, evaluate_arms, remember_scenario

    def run(scenario, arms, adapter):
        remember_scenario(session, scenario)
        return evaluate_arms(session, scenario, arms, adapter_file=adapter, logprob=args.logprob)

    scenario, report = _evaluation(session, args, run)
    header = f"{'arm':8} " + " ".join(f"{m:>14}" for m in (*METRICS, "prompt_tokens", "latency_ms"))
    rows = [header] + [f"{arm:8} " + " ".join(
        f"{'-' if v is None else round(v, 2):>14}" for v in (m[k] for k in (*METRICS, "prompt_tokens", "latency_ms")))
        for arm, m in report.items()]
    return {"scenario": scenario.name, "arms": report}, "\n".join(rows)


def cmd_wipe_test(session, args):
    from lab.evaluate import table, wipe_test

    _, report = _evaluation(session, args, lambda scenario, arms, adapter: wipe_test(
        session, scenario, arms, adapter_file=adapter))
    return report, table(report)


def cmd_consolidate(session, args):
    from lab.consolidation import consolidate_memories
    from lab.staging import CandidateRule, candidates

    store = session.memory
    rule = CandidateRule(args.min_retrievals, args.min_decisive, args.min_age_days)
    if args.candidates and not args.name:
        found = candidates(store, rule)
        text = "\n".join(f"[{c.memory.id}] {c.memory.text}  ({c.reason})" for c in found) or \
            "(no memory meets the rule yet: ask more, and press Why? to see which notes are decisive)"
        return {"candidates": [c.to_json() for c in found]}, text
    if not args.name:
        raise LabError("--name is needed to train: python -m lab consolidate --ids 1,2 --name NAME")
    if args.candidates:
        memories = [c.memory for c in candidates(store, rule)]
    elif args.all:
        memories = store.list()
    else:
        try:
            ids = [int(x) for x in args.ids.split(",") if x.strip()]
        except ValueError:
            raise LabError(f"--ids must be whole numbers separated by commas, got {args.ids!r}") from None
        memories = [store.get(memory_id) for memory_id in ids]
    steps = default_steps(args.method) if args.steps is None else args.steps  # each method's own default
    config = TrainingConfig(steps=steps, replay=args.replay)
    report = consolidate_memories(session, memories, name=args.name, method=args.method, retire=args.retire,
                                  config=config)
    verified = report["verified"]
    lines = [f"adapter {report['name']!r} ({report['method']}) trained on {plural(len(report['trained_on']), 'memory')}"]
    lines += [f"  [{a['id']}] {'verified' if a['verified'] else 'NOT verified'}: {a['question']} -> {a['reply']}"
              for a in report["answers"]]
    lines.append(f"verified reliability {verified['reliability']}, locality {verified['locality']}; retired "
                 f"{report['retired'] or 'none'}; memory-arm prompt tokens {report['prompt_tokens_before']} -> "
                 f"{report['prompt_tokens_after']}")
    lines.append(report["prompt_tokens_note"])
    lines += [f"  [{kept['id']}] trained on, kept in memory: {kept['why']}" for kept in report["unverifiable"]]
    data = {key: report[key] for key in ("name", "trained_on", "verified", "retired", "prompt_tokens_before",
                                          "prompt_tokens_after", "method", "answers", "retired_note_tokens",
                                          "took_their_place", "unverifiable", "prompt_tokens_note")}
    return data, "\n".join(lines)


def cmd_behaviour(session, args):
    from lab.behaviour import compare_ways, table
    from lab.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    if not scenario.probes:  # said before minutes of training, not after
        raise LabError(f"the scenario {scenario.name!r} has no held-out probes to measure a behaviour on")
    adapter = _adapter_for(session, scenario, ("learned",), args.adapter, False)
    report = compare_ways(session, scenario, adapter_file=adapter)
    return report, table(report)

def cmd_update_test(session, args):
    from dataclasses import replace

    from lab.scenario import load_scenario
    from lab.update_test import STAGE_TEXT, check_updates, default_config, table, update_test

    scenario = load_scenario(args.scenario)
    check_updates(scenario)  # before a training starts
    config = default_config() if args.steps is None else replace(default_config(), steps=args.steps)
    show = sys.stderr.isatty() and not getattr(args, "json", False)

    def stage(name):
        if show:
            print(f"\r{STAGE_TEXT[name]:90}", end="", file=sys.stderr, flush=True)

    details: dict = {}
    report = update_test(session, scenario, config=config, on_stage=stage, details=details)
    if show:
        print(file=sys.stderr)
    details["active"] = session.adapters.active_name()
    # The two adapters stay in the workspace: said in the text, and named in the JSON.
    left = list((details.get("adapters") or {}).values())
    return {**report, "adapters_left": left}, table(report, details)


def cmd_import(session, args):
    from lab.importers import import_dataset

    count, path = import_dataset(args.format, args.file, args.out, name=args.name)
    return {"scenario": str(path), "items": count}, f"wrote {plural(count, 'item')} to {path}"


def cmd_curve(session, args):
    from lab.curves import learning_curve, memory_curve
    from lab.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    try:
        steps = [int(x) for x in args.steps.split(",") if x.strip()]
    except ValueError:
        raise LabError(f"--steps must be whole numbers separated by commas, got {args.steps!r}") from None
    snapshot = "auto-before-curve"
    session.memory.snapshot(snapshot)
    try:
        memory = memory_curve(session, scenario)
        learned = [] if args.no_learning else learning_curve(session, scenario, steps)
    finally:
        session.memory.restore(snapshot)
        session.memory.delete_snapshot(snapshot)
    lines = ["memory arm: corrections -> reliability / generalization"]
    lines += [f"  {p['corrections']:4d} -> {p['reliability']:.2f} / {_fmt(p['generalization'])}" for p in memory]
    if learned:
        lines.append("learned arm: steps -> reliability / generalization / locality (seconds)")
        lines += [f"  {p['steps']:4d} -> {p['reliability']:.2f} / {_fmt(p['generalization'])} / "
                  f"{_fmt(p['locality'])} ({p['seconds']} s)" for p in learned]
    return {"scenario": scenario.name, "memory": memory, "learned": learned}, "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def cmd_explain(session, args):
    from lab.attribution import explain

    result = explain(session.agent, args.question, arm=args.arm, k=args.k, min_score=args.min_score)
    lines = [f"answer: {result.answer}", f"without any memory: {result.base_answer}"]
    if not result.ablations:
        lines.append("no memory was retrieved, so none changed the answer")
    for a in result.ablations:
        verdict = "CHANGED the answer" if a.changed else "did not change it"
        lines.append(f"[{a.id}] score {a.score:.3f} {a.text}\n    without it: {a.answer_without}  -> {verdict}")
    return result.to_json(), "\n".join(lines)


HANDLERS = {"consolidate": cmd_consolidate, "behaviour": cmd_behaviour, "curve": cmd_curve, "explain": cmd_explain, "eval": cmd_eval, "wipe-test": cmd_wipe_test, "import": cmd_import, "train": cmd_train, "ask": cmd_ask, "remember": cmd_remember, "memory": cmd_memory, "adapters": cmd_adapters,
            "status": cmd_status, "share": cmd_share}
HANDLERS["update-test"] = cmd_update_test


def cmd_cache(args):
    """The class's caches are not a workspace's: no session. The reply cache's fields come
    first (the command's original shape); the embedding cache is reported beside it."""
    from lab import embedding_cache, reply_cache

    cache, vectors = reply_cache.shared_cache(), embedding_cache.shared_cache()
    cleared = len(cache) if args.clear else 0
    cleared_vectors = len(vectors) if args.clear else 0
    if args.clear:
        cache.clear()
        vectors.clear()
    data = {"path": str(cache.path), "entries": len(cache), "max_entries": cache.max_entries, "cleared": cleared,
            "embeddings": {"path": str(vectors.path), "entries": len(vectors), "max_entries": vectors.max_entries,
                           "cleared": cleared_vectors}}
    text = (f"cleared {cleared} cached replies and {cleared_vectors} cached embeddings; " if args.clear else "") + \
        f"{data['entries']} cached replies (at most {cache.max_entries}) in {cache.path}; " \
        f"{data['embeddings']['entries']} cached embeddings in {vectors.path}"
    return data, text


SESSIONLESS = {"check": cmd_check, "workspaces": cmd_workspaces, "cache": cmd_cache}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return int(exit_.code or 0)
    as_json = getattr(args, "json", False)
    session = None
    try:
        if args.command in SESSIONLESS:
            data, text = SESSIONLESS[args.command](args)
        else:
            from lab.session import LabSession

            session = LabSession.open(getattr(args, "workspace", None), getattr(args, "model", None))
            data, text = HANDLERS[args.command](session, args)
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: still one line, with a pointer to the full trace
        if os.environ.get("LAB_DEBUG"):
            raise
        print(f"error: unexpected {type(error).__name__}: {' '.join(str(error).split())} "
              "(set LAB_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_BUG
    finally:
        if session is not None:
            session.close()
    print(json.dumps(data, ensure_ascii=False) if as_json else text)
    return 0
