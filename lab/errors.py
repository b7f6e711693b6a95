"""The one exception type a user may see.

Anything raised as a LabError carries a single line that says what went wrong and how
to fix it. The CLI prints that line (no traceback) and the app shows it as an error box.
"""


class LabError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str, *, in_app: str | None = None):
        # Keep it to one line whatever the caller passed: the message is shown verbatim.
        super().__init__(" ".join(str(message).split()))
        # The same error in the web app's words: it names a page or a button, not a command.
        self.in_app = " ".join(in_app.split()) if in_app else None

    @property
    def app_message(self) -> str:
        return self.in_app or str(self)


class NotFound(LabError):
    """An id, name or file that does not exist."""
