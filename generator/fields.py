"""The spec's building blocks: field types, limits and the base model every piece's spec
model derives from. No piece, no registry: piece modules (generator/pieces/) and
generator/spec.py both import from here.
"""

from __future__ import annotations

import re
import reprlib
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# Sizes a spec may ask for. Generous, but they keep a typo from asking for a
# petabyte model or a Python int that Keras cannot hold.
MAX_FILTERS = 65536
MAX_BLOCKS = 1024
MAX_IMAGE_SIDE = 8192
MAX_SPEC_BYTES = 1_000_000  # a preset is about 2 kB

Filters = Annotated[StrictInt, Field(ge=1, le=MAX_FILTERS)]
Count = Annotated[StrictInt, Field(ge=1, le=MAX_BLOCKS)]
Side = Annotated[StrictInt, Field(ge=1, le=MAX_IMAGE_SIDE)]
Stride = Annotated[StrictInt, Field(ge=1, le=8)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]

# \Z, not $: "$" also matches before a trailing newline, and "Net\n" is no identifier.
IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


# The pre-stem's steps by what they do. Geometric steps move pixels (a box drawn on the
# image would no longer fit it); random steps change the image from one training step to
# the next. Architectures refuse some (Architecture.pre_stem_refused).
PRE_STEM_GEOMETRIC = ("resizing", "crop", "flip", "rotation", "zoom")
PRE_STEM_RANDOM = ("crop", "flip", "rotation", "zoom", "contrast")


class Model(BaseModel):
    """A spec section: unknown keys refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = _SHORT_REPR.maxlong = 60


def show(value: Any) -> str:
    """A short repr of what the user wrote, whatever it is: huge integers (beyond Python's
    int-to-str limit), deep or self-referencing YAML structures included."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        shown = _SHORT_REPR.repr(value)
    except Exception:  # a repr that fails (RecursionError, ValueError) still gets a line
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= 60 else shown[:57] + "..."


def is_tag(value: Any, table) -> bool:
    """Whether a raw spec value names an entry of a registry table (STEMS, ARCHITECTURES ...).
    Before-validators see what the user wrote, of any type: a list or a mapping is no tag
    (and `[1] in STEMS` would raise TypeError: unhashable)."""
    return isinstance(value, str) and value in table


def number(value: Any) -> float:
    """A raw spec value as a float, or ValueError (one error line): True, "0.5" and None are
    no numbers, and neither is an integer too large for a float (float(10**400) raises
    OverflowError, which pydantic would not turn into a validation error)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {show(value)}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"is too large for a number, got {show(value)}") from None


def list_to_tuple(value):
    """YAML has lists, the spec's fixed-length fields are tuples."""
    return tuple(value) if isinstance(value, list) else value


def distinct_numbers(value):
    """A list of numbers (no booleans), each once."""
    if isinstance(value, list | tuple):
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
            raise ValueError(f"must be a list of numbers, got {show(value)}")
        numbers = tuple(number(v) for v in value)
        if len(set(numbers)) < len(numbers):
            raise ValueError(f"must not repeat a value, got {show(value)}")
        return numbers
    return value
