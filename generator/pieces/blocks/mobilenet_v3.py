"""MobileNetV3: the inverted residual block of MobileNetV2 with a searched table of sizes.
Each block has its own expansion, kernel size (3 or 5), nonlinearity (ReLU or hard-swish)
and, where the table says so, a squeeze-and-excitation gate (hard-sigmoid) on the
depthwise maps. `alpha` scales every block's width, rounded to a multiple of 8; after the
last group a 1x1 convolution widens the maps last_expansion times."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from ...fields import Filters, Model, Stride
from ...plan import blocks_before, bn, conv, span
from ...registry import register_block
from .inverted_residual import make_divisible

Nonlinearity = Literal["relu", "hard_swish"]


class MobileNetV3Block(Model):
    # One row of the paper's table: out width (before alpha), expansion of its input's
    # width, depthwise kernel size, stride, SE gate or not, nonlinearity ("NL").
    n_filters: Filters
    expansion: Annotated[float, Field(gt=0.0, le=16.0)] = 6.0
    kernel_size: Annotated[int, Field(ge=1, le=9, strict=True)] = 3
    strides: Stride = 1
    se: StrictBool = False
    nonlinearity: Nonlinearity = "relu"


class MobileNetV3Group(Model):
    # The blocks in order (a group: the blocks at one resolution, the first may stride).
    blocks: list[MobileNetV3Block] = Field(min_length=1, max_length=64)

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)


class MobileNetV3Learner(Model):
    """MobileNetV3: groups of inverted residual blocks, each block its own row of sizes,
    numbered across the groups from 0 (keras.applications' block ids), then a 1x1
    convolution to last_expansion x the channels (BN, nonlinearity), which stays with
    include_top=False. alpha: the width multiplier (every block's n_filters, rounded to a
    multiple of 8); se_ratio: an SE gate's squeezed width per expanded channel;
    nonlinearity: the stem's, the last convolution's and the classifier's."""

    block: Literal["mobilenet_v3"]
    alpha: Annotated[float, Field(gt=0.0, le=4.0, strict=True)] = 1.0
    se_ratio: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.25
    nonlinearity: Nonlinearity = "hard_swish"
    last_expansion: Annotated[float, Field(gt=0.0, le=16.0)] = 6.0
    groups: list[MobileNetV3Group] = Field(min_length=1, max_length=64)


def plan_mobilenet_v3_group(spec, c, shape, group):
    """Each block: [1x1 to make_divisible(C * expansion) -> BN -> NL, unless expansion is 1]
    -> k x k depthwise (strided: zeros to keras' correct_pad, then "valid") -> BN -> NL ->
    [SE: pool -> 1x1 to make_divisible(C * se_ratio) (ReLU) -> 1x1 back (hard-sigmoid) ->
    scale] -> 1x1 projection to make_divisible(n_filters * alpha) -> BN; the input added
    where stride and width keep."""
    bias = spec.conventions.bias_before_bn
    learner = spec.learner
    for block in group.blocks:
        filters = make_divisible(block.n_filters * learner.alpha)
        if block.expansion != 1:
            wide = make_divisible(shape[2] * block.expansion)
            shape = bn(c, conv(c, shape, wide, 1, same=True, bias=bias))
        k, s = block.kernel_size, block.strides
        what = f"the depthwise {k}x{k}/{s} convolution"
        padded = shape
        if s != 1:  # keras' correct_pad: k // 2 at the end, one fewer at the start of an even side
            padded = tuple(side + 2 * (k // 2) - 1 + side % 2 for side in shape[:2]) + shape[2:]
        shape = bn(c, conv(c, padded, shape[2], k, s, s == 1, bias, what, groups=shape[2]))
        if block.se:
            squeezed = make_divisible(shape[2] * learner.se_ratio)
            conv(c, (1, 1, shape[2]), squeezed, 1)  # 1x1 maps: the pooled gate
            conv(c, (1, 1, squeezed), shape[2], 1)
        shape = bn(c, conv(c, shape, filters, 1, same=True, bias=bias))
    return shape


def plan_last_conv(spec, c, shape):
    """The tail: 1x1 conv to make_divisible(C * last_expansion) (conv_1) -> BN -> NL."""
    wide = make_divisible(shape[2] * spec.learner.last_expansion)
    return bn(c, conv(c, shape, wide, 1, same=True, bias=spec.conventions.bias_before_bn))


def block_prefix(number: int) -> str:
    """keras.applications' names: block 0 is expanded_conv_, the others expanded_conv_N_."""
    return f"expanded_conv_{number}_" if number else "expanded_conv_"


def mobilenet_v3_layers(spec, index, shape):
    first = blocks_before(spec, index)
    blocks = spec.learner.groups[index].blocks
    last = first + len(blocks) - 1
    # the group's output: its last block's sum, or its projection where that block adds none
    widths = [make_divisible(block.n_filters * spec.learner.alpha) for block in blocks]
    width_in = widths[-2] if len(blocks) > 1 else shape[2]
    keeps = blocks[-1].strides == 1 and width_in == widths[-1]
    out = f"{block_prefix(last)}{'add' if keeps else 'project_bn'}"
    return span(block_prefix(first).rstrip("_"), block_prefix(last).rstrip("_")), out


register_block(
    tag="mobilenet_v3",
    learner=MobileNetV3Learner,
    plan_group=plan_mobilenet_v3_group,
    group_layers=mobilenet_v3_layers,
    templates=(
        "learners/mobilenet_v3.py.j2",
        "groups/mobilenet_v3.py.j2",
        "blocks/mobilenet_v3.py.j2",
    ),
    group_name="group",
    first_index=0,
    learner_doc=(
        "Each group stacks inverted residual blocks (1x1 expand -> k x k depthwise ->\n"
        "[SE gate] -> 1x1 linear projection), each with its own row of sizes."
    ),
    layer_names=(
        r"expanded_conv(_\d+)?_(expand|depthwise|project)(_bn|_act)?",
        r"expanded_conv(_\d+)?_(depthwise_pad|add)",
        r"expanded_conv(_\d+)?_squeeze_excite_(avg_pool|conv|relu|conv_1|hard_sigmoid|mul)",
        r"conv_1(_bn|_act)?",
    ),
    learner_args=("alpha", "se_ratio", "nonlinearity", "last_expansion"),
    plan_tail=plan_last_conv,
    tail_name="last_conv",
    tail_layers=("conv_1", "conv_1_act"),
    tail_detail="1x1 conv-BN-nonlinearity",
    helpers=("blocks/make_divisible.py.j2",),
)
