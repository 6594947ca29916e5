"""VGG: groups of 3x3 convolutions, each group ending in a 2x2/2 max pool."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...fields import Count, Filters, Model
from ...plan import conv, pool
from ...registry import Recipe, register_block


class VGGGroup(Model):
    n_filters: Filters
    n_layers: Count


class VGGLearner(Model):
    block: Literal["vgg"]
    groups: list[VGGGroup] = Field(min_length=1, max_length=64)


def plan_vgg_group(spec, c, shape, group):
    for _ in range(group.n_layers):
        shape = conv(c, shape, group.n_filters, 3, same=True)
    c.pool_input = shape  # what Fast R-CNN's RoI pooling reads instead (drop_last_pool)
    return pool(c, shape, 2, 2, "the group's 2x2 max pool")


def vgg_layers(spec, index, shape):
    return f"block{index + 1}", f"block{index + 1}_pool"


register_block(
    tag="vgg",
    learner=VGGLearner,
    plan_group=plan_vgg_group,
    group_layers=vgg_layers,
    templates=("learner.py.j2", "groups/vgg.py.j2"),
    group_name="block",
    first_index=1,
    learner_doc="Each VGG group stacks 3x3 convolutions and halves H and W.",
    layer_names=(r"block\d+_(conv\d+|pool)",),
    # No batch normalisation: at Adam's usual 1e-3 its first steps overshoot and the loss
    # rises (VGG16 6.91 -> 8.06 in 5 steps at 64x64, batch 2); 1e-4 lowers it.
    recipe=Recipe(
        learning_rate=1e-4,
        why="Adam 1e-4: a plain conv stack without batch normalisation needs a lower rate",
    ),
)
