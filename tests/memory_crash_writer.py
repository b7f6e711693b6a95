"""Crash-test helper: add memories in a loop, printing each id only after add() has returned.

    python tests/memory_crash_writer.py DIR COUNT

Prints "ready" once the store and embedder are loaded, then "ID INDEX" per acknowledged
memory. tests/test_memory.py kills it with SIGKILL part-way and checks that every printed
id survived, with its text, and that the index agrees with the database.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUBJECTS = ["The Lisbon office", "Our billing team", "The night shift", "Project Falcon", "The Oslo warehouse",
            "Customer support", "The design group", "Acme's legal desk", "The Tokyo branch", "Warehouse robot B7",
            "The marketing intern", "Helpdesk ticket queue", "The rooftop garden"]
FACTS = ["opens at {n}:30 on Mondays", "keeps {n} spare laptops", "was renamed in {n} AD",
         "answers within {n} hours", "orders {n} crates of pears a week", "has {n} blue bicycles",
         "uses printer number {n}", "stores {n} umbrellas by the door", "rotates {n} staff every quarter",
         "waters {n} tomato plants daily", "logs {n} parcels before noon"]


def crash_text(i: int) -> str:
    """A distinct sentence per i, varied enough that each is its own nearest neighbour."""
    return f"{SUBJECTS[i % len(SUBJECTS)]} {FACTS[(i // len(SUBJECTS)) % len(FACTS)].format(n=i + 3)}."


def main(directory: str, count: int) -> None:
    from lab.memory import MemoryStore

    store = MemoryStore(Path(directory))
    store.embedder  # load the model before "ready", so the kill lands among the writes
    print("ready", flush=True)
    for i in range(count):
        memory = store.add(crash_text(i), source="crash-test")
        print(memory.id, i, flush=True)  # printed only once the write is acknowledged


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
