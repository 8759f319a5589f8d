"""The one exception type that means "the user's input is wrong, here is what to do".

Command-line entry points catch it and print its message without a traceback (exit 2):
a traceback for a typo in a config file buries the one line that matters.  Anything else
that escapes is a bug in odflow and keeps its traceback.
"""


class OdflowError(Exception):
    """A user-facing error: the message names the file, line or field, and the fix."""
