"""VGG: groups of 3x3 convolutions, each group ending in a 2x2/2 max pool."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...fields import Count, Filters, Model
from ...plan import plan_vgg_group, vgg_layers
from ...registry import register_block


class VGGGroup(Model):
    n_filters: Filters
    n_layers: Count


class VGGLearner(Model):
    block: Literal["vgg"]
    groups: list[VGGGroup] = Field(min_length=1, max_length=64)


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
)
