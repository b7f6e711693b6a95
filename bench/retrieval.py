"""Retrieval: MemoryStore.search_vector (hnswlib) against exact numpy search, on real sentence embeddings.

For each size (default 10,000 and 100,000 memories) a fresh MemoryStore is filled with real
English sentences (bench/corpus.py) and asked 1,000 held-out sentences that are not in it.
hnswlib's top 5 is compared with the exact top 5 (a brute-force dot product over the same
unit vectors). Targets: recall@5 >= 0.99 and p50 search latency < 1 ms, not counting the
query's embedding (measured separately: one embed_one call). A diagnostic sweep also
reports recall and p50 at other query ef values, to show what a change to the store's
MIN_QUERY_EF would buy.

Bulk loading: add_many() would re-embed 100,000 sentences (~7 minutes). Instead the store
gets a stand-in embedder, CachedVectors, that looks each text's vector up in the corpus
cache. The vectors are the same MiniLM vectors the real embedder made; everything else
(validation, the SQLite transaction, the hnswlib inserts) is the store's own add_many path.

    python -m bench.retrieval [--sizes 10000 100000] [--queries 1000]
"""

from __future__ import annotations

import os

# Embedding a query is timed here: the class's embedding cache (lab/embedding_cache.py) would hand
# a repeated one back from disk.
os.environ.setdefault("LAB_EMBEDDING_CACHE", "0")  # noqa: E402

import argparse
import contextlib
import tempfile
import time

import numpy as np

import lab.memory as lab_memory
from bench.common import summary, write_results
from bench.corpus import HELD_OUT, load_corpus
from lab.embedder import DIM, get_embedder
from lab.memory import HNSW_EF_CONSTRUCTION, HNSW_M, MIN_QUERY_EF, MemoryStore

try:  # installed with scikit-learn; without it numpy's BLAS keeps its default thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

K = 5
WARMUP = 50
TARGET_RECALL = 0.99
TARGET_P50_MS = 1.0
EMBED_QUERIES = 100
SWEEP_EFS = (32, 64, 128, 256)  # diagnostic only: recall at other query ef values (see ef_sweep)


class CachedVectors:
    """A stand-in embedder for bulk loading: looks up each text's precomputed MiniLM vector.

    CachedVectors({"A sentence.": v}).embed(["A sentence."]) -> v[None, :]
    A text it was not given raises KeyError: nothing is ever embedded differently.
    """

    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]):
        self._table = table

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._table[text] for text in texts]).astype(np.float32, copy=False)

    def embed_one(self, text: str) -> np.ndarray:
        return self._table[text]


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int = K, batch: int = 100) -> np.ndarray:
    """(q, k) row indices of the k largest dot products per query, best first (brute force)."""
    result = np.empty((len(queries), k), dtype=np.int64)
    for first in range(0, len(queries), batch):
        scores = queries[first:first + batch] @ vectors.T  # (b, n)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (b, k), unordered
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        result[first:first + batch] = np.take_along_axis(top, order, axis=1)
    return result


def exact_one(query: np.ndarray, vectors: np.ndarray, k: int = K) -> np.ndarray:
    """The exact top k for one query, as a caller would run it: one matrix-vector product."""
    scores = vectors @ query  # (n,)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def one_blas_thread():
    """Exact search on one core, like hnswlib's num_threads=1: on a busy 2-core machine, BLAS
    threads fighting other processes make a matrix-vector product erratic, not faster."""
    return threadpool_limits(limits=1, user_api="blas") if threadpool_limits else contextlib.nullcontext()


def time_searches(store: MemoryStore, query_vectors: np.ndarray, exact: np.ndarray,
                  vectors: np.ndarray, row_of: dict[int, int]) -> tuple[list[float], float, float]:
    """(latencies ms, mean recall@K, max score error) of search_vector over all queries, after a warm-up."""
    for vector in query_vectors[:WARMUP]:
        store.search_vector(vector, k=K, min_score=-1.0)
    latencies, recalls, score_error = [], [], 0.0
    for vector, truth in zip(query_vectors, exact):
        start = time.perf_counter()
        hits = store.search_vector(vector, k=K, min_score=-1.0)
        latencies.append((time.perf_counter() - start) * 1000)
        rows = [row_of[hit.id] for hit in hits]
        recalls.append(len(set(rows) & set(truth.tolist())) / K)
        # Sanity: the store's scores are the cosine similarities numpy computes for the same rows.
        score_error = max(score_error, max(abs(hit.score - float(vectors[row] @ vector))
                                           for hit, row in zip(hits, rows)))
    return latencies, float(np.mean(recalls)), score_error


def ef_sweep(store, query_vectors, exact, vectors, row_of) -> list[dict]:
    """Diagnostic: recall and p50 of search_vector at other query ef values.

    The store's query ef is max(lab.memory.MIN_QUERY_EF, 2 * k), read at every search; the
    sweep sets that module constant for a moment and puts it back. lab/memory.py is unchanged.
    """
    rows = []
    try:
        for ef in SWEEP_EFS:
            lab_memory.MIN_QUERY_EF = ef
            latencies, recall, _ = time_searches(store, query_vectors, exact, vectors, row_of)
            rows.append({"ef": ef, "recall_at_5": round(recall, 4), "search_p50_ms": summary(latencies)["p50_ms"]})
    finally:
        lab_memory.MIN_QUERY_EF = MIN_QUERY_EF
    return rows


def measure_size(n: int, texts: list[str], vectors: np.ndarray, query_vectors: np.ndarray) -> dict:
    """Build a store of the first n memories, then time and score search_vector against numpy."""
    texts, vectors = texts[:n], np.ascontiguousarray(vectors[:n])
    table = dict(zip(texts, vectors))
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as folder:
        start = time.perf_counter()
        store = MemoryStore(folder, embedder=CachedVectors(table))
        added = store.add_many([{"text": text} for text in texts])
        build_seconds = time.perf_counter() - start
        row_of = {memory.id: row for row, memory in enumerate(added)}
        assert len(store) == n

        exact = exact_top_k(query_vectors, vectors)  # (q, K) row indices
        latencies, recall, score_error = time_searches(store, query_vectors, exact, vectors, row_of)
        sweep = ef_sweep(store, query_vectors, exact, vectors, row_of)
        store.close()

    exact_latencies = []
    with one_blas_thread():
        for vector in query_vectors[:WARMUP]:
            exact_one(vector, vectors)
        for vector in query_vectors:
            start = time.perf_counter()
            exact_one(vector, vectors)
            exact_latencies.append((time.perf_counter() - start) * 1000)

    search, brute = summary(latencies), summary(exact_latencies)
    return {"n": n, "build_seconds": round(build_seconds, 2), "recall_at_5": round(recall, 4),
            "search_p50_ms": search["p50_ms"], "search_p90_ms": search["p90_ms"],
            "search_p99_ms": search["p99_ms"], "search_mean_ms": search["mean_ms"],
            "exact_p50_ms": brute["p50_ms"], "exact_p90_ms": brute["p90_ms"], "exact_p99_ms": brute["p99_ms"],
            "max_score_error": score_error, "queries": len(query_vectors), "ef_sweep": sweep,
            "passed": {"recall": recall >= TARGET_RECALL, "p50_latency": search["p50_ms"] < TARGET_P50_MS}}


def query_embedding_p50(queries: list[str]) -> float:
    """p50 ms of embedding one query with the real embedder (what search() adds on top)."""
    embedder = get_embedder()
    for text in queries[:5]:
        embedder.embed_one(text)
    latencies = []
    for text in queries[:EMBED_QUERIES]:
        start = time.perf_counter()
        embedder.embed_one(text)
        latencies.append((time.perf_counter() - start) * 1000)
    return summary(latencies)["p50_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()

    sentences, vectors = load_corpus()
    if not 1 <= args.queries <= HELD_OUT:
        parser.error(f"--queries must be from 1 to {HELD_OUT} (the held-out sentences)")
    if max(args.sizes) > len(sentences) - HELD_OUT:
        parser.error(f"the corpus holds {len(sentences) - HELD_OUT:,} memories; --sizes must not exceed it")
    # The first HELD_OUT sentences are queries only; memories come after them, so no query is stored.
    queries, query_vectors = sentences[:args.queries], vectors[:args.queries]
    texts, memory_vectors = sentences[HELD_OUT:], vectors[HELD_OUT:]

    results = []
    for n in args.sizes:
        print(f"retrieval: building and searching {n:,} memories ...", flush=True)
        results.append(measure_size(n, texts, memory_vectors, query_vectors))
    embed_p50 = query_embedding_p50(queries)

    query_ef = max(MIN_QUERY_EF, 2 * K)
    print(f"\nrecall@{K} and latency of MemoryStore.search_vector (hnswlib, M={HNSW_M}, ef={query_ef}) "
          f"vs exact numpy, {args.queries} held-out queries, not counting the query embedding")
    print(f"{'memories':>9} {'build s':>8} {'recall@5':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'exact p50':>10}  passed")
    for r in results:
        ok = "yes" if all(r["passed"].values()) else "NO: " + ", ".join(k for k, v in r["passed"].items() if not v)
        print(f"{r['n']:>9,} {r['build_seconds']:>8.1f} {r['recall_at_5']:>9.4f} {r['search_p50_ms']:>7.3f} "
              f"{r['search_p90_ms']:>7.3f} {r['search_p99_ms']:>7.3f} {r['exact_p50_ms']:>10.3f}  {ok}")
    for r in results:
        sweep = ", ".join(f"ef {row['ef']}: {row['recall_at_5']:.4f} / {row['search_p50_ms']:.3f} ms"
                          for row in r["ef_sweep"])
        print(f"  {r['n']:,} memories, recall@5 / p50 at other query ef: {sweep}")
    print(f"embedding one query (embed_one, real MiniLM): p50 {embed_p50:.1f} ms, on top of the search")

    write_results("retrieval", {
        "command": "python -m bench.retrieval " + " ".join(
            ["--sizes", *map(str, args.sizes), "--queries", str(args.queries)]),
        "corpus": {"sentences": len(sentences), "held_out_queries": HELD_OUT,
                   "source": "docstrings, comments, package descriptions and docs in site-packages and "
                             "/usr/share/doc; 5-40 words, deduplicated, shuffled (bench/corpus.py)",
                   "embedder": "all-MiniLM-L6-v2 via lab.embedder, unit float32 vectors"},
        "bulk_loading": "MemoryStore.add_many with a stand-in embedder that looks up the cached MiniLM "
                        "vectors (no re-embedding); build_seconds = open + add_many, index included",
        "store_settings": {"space": "cosine", "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                           "query_ef": query_ef, "query_ef_rule": "max(MIN_QUERY_EF, 2 * k)",
                           "MIN_QUERY_EF": MIN_QUERY_EF},
        "exact_search": "numpy vectors @ query + argpartition, one query at a time, "
                        + ("one BLAS thread" if threadpool_limits else "default BLAS threads"),
        "k": K, "warmup_queries": WARMUP,
        "targets": {"recall_at_5_min": TARGET_RECALL, "search_p50_ms_max": TARGET_P50_MS},
        "sizes": results,
        "query_embedding_p50_ms": embed_p50, "query_embedding_queries": EMBED_QUERIES,
        "passed": all(all(r["passed"].values()) for r in results),
    })


if __name__ == "__main__":
    main()
