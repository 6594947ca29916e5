"""Inception v3: the 35x35, 17x17 and 8x8 blocks and the grid reductions, one grid size
per group (a group-level `grid` tag picks the block type)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ...fields import MAX_BLOCKS, Filters, Model
from ...plan import CONV_BN_LAYER_NAMES, inception_v3_layers, plan_inception_v3_group
from ...registry import register_block
from .inception_v1 import AuxAfter, InceptionGroup


class Inception35x35Block(Model):
    """Inception v3 35x35 block (mixed0-2): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 |
    3x3 average pool -> 1x1."""

    n_1x1: Filters
    n_5x5_reduce: Filters
    n_5x5: Filters
    n_3x3dbl_reduce: Filters
    n_3x3dbl: Filters
    n_pool_proj: Filters


class Inception17x17Block(Model):
    """Inception v3 17x17 block (mixed4-7), 7x7 factorised: 1x1 | 1x1 -> 1x7 -> 7x1 |
    1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | 3x3 average pool -> 1x1. The inner convolutions keep
    the reduce width; the last one of each branch has n_7x7 / n_7x7dbl filters."""

    n_1x1: Filters
    n_7x7_reduce: Filters
    n_7x7: Filters
    n_7x7dbl_reduce: Filters
    n_7x7dbl: Filters
    n_pool_proj: Filters


class Inception8x8Block(Model):
    """Inception v3 8x8 block (mixed9-10), expanded: 1x1 | 1x1 -> (1x3 | 3x1) |
    1x1 -> 3x3 -> (1x3 | 3x1) | 3x3 average pool -> 1x1; a split contributes 2 * n maps."""

    n_1x1: Filters
    n_3x3_reduce: Filters
    n_3x3: Filters
    n_3x3dbl_reduce: Filters
    n_3x3dbl: Filters
    n_pool_proj: Filters


class Reduction35x35(Model):
    """Grid reduction 35x35 -> 17x17 (mixed3): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pool."""

    n_3x3: Filters
    n_3x3dbl_reduce: Filters
    n_3x3dbl: Filters


class Reduction17x17(Model):
    """Grid reduction 17x17 -> 8x8 (mixed8): 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 |
    3x3/2 max pool."""

    n_3x3_reduce: Filters
    n_3x3: Filters
    n_7x7x3_reduce: Filters
    n_7x7x3: Filters


class Grid35x35Group(InceptionGroup):
    grid: Literal["35x35"]
    blocks: list[Inception35x35Block] = Field(min_length=1, max_length=MAX_BLOCKS)
    reduction: Reduction35x35 | None = None
    aux_after: AuxAfter


class Grid17x17Group(InceptionGroup):
    grid: Literal["17x17"]
    blocks: list[Inception17x17Block] = Field(min_length=1, max_length=MAX_BLOCKS)
    reduction: Reduction17x17 | None = None
    aux_after: AuxAfter


class Grid8x8Group(InceptionGroup):
    grid: Literal["8x8"]
    blocks: list[Inception8x8Block] = Field(min_length=1, max_length=MAX_BLOCKS)
    reduction: None = None  # no grid reduction follows the 8x8 blocks
    aux_after: AuxAfter


GRID_TAGS = ("35x35", "17x17", "8x8")
GridGroup = Annotated[Grid35x35Group | Grid17x17Group | Grid8x8Group, Field(discriminator="grid")]


class InceptionV3Learner(Model):
    """Inception v3: each group stacks the blocks of one grid size (its `grid` tag picks the
    block type), then its grid reduction to the next grid, if it has one."""

    block: Literal["inception_v3"]
    groups: list[GridGroup] = Field(min_length=1, max_length=64)


register_block(
    tag="inception_v3",
    learner=InceptionV3Learner,
    plan_group=plan_inception_v3_group,
    group_layers=inception_v3_layers,
    helpers=("blocks/conv_bn.py.j2",),
    templates=(
        "learners/inception_v3.py.j2",
        "groups/inception_v3.py.j2",
        "blocks/inception_35x35.py.j2",
        "blocks/inception_17x17.py.j2",
        "blocks/inception_8x8.py.j2",
        "blocks/grid_reduction.py.j2",
    ),
    group_name="grid",
    first_index=1,
    learner_doc="Each group stacks the inception blocks of one grid size, then a grid reduction.",
    layer_names=(r"mixed\d+(_\w+)?", *CONV_BN_LAYER_NAMES),
    group_tags=GRID_TAGS,
)
