"""The one exception type users see.

Library code raises BigramError for anything the user can fix (bad data, bad config, missing run);
the CLI prints it as a single `error: …` line and exits non-zero, never with a traceback.
"""


class BigramError(Exception):
    """A problem with the user's input: the message says what is wrong, where, and what to do."""


class TrainingStopped(BigramError):
    """Training stopped early (Ctrl-C or divergence) after saving a consistent run directory."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
