"""The one error type the generate path raises: it prints as a single line."""

from __future__ import annotations


class SpecError(Exception):
    """A problem with what the user asked for: `<source>: <field path>: <reason>`."""

    def __init__(self, source: str, path: str, reason: str, others=()):
        self.source = source
        self.path = path
        self.reason = reason
        # Further problems found in the same pass, as (path, reason): one line each.
        self.others = list(others)
        super().__init__(str(self))

    def _line(self, path: str, reason: str) -> str:
        return ": ".join([*(p for p in (self.source, path) if p), reason])

    def __str__(self) -> str:
        lines = [self._line(self.path, self.reason)]
        lines += [self._line(path, reason) for path, reason in self.others]
        return "\n".join(lines)
