"""The one error type the generate path raises: it prints as a single line."""

from __future__ import annotations

# A piece of an error line (source, field path, reason) longer than this is cut in the
# middle: a 10,000-character file name still gives a readable line.
MAX_PIECE = 300


def printable(text: str) -> str:
    """`text` with every non-printable character escaped (\\n, \\x1b, \\u2028 ...), so
    that what a spec or file name holds can neither break the one-line format nor send
    escape sequences to the terminal."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    if len(text) > MAX_PIECE:
        half = MAX_PIECE // 2
        text = f"{text[:half]}...{text[-half:]}"
    return text


class SpecError(Exception):
    """A problem with what the user asked for: `<source>: <field path>: <reason>`."""

    # The process exit status the CLI returns for it.
    exit_code = 2

    def __init__(self, source: str, path: str, reason: str, others=()):
        self.source = source
        self.path = path
        self.reason = reason
        # Further problems found in the same pass, as (path, reason): one line each.
        self.others = list(others)
        super().__init__(str(self))

    def _line(self, path: str, reason: str) -> str:
        return ": ".join([*(printable(p) for p in (self.source, path) if p), printable(reason)])

    def __str__(self) -> str:
        lines = [self._line(self.path, self.reason)]
        lines += [self._line(path, reason) for path, reason in self.others]
        return "\n".join(lines)


class WriteError(SpecError):
    """The file system refused the write (disk full, permission denied ...): the input was
    fine, so the exit status is 1, not 2. Nothing is left behind."""

    exit_code = 1
