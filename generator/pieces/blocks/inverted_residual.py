"""MobileNetV2: inverted residual blocks with linear bottlenecks. Each block widens its
input with a 1x1 convolution (expansion x the channels), filters every channel on its own
with a 3x3 depthwise convolution, then projects back to a narrow width with a 1x1
convolution and no activation (the linear bottleneck); where the shape is kept, the
block's input is added back. `alpha` scales every width, rounded to a multiple of 8."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ...fields import Count, Filters, Model, Stride
from ...plan import blocks_before, bn, conv, span
from ...registry import register_block

# Widths are rounded to multiples of this (keras.applications' and torchvision's
# _make_divisible): fast on hardware that works in lanes of 8 channels.
DIVISOR = 8


def make_divisible(value: float, divisor: int = DIVISOR) -> int:
    """value to the nearest multiple of divisor (at least divisor), raised by one more
    divisor where that rounds it down by over 10%: MobileNetV2's channel rounding, which
    the emitted helper of the same name writes out (blocks/make_divisible.py.j2)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidualGroup(Model):
    # n_blocks inverted residual blocks to make_divisible(int(n_filters * alpha)) channels,
    # each widened expansion times inside; the first strided.
    n_filters: Filters
    n_blocks: Count
    strides: Stride = 1
    expansion: Annotated[int, Field(ge=1, le=16, strict=True)] = 6


class InvertedResidualLearner(Model):
    """MobileNetV2: groups of inverted residual blocks, numbered across the groups from 0
    (keras.applications' block ids), then a 1x1 convolution to last_filters maps (BN,
    ReLU6), which stays with include_top=False. alpha: the width multiplier, every
    block's and the stem's filters are rounded to a multiple of 8; last_filters grows with
    alpha only above 1 (the paper keeps 1280 for thinner networks)."""

    block: Literal["inverted_residual"]
    alpha: Annotated[float, Field(gt=0.0, le=4.0, strict=True)] = 1.0
    last_filters: Filters = 1280
    groups: list[InvertedResidualGroup] = Field(min_length=1, max_length=64)


def block_width(spec, n_filters: int) -> int:
    """A block's output width: make_divisible(int(n_filters * alpha))."""
    return make_divisible(int(n_filters * spec.learner.alpha))


def last_width(spec) -> int:
    """The 1x1 convolution after the last group: last_filters, widened by alpha above 1."""
    learner = spec.learner
    if learner.alpha > 1.0:
        return make_divisible(learner.last_filters * learner.alpha)
    return learner.last_filters


def plan_inverted_residual_group(spec, c, shape, group):
    """n_blocks blocks: [1x1 to expansion x the channels -> BN -> ReLU6, unless expansion
    is 1] -> 3x3 depthwise (strides on the first; zero padding to keras.applications'
    correct_pad, then "valid") -> BN -> ReLU6 -> 1x1 projection -> BN; the input added
    where the block keeps the stride and the width (biased convolutions only with
    bias_before_bn)."""
    filters = block_width(spec, group.n_filters)
    bias = spec.conventions.bias_before_bn
    for number in range(group.n_blocks):
        strides = group.strides if number == 0 else 1
        if group.expansion != 1:
            shape = bn(c, conv(c, shape, group.expansion * shape[2], 1, same=True, bias=bias))
        what = f"the depthwise 3x3/{strides} convolution"
        padded = shape
        if strides != 1:  # one more row (column) of zeros at the top (left) of an odd side
            padded = (shape[0] + 1 + shape[0] % 2, shape[1] + 1 + shape[1] % 2, shape[2])
        shape = conv(c, padded, shape[2], 3, strides, strides == 1, bias, what, groups=shape[2])
        shape = bn(c, shape)
        shape = bn(c, conv(c, shape, filters, 1, same=True, bias=bias))
    return shape


def plan_last_conv(spec, c, shape):
    """The tail: 1x1 conv to last_width() maps (Conv_1) -> BN -> ReLU6 (out_relu)."""
    bias = spec.conventions.bias_before_bn
    return bn(c, conv(c, shape, last_width(spec), 1, same=True, bias=bias))


def block_prefix(number: int) -> str:
    """keras.applications' names: block 0 is expanded_conv_, the others block_N_."""
    return f"block_{number}_" if number else "expanded_conv_"


def inverted_residual_layers(spec, index, shape):
    first = blocks_before(spec, index)  # block 0 follows the stem
    last = first + spec.learner.groups[index].n_blocks - 1
    keeps = spec.learner.groups[index].strides == 1 and shape[2] == block_width(
        spec, spec.learner.groups[index].n_filters
    )
    out = f"{block_prefix(last)}add" if keeps or last > first else f"{block_prefix(last)}project_BN"
    return span(f"{block_prefix(first)}".rstrip("_"), f"{block_prefix(last)}".rstrip("_")), out


register_block(
    tag="inverted_residual",
    learner=InvertedResidualLearner,
    plan_group=plan_inverted_residual_group,
    group_layers=inverted_residual_layers,
    templates=(
        "learners/inverted_residual.py.j2",
        "groups/inverted_residual.py.j2",
        "blocks/inverted_residual.py.j2",
    ),
    group_name="group",
    first_index=0,
    learner_doc=(
        "Each group stacks inverted residual blocks (1x1 expand -> 3x3 depthwise ->\n"
        "1x1 linear projection); a group's first block may stride, halving H and W."
    ),
    layer_names=(
        r"(expanded_conv|block_\d+)_(expand|depthwise|project)(_BN|_relu)?",
        r"(expanded_conv|block_\d+)_(pad|add)",
        r"Conv_1(_bn)?",
        r"out_relu",
    ),
    learner_args=("alpha", "last_filters"),
    plan_tail=plan_last_conv,
    tail_name="last_conv",
    tail_layers=("Conv_1", "out_relu"),
    tail_detail="1x1 conv-BN-ReLU6",
    helpers=("blocks/make_divisible.py.j2",),
)
