"""Residual blocks: basic (ResNet18/34), bottleneck (ResNet v1 / v1.5, ResNeXt's grouped
3x3, SE links) and pre-activation bottleneck (ResNet v2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from ...fields import MAX_FILTERS, Count, Filters, Model, Stride
from ...plan import (
    RESIDUAL_LAYER_NAMES,
    bn,
    plan_basic_group,
    plan_bottleneck_group,
    plan_preact_bottleneck_group,
)
from ...registry import register_block


class ResidualGroup(Model):
    n_filters: Filters
    n_blocks: Count
    strides: Stride = 1
    # The group's own block type, where a learner mixes basic and bottleneck groups (the
    # learner's `block` when absent).
    block: Literal["basic", "bottleneck"] | None = None


class ResidualLearner(Model):
    """Residual blocks, with two options that compose: ResNeXt's grouped 3x3 (bottleneck:
    cardinality, width_per_group, grouped_conv) and an SE link (basic, bottleneck: se_ratio).
    """

    block: Literal["basic", "bottleneck", "preact_bottleneck"]
    # bottleneck only (default 1x1): v1 strides the first 1x1, v1.5 strides the 3x3.
    stride_on: Literal["1x1", "3x3"] | None = None
    # bottleneck only (defaults 1, 64, native): ResNeXt. The 3x3 is split into `cardinality`
    # groups of int(n_filters * width_per_group / 64) channels each (torchvision's
    # base_width); the block's output stays 4 * n_filters. native: one Conv2D(groups=...);
    # split: the paper's split-transform-merge, one Conv2D per group, then Concatenate.
    cardinality: Annotated[StrictInt, Field(ge=1, le=1024)] | None = None
    width_per_group: Filters | None = None
    grouped_conv: Literal["native", "split"] | None = None
    # basic and bottleneck: a squeeze-and-excitation link on the residual branch, with
    # channels // se_ratio channels in its bottleneck (None: no SE link).
    se_ratio: Annotated[StrictInt, Field(ge=1, le=MAX_FILTERS)] | None = None
    groups: list[ResidualGroup] = Field(min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _bottleneck_default(cls, data):
        if isinstance(data, dict) and "bottleneck" in _blocks(data):
            defaults = {"stride_on": "1x1", "cardinality": 1, "width_per_group": 64}
            defaults["grouped_conv"] = "native"
            data = {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}
        return data

    @model_validator(mode="after")
    def _stride_on_is_bottleneck_only(self):
        blocks = {group.block or self.block for group in self.groups}
        if self.block == "preact_bottleneck" and len(blocks) > 1:
            index = next(i for i, group in enumerate(self.groups) if group.block)
            raise ValueError(
                f"groups[{index}].block: a preact_bottleneck learner's groups are all "
                "pre-activation blocks (basic and bottleneck groups mix in their own learners)"
            )
        if "bottleneck" not in blocks and self.stride_on is not None:
            raise ValueError(
                f"stride_on applies only to block 'bottleneck' ({self.block} blocks "
                "stride their first 3x3)"
            )
        for option in ("cardinality", "width_per_group", "grouped_conv"):
            if "bottleneck" not in blocks and getattr(self, option) is not None:
                raise ValueError(
                    f"{option} applies only to block 'bottleneck' (the ResNeXt grouped 3x3)"
                )
        if self.block == "preact_bottleneck" and self.se_ratio is not None:
            raise ValueError("se_ratio applies only to blocks 'basic' and 'bottleneck'")
        return self


def _blocks(data: dict) -> set:
    """The block types a raw learner section names: its own and its groups'."""
    groups = data.get("groups")
    named = (
        [g.get("block") for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []
    )
    # Only names: a list or mapping the user wrote is no block type (nor hashable).
    return {block for block in (data.get("block"), *named) if isinstance(block, str)}


# What the (post-activation, v1) basic and bottleneck blocks share: the group, the
# keras.applications names conv2..conv5, the SE link option.
RESIDUAL_V1 = {
    "group_name": "conv",
    "first_index": 2,
    "layer_names": RESIDUAL_LAYER_NAMES,
    "options": {"se_ratio": "blocks/se.py.j2"},
}
register_block(
    tag="basic",
    learner=ResidualLearner,
    plan_group=plan_basic_group,
    templates=("learner.py.j2", "groups/residual.py.j2", "blocks/basic.py.j2"),
    learner_doc="Each group stacks basic residual blocks (two 3x3 convolutions).",
    values={"expansion": 1},
    **RESIDUAL_V1,
)
register_block(
    tag="bottleneck",
    learner=ResidualLearner,
    plan_group=plan_bottleneck_group,
    templates=("learner.py.j2", "groups/residual.py.j2", "blocks/bottleneck.py.j2"),
    learner_doc="Each group stacks bottleneck residual blocks (1x1 -> 3x3 -> 1x1).",
    values={"expansion": 4},
    **RESIDUAL_V1,
)


def plan_post_activation(spec, c, shape):
    """The tail of a pre-activation learner (ResNet v2, DenseNet): BN-ReLU on the last
    sum or concatenation, which no block normalised."""
    return bn(c, shape)


register_block(
    tag="preact_bottleneck",
    learner=ResidualLearner,
    plan_group=plan_preact_bottleneck_group,
    templates=(
        "learners/preact.py.j2",
        "groups/preact.py.j2",
        "blocks/preact_bottleneck.py.j2",
    ),
    group_name="conv",
    first_index=2,
    learner_doc="Each group stacks pre-activation bottleneck blocks (BN-ReLU-conv).",
    layer_names=(*RESIDUAL_LAYER_NAMES, r"post_(bn|relu)"),
    plan_tail=plan_post_activation,
    tail_name="post",
)
