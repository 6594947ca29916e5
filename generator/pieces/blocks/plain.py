"""Plain convolutions, one per group (Koch et al.'s Siamese twin)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt

from ...fields import Filters, Model
from ...plan import plain_layers, plan_plain_group
from ...registry import register_block


class PlainGroup(Model):
    """One convolution (kernel_size x kernel_size, no padding, ReLU), then a 2x2/2 max pool
    unless pool is false (Koch et al.'s Siamese twin: the last convolution is not pooled)."""

    n_filters: Filters
    kernel_size: Annotated[StrictInt, Field(ge=1, le=31)] = 3
    pool: StrictBool = True


class PlainLearner(Model):
    """Plain convolutions, one per group, each optionally followed by a max pool."""

    block: Literal["plain"]
    groups: list[PlainGroup] = Field(min_length=1, max_length=64)


register_block(
    tag="plain",
    learner=PlainLearner,
    plan_group=plan_plain_group,
    group_layers=plain_layers,
    templates=("learner.py.j2", "groups/plain.py.j2"),
    group_name="block",
    first_index=1,
    learner_doc="Each group is one convolution (ReLU), usually followed by a 2x2 max pool.",
    layer_names=(r"block\d+_(conv|pool)",),
)
