"""DenseNet: dense blocks (BN-ReLU-1x1 -> BN-ReLU-3x3, concatenated), transitions between
groups."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ...errors import SpecError
from ...fields import Count, Filters, Model
from ...plan import bn, conv, pool
from ...registry import register_block
from .residual import RESIDUAL_LAYER_NAMES, plan_post_activation


class DenseGroup(Model):
    n_blocks: Count


class DenseLearner(Model):
    """DenseNet: each dense block adds growth_rate feature maps to its input's; a transition
    between groups compresses the channels to int(C * compression) and halves H and W."""

    block: Literal["dense"]
    growth_rate: Filters = 32
    compression: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.5
    groups: list[DenseGroup] = Field(min_length=1, max_length=64)


def plan_dense_group(spec, c, shape, group):
    """n_blocks dense blocks: each BN-ReLU-1x1 (4k) -> BN-ReLU-3x3 (k), concatenated to its
    input, so the channels grow by k = growth_rate per block; H and W are kept."""
    bias = spec.conventions.bias_before_bn
    k = spec.learner.growth_rate
    for _ in range(group.n_blocks):
        x = bn(c, conv(c, bn(c, shape), 4 * k, 1, bias=bias))
        x = conv(c, x, k, 3, same=True, bias=bias)
        shape = (shape[0], shape[1], shape[2] + x[2])
    return shape


def plan_dense_transition(spec, c, shape):
    """BN-ReLU-1x1 conv to int(C * compression) channels -> 2x2/2 average pool."""
    filters = int(shape[2] * spec.learner.compression)  # Keras' own arithmetic
    if filters < 1:
        raise SpecError(
            c.source,
            "learner.compression",
            f"the transition after {c.where} would compress {shape[2]} channels to "
            f"int({shape[2]} * {spec.learner.compression!r}) = 0; raise compression",
        )
    x = conv(c, bn(c, shape), filters, 1, bias=spec.conventions.bias_before_bn)
    return pool(c, x, 2, 2, "the transition's 2x2/2 average pool")


def dense_layers(spec, index, shape):
    name = f"conv{index + 2}"
    return name, f"{name}_block{spec.learner.groups[index].n_blocks}_concat"


def dense_transition_layers(spec, index):
    return f"pool{index + 1}", f"pool{index + 1}_pool"


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
