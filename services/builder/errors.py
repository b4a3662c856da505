"""The one error a build reports to the person who launched it.

Its own module because both content fetchers and executors raise it, and the
executors package imports the fetchers.
"""


class BuildError(Exception):
    """The build failed; the message says why, for the person who launched it."""
