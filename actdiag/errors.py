"""The one exception family of actdiag; only the CLI turns it into an exit code."""


class ActdiagError(Exception):
    """A user-facing problem: the message names the key, file or line and what is valid."""
