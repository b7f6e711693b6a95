from lab import prompting


def test_no_notes_gives_the_base_prompt():
    assert prompting.memory_messages("Q?", []) == prompting.question_messages("Q?")


def test_notes_come_before_the_question_in_the_user_turn():
    messages = prompting.memory_messages("What is X?", ["X is 4.", "Y is 5."])
    assert messages[0]["role"] == "system"
    user = messages[1]["content"]
    assert user.index("X is 4.") < user.index("What is X?")
    assert user.endswith("Question: What is X?")


def test_every_format_keeps_notes_and_question():
    for name in prompting.MEMORY_FORMATS:
        content = prompting.memory_messages("Q?", ["note one"], fmt=name)[1]["content"]
        assert "note one" in content and "Q?" in content
