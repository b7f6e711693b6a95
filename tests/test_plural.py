"""lab/plural.py: counts in words, so no page or command says "1 memories"."""

import pytest

from lab.plural import plural


@pytest.mark.parametrize("count, word, expected", [
    (0, "memory", "0 memories"), (1, "memory", "1 memory"), (2, "memory", "2 memories"),
    (1, "duplicate", "1 duplicate"), (3, "duplicate", "3 duplicates"), (2, "day", "2 days"),
    (2, "box", "2 boxes"), (1200, "memory", "1,200 memories"), (2, "child", "2 children"),
])
def test_plural(count, word, expected):
    assert plural(count, word, "children" if word == "child" else None) == expected
