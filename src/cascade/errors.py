"""One exception type for every user-facing error.

The CLI prints a CascadeError as a single line (``file:line: field: message``) without a
traceback, so bad input reads like a compiler error; ``--debug`` shows the traceback.
"""

from __future__ import annotations


class CascadeError(Exception):
    """An error caused by the user's input (a recipe, a data file, a flag), not by a bug."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
