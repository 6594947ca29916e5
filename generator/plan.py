"""Plan: walk a validated spec statically (no keras) and work out the network.

The walk computes every group's output shape and the parameter count, layer by layer,
with the same arithmetic Keras uses, and decides which templates the file needs.
A spec whose feature maps collapse is rejected here, naming the spot.

Each block type's planner mirrors its template in templates/blocks/; tests build every
preset, and random valid specs of every block type and architecture
(tests/test_plan_vs_keras.py), with Keras and hold the counts and every stage's output
shape equal. The walk also counts multiply-accumulates (MACs, `modelgen summary`): a
convolution's H_out * W_out * kh * kw * (C_in / groups) * C_out, a transposed
convolution's H_in * W_in * kh * kw * C_in * C_out, a dense layer's inputs * units; BN,
pooling, activations, adds, concatenations and biases count 0 (the usual convention, as
torchvision's and fvcore's figures count them), per sample of the model's input.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from .errors import SpecError
from .fields import MAX_IMAGE_SIDE
from .registry import ARCHITECTURES, AUX, BLOCKS, CLASSIFIERS, POOLING_LAYER_NAMES, STEMS, BlockType

if TYPE_CHECKING:
    from .spec import Spec

Shape = tuple[int, int, int]  # (H, W, C), channels last

# Above this many parameters (8 GB of float32 weights) a spec is almost surely a typo, and
# Keras would spend minutes allocating it: the plan refuses unless --allow-large is given.
MAX_PARAMS = 2_000_000_000


@dataclass
class Stage:
    """One macro-architecture piece: what it is called and what it leaves behind.

    `name` is the piece's name in the plan and the diagram (stem, conv2, classifier ...);
    `prefix` the prefix of its layers' names in the built model (keras.applications' block
    names: conv1, conv2, block1, pool2, inception_3; "first..last" where the piece spans
    several named blocks, mixed0..mixed3); `layer` the layer whose output is the stage's
    output, as a path through the built model's sub-models ("conv2_block3_out",
    "twin/conv5_block2_out"). A stage with several outputs (classifier.heads, a detector's
    region head, the RPN) lists them as `parts`, one Stage each; its counts are their sum.
    """

    name: str
    kind: str  # stem | group | transition | norm | classifier | ...
    detail: str
    output_shape: tuple
    params: int
    trainable: int
    path: str = ""  # where it sits in the spec (stem, learner.groups[2], classifier)
    prefix: str = ""
    layer: str = ""
    macs: int = 0  # multiply-accumulates per sample of the model's input
    parts: list[Stage] = field(default_factory=list)

    @property
    def rows(self) -> list[Stage]:
        """One row per output: the parts, or the stage itself (`modelgen summary`)."""
        return self.parts or [self]


@dataclass
class Counter:
    """Running parameter count, and the stage being walked (for error messages)."""

    source: str
    where: str = ""
    total: int = 0
    trainable: int = 0
    macs: int = 0
    # How many times the layers being walked run per sample of the model's input: a twin's
    # backbone twice (one per image of the pair), a detector's region head once per region.
    repeat: int = 1
    # Shapes of the block outputs that feed auxiliary classifiers (Inception's aux_after).
    taps: list = field(default_factory=list)
    # The maps the last VGG max pool received (Fast R-CNN's drop_last_pool reads them).
    pool_input: tuple | None = None

    def add(self, total: int, trainable: int | None = None) -> None:
        self.total += total
        self.trainable += total if trainable is None else trainable

    def add_macs(self, macs: int) -> None:
        self.macs += macs * self.repeat

    def mark(self) -> tuple[int, int, int]:
        """The counts so far: a stage's counts are the difference to its mark."""
        return (self.total, self.trainable, self.macs)

    def check_stride(self, shape: Shape, strides: int, what: str) -> None:
        """A stride wider than the map has nothing left to downsample: Keras would keep a
        1-pixel map and silently skip the reduction the spec asks for."""
        if strides > 1 and min(shape[0], shape[1]) < strides:
            raise SpecError(
                self.source,
                self.where,
                f"feature maps shrink to nothing: {what} gets {shape[0]}x{shape[1]} maps; "
                "the input is too small for this stride schedule",
            )

    def check(self, shape: Shape, what: str) -> Shape:
        if shape[0] < 1 or shape[1] < 1:
            raise SpecError(
                self.source,
                self.where,
                f"feature maps shrink to {shape[0]}x{shape[1]} at {what}: the input is too "
                "small for this stride schedule",
            )
        return shape


# ------------------------------------------------------------------ layer arithmetic


def conv(
    c: Counter,
    shape: Shape,
    filters: int,
    k: int,
    strides=1,
    same=False,
    bias=True,
    what="",
    groups=1,
):
    h, w, cin = shape
    c.check_stride(shape, strides, what or f"a {k}x{k}/{strides} convolution")
    if same:
        h, w = math.ceil(h / strides), math.ceil(w / strides)
    else:
        h, w = (h - k) // strides + 1, (w - k) // strides + 1
    c.add(k * k * (cin // groups) * filters + (filters if bias else 0))
    c.add_macs(h * w * k * k * (cin // groups) * filters)
    return c.check((h, w, filters), what or f"a {k}x{k} convolution")


def bn(c: Counter, shape: Shape) -> Shape:
    # gamma, beta (trainable) + moving mean, moving variance (Keras counts them too)
    c.add(4 * shape[2], 2 * shape[2])
    return shape


def pad(shape: Shape, p: int) -> Shape:
    return (shape[0] + 2 * p, shape[1] + 2 * p, shape[2])


def pool(c: Counter, shape: Shape, size: int, strides: int, what: str) -> Shape:
    h, w, ch = shape
    if h < size or w < size:
        raise SpecError(
            c.source,
            c.where,
            f"feature maps shrink to nothing: {what} needs at least {size}x{size} maps (its "
            f"pooling window) but gets {h}x{w}; the input is too small for this stride schedule",
        )
    c.check_stride(shape, strides, what)
    return c.check(((h - size) // strides + 1, (w - size) // strides + 1, ch), what)


def ceil_pool(c: Counter, shape: Shape, what: str) -> Shape:
    """3x3/2 max pool with PyTorch's ceil_mode=True (Caffe's rounding): ceil((H - 3) / 2) + 1.
    Emitted as one row and column of zero padding at the end, then a valid 3x3/2 pool."""
    return pool(c, (shape[0] + 1, shape[1] + 1, shape[2]), 3, 2, what)


def dense(c: Counter, n_in: int, units: int) -> int:
    c.add(n_in * units + units)
    c.add_macs(n_in * units)
    return units


# ------------------------------------------------------------------ stems


def plan_stem(spec: Spec, c: Counter, shape: Shape) -> Shape:
    """The registered stem kind's planner (generator/pieces/stems/); none: the pixels."""
    stem = STEMS[spec.stem.kind]
    if stem.plan is None:
        return shape
    c.where = "stem"
    return stem.plan(spec, c, shape)


# ------------------------------------------------------------------ groups


def plan_plain_group(spec, c, shape, group):
    """One kernel_size x kernel_size convolution (no padding, ReLU), then a 2x2/2 max pool
    when the group has one."""
    k = group.kernel_size
    shape = conv(c, shape, group.n_filters, k, what=f"the group's {k}x{k} convolution")
    return pool(c, shape, 2, 2, "the group's 2x2 max pool") if group.pool else shape


def plan_vgg_group(spec, c, shape, group):
    for _ in range(group.n_layers):
        shape = conv(c, shape, group.n_filters, 3, same=True)
    c.pool_input = shape  # what Fast R-CNN's RoI pooling reads instead (drop_last_pool)
    return pool(c, shape, 2, 2, "the group's 2x2 max pool")


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


def plan_basic_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    f = group.n_filters
    for index in range(group.n_blocks):
        strides = group.strides if index == 0 else 1
        if index == 0 and (strides != 1 or shape[2] != f):
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


def plan_preact_bottleneck_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    f, n = group.n_filters, group.n_blocks
    for index in range(1, n + 1):
        strides = group.strides if index == n else 1
        preact = bn(c, shape)
        if index == 1:
            short = conv(c, preact, 4 * f, 1, strides)  # feeds the add: always biased
        else:
            short = pool(c, shape, 1, strides, "the shortcut's 1x1 max pool")
        x = bn(c, conv(c, preact, f, 1, bias=bias))
        x = bn(c, conv(c, pad(x, 1), f, 3, strides, bias=bias))
        x = conv(c, x, 4 * f, 1)
        assert x == short, (x, short)
        shape = x
    return shape


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


def plan_fire_group(spec, c, shape, group):
    """Fire modules (biased convs, each then ReLU): 1x1 squeeze to s -> 1x1 and 3x3 expands
    to 4s each, concatenated (8s). A bypass adds the input back: as it is where the widths
    match (simple, complex), through a 1x1 conv -> ReLU where they do not (complex)."""
    for s in group.n_filters:
        squeeze = conv(c, shape, s, 1)
        conv(c, squeeze, 4 * s, 1)
        conv(c, squeeze, 4 * s, 3, same=True)
        if spec.learner.bypass == "complex" and shape[2] != 8 * s:
            conv(c, shape, 8 * s, 1)
        shape = (shape[0], shape[1], 8 * s)
    return shape


def plan_fire_pool(spec, c, shape):
    """SqueezeNet's delayed downsampling between groups: a ceil-mode 3x3/2 max pool."""
    return ceil_pool(c, shape, "the 3x3/2 max pool after the group")


# ------------------------------------------------------------------ Inception


def same_pool(c: Counter, shape: Shape, strides: int, what: str) -> Shape:
    """A pool with padding "same": H, W / strides, rounded up."""
    c.check_stride(shape, strides, what)
    return (math.ceil(shape[0] / strides), math.ceil(shape[1] / strides), shape[2])


def conv_bn_unit(
    c: Counter, shape: Shape, filters: int, kh: int, kw=None, strides=1, same=True, bias=False
):
    """keras.applications' conv2d_bn: a kh x kw Conv2D (without bias unless the spec's
    bias_before_bn) -> BN without scale (beta, moving mean and variance) -> ReLU."""
    kw = kh if kw is None else kw
    h, w, cin = shape
    what = f"a {kh}x{kw}/{strides} convolution"
    c.check_stride(shape, strides, what)
    if same:
        h, w = math.ceil(h / strides), math.ceil(w / strides)
    else:
        h, w = (h - kh) // strides + 1, (w - kw) // strides + 1
    c.add(kh * kw * cin * filters + (filters if bias else 0))
    c.add_macs(h * w * kh * kw * cin * filters)
    c.add(3 * filters, filters)
    return c.check((h, w, filters), what)


def conv_bn_units(spec: Spec, c: Counter) -> Callable:
    """conv_bn_unit(c, ...) with the spec's bias convention: unit(shape, filters, kh, ...)."""
    return partial(conv_bn_unit, c, bias=spec.conventions.bias_before_bn)


def plan_inception_v1_stem(spec: Spec, c: Counter, shape: Shape) -> Shape:
    """7x7/2 conv (64) -> 3x3/2 max pool -> 1x1 conv (64) -> 3x3 conv (192) -> 3x3/2 max
    pool; biased convolutions, padding "same" throughout (224 -> 28)."""
    shape = conv(c, shape, 64, 7, 2, same=True, what="the stem's 7x7/2 conv")
    shape = same_pool(c, shape, 2, "the stem's first 3x3/2 max pool")
    shape = conv(c, shape, 64, 1)
    shape = conv(c, shape, 192, 3, same=True)
    return same_pool(c, shape, 2, "the stem's second 3x3/2 max pool")


def plan_inception_v3_stem(spec: Spec, c: Counter, shape: Shape) -> Shape:
    """keras.applications' InceptionV3 stem (299 -> 35): 3x3/2 (32, valid) -> 3x3 (32,
    valid) -> 3x3 (64) -> 3x3/2 max pool -> 1x1 (80) -> 3x3 (192, valid) -> 3x3/2 max pool."""
    unit = conv_bn_units(spec, c)
    shape = unit(shape, 32, 3, strides=2, same=False)
    shape = unit(shape, 32, 3, same=False)
    shape = unit(shape, 64, 3)
    shape = pool(c, shape, 3, 2, "the stem's first 3x3/2 max pool")
    shape = unit(shape, 80, 1, same=False)
    shape = unit(shape, 192, 3, same=False)
    return pool(c, shape, 3, 2, "the stem's second 3x3/2 max pool")


def plan_inception_v1_group(spec, c, shape, group):
    """Inception modules (biased convs, ReLU, no BN): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 |
    3x3/1 max pool -> 1x1, concatenated; H and W kept."""
    for number, b in enumerate(group.blocks, start=1):
        conv(c, shape, b.n_1x1, 1)
        conv(c, conv(c, shape, b.n_3x3_reduce, 1), b.n_3x3, 3, same=True)
        conv(c, conv(c, shape, b.n_5x5_reduce, 1), b.n_5x5, 5, same=True)
        conv(c, shape, b.n_pool_proj, 1)
        shape = (shape[0], shape[1], b.n_1x1 + b.n_3x3 + b.n_5x5 + b.n_pool_proj)
        if number in group.aux_after:
            c.taps.append(shape)
    return shape


def plan_inception_v1_pool(spec, c, shape):
    """GoogLeNet's max pool between groups: 3x3/2, padding "same"."""
    return same_pool(c, shape, 2, "the 3x3/2 max pool after the group")


def plan_block_35x35(unit, shape, b):
    unit(shape, b.n_1x1, 1)
    unit(unit(shape, b.n_5x5_reduce, 1), b.n_5x5, 5)
    unit(unit(unit(shape, b.n_3x3dbl_reduce, 1), b.n_3x3dbl, 3), b.n_3x3dbl, 3)
    unit(shape, b.n_pool_proj, 1)
    return (shape[0], shape[1], b.n_1x1 + b.n_5x5 + b.n_3x3dbl + b.n_pool_proj)


def plan_block_17x17(unit, shape, b):
    unit(shape, b.n_1x1, 1)
    unit(unit(unit(shape, b.n_7x7_reduce, 1), b.n_7x7_reduce, 1, 7), b.n_7x7, 7, 1)
    x = unit(shape, b.n_7x7dbl_reduce, 1)
    for kh, kw in ((7, 1), (1, 7), (7, 1)):
        x = unit(x, b.n_7x7dbl_reduce, kh, kw)
    unit(x, b.n_7x7dbl, 1, 7)
    unit(shape, b.n_pool_proj, 1)
    return (shape[0], shape[1], b.n_1x1 + b.n_7x7 + b.n_7x7dbl + b.n_pool_proj)


def plan_block_8x8(unit, shape, b):
    unit(shape, b.n_1x1, 1)
    x = unit(shape, b.n_3x3_reduce, 1)
    unit(x, b.n_3x3, 1, 3)
    unit(x, b.n_3x3, 3, 1)
    x = unit(unit(shape, b.n_3x3dbl_reduce, 1), b.n_3x3dbl, 3)
    unit(x, b.n_3x3dbl, 1, 3)
    unit(x, b.n_3x3dbl, 3, 1)
    unit(shape, b.n_pool_proj, 1)
    out = b.n_1x1 + 2 * b.n_3x3 + 2 * b.n_3x3dbl + b.n_pool_proj
    return (shape[0], shape[1], out)


def plan_reduction_35x35(unit, c, shape, r):
    x = unit(shape, r.n_3x3, 3, strides=2, same=False)
    y = unit(unit(shape, r.n_3x3dbl_reduce, 1), r.n_3x3dbl, 3)
    unit(y, r.n_3x3dbl, 3, strides=2, same=False)
    pooled = pool(c, shape, 3, 2, "the grid reduction's 3x3/2 max pool")
    return (x[0], x[1], r.n_3x3 + r.n_3x3dbl + pooled[2])


def plan_reduction_17x17(unit, c, shape, r):
    x = unit(unit(shape, r.n_3x3_reduce, 1), r.n_3x3, 3, strides=2, same=False)
    y = unit(shape, r.n_7x7x3_reduce, 1)
    y = unit(unit(y, r.n_7x7x3_reduce, 1, 7), r.n_7x7x3_reduce, 7, 1)
    unit(y, r.n_7x7x3, 3, strides=2, same=False)
    pooled = pool(c, shape, 3, 2, "the grid reduction's 3x3/2 max pool")
    return (x[0], x[1], r.n_3x3 + r.n_7x7x3 + pooled[2])


INCEPTION_V3_BLOCKS = {"35x35": plan_block_35x35, "17x17": plan_block_17x17, "8x8": plan_block_8x8}
INCEPTION_V3_REDUCTIONS = {"35x35": plan_reduction_35x35, "17x17": plan_reduction_17x17}


def plan_inception_v3_group(spec, c, shape, group):
    """The blocks of one grid size (H, W kept), then the grid reduction, if any (H, W / 2).
    Every convolution is conv2d_bn: conv, BN without scale, ReLU."""
    unit = conv_bn_units(spec, c)
    for number, b in enumerate(group.blocks, start=1):
        shape = INCEPTION_V3_BLOCKS[group.grid](unit, shape, b)
        if number in group.aux_after:
            c.taps.append(shape)
    if group.reduction is not None:
        shape = INCEPTION_V3_REDUCTIONS[group.grid](unit, c, shape, group.reduction)
    return shape


def plan_aux_inception_v1(spec: Spec, c: Counter, shape: Shape) -> None:
    """5x5/3 average pool -> 1x1 conv (128) -> flatten -> dense 1024 -> dropout -> dense."""
    shape = conv(c, pool(c, shape, 5, 3, "the auxiliary classifier's 5x5/3 average pool"), 128, 1)
    dense(c, dense(c, shape[0] * shape[1] * shape[2], 1024), spec.n_classes)


def plan_aux_inception_v3(spec: Spec, c: Counter, shape: Shape) -> None:
    """5x5/3 average pool -> 1x1 conv (128) -> 5x5 conv (768, valid) -> flatten -> dense;
    each conv then BN (no scale) -> ReLU."""
    unit = conv_bn_units(spec, c)
    shape = pool(c, shape, 5, 3, "the auxiliary classifier's 5x5/3 average pool")
    shape = unit(unit(shape, 128, 1), 768, 5, same=False)
    dense(c, shape[0] * shape[1] * shape[2], spec.n_classes)


# ------------------------------------------------------------------ stage layer names
# Each stage's layer-name prefix in the built model and the layer that leaves its output
# (see Stage), as the templates name them. A group's: group_layers(spec, index, shape), the
# group at learner.groups[index] and the maps it receives; a transition's:
# transition_layers(spec, index), the one before learner.groups[index].


def plain_layers(spec, index, shape):
    name = f"block{index + 1}"
    return name, f"{name}_pool" if spec.learner.groups[index].pool else f"{name}_conv"


def vgg_layers(spec, index, shape):
    return f"block{index + 1}", f"block{index + 1}_pool"


def residual_layers(spec, index, shape):
    """conv2 ... (keras.applications' ResNet): the last block's output, conv2_block3_out."""
    return f"conv{index + 2}", f"conv{index + 2}_block{spec.learner.groups[index].n_blocks}_out"


def dense_layers(spec, index, shape):
    name = f"conv{index + 2}"
    return name, f"{name}_block{spec.learner.groups[index].n_blocks}_concat"


def first_fire(spec, index) -> int:
    """The number of learner.groups[index]'s first fire module (fire2 is the first)."""
    return 2 + sum(group.n_blocks for group in spec.learner.groups[:index])


def fire_layers(spec, index, shape):
    """fire2..fire4: the last module's sum when a bypass adds one there, else its concat."""
    widths = spec.learner.groups[index].n_filters
    first = first_fire(spec, index)
    last = first + len(widths) - 1
    channels = 8 * widths[-2] if len(widths) > 1 else shape[2]  # the last module's input
    bypass = spec.learner.bypass
    adds = bypass == "complex" or (bypass == "simple" and channels == 8 * widths[-1])
    return span(f"fire{first}", f"fire{last}"), f"fire{last}_{'add' if adds else 'concat'}"


def inception_v1_layers(spec, index, shape):
    name = f"inception_{index + 3}"
    letter = "abcdefghijklmnopqrstuvwxyz"[len(spec.learner.groups[index].blocks) - 1]
    return name, f"{name}{letter}_output"


def first_mixed(spec, index) -> int:
    """The number of learner.groups[index]'s first Inception v3 block (mixed0 ...): blocks
    and grid reductions are numbered across the groups."""
    groups = spec.learner.groups[:index]
    return sum(len(group.blocks) + (group.reduction is not None) for group in groups)


def inception_v3_layers(spec, index, shape):
    group = spec.learner.groups[index]
    first = first_mixed(spec, index)
    last = first + len(group.blocks) + (group.reduction is not None) - 1
    return span(f"mixed{first}", f"mixed{last}"), f"mixed{last}"


def dense_transition_layers(spec, index):
    return f"pool{index + 1}", f"pool{index + 1}_pool"


def fire_pool_layers(spec, index):
    name = f"pool{first_fire(spec, index) - 1}"  # after the module before it (pool4: fire4)
    return name, name


def inception_v1_pool_layers(spec, index):
    return f"pool{index + 2}", f"pool{index + 2}"


# Layer names, as regular expressions matched in full. Keras wants every layer name once and
# says so only when the model is built; the plan refuses a head of classifier.heads named
# like a layer the rest of the model writes. Each piece lists the names it writes (its
# f-strings, with \d+ for a number and \w+ for a suffix); tests/test_heads.py builds every
# classifier preset and holds each of its layer names to its plan's patterns.
RESIDUAL_LAYER_NAMES = (r"conv\d+_block\d+_\w+",)  # conv2_block1_1_conv, ..._se_squeeze
# keras.applications' automatic names in Inception v3 (the emitted conv_bn unit counts them).
CONV_BN_LAYER_NAMES = (
    r"(conv2d|batch_normalization|activation)(_\d+)?",
    r"(max|average)_pooling2d(_\d+)?",
)
INPUT_LAYER_NAMES = (r"input_layer(_\d+)?",)  # keras.Input's automatic name
PRE_STEM_LAYER_NAMES = (r"pre_stem_\w+",)


# ------------------------------------------------------------------ the whole network


@dataclass
class Plan:
    spec: Spec
    block: BlockType | None  # the backbone's block type (None: no learner, the autoencoder)
    stages: list[Stage] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    # The autoencoder's latent maps (H, W, C), what its decoder takes.
    latent_shape: tuple = ()
    feature_stride: int = 0  # fast_rcnn: image pixels per cell of the maps RoI pooling reads
    total_macs: int = 0  # multiply-accumulates per sample of the model's input

    @property
    def architecture(self):
        """The registered architecture (generator/pieces/architectures/)."""
        return ARCHITECTURES[self.spec.architecture]

    @property
    def templates(self) -> list[str]:
        """The piece templates the emitted file is made of, in reading order: the helpers
        the pieces call, the pre-stem, the backbone's pieces, then the architecture's."""
        return [name for name, _ in self.pieces]

    @property
    def pieces(self) -> list[tuple[str, BlockType | None]]:
        """(template, scope) in reading order. The scope is None, or where the learner
        mixes block types, the block type whose group and block pieces the template
        renders (their functions then carry its tag: basic_group, bottleneck_group)."""
        own = [(name, None) for name in self.architecture.templates(self)]
        if not self.architecture.has_backbone:
            pre_stem = [("pre_stem.py.j2", None)] if self.spec.pre_stem is not None else []
            return pre_stem + own
        return self.backbone_pieces + own

    @property
    def backbone_pieces(self) -> list[tuple[str, BlockType | None]]:
        """The stem, learner, group and block pieces: a classifier's, a twin's or a
        detector's backbone, after the helper units they call (each once)."""
        stem = STEMS[self.spec.stem.kind]
        helpers = [*stem.helpers, *self.block.helpers]
        pieces = list(dict.fromkeys(helpers))
        if self.spec.pre_stem is not None:
            pieces.append("pre_stem.py.j2")  # detachable preprocessing before the stem
        if stem.template is not None:
            pieces.append(stem.template)
        learner = self.spec.learner
        if not self.mixed:
            return [(name, None) for name in pieces + self.block.pieces(learner)]
        scoped = [(name, None) for name in [*pieces, self.block.templates[0]]]
        options = []
        for tag in dict.fromkeys(self.group_blocks):
            block = BLOCKS[tag]
            scoped += [(name, block) for name in block.templates[1:]]
            options += block.pieces(learner)[len(block.templates) :]
        return scoped + [(name, None) for name in dict.fromkeys(options)]

    @property
    def layer_names(self) -> list[tuple[str, str]]:
        """(piece, pattern) for every layer name a classifier's pieces write: the input, the
        pre-stem, the stem, the learner, the classifier and the auxiliary classifiers
        (regular expressions matched in full, see LAYER_NAMES)."""
        spec = self.spec
        pieces = [("input", INPUT_LAYER_NAMES)]
        if spec.pre_stem is not None:
            pieces.append(("pre-stem", PRE_STEM_LAYER_NAMES))
        pieces.append((f"{spec.stem.kind} stem", STEMS[spec.stem.kind].layer_names))
        for tag in dict.fromkeys(self.group_blocks):
            pieces.append((f"{tag} learner", BLOCKS[tag].layer_names))
        pieces.append(("pooling", POOLING_LAYER_NAMES))
        pieces.append(
            (f"{spec.classifier.kind} classifier", CLASSIFIERS[spec.classifier.kind].layer_names)
        )
        if spec.classifier.aux is not None:
            pieces.append(("auxiliary classifiers", AUX[spec.classifier.aux.kind].layer_names))
        return [(piece, pattern) for piece, patterns in pieces for pattern in patterns]

    @property
    def bottleneck_width(self) -> str:
        """The bottleneck 3x3's width as the block template writes it: "n_filters" for a
        plain ResNet, "n_filters // 16 * 32" for ResNeXt 32x4d (see bottleneck_width)."""
        learner = self.spec.learner
        return width_expression(learner.width_per_group, learner.cardinality)

    @property
    def metaparameters(self) -> dict:
        """The sizes the emitted builder loops over (structure stays in code): the
        backbone's groups and learner-level sizes, then the architecture's own."""
        params: dict = {}
        if self.architecture.has_backbone:
            params["groups"] = self.group_metaparameters
            for arg in self.block.learner_args:
                params[arg] = getattr(self.spec.learner, arg)
        add = self.architecture.metaparameters
        return add(self, params) if add is not None else params

    @property
    def pre_stem_summary(self) -> str:
        """What the pre-stem does, in its layers' order (for its docstring)."""
        p = self.spec.pre_stem
        steps = [
            (p.resizing, "resize to height x width"),
            (p.crop, "random (center at inference) height x width crop"),
            (p.flip, f"random {(p.flip or '').replace('_', ' ')} flip"),
            (p.rotation, "random rotation"),
            (p.zoom, "random zoom"),
            (p.contrast, "random contrast"),
            (p.rescaling, "rescale"),
            (p.normalization, "normalise by mean and std per channel"),
        ]
        text = " -> ".join(text for on, text in steps if on)
        # Wrapped to fit the docstring (4 spaces in, 8 in a class): its first line starts
        # after '    """Pre-stem, in order: '.
        lines = textwrap.wrap(" " * 26 + text, width=80, break_on_hyphens=False)
        return "\n".join([lines[0].lstrip(), *lines[1:]])

    @property
    def heads(self) -> list:
        """The classifier's named heads (classifier.heads), or [] for one `predictions`."""
        return list(getattr(self.spec.classifier, "heads", None) or [])

    @property
    def n_taps(self) -> int:
        """How many auxiliary classifiers include_aux adds (the groups' aux_after)."""
        return sum(len(getattr(group, "aux_after", ())) for group in self.spec.learner.groups)

    @property
    def group_blocks(self) -> list[str]:
        """Each learner group's block type: its own `block`, else the learner's."""
        learner = self.spec.learner
        return [getattr(group, "block", None) or learner.block for group in learner.groups]

    @property
    def mixed(self) -> bool:
        """Whether the learner's groups mix block types (basic and bottleneck groups)."""
        return self.block is not None and len(set(self.group_blocks)) > 1

    @property
    def group_metaparameters(self) -> list[dict]:
        """The groups' sizes; each names its block type only where the learner mixes them."""
        groups = []
        for group, tag in zip(self.spec.learner.groups, self.group_blocks, strict=True):
            params = group.model_dump(exclude={"block"})
            groups.append({"block": tag, **params} if self.mixed else params)
        return groups

    @property
    def classifier_args(self) -> list[str]:
        """Metaparameters the classifier takes (besides n_classes and the activation)."""
        return list(CLASSIFIERS[self.spec.classifier.kind].args)


def classifier_metaparameters(plan: Plan, params: dict) -> dict:
    """The classifier's sizes (its kind's args) and heads, after the backbone's: a
    classifier's and a detector's region head's."""
    for arg in plan.classifier_args:
        value = getattr(plan.spec.classifier, arg)
        params[arg] = list(value) if isinstance(value, tuple | list) else value
    if plan.heads:
        params["heads"] = [
            {"name": head.name, "n_classes": head.n_classes, "activation": head.activation}
            for head in plan.heads
        ]
    return params


def _stage(
    plan: Plan, c: Counter, name: str, kind: str, detail: str, shape, before, prefix="", layer=""
) -> Stage:
    """Record a stage: its counts are what c counted since the mark `before`."""
    total, trainable, macs = (now - then for now, then in zip(c.mark(), before, strict=True))
    stage = Stage(name, kind, detail, tuple(shape), total, trainable, c.where, prefix, layer, macs)
    plan.stages.append(stage)
    return stage


def _part(c: Counter, shape, before, prefix: str, layer: str, kind: str = "part") -> Stage:
    """One output of a stage with several (a head, a detector's class scores ...)."""
    total, trainable, macs = (now - then for now, then in zip(c.mark(), before, strict=True))
    return Stage(prefix, kind, "", tuple(shape), total, trainable, c.where, prefix, layer, macs)


def _merge(plan: Plan, c: Counter, name: str, kind: str, detail: str, shape, parts) -> Stage:
    """A stage made of its parts: their counts summed, its output_shape the diagram's."""
    stage = Stage(name, kind, detail, tuple(shape), 0, 0, c.where, parts=list(parts))
    stage.params = sum(part.params for part in parts)
    stage.trainable = sum(part.trainable for part in parts)
    stage.macs = sum(part.macs for part in parts)
    plan.stages.append(stage)
    return stage


def span(first: str, last: str) -> str:
    """A stage's layer-name prefix when it spans several named blocks: "mixed0..mixed2"."""
    return first if first == last else f"{first}..{last}"


def check_size(plan: Plan, source: str) -> None:
    """Refuse a network over MAX_PARAMS parameters, naming the total and its largest stage."""
    if plan.total_params <= MAX_PARAMS:
        return
    big = max(plan.stages, key=lambda stage: stage.params)
    raise SpecError(
        source,
        "",
        f"the network would have {plan.total_params:,} parameters, over the limit of "
        f"{MAX_PARAMS:,} (the largest part: {big.path or big.name}, {big.params:,}); "
        "check the sizes, or pass --allow-large to generate it anyway",
    )


def plan_backbone(plan: Plan, c: Counter, shape: Shape | None = None, scope: str = "") -> Shape:
    """Stem and learner groups (and the final BN-ReLU of pre-activation learners): the
    backbone of a classifier, a Siamese twin or a detector, on spec.input_shape unless
    shape says otherwise (R-CNN's warped regions). Returns the maps it leaves. scope is
    the path of the sub-model that holds the backbone's layers ("twin/", "rpn/")."""
    spec, block = plan.spec, plan.block
    if shape is None:
        shape = tuple(spec.input_shape)

    mark = c.mark()
    if spec.stem.kind != "none":
        shape = plan_stem(spec, c, shape)
        prefix, layer = STEMS[spec.stem.kind].layers
        _stage(plan, c, "stem", "stem", spec.stem.kind, shape, mark, prefix, scope + layer)

    for index, group in enumerate(spec.learner.groups):
        if index and block.plan_between:  # between groups: after groups[index - 1]
            mark = c.mark()
            shape = block.plan_between(spec, c, shape)  # c.where: the group it follows
            name = f"{block.between_name}{index - 1 + block.first_index}"
            prefix, layer = block.between_layers(spec, index)
            detail = "compress, H, W / 2"
            _stage(plan, c, name, "transition", detail, shape, mark, prefix, scope + layer)
        mark = c.mark()
        c.where = f"learner.groups[{index}]"
        tag = plan.group_blocks[index]  # the group's own block type, or the learner's
        own = BLOCKS[tag]
        prefix, layer = own.group_layers(spec, index, shape)
        shape = own.plan_group(spec, c, shape, group)
        name = f"{block.group_name}{index + block.first_index}"
        size = getattr(group, "n_blocks", getattr(group, "n_layers", 1))
        _stage(plan, c, name, "group", f"{tag} x{size}", shape, mark, prefix, scope + layer)

    if block.plan_tail:  # after the last group, kept with include_top=False
        mark = c.mark()
        c.where = "learner"
        shape = block.plan_tail(spec, c, shape)
        prefix, layer = block.tail_layers
        _stage(plan, c, block.tail_name, "norm", "BN-ReLU", shape, mark, prefix, scope + layer)
    return shape


def plan_dense_head(spec: Spec, c: Counter, units: int) -> tuple[int, str]:
    """The flatten classifier's dense layers (fc1, fc2 ...): units in -> units out, and
    the name of the layer that leaves them (fcN, fcN_dropout, or flatten without any)."""
    layer = "flatten"
    for number, n in enumerate(spec.classifier.dense_units, start=1):
        units = dense(c, units, n)
        layer = f"fc{number}_dropout" if spec.classifier.dropout else f"fc{number}"
    return units, layer


def check_head_names(plan: Plan, source: str) -> None:
    """Refuse a head named like a layer the rest of the model writes (Keras would refuse
    the duplicate name only when the model is built)."""
    for index, head in enumerate(plan.heads):
        for piece, pattern in plan.layer_names:
            if re.fullmatch(pattern, head.name):
                raise SpecError(
                    source,
                    f"classifier.heads[{index}].name",
                    f"{head.name!r} is reserved for the model's own layers (the {piece} "
                    f"names its layers {pattern}; Keras wants each name once); pick another",
                )


def plan_classifier(spec: Spec, c: Counter) -> Plan:
    """stem -> learner -> classifier (and Inception's auxiliary classifiers)."""
    block = BLOCKS[spec.learner.block]
    plan = Plan(spec, block)
    shape = plan_backbone(plan, c)

    mark = c.mark()
    c.where = "classifier"
    kind = CLASSIFIERS[spec.classifier.kind]
    first = kind.first_layer
    units, layer = kind.plan(spec, c, shape)  # the features its head reads (fc1, fc2 ...)
    if kind.plan_head is not None:  # its own head (a 1x1 conv to n_classes maps ...)
        kind.plan_head(spec, c, shape)
        prefix, shape = span(first, "predictions"), (spec.n_classes,)
        _stage(plan, c, "classifier", "classifier", kind.kind, shape, mark, prefix, "predictions")
    elif plan.heads:  # one dense layer per head, all on the same pooled (or dense) features
        check_head_names(plan, c.source)
        parts = [_part(c, (units,), mark, span(first, layer), layer, "classifier")]
        for head in plan.heads:
            mark = c.mark()
            dense(c, units, head.n_classes)
            parts.append(_part(c, (head.n_classes,), mark, head.name, head.name, "head"))
        outputs = tuple(head.n_classes for head in plan.heads)
        _merge(plan, c, "classifier", "classifier", kind.kind, outputs, parts)
    else:
        dense(c, units, spec.n_classes)
        prefix, shape = span(first, "predictions"), (spec.n_classes,)
        _stage(plan, c, "classifier", "classifier", kind.kind, shape, mark, prefix, "predictions")

    aux = spec.classifier.aux
    if aux is not None and aux.include:  # the default build has the auxiliary classifiers
        for index, tap in enumerate(c.taps, start=1):
            mark = c.mark()
            c.where = "classifier.aux"
            AUX[aux.kind].plan(spec, c, tap)
            name = f"aux{index}"
            shape = (spec.n_classes,)
            _stage(plan, c, name, "classifier", aux.kind, shape, mark, name, f"{name}_predictions")
    return plan


def plan_region_head(
    spec: Spec, plan: Plan, c: Counter, shape: Shape, n_scores: int, scope: str = ""
) -> None:
    """A detector's per-region head: flatten -> fc layers -> n_scores class scores and
    4 * n_classes class-specific box deltas, both from the last fc layer. Its rows: the
    fc layers' features, the scores and the deltas, each (n_regions, ...). Counted once
    per region."""
    regions = spec.detector.n_regions
    c.where, c.repeat = "classifier", regions
    mark = c.mark()
    units, layer = plan_dense_head(spec, c, shape[0] * shape[1] * shape[2])
    parts = [_part(c, (regions, units), mark, span("flatten", layer), scope + layer, "fc")]
    scores = "svm" if spec.architecture == "rcnn" else "cls_score"
    for name, width in ((scores, n_scores), ("bbox_pred", 4 * spec.n_classes)):
        mark = c.mark()
        dense(c, units, width)
        parts.append(_part(c, (regions, width), mark, name, scope + name, "head"))
    c.repeat = 1
    _merge(plan, c, "head", "classifier", "region head", (regions, n_scores), parts)


def plan_rcnn(spec: Spec, c: Counter) -> Plan:
    """R-CNN: every region warped to crop_size x crop_size -> backbone -> fc layers ->
    n_classes linear SVMs and 4 * n_classes box deltas. The backbone's stages are per
    region (its MACs once per region)."""
    plan = Plan(spec, BLOCKS[spec.learner.block])
    crop = spec.detector.crop_size
    c.where, c.repeat = "detector.crop_size", spec.detector.n_regions
    shape = plan_backbone(plan, c, (crop, crop, spec.input_shape[2]))
    plan_region_head(spec, plan, c, shape, spec.n_classes)
    return plan


def drop_last_pool(plan: Plan, c: Counter) -> Shape:
    """detector.drop_last_pool: the last vgg group's 2x2/2 max pool is not built, so the
    group (its stage, as the diagram draws it) leaves its conv maps, unpooled."""
    last = plan.stages[-1]
    last.output_shape = tuple(c.pool_input)
    last.detail += ", no max pool"
    group = plan.spec.learner.groups[-1]
    last.layer = last.layer.removesuffix("_pool") + f"_conv{group.n_layers}"
    return c.pool_input


def plan_shared_maps(spec: Spec, c: Counter, scope: str = "") -> tuple[Plan, tuple]:
    """The backbone run once over the whole image (Fast and Faster R-CNN): its plan and
    the shape of the maps the regions are pooled from (the last max pool dropped with
    drop_last_pool), with the plan's feature_stride set."""
    plan = Plan(spec, BLOCKS[spec.learner.block])
    shape = plan_backbone(plan, c, scope=scope)
    if spec.detector.drop_last_pool:
        shape = drop_last_pool(plan, c)
    plan.feature_stride = stride = feature_stride(spec, spec.detector.drop_last_pool)
    height = spec.input_shape[0]
    if round(height / shape[0]) != stride:  # the emitted builder's check, in the plan
        raise SpecError(
            c.source,
            "input_shape",
            f"the backbone's maps are {shape[0]} cells high for {height} pixels, not 1 per "
            f"{stride} pixels (its feature stride, which maps boxes onto them): the input is "
            f"too small or too odd for its stride schedule; try a multiple of {stride}",
        )
    return plan, shape


def plan_fast_rcnn(spec: Spec, c: Counter) -> Plan:
    """Fast R-CNN: backbone on the whole image (its last max pool dropped with
    drop_last_pool) -> RoI max pooling to pool_size x pool_size per region -> fc layers ->
    softmax over n_classes + 1 and 4 * n_classes box deltas."""
    plan, shape = plan_shared_maps(spec, c)
    pool = spec.detector.pool_size
    plan_region_head(spec, plan, c, (pool, pool, shape[2]), spec.n_classes + 1)
    return plan


def plan_faster_rcnn(spec: Spec, c: Counter) -> Plan:
    """Faster R-CNN: backbone on the whole image (last max pool dropped with drop_last_pool)
    -> the RPN (3x3 conv, then 1x1 convs to k objectness logits and 4k box deltas, k anchors
    per cell) -> proposals -> RoI max pooling -> fc layers -> softmax over n_classes + 1 and
    4 * n_classes box deltas (Fast R-CNN's head). The backbone and the RPN are the "rpn"
    sub-model of the built model, the head its "head" sub-model (run on the n_regions RoIs
    sampled per image)."""
    plan, shape = plan_shared_maps(spec, c, scope="rpn/")
    detector = spec.detector
    rpn = detector.rpn
    k = len(rpn.anchor_scales) * len(rpn.anchor_ratios)
    c.where = "detector.rpn"
    mark = c.mark()
    maps = conv(c, shape, rpn.channels, 3, same=True)
    parts = [_part(c, maps, mark, "rpn_conv", "rpn/rpn_conv", "rpn")]
    anchors = shape[0] * shape[1] * k
    for name, width, layer, out in (
        ("rpn_cls", k, "rpn_objectness", (anchors,)),
        ("rpn_bbox", 4 * k, "rpn_deltas", (anchors, 4)),
    ):
        mark = c.mark()
        conv(c, maps, width, 1)
        parts.append(_part(c, out, mark, span(name, layer), f"rpn/{layer}", "rpn"))
    _merge(plan, c, "rpn", "rpn", f"{k} anchors per cell", (anchors,), parts)
    pool = detector.pool_size
    plan_region_head(spec, plan, c, (pool, pool, shape[2]), spec.n_classes + 1, "head/")
    return plan


def feature_stride(spec: Spec, drop_last_pool: bool) -> int:
    """How many image pixels one cell of the backbone's last maps spans (16 for VGG16's
    conv5_3): the backbone walked on the largest image a spec may ask for (MAX_IMAGE_SIDE:
    every spec that plans plans at it too), its side / the maps' side."""
    side = MAX_IMAGE_SIDE
    c = Counter("")
    shape = plan_backbone(Plan(spec, BLOCKS[spec.learner.block]), c, (side, side, 3))
    if drop_last_pool:
        shape = c.pool_input
    return round(side / shape[0])


def plan_siamese(spec: Spec, c: Counter) -> Plan:
    """One twin (stem -> learner -> embedding) applied to both images, so its weights count
    once; the L1 distance of the two embeddings (no weights) -> one sigmoid unit. The twin
    is the built model's "twin" sub-model; its MACs count twice (once per image)."""
    plan = Plan(spec, BLOCKS[spec.learner.block])
    c.repeat = 2
    shape = plan_backbone(plan, c, scope="twin/")

    mark = c.mark()
    c.where = "twin"
    twin = spec.twin
    pooled = "flatten" if twin.pooling == "flatten" else "avg_pool"
    units = shape[0] * shape[1] * shape[2] if twin.pooling == "flatten" else shape[2]
    layer = pooled
    if twin.embedding_units is not None:  # else the pooled features are the embedding
        units, layer = dense(c, units, twin.embedding_units), "embedding"
    prefix = span(pooled, layer)
    _stage(plan, c, "embedding", "embedding", twin.pooling, (units,), mark, prefix, f"twin/{layer}")

    c.repeat = 1
    mark = c.mark()
    dense(c, units, 1)
    detail, prefix = f"{twin.distance} distance", span("l1_distance", "similarity")
    _stage(plan, c, "similarity", "head", detail, (1,), mark, prefix, "similarity")
    return plan


def plan_autoencoder(spec: Spec, c: Counter) -> Plan:
    """Encoder: a 3x3/2 convolution per entry of filters (H, W / 2 each). Decoder: the
    mirror, 3x3/2 transposed convolutions in reverse order (H, W * 2 each), then a 3x3
    convolution back to the input's channels. The output has the input's shape. The
    encoder and the decoder are the built model's "encoder" and "decoder" sub-models."""
    plan = Plan(spec, None)
    filters = spec.autoencoder.filters
    height, width, channels = spec.input_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise SpecError(
            c.source,
            "input_shape",
            f"{height}x{width} cannot be halved {len(filters)} times (one per entry of "
            f"autoencoder.filters) and restored: H and W must be multiples of {factor}",
        )
    shape: Shape = tuple(spec.input_shape)
    mark = c.mark()
    c.where = "autoencoder.filters"
    for n_filters in filters:
        shape = conv(c, shape, n_filters, 3, 2, same=True)
    plan.latent_shape = shape
    detail, layer = f"{len(filters)} x conv 3x3/2", f"encoder/encoder_conv{len(filters)}"
    _stage(plan, c, "encoder", "encoder", detail, shape, mark, "encoder", layer)

    mark = c.mark()
    for n_filters in reversed(filters):
        c.add(9 * shape[2] * n_filters + n_filters)  # Conv2DTranspose 3x3/2, padding same
        c.add_macs(shape[0] * shape[1] * 9 * shape[2] * n_filters)  # each input pixel's kernel
        shape = (2 * shape[0], 2 * shape[1], n_filters)
    shape = conv(c, shape, channels, 3, same=True)
    assert shape == tuple(spec.input_shape), (shape, spec.input_shape)
    detail = f"{len(filters)} x transposed conv 3x3/2"
    _stage(plan, c, "decoder", "decoder", detail, shape, mark, "decoder", "decoder/decoder_output")
    return plan


def make_plan(spec: Spec, source: str, allow_large: bool = False) -> Plan:
    c = Counter(source)
    plan = ARCHITECTURES[spec.architecture].plan(spec, c)  # generator/pieces/architectures/
    plan.total_params, plan.trainable_params = c.total, c.trainable
    plan.total_macs = c.macs
    if not allow_large:
        check_size(plan, source)
    return plan
