"""Residual blocks: basic (ResNet18/34), bottleneck (ResNet v1 / v1.5, ResNeXt's grouped
3x3, SE links) and pre-activation bottleneck (ResNet v2)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from ...errors import SpecError
from ...fields import MAX_FILTERS, Count, Filters, Model, Rate, Stride
from ...plan import Counter, Shape, bn, conv, pad, pool
from ...registry import register_block

if TYPE_CHECKING:
    from ...spec import Spec


# keras.applications' block names: conv2_block1_1_conv, ..._se_squeeze, ..._out.
RESIDUAL_LAYER_NAMES = (r"conv\d+_block\d+_\w+",)


class ResidualGroup(Model):
    n_filters: Filters
    n_blocks: Count
    strides: Stride = 1
    # The group's own block type, where a learner mixes basic and bottleneck groups (the
    # learner's `block` when absent).
    block: Literal["basic", "bottleneck"] | None = None


# The pre-activation block types, with the block of a group that downsamples by default.
PREACT = {"preact_bottleneck": "last", "preact_basic": "first"}


class ResidualLearner(Model):
    """Residual blocks, with two options that compose: ResNeXt's grouped 3x3 (bottleneck:
    cardinality, width_per_group, grouped_conv) and an SE link (basic, bottleneck: se_ratio).
    """

    block: Literal["basic", "bottleneck", "preact_bottleneck", "preact_basic"]
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
    # How a group's first block meets a change of shape on its shortcut. projection: a
    # strided 1x1 conv -> BN (He et al. 2015's option B); zero_pad (basic only): no
    # parameters, every strides-th pixel and zero channels appended (option A, the CIFAR
    # ResNets of section 4.2).
    shortcut: Literal["projection", "zero_pad"] = "projection"
    # Pre-activation blocks only: which block of a group downsamples. last (the default of
    # preact_bottleneck): the keras.applications / TF-slim v2 layout, the first block
    # always projecting; first (the default of preact_basic): He et al. 2016's CIFAR code
    # and the Wide ResNets, the first block projecting where the shape changes.
    stride_block: Literal["first", "last"] | None = None
    # preact_basic only: dropout between the two 3x3 convolutions (WRN; 0: none), and
    # the widening factor k of WRN-d-k: every group is k times as wide as its n_filters.
    dropout: Rate | None = None
    widen_factor: Annotated[StrictInt, Field(ge=1, le=MAX_FILTERS)] | None = None
    groups: list[ResidualGroup] = Field(min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _bottleneck_default(cls, data):
        if isinstance(data, dict) and "bottleneck" in _blocks(data):
            defaults = {"stride_on": "1x1", "cardinality": 1, "width_per_group": 64}
            defaults["grouped_conv"] = "native"
            data = {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}
        if isinstance(data, dict) and data.get("block") in PREACT:
            defaults = {"stride_block": PREACT[data["block"]]}
            if data["block"] == "preact_basic":
                defaults["dropout"], defaults["widen_factor"] = 0.0, 1
            data = {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}
        return data

    @model_validator(mode="after")
    def _stride_on_is_bottleneck_only(self):
        blocks = {group.block or self.block for group in self.groups}
        if self.block in PREACT and len(blocks) > 1:
            index = next(i for i, group in enumerate(self.groups) if group.block)
            raise ValueError(
                f"groups[{index}].block: a {self.block} learner's groups are all "
                "pre-activation blocks (basic and bottleneck groups mix in their own learners)"
            )
        for option in ("stride_block", "dropout", "widen_factor"):
            takes = PREACT if option == "stride_block" else ("preact_basic",)
            if self.block not in takes and getattr(self, option) is not None:
                raise ValueError(f"{option} applies only to block {' or '.join(map(repr, takes))}")
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
        if self.shortcut == "zero_pad" and blocks != {"basic"}:
            raise ValueError(
                "shortcut 'zero_pad' (option A) applies only to block 'basic' (the CIFAR "
                "ResNets); other blocks project their shortcut"
            )
        if self.block in PREACT and self.se_ratio is not None:
            raise ValueError("se_ratio applies only to blocks 'basic' and 'bottleneck'")
        return self


def se_link(c: Counter, shape: Shape, ratio: int | None) -> Shape:
    """Squeeze-and-excitation (timm's SEModule) when ratio is set: global average pool ->
    1x1 conv to C // ratio (bias, ReLU) -> 1x1 conv back to C (bias, sigmoid) -> multiply
    the maps by that gate. Shape kept."""
    if ratio is None:
        return shape
    channels = shape[2]
    reduced = channels // ratio
    if reduced < 1:
        raise SpecError(
            c.source,
            "learner.se_ratio",
            f"an SE link on the {channels}-channel maps of {c.where} would squeeze them to "
            f"{channels} // {ratio} = 0 channels; lower se_ratio",
        )
    c.add(channels * reduced + reduced)  # reduce: 1x1 conv with bias
    c.add(reduced * channels + channels)  # expand: 1x1 conv with bias
    c.add_macs(2 * channels * reduced)  # on the 1x1 pooled maps; the multiply counts 0
    return shape


def bottleneck_width(spec: Spec, c: Counter, n_filters: int) -> int:
    """The 3x3's width: cardinality groups of int(n_filters * width_per_group / 64)
    channels (torchvision's ResNeXt arithmetic; n_filters itself for a plain ResNet)."""
    learner = spec.learner
    per_group = n_filters * learner.width_per_group // 64
    if per_group < 1:
        raise SpecError(
            c.source,
            f"{c.where}.n_filters",
            f"n_filters {n_filters} * width_per_group {learner.width_per_group} // 64 leaves "
            f"0 channels for each of the {learner.cardinality} groups of the grouped 3x3; "
            "n_filters * width_per_group must be at least 64",
        )
    return per_group * learner.cardinality


def width_expression(width_per_group: int, cardinality: int) -> str:
    """bottleneck_width as the Python expression the block template writes, reduced:
    width_per_group 4, cardinality 32 -> "n_filters // 16 * 32"."""
    divisor = math.gcd(width_per_group, 64)
    scale, denominator = width_per_group // divisor, 64 // divisor
    expression = "n_filters" if scale == 1 else f"n_filters * {scale}"
    if denominator != 1:
        expression += f" // {denominator}"
    return expression if cardinality == 1 else f"{expression} * {cardinality}"


def zero_pad_shortcut(c: Counter, shape: Shape, n_filters: int, strides: int) -> Shape:
    """Option A: every strides-th pixel (a 1x1/strides max pool picks them), then zero
    channels appended up to n_filters. No parameters; it cannot take channels away."""
    if n_filters < shape[2]:
        raise SpecError(
            c.source,
            f"{c.where}.n_filters",
            f"shortcut 'zero_pad' (option A) only appends zero channels: it cannot take "
            f"{shape[2]} channels to {n_filters}; widen the group or use shortcut 'projection'",
        )
    h, w, _ = pool(c, shape, 1, strides, "the option A shortcut's subsampling")
    return h, w, n_filters


def plan_basic_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    f = group.n_filters
    for index in range(group.n_blocks):
        strides = group.strides if index == 0 else 1
        if index == 0 and (strides != 1 or shape[2] != f):
            if spec.learner.shortcut == "zero_pad":
                short = zero_pad_shortcut(c, shape, f, strides)
            else:
                short = bn(c, conv(c, shape, f, 1, strides, bias=bias))
        else:
            short = shape
        x = bn(c, conv(c, pad(shape, 1), f, 3, strides, bias=bias))
        x = se_link(c, bn(c, conv(c, pad(x, 1), f, 3, bias=bias)), spec.learner.se_ratio)
        assert x == short, (x, short)
        shape = x
    return shape


def plan_bottleneck_group(spec, c, shape, group):
    """1x1 reduce -> 3x3 (grouped with cardinality > 1) -> 1x1 expand to 4 * n_filters, each
    conv then BN; an SE link (se_ratio) rescales the branch before the add. The first
    block's shortcut is a strided 1x1 conv -> BN when the shape changes, else identity."""
    bias = spec.conventions.bias_before_bn
    v1_5 = spec.learner.stride_on == "3x3"
    groups = spec.learner.cardinality
    f = group.n_filters
    width = bottleneck_width(spec, c, f)
    for index in range(group.n_blocks):
        strides = group.strides if index == 0 else 1
        # As the group template: the first block projects its shortcut only when the shape
        # changes (a stride, or other than 4 * n_filters channels in); else identity.
        if index == 0 and (strides != 1 or shape[2] != 4 * f):
            short = bn(c, conv(c, shape, 4 * f, 1, strides, bias=bias))
        else:
            short = shape
        x = bn(c, conv(c, shape, width, 1, 1 if v1_5 else strides, bias=bias))
        if v1_5:
            x = bn(c, conv(c, pad(x, 1), width, 3, strides, bias=bias, groups=groups))
        else:
            x = bn(c, conv(c, x, width, 3, same=True, bias=bias, groups=groups))
        x = se_link(c, bn(c, conv(c, x, 4 * f, 1, bias=bias)), spec.learner.se_ratio)
        assert x == short, (x, short)
        shape = x
    return shape


def preact_shortcut(c, spec, shape, preact, index, n, width, strides, bias):
    """The shortcut of a group's index-th pre-activation block (from 1) of n, as the group
    template lays them out. stride_block last: the first block always projects (a 1x1 conv
    of the normalised input), the last strides, subsampling its shortcut (1x1/strides max
    pool); first: the first block strides and projects where the shape changes."""
    last = spec.learner.stride_block == "last"
    if index == 1 and (last or strides != 1 or shape[2] != width):
        return conv(c, preact, width, 1, strides, bias=bias)
    return pool(c, shape, 1, strides, "the shortcut's 1x1 max pool")


def preact_strides(spec, group, index: int) -> int:
    """The strides of a group's index-th pre-activation block (from 1)."""
    at = 1 if spec.learner.stride_block == "first" else group.n_blocks
    return group.strides if index == at else 1


def plan_preact_bottleneck_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    f, n = group.n_filters, group.n_blocks
    for index in range(1, n + 1):
        strides = preact_strides(spec, group, index)
        preact = bn(c, shape)
        # the projection feeds the add: always biased
        short = preact_shortcut(c, spec, shape, preact, index, n, 4 * f, strides, True)
        x = bn(c, conv(c, preact, f, 1, bias=bias))
        x = bn(c, conv(c, pad(x, 1), f, 3, strides, bias=bias))
        x = conv(c, x, 4 * f, 1)
        assert x == short, (x, short)
        shape = x
    return shape


def plan_preact_basic_group(spec, c, shape, group):
    """BN-ReLU -> 3x3/strides conv -> BN-ReLU -> (dropout) -> 3x3 conv, + the shortcut. Every
    conv's output reaches a BN (the next block's, or the learner's last), so bias_before_bn
    decides every bias (none in the WRNs)."""
    bias = spec.conventions.bias_before_bn
    f, n = group.n_filters * spec.learner.widen_factor, group.n_blocks
    for index in range(1, n + 1):
        strides = preact_strides(spec, group, index)
        preact = bn(c, shape)
        short = preact_shortcut(c, spec, shape, preact, index, n, f, strides, bias)
        x = bn(c, conv(c, pad(preact, 1), f, 3, strides, bias=bias))
        x = conv(c, pad(x, 1), f, 3, bias=bias)
        assert x == short, (x, short)
        shape = x
    return shape


def residual_layers(spec, index, shape):
    """conv2 ... (keras.applications' ResNet): the last block's output, conv2_block3_out."""
    return f"conv{index + 2}", f"conv{index + 2}_block{spec.learner.groups[index].n_blocks}_out"


def _blocks(data: dict) -> set:
    """The block types a raw learner section's groups take: each group's own `block`, else
    the learner's (its `block` alone when the groups are not a list of mappings)."""
    groups = data.get("groups")
    if not isinstance(groups, list) or not groups:
        blocks = [data.get("block")]
    else:
        own = [g.get("block") if isinstance(g, dict) else None for g in groups]
        blocks = [block if block is not None else data.get("block") for block in own]
    # Only names: a list or mapping the user wrote is no block type (nor hashable).
    return {block for block in blocks if isinstance(block, str)}


# What the (post-activation, v1) basic and bottleneck blocks share: the group, the
# keras.applications names conv2..conv5, the SE link option.
RESIDUAL_V1 = {
    "group_name": "conv",
    "first_index": 2,
    "group_layers": residual_layers,
    "layer_names": RESIDUAL_LAYER_NAMES,
    "options": {"se_ratio": "blocks/se.py.j2", "shortcut=zero_pad": "blocks/zero_channels.py.j2"},
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
    values={
        "expansion": 4,
        "width": lambda learner: width_expression(learner.width_per_group, learner.cardinality),
    },
    **RESIDUAL_V1,
)


def plan_post_activation(spec, c, shape):
    """The tail of a pre-activation learner (ResNet v2, DenseNet): BN-ReLU on the last
    sum or concatenation, which no block normalised."""
    return bn(c, shape)


# What the pre-activation (v2) blocks share: the group, the names, the final BN-ReLU.
RESIDUAL_V2 = {
    "learner": ResidualLearner,
    "group_layers": residual_layers,
    "group_name": "conv",
    "first_index": 2,
    "layer_names": (*RESIDUAL_LAYER_NAMES, r"post_(bn|relu)"),
    "plan_tail": plan_post_activation,
    "tail_name": "post",
    "tail_layers": ("post", "post_relu"),
}
register_block(
    tag="preact_bottleneck",
    plan_group=plan_preact_bottleneck_group,
    templates=(
        "learners/preact.py.j2",
        "groups/preact.py.j2",
        "blocks/preact_bottleneck.py.j2",
    ),
    learner_doc="Each group stacks pre-activation bottleneck blocks (BN-ReLU-conv).",
    values={"expansion": 4, "group_args": ()},
    **RESIDUAL_V2,
)
register_block(
    tag="preact_basic",
    plan_group=plan_preact_basic_group,
    templates=(
        "learners/preact.py.j2",
        "groups/preact.py.j2",
        "blocks/preact_basic.py.j2",
    ),
    learner_doc=(
        "Each group stacks pre-activation basic blocks (BN-ReLU-3x3 conv, twice; the Wide\n"
        "ResNets' block, with dropout between the two convolutions when it is set)."
    ),
    learner_args=("widen_factor", "dropout"),
    # What the learner passes on to each group (it applies widen_factor itself).
    values={"expansion": 1, "group_args": ("dropout",)},
    **RESIDUAL_V2,
)
