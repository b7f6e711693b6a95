"""A scenario small enough to evaluate on the real model in seconds, shared by the tests of
the metrics and of the experiments: two Acme facts, one paraphrase, two locality questions."""


def two_facts_scenario(name: str) -> dict:
    return {"name": name, "title": "Two Acme facts", "kind": "facts",
            "items": [{"question": "What is the refund window at Acme Corp?",
                       "answer": "The refund window at Acme Corp is 45 days.", "target": "45",
                       "paraphrases": ["How many days do Acme Corp customers have to ask for a refund?"]},
                      {"question": "What is the Wi-Fi password at the Acme office?",
                       "answer": "The Wi-Fi password at the Acme office is bluefin42.", "target": "bluefin"}],
            "locality": [{"question": "What is the capital of France?", "target": "Paris"},
                         {"question": "What is the capital of Japan?", "target": "Tokyo"}]}
