"""The one user-facing error type: bad input that the CLI reports in one line with exit code 2."""


class SuiteError(Exception):
    """A problem with the user's input or files (not a bug): printed as one line, exit 2."""
