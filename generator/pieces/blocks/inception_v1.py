"""GoogLeNet's inception modules (the paper's Table 1 columns)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ...fields import MAX_BLOCKS, Count, Filters, Model
from ...plan import (
    inception_v1_layers,
    inception_v1_pool_layers,
    plan_inception_v1_group,
    plan_inception_v1_pool,
)
from ...registry import register_block

# Inception. Block sizes are the columns of the papers' tables: #1x1, #NxN reduce (the 1x1
# before an NxN branch), #NxN, pool proj (the 1x1 after the pooling branch).


class InceptionV1Block(Model):
    """GoogLeNet inception module (Table 1's columns): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 |
    3x3/1 max pool -> 1x1, concatenated."""

    n_1x1: Filters
    n_3x3_reduce: Filters
    n_3x3: Filters
    n_5x5_reduce: Filters
    n_5x5: Filters
    n_pool_proj: Filters


# The blocks (1 = a group's first) whose outputs also feed an auxiliary classifier.
AuxAfter = Annotated[list[Count], Field(default_factory=list, max_length=MAX_BLOCKS)]


class InceptionGroup(Model):
    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @model_validator(mode="after")
    def _aux_after_names_blocks(self):
        taps = self.aux_after
        if taps != sorted(set(taps)):
            raise ValueError(f"aux_after must list block numbers in increasing order, got {taps}")
        if taps and taps[-1] > len(self.blocks):
            raise ValueError(
                f"aux_after names block {taps[-1]}, but the group has {len(self.blocks)} "
                "block(s) (1 is the first)"
            )
        return self


class InceptionV1Group(InceptionGroup):
    # Blocks are named by letter (inception_3a, 3b ...), hence at most 26.
    blocks: list[InceptionV1Block] = Field(min_length=1, max_length=26)
    aux_after: AuxAfter


class InceptionV1Learner(Model):
    """GoogLeNet: groups of inception modules, a 3x3/2 max pool between consecutive groups."""

    block: Literal["inception_v1"]
    groups: list[InceptionV1Group] = Field(min_length=1, max_length=64)


register_block(
    tag="inception_v1",
    learner=InceptionV1Learner,
    plan_group=plan_inception_v1_group,
    group_layers=inception_v1_layers,
    templates=(
        "learners/inception_v1.py.j2",
        "groups/inception_v1.py.j2",
        "blocks/inception_v1.py.j2",
    ),
    group_name="inception_",
    first_index=3,
    learner_doc="Each group stacks inception modules; a 3x3/2 max pool between groups halves H, W.",
    layer_names=(r"inception_\d+[a-z]_\w+", r"pool\d+"),
    plan_between=plan_inception_v1_pool,
    between_name="pool",
    between_layers=inception_v1_pool_layers,
)
