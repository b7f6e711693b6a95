"""The class's reply cache on real SQLite, then through the real engine: a hit is the same
answer, a different adapter or early stop is a different key, a damaged file is ignored."""

import subprocess
import sys
from pathlib import Path

from lab import prompting
from lab.reply_cache import CachedReply, ReplyCache, reply_key, shared_cache, stop_key
from lab.scenario import Item, Probe

ROOT = Path(__file__).resolve().parent.parent
REFUND = prompting.question_messages("What is the refund window at Acme Corp?")


def key(n: int) -> str:
    return reply_key(model_hash="m", adapter_hash=None, tokens=[1, 2, n], max_tokens=8, stop=["\n\n"],
                     stop_description="")


def test_the_key_is_everything_that_decides_the_reply():
    base = dict(model_hash="m", adapter_hash=None, tokens=[1, 2, 3], max_tokens=8, stop=["\n\n"],
                stop_description="")
    variants = [dict(model_hash="other"), dict(adapter_hash="a"), dict(tokens=[1, 2, 4]), dict(max_tokens=9),
                dict(stop=["\n"]), dict(stop_description="target-regex-i:45")]
    keys = {reply_key(**{**base, **change}) for change in variants}
    assert len(keys) == len(variants) and reply_key(**base) not in keys
    assert reply_key(**base) == reply_key(**dict(base))


def test_an_early_stop_is_cached_only_when_it_can_be_described():
    item = Item("Q?", "A.", "45 days")
    assert stop_key(None) == ""
    assert stop_key(item.matches) == "target-regex-i:45 days"
    assert stop_key(Probe("Q?", "Oslo").matches) == "target-regex-i:Oslo"
    assert stop_key(lambda text: "x" in text) is None  # a function the cache cannot see into


def test_replies_survive_a_restart_and_another_process_reads_them(tmp_path):
    path = tmp_path / "replies.sqlite"
    ReplyCache(path).put(key(1), CachedReply("Paris.", 30, 2, 0.4))
    assert ReplyCache(path).get(key(1)) == CachedReply("Paris.", 30, 2, 0.4)  # a new instance: a restart
    code = ("from lab.reply_cache import ReplyCache, reply_key; import sys; "
            "k = reply_key(model_hash='m', adapter_hash=None, tokens=[1, 2, 1], max_tokens=8, stop=['\\n\\n'], "
            "stop_description=''); print(ReplyCache(sys.argv[1]).get(k).text)")
    other = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT)
    assert other.stdout.strip() == "Paris.", other.stderr


def test_it_is_bounded_and_the_least_recently_used_go_first(tmp_path):
    cache = ReplyCache(tmp_path / "replies.sqlite", max_entries=10)
    for n in range(10):
        cache.put(key(n), CachedReply(f"reply {n}", 1, 1, 0.1))
    assert cache.get(key(0)) is not None  # used again: now the most recent
    for n in range(10, 15):
        cache.put(key(n), CachedReply(f"reply {n}", 1, 1, 0.1))
    assert len(cache) <= 10
    assert cache.get(key(0)) is not None and cache.get(key(14)) is not None
    assert cache.get(key(1)) is None  # the oldest unused went first


def test_a_damaged_file_is_set_aside_and_rebuilt_never_a_crash(tmp_path):
    path = tmp_path / "replies.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = ReplyCache(path)
    assert cache.get(key(1)) is None
    cache.put(key(1), CachedReply("Paris.", 30, 2, 0.4))
    assert cache.get(key(1)).text == "Paris."
    assert (tmp_path / "replies.sqlite.damaged").exists()


# ---- through the real engine ----------------------------------------------------------------

def test_a_cache_hit_gives_the_same_answer_and_says_so(engine):
    first = engine.chat(REFUND)
    second = engine.chat(REFUND)
    assert not first.cached and second.cached
    assert second.text == first.text and second.completion_tokens == first.completion_tokens
    assert second.prompt_tokens == first.prompt_tokens and second.prompt == first.prompt
    pieces = []
    assert engine.chat(REFUND, on_token=pieces.append).cached and "".join(pieces).strip() == first.text
    uncached = engine.chat(REFUND, use_cache=False)
    assert not uncached.cached and uncached.text == first.text  # greedy: generating again agrees


def test_other_weights_or_another_stop_are_not_a_hit(engine, tmp_path):
    from lora_factory import random_adapter

    engine.chat(REFUND)
    adapter = random_adapter(tmp_path / "a.gguf", seed=5, scale=0.1)
    assert not engine.chat(REFUND, adapter=adapter).cached
    assert engine.chat(REFUND, adapter=adapter).cached
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(adapter.read_bytes())
    assert engine.chat(REFUND, adapter=copy).cached  # the same weights under another name
    assert not engine.chat(REFUND, max_tokens=5).cached
    assert not engine.chat(REFUND, stop_when=lambda text: False).cached
    assert not engine.chat(REFUND, stop_when=lambda text: False).cached  # never stored


def test_a_damaged_cache_file_costs_no_answer(engine):
    expected = engine.chat(REFUND, use_cache=False).text
    cache = shared_cache()
    cache._drop_connection()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cache.path}{suffix}").unlink(missing_ok=True)
    cache.path.parent.mkdir(parents=True, exist_ok=True)
    cache.path.write_bytes(b"\x00garbage" * 512)
    assert engine.chat(REFUND).text == expected
    assert engine.chat(REFUND).cached  # rebuilt, and working again


def test_the_same_wipe_test_in_another_workspace_is_computed_once(engine):
    from lab.evaluate import wipe_test
    from lab.scenario import load_scenario
    from lab.session import LabSession

    scenario = load_scenario("acme")
    first, second = LabSession.open("student-a"), LabSession.open("student-b")
    second.memory.add("Student B's own note stays theirs.")
    try:
        one = wipe_test(first, scenario, ["base", "memory"])
        two = wipe_test(second, scenario, ["base", "memory"])
    finally:
        first.close()
        kept = [m.text for m in second.memory.list()]
        second.close()
    assert one["replies"]["from_cache"] == 0 and one["replies"]["asked"] > 0
    assert two["replies"] == {"asked": one["replies"]["asked"], "from_cache": one["replies"]["asked"]}
    assert two["survived"] == one["survived"]
    for phase in ("before", "after"):  # every verdict the same (latency is what differs)
        for arm in ("base", "memory"):
            for metric in ("reliability", "generalization", "locality", "reverse", "adherence", "prompt_tokens"):
                assert two[phase][arm][metric] == one[phase][arm][metric]
    assert kept == ["Student B's own note stays theirs."]
