"""Xception: residual modules of depthwise-separable convolutions (each a 3x3 depthwise
convolution, one filter per channel, then a 1x1 pointwise convolution that mixes the
channels, in one SeparableConv2D layer). A module is ReLU -> separable conv -> BN, once per
width it lists; a strided module ends in a 3x3 max pool, and a 1x1 strided convolution
(BN after it) projects its input onto the shortcut wherever the shape changes. Modules are
numbered across the groups from block2 (the stem is block1), as in keras.applications; the
entry flow's three strided modules, the middle flow's eight identity modules and the exit
flow's strided module are four groups of one preset, and the tail (separable conv -> BN ->
ReLU per tail width) stays with include_top=False."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...fields import Count, Filters, Model, Stride
from ...plan import blocks_before, bn, conv, same_pool, span
from ...registry import register_block

FIRST_BLOCK = 2  # block1 is the stem's


class XceptionGroup(Model):
    # n_blocks modules, each a separable conv -> BN per width of n_filters (the module's
    # output has the last); the first module strides (a 3x3 max pool) when strides > 1.
    n_filters: list[Filters] = Field(min_length=1, max_length=8)
    n_blocks: Count
    strides: Stride = 1


class XceptionLearner(Model):
    """Xception: groups of residual modules of separable convolutions, numbered across the
    groups from block2 (the stem is block1), then the tail: a separable conv -> BN -> ReLU
    per width of tail_filters (the exit flow's 1536 and 2048), kept with include_top=False."""

    block: Literal["xception"]
    tail_filters: list[Filters] = Field(default=[1536, 2048], min_length=1, max_length=8)
    groups: list[XceptionGroup] = Field(min_length=1, max_length=64)


def separable(c, shape, filters: int, bias: bool):
    """A 3x3 SeparableConv2D, padding "same": the depthwise 3x3 (one filter per channel, no
    bias) then the pointwise 1x1 to filters (biased only with bias_before_bn)."""
    depthwise = conv(c, shape, shape[2], 3, 1, True, False, groups=shape[2])
    return conv(c, depthwise, filters, 1, same=True, bias=bias)


def plan_xception_group(spec, c, shape, group):
    """n_blocks modules: [ReLU ->] separable conv -> BN per width (no ReLU before the
    first module's first: the stem's ReLU precedes it) -> 3x3/strides max pool ("same") on
    a strided module; the input added back, through a 1x1/strides conv -> BN where the
    stride or the width changes (biased convolutions only with bias_before_bn)."""
    bias = spec.conventions.bias_before_bn
    for number in range(group.n_blocks):
        strides = group.strides if number == 0 else 1
        x = shape
        for width in group.n_filters:
            x = bn(c, separable(c, x, width, bias))
        if strides != 1:
            x = same_pool(c, x, strides, f"the module's 3x3/{strides} max pool")
        if strides != 1 or shape[2] != group.n_filters[-1]:
            what = f"the shortcut's 1x1/{strides} projection"
            bn(c, conv(c, shape, group.n_filters[-1], 1, strides, True, bias, what))
        shape = x
    return shape


def tail_block(spec) -> int:
    """The tail's block number: the one after the last module."""
    return FIRST_BLOCK + blocks_before(spec, len(spec.learner.groups))


def plan_xception_tail(spec, c, shape):
    """The tail (the exit flow's last block): separable conv -> BN -> ReLU per tail width."""
    bias = spec.conventions.bias_before_bn
    for width in spec.learner.tail_filters:
        shape = bn(c, separable(c, shape, width, bias))
    return shape


def tail_layers(spec):
    last = len(spec.learner.tail_filters)
    return f"block{tail_block(spec)}", f"block{tail_block(spec)}_sepconv{last}_act"


def xception_layers(spec, index, shape):
    first = blocks_before(spec, index)  # modules before this group: its first add's number
    last = first + spec.learner.groups[index].n_blocks - 1
    prefix = span(f"block{FIRST_BLOCK + first}", f"block{FIRST_BLOCK + last}")
    return prefix, f"block{FIRST_BLOCK + last}_add"


register_block(
    tag="xception",
    learner=XceptionLearner,
    plan_group=plan_xception_group,
    group_layers=xception_layers,
    templates=(
        "learners/xception.py.j2",
        "groups/xception.py.j2",
        "blocks/xception.py.j2",
    ),
    helpers=("blocks/auto_name.py.j2",),
    group_name="group",
    first_index=1,
    learner_doc=(
        "Each group stacks residual modules of separable convolutions; a group's first\n"
        "module may stride (a 3x3 max pool), halving H and W."
    ),
    # the shortcut's projection and BN: keras' automatic names, as in its weights file
    layer_names=(
        r"block\d+_(sepconv\d+(_bn|_act)?|pool|add)",
        r"(conv2d|batch_normalization)(_\d+)?",
    ),
    learner_args=("tail_filters",),
    plan_tail=plan_xception_tail,
    tail_name="tail",
    tail_layers=tail_layers,
    tail_detail="separable conv-BN-ReLU",
)
