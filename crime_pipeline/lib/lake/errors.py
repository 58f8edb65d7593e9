"""The one error a stage function raises for a problem in the data it was given."""

from __future__ import annotations


class StageError(RuntimeError):
    """A stage cannot go on with this data (too few rows, no validated file, ...).

    The message is one sentence a user can act on; `metadata` holds the numbers behind it (counts),
    which the Dagster layer shows beside the failure.
    """

    def __init__(self, message: str, metadata: dict | None = None):
        super().__init__(message)
        self.metadata = metadata or {}
