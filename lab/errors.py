"""The one exception type a user may see.

Anything raised as a LabError carries a single line that says what went wrong and how
to fix it. The CLI prints that line (no traceback) and the app shows it as an error box.
"""


class LabError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str):
        # Keep it to one line whatever the caller passed: the message is shown verbatim.
        super().__init__(" ".join(str(message).split()))


class NotFound(LabError):
    """An id, name or file that does not exist."""
