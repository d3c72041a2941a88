"""The one error type revleak shows users: a single line saying what is wrong and how to fix it."""


class RevleakError(Exception):
    """A problem the user can fix; the CLI prints it as one line, without a traceback."""
