"""A corpus of real English sentences and their MiniLM embeddings, built offline for the benchmarks.

The sentences come from text already on this machine: docstrings and comments in the
virtualenv's Python files, package descriptions (METADATA), markdown/rst/txt files, and
/usr/share/doc (READMEs, changelogs, copyright files, gzipped or not). They are split into
sentences, filtered (5-40 words, mostly letters, starts with a capital, ends with . ! or ?),
deduplicated and shuffled with a fixed seed. The list and its embeddings (computed once with
the project's Embedder, in resumable chunks) are cached under bench/cache/, so reruns load in
a second:

    bench/cache/sentences.txt        one sentence per line, in corpus order
    bench/cache/embeddings.npy       (n, 384) float32 unit rows, row i = line i
    bench/cache/chunks/              partial embeddings while the first build runs (deleted after)

    from bench.corpus import load_corpus
    sentences, vectors = load_corpus()   # ~7 minutes the first time on 2 cores, then instant

`python -m bench.corpus` builds the cache and prints a few sentences.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / "cache"
SENTENCES_FILE = CACHE / "sentences.txt"
EMBEDDINGS_FILE = CACHE / "embeddings.npy"
META_FILE = CACHE / "corpus.json"
CHUNKS = CACHE / "chunks"

CORPUS_SIZE = 111_000  # 1,000 held-out queries, then 110,000 sentences to store
HELD_OUT = 1_000  # the first HELD_OUT sentences are only ever used as queries
SEED = 1234
CHUNK = 5_000  # sentences embedded per saved chunk: a killed build resumes from the last one
SOURCES = [Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages",
           Path("/usr/share/doc")]
MAX_FILE_BYTES = 2_000_000  # skips data dumps that happen to end in .txt
TEXT_SUFFIXES = {".md", ".rst", ".txt"}
TEXT_NAMES = {"METADATA", "README", "NEWS", "copyright", "changelog", "changelog.Debian"}

# ---- pure helpers ------------------------------------------------------------------------------

_DOCSTRING = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
_COMMENT = re.compile(r"^[ \t]*#+[ \t]?(.*)$", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_FORBIDDEN = re.compile(r"[=_{}<>|\\`@#*\[\]~^$%&+]|://|\.\.|--|[\x00-\x1f\x7f]")
_WORD = re.compile(r"[A-Za-z]")


def python_text(source: str) -> str:
    """The prose of a Python file: its triple-quoted strings and its comments, as paragraphs.

    python_text('x = 1  # no\\n# A comment here.\\n\"\"\"Doc.\"\"\"') -> 'A comment here.\\n\\nDoc.'
    (only whole-line comments count: trailing ones are usually fragments)
    """
    comments = "\n".join(_COMMENT.findall(source))
    docstrings = [a or b for a, b in _DOCSTRING.findall(source)]
    return "\n\n".join([comments, *docstrings])


def split_sentences(text: str) -> list[str]:
    """Paragraphs (blank-line separated) -> sentences with whitespace collapsed.

    split_sentences("One two.  Three\\nfour!\\n\\nFive") -> ["One two.", "Three four!", "Five"]
    """
    sentences = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        flat = " ".join(paragraph.split())
        if flat:
            sentences.extend(_SENTENCE_END.split(flat))
    return sentences


def is_good_sentence(sentence: str) -> bool:
    """5-40 words, mostly letters, a capital first and . ! or ? last, no code-ish characters.

    is_good_sentence("The refund window is forty five days.") -> True
    is_good_sentence("x = foo(bar)  # returns None.") -> False
    """
    words = sentence.split()
    if not 5 <= len(words) <= 40 or len(sentence) > 300:
        return False
    if not sentence[0].isupper() or sentence[-1] not in ".!?" or _FORBIDDEN.search(sentence):
        return False
    if not sentence.isascii():  # keeps it English and keeps odd Unicode out of the store
        return False
    visible = sentence.replace(" ", "")
    letters = len(_WORD.findall(visible))
    # Mostly letters, and mostly real words (not identifiers like foo.bar_baz or MyClassName2).
    alpha_words = sum(1 for word in words if word.strip(".,;:!?()'\"-").isalpha())
    return letters >= 0.85 * len(visible) and alpha_words >= 0.8 * len(words)


def dedupe_key(sentence: str) -> str:
    """Sentences that differ only in case, spacing or punctuation count as one."""
    return re.sub(r"[^a-z0-9]+", " ", sentence.lower()).strip()


# ---- collecting ----------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return ""
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)[:MAX_FILE_BYTES]
        return data.decode("utf-8", errors="ignore")
    except (OSError, EOFError, gzip.BadGzipFile):
        return ""


def _prose_of(path: Path) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix
    if suffix == ".py":
        return python_text(_read(path))
    if suffix in TEXT_SUFFIXES or name in TEXT_NAMES:
        return _read(path)
    return ""


def collect_sentences(sources: list[Path] = SOURCES) -> list[str]:
    """Every distinct good sentence under `sources`, in a deterministic (sorted-walk) order."""
    seen: set[str] = set()
    sentences: list[str] = []
    for root in sources:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            for sentence in split_sentences(_prose_of(path)):
                if is_good_sentence(sentence):
                    key = dedupe_key(sentence)
                    if key not in seen:
                        seen.add(key)
                        sentences.append(sentence)
    return sentences


# ---- the cached corpus ---------------------------------------------------------------------------


def _digest(sentences: list[str]) -> str:
    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()[:16]


def load_sentences(size: int = CORPUS_SIZE) -> list[str]:
    """The shuffled corpus: from the cache, or collected (a minute or two) and cached."""
    if SENTENCES_FILE.exists():
        sentences = SENTENCES_FILE.read_text(encoding="utf-8").splitlines()
        if len(sentences) >= size:
            return sentences[:size]
    start = time.perf_counter()
    found = collect_sentences()
    print(f"corpus: {len(found):,} distinct sentences found in {time.perf_counter() - start:.0f} s", flush=True)
    if len(found) < size:
        raise SystemExit(f"only {len(found):,} usable sentences on this machine; {size:,} are needed")
    random.Random(SEED).shuffle(found)
    sentences = found[:size]
    CACHE.mkdir(parents=True, exist_ok=True)
    SENTENCES_FILE.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return sentences


def load_corpus() -> tuple[list[str], np.ndarray]:
    """(sentences, vectors): CORPUS_SIZE real sentences and their MiniLM embeddings, (n, 384) float32."""
    sentences = load_sentences(CORPUS_SIZE)
    digest = _digest(sentences)
    if EMBEDDINGS_FILE.exists() and META_FILE.exists():
        meta = json.loads(META_FILE.read_text(encoding="utf-8"))
        if meta.get("digest") == digest:
            return sentences, np.load(EMBEDDINGS_FILE)
    vectors = _embed_in_chunks(sentences, digest)
    np.save(EMBEDDINGS_FILE, vectors)
    META_FILE.write_text(json.dumps({"digest": digest, "count": len(sentences), "seed": SEED,
                                     "model": "all-MiniLM-L6-v2 (lab.embedder)"}) + "\n", encoding="utf-8")
    for chunk in CHUNKS.glob("*.npy"):
        chunk.unlink()
    return sentences, vectors


def _embed_in_chunks(sentences: list[str], digest: str) -> np.ndarray:
    """Embed with the project's Embedder, saving every CHUNK rows so an interrupted run resumes."""
    from lab.embedder import get_embedder

    embedder = get_embedder()
    CHUNKS.mkdir(parents=True, exist_ok=True)
    parts = []
    start = time.perf_counter()
    for first in range(0, len(sentences), CHUNK):
        path = CHUNKS / f"{digest}-{first:07d}.npy"
        batch = sentences[first:first + CHUNK]
        if path.exists():
            part = np.load(path)
        else:
            part = embedder.embed(batch)
            np.save(path, part)
            done = first + len(batch)
            rate = len(batch) / max(time.perf_counter() - start, 1e-9)
            print(f"corpus: embedded {done:,}/{len(sentences):,} ({rate:.0f} sentences/s, "
                  f"~{(len(sentences) - done) / rate / 60:.1f} min left)", flush=True)
            start = time.perf_counter()
        parts.append(part)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    sentences, vectors = load_corpus()
    print(f"corpus: {len(sentences):,} sentences, embeddings {vectors.shape} {vectors.dtype}")
    for sentence in sentences[:5]:
        print("  ", sentence)


if __name__ == "__main__":
    main()
