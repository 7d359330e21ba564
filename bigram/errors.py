"""The one exception type users see.

Library code raises BigramError for anything the user can fix (bad data, bad config, missing run);
the CLI prints it as a single `error: …` line and exits non-zero, never with a traceback.
"""


class BigramError(Exception):
    """A problem with the user's input: the message says what is wrong, where, and what to do."""
