"""MobileNet v1: depthwise-separable blocks (a 3x3 depthwise convolution, one filter per
channel, then a 1x1 pointwise convolution that mixes the channels), each followed by BN and
ReLU6. `alpha` scales every width, `depth_multiplier` the depthwise outputs per channel."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ...errors import SpecError
from ...fields import Count, Filters, Model, Stride
from ...plan import blocks_before, bn, conv, span
from ...registry import register_block


class DepthwiseGroup(Model):
    # n_blocks depthwise-separable blocks to n_filters * alpha channels; the first strided.
    n_filters: Filters
    n_blocks: Count
    strides: Stride = 1


class DepthwiseLearner(Model):
    """MobileNet: groups of depthwise-separable blocks, numbered across the groups (block 1
    is the first after the stem, as in keras.applications). alpha: the width multiplier,
    every convolution's filters (the stem's too) are int(n_filters * alpha);
    depth_multiplier: each depthwise convolution's outputs per input channel."""

    block: Literal["depthwise_separable"]
    alpha: Annotated[float, Field(gt=0.0, le=4.0, strict=True)] = 1.0
    depth_multiplier: Annotated[int, Field(ge=1, le=16, strict=True)] = 1
    groups: list[DepthwiseGroup] = Field(min_length=1, max_length=64)


def scaled(c, spec, n_filters: int, what: str) -> int:
    """int(n_filters * alpha), keras.applications' rounding; a width it rounds to zero is
    a spec error of learner.alpha."""
    alpha = spec.learner.alpha
    filters = int(n_filters * alpha)
    if filters < 1:
        raise SpecError(
            c.source,
            "learner.alpha",
            f"{what} would have int({n_filters} * {alpha!r}) = 0 channels; raise alpha",
        )
    return filters


def plan_depthwise_group(spec, c, shape, group):
    """n_blocks blocks: 3x3 depthwise (strides on the first) -> BN -> ReLU6 -> 1x1 pointwise
    to int(n_filters * alpha) -> BN -> ReLU6 (biased convolutions only with bias_before_bn)."""
    filters = scaled(c, spec, group.n_filters, f"the pointwise convolutions of {c.where}")
    bias = spec.conventions.bias_before_bn
    for number in range(group.n_blocks):
        strides = group.strides if number == 0 else 1
        what = f"the depthwise 3x3/{strides} convolution"
        # one 3x3 filter group per channel; strided: a row and column of zeros at the
        # bottom and right, then "valid" (keras.applications), else "same"
        padded = shape if strides == 1 else (shape[0] + 1, shape[1] + 1, shape[2])
        depth = shape[2] * spec.learner.depth_multiplier
        shape = conv(c, padded, depth, 3, strides, strides == 1, bias, what, groups=shape[2])
        shape = bn(c, shape)
        shape = bn(c, conv(c, shape, filters, 1, same=True, bias=bias))
    return shape


def depthwise_layers(spec, index, shape):
    first = 1 + blocks_before(spec, index)  # block 1 follows the stem
    last = first + spec.learner.groups[index].n_blocks - 1
    return span(f"conv_dw_{first}", f"conv_pw_{last}"), f"conv_pw_{last}_relu"


register_block(
    tag="depthwise_separable",
    learner=DepthwiseLearner,
    plan_group=plan_depthwise_group,
    group_layers=depthwise_layers,
    templates=(
        "learners/depthwise.py.j2",
        "groups/depthwise.py.j2",
        "blocks/depthwise.py.j2",
    ),
    group_name="group",
    first_index=1,
    learner_doc=(
        "Each group stacks depthwise-separable blocks (3x3 depthwise -> 1x1 pointwise);\n"
        "a group's first block may stride, halving H and W."
    ),
    layer_names=(r"conv_(dw|pw)_\d+(_bn|_relu)?", r"conv_pad_\d+"),
    learner_args=("alpha", "depth_multiplier"),
)
