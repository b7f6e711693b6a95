"""A scenario of kind `updates` small enough for the update test on the real model in a
minute or two, shared by the tests of lab/update_test.py, the CLI and the page: two
invented facts that change (changing-facts' Wi-Fi password and bus), two locality questions."""


def two_changes_scenario(name: str) -> dict:
    return {"name": name, "title": "Two facts that change", "kind": "updates",
            "items": [{"question": "What is the Wi-Fi password at Pebble Café?",
                       "answer": "The Wi-Fi password at Pebble Café is heron77.", "target": "heron",
                       "paraphrases": ["What password do I need for the Wi-Fi at Pebble Café?"],
                       "update": {"answer": "The Wi-Fi password at Pebble Café is otter19.", "target": "otter"}},
                      {"question": "Which bus goes to Thornbury Zoo?",
                       "answer": "The number 14 bus goes to Thornbury Zoo.", "target": r"\b14\b",
                       "update": {"answer": "The number 31 bus goes to Thornbury Zoo.", "target": r"\b31\b"}}],
            "locality": [{"question": "What is the capital of France?", "target": "Paris"},
                         {"question": "What is the capital of Japan?", "target": "Tokyo"}]}
