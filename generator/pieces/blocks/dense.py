"""DenseNet: dense blocks (BN-ReLU-1x1 -> BN-ReLU-3x3, concatenated), transitions between
groups."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ...fields import Count, Filters, Model
from ...plan import (
    RESIDUAL_LAYER_NAMES,
    dense_layers,
    dense_transition_layers,
    plan_dense_group,
    plan_dense_transition,
)
from ...registry import register_block
from .residual import plan_post_activation


class DenseGroup(Model):
    n_blocks: Count


class DenseLearner(Model):
    """DenseNet: each dense block adds growth_rate feature maps to its input's; a transition
    between groups compresses the channels to int(C * compression) and halves H and W."""

    block: Literal["dense"]
    growth_rate: Filters = 32
    compression: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.5
    groups: list[DenseGroup] = Field(min_length=1, max_length=64)


register_block(
    tag="dense",
    learner=DenseLearner,
    plan_group=plan_dense_group,
    group_layers=dense_layers,
    templates=("learners/dense.py.j2", "groups/dense.py.j2", "blocks/dense.py.j2"),
    group_name="conv",
    first_index=2,
    learner_doc=(
        "Each group stacks dense blocks: every block concatenates growth_rate new\n"
        "feature maps to its input, so each block sees the maps of all blocks before it.\n"
        "Between groups a transition block compresses the channels and halves H and W."
    ),
    layer_names=(*RESIDUAL_LAYER_NAMES, r"pool\d+_(bn|relu|conv|pool)", r"bn|relu"),
    learner_args=("growth_rate", "compression"),
    plan_between=plan_dense_transition,
    between_name="pool",
    between_layers=dense_transition_layers,
    plan_tail=plan_post_activation,
    tail_name="post",
    tail_layers=("bn..relu", "relu"),
)
