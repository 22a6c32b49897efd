"""The one error type for bad user input (flags, files, parameters).

`run.py` turns it into one line on stderr and exit status 2. It subclasses
ValueError so library callers can catch either.
"""


class UsageError(ValueError):
    """Bad input: the message names the flag/file/parameter and what is allowed."""
