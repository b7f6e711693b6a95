"""Counts in words: "1 memory", "2 memories". One helper, so no page says "1 memories".

    plural(1, "memory")       -> '1 memory'
    plural(0, "memory")       -> '0 memories'
    plural(2, "duplicate")    -> '2 duplicates'
    plural(1200, "memory")    -> '1,200 memories'
"""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`count` and `word`, the word in its plural unless `count` is 1; `many` gives an
    irregular plural. Thousands are grouped with commas."""
    if count == 1:
        return f"1 {word}"
    if many is None:
        if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
            many = word[:-1] + "ies"  # memory -> memories, but day -> days
        elif word.endswith(("s", "x", "ch", "sh")):
            many = word + "es"
        else:
            many = word + "s"
    return f"{count:,} {many}"
