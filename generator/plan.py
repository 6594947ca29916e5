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

from .errors import SpecError
from .spec import MAX_IMAGE_SIDE, Spec

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
    stem = spec.stem
    if stem.kind == "none":
        return shape
    c.where = "stem"
    if stem.kind in INCEPTION_STEMS:
        return INCEPTION_STEMS[stem.kind](spec, c, shape)
    if stem.kind == "squeezenet":
        k = stem.kernel_size
        shape = conv(c, shape, stem.n_filters, k, 2, what=f"the stem's {k}x{k}/2 conv1")
        return ceil_pool(c, shape, "the stem's 3x3/2 max pool")
    preact = stem.kind == "resnet_preact"
    # 7x7/2 after 3-pixel zero padding (conv1), then 3x3/2 max pool after 1-pixel padding.
    bias = preact or spec.conventions.bias_before_bn
    shape = conv(c, pad(shape, 3), stem.n_filters, 7, 2, bias=bias, what="the stem's 7x7/2")
    if not preact:
        shape = bn(c, shape)
    return pool(c, pad(shape, 1), 3, 2, "the stem's 3x3/2 max pool")


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


INCEPTION_STEMS = {"inception_v1": plan_inception_v1_stem, "inception_v3": plan_inception_v3_stem}


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


AUX_CLASSIFIERS = {"inception_v1": plan_aux_inception_v1, "inception_v3": plan_aux_inception_v3}


# ------------------------------------------------------------------ stage layer names
# Each stage's layer-name prefix in the built model and the layer that leaves its output
# (see Stage), as the templates name them. A group's: group_layers(spec, index, shape), the
# group at learner.groups[index] and the maps it receives; a transition's:
# transition_layers(spec, index), the one before learner.groups[index].

STEM_LAYERS = {
    "resnet": ("conv1", "pool1_pool"),
    "resnet_preact": ("conv1", "pool1_pool"),
    "densenet": ("conv1", "pool1"),
    "squeezenet": ("conv1", "pool1"),
    "inception_v1": ("conv1..pool2", "pool2_3x3_s2"),
    "inception_v3": ("conv2d..max_pooling2d_1", "max_pooling2d_1"),
}


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


@dataclass(frozen=True)
class BlockType:
    """How a learner block type is planned and rendered.

    `group_name` and `first_index` give keras.applications' group names (conv2..conv5 for
    ResNet, block1..block5 for VGG), so weights copy across by layer name.
    """

    plan_group: Callable
    group_template: str
    block_template: str | None  # None: the group holds the layers itself (VGG)
    group_name: str
    first_index: int
    learner_doc: str
    expansion: int = 1  # output channels = expansion * n_filters
    post_activation: bool = False  # pre-activation nets end with BN-ReLU before pooling
    post_prefix: str = "post_"  # the final BN-ReLU's names: post_bn (ResNet v2), bn (DenseNet)
    post_doc: str = "Ends with BN-ReLU: pre-activation blocks leave their last sum un-normalised."
    # Learner-level metaparameters (spec.learner fields, METAPARAMETERS entries) the learner
    # takes after `groups`, and those of them it hands on to every group.
    learner_args: tuple[str, ...] = ()
    group_args: tuple[str, ...] = ()
    # A block between consecutive groups (DenseNet's transition), planned by
    # plan_transition(spec, c, shape) and named transition_name + the index of the group
    # it follows (pool2 after conv2).
    plan_transition: Callable | None = None
    transition_name: str = ""
    # The learner piece: SqueezeNet's numbers its fire modules across groups (fire2..fire9).
    learner_template: str = "learner.py.j2"
    # Further block pieces after block_template (Inception v3: one per block type).
    more_block_templates: tuple[str, ...] = ()
    # The learner returns (x, taps): the block outputs that feed auxiliary classifiers.
    returns_taps: bool = False
    # The layer names the learner's pieces write (learner, groups, blocks, transitions):
    # regular expressions matched in full (see LAYER_NAMES).
    layer_names: tuple[str, ...] = ()
    # A group's and a transition's layer-name prefix and output layer (see Stage).
    group_layers: Callable = residual_layers
    transition_layers: Callable | None = None


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
STEM_LAYER_NAMES = {
    "none": (),
    "resnet": (r"conv1_(pad|conv|bn|relu)", r"pool1_(pad|pool)"),
    "resnet_preact": (r"conv1_(pad|conv)", r"pool1_(pad|pool)"),
    "densenet": (r"conv1_(pad|conv|bn|relu)", r"pool1(_pad)?"),
    "squeezenet": (r"conv1", r"pool1(_pad)?"),
    "inception_v1": (r"conv1_7x7_s2", r"conv2_3x3(_reduce)?", r"pool[12]_3x3_s2"),
    "inception_v3": CONV_BN_LAYER_NAMES,
}
# The classifier's own names (spec.py refuses them for a head already) and the auxiliary
# classifiers' (aux1_conv ...).
CLASSIFIER_LAYER_NAMES = (
    r"avg_pool|max_pool|flatten|dropout|predictions|fc\d+(_dropout)?|top_(dropout|conv)",
)
AUX_LAYER_NAMES = (r"aux\d+_\w+",)


BLOCK_TYPES: dict[str, BlockType] = {
    "plain": BlockType(
        plan_plain_group,
        "groups/plain.py.j2",
        None,
        "block",
        1,
        "Each group is one convolution (ReLU), usually followed by a 2x2 max pool.",
        layer_names=(r"block\d+_(conv|pool)",),
        group_layers=plain_layers,
    ),
    "vgg": BlockType(
        plan_vgg_group,
        "groups/vgg.py.j2",
        None,
        "block",
        1,
        "Each VGG group stacks 3x3 convolutions and halves H and W.",
        layer_names=(r"block\d+_(conv\d+|pool)",),
        group_layers=vgg_layers,
    ),
    "basic": BlockType(
        plan_basic_group,
        "groups/residual.py.j2",
        "blocks/basic.py.j2",
        "conv",
        2,
        "Each group stacks basic residual blocks (two 3x3 convolutions).",
        layer_names=RESIDUAL_LAYER_NAMES,
    ),
    "bottleneck": BlockType(
        plan_bottleneck_group,
        "groups/residual.py.j2",
        "blocks/bottleneck.py.j2",
        "conv",
        2,
        "Each group stacks bottleneck residual blocks (1x1 -> 3x3 -> 1x1).",
        expansion=4,
        layer_names=RESIDUAL_LAYER_NAMES,
    ),
    "preact_bottleneck": BlockType(
        plan_preact_bottleneck_group,
        "groups/preact.py.j2",
        "blocks/preact_bottleneck.py.j2",
        "conv",
        2,
        "Each group stacks pre-activation bottleneck blocks (BN-ReLU-conv).",
        expansion=4,
        post_activation=True,
        layer_names=(*RESIDUAL_LAYER_NAMES, r"post_(bn|relu)"),
    ),
    "dense": BlockType(
        plan_dense_group,
        "groups/dense.py.j2",
        "blocks/dense.py.j2",
        "conv",
        2,
        "Each group stacks dense blocks: every block concatenates growth_rate new\n"
        "feature maps to its input, so each block sees the maps of all blocks before it.\n"
        "Between groups a transition block compresses the channels and halves H and W.",
        post_activation=True,
        post_prefix="",
        post_doc="Ends with BN-ReLU (bn, relu): the last concatenation is not normalised.",
        learner_args=("growth_rate", "compression"),
        group_args=("growth_rate",),
        plan_transition=plan_dense_transition,
        transition_name="pool",
        layer_names=(*RESIDUAL_LAYER_NAMES, r"pool\d+_(bn|relu|conv|pool)", r"bn|relu"),
        group_layers=dense_layers,
        transition_layers=dense_transition_layers,
    ),
    "fire": BlockType(
        plan_fire_group,
        "groups/fire.py.j2",
        "blocks/fire.py.j2",
        "group",
        1,
        "Each group stacks fire modules (squeeze 1x1 -> expand 1x1 + 3x3); a 3x3/2 max\n"
        "pool between consecutive groups halves H and W (delayed downsampling).",
        plan_transition=plan_fire_pool,
        transition_name="pool_after_group",
        learner_template="learners/fire.py.j2",
        layer_names=(r"fire\d+_\w+", r"pool\d+(_pad)?"),
        group_layers=fire_layers,
        transition_layers=fire_pool_layers,
    ),
    "inception_v1": BlockType(
        plan_inception_v1_group,
        "groups/inception_v1.py.j2",
        "blocks/inception_v1.py.j2",
        "inception_",
        3,
        "Each group stacks inception modules; a 3x3/2 max pool between groups halves H, W.",
        plan_transition=plan_inception_v1_pool,
        transition_name="pool",
        learner_template="learners/inception_v1.py.j2",
        returns_taps=True,
        layer_names=(r"inception_\d+[a-z]_\w+", r"pool\d+"),
        group_layers=inception_v1_layers,
        transition_layers=inception_v1_pool_layers,
    ),
    "inception_v3": BlockType(
        plan_inception_v3_group,
        "groups/inception_v3.py.j2",
        "blocks/inception_35x35.py.j2",
        "grid",
        1,
        "Each group stacks the inception blocks of one grid size, then a grid reduction.",
        learner_template="learners/inception_v3.py.j2",
        more_block_templates=(
            "blocks/inception_17x17.py.j2",
            "blocks/inception_8x8.py.j2",
            "blocks/grid_reduction.py.j2",
        ),
        returns_taps=True,
        layer_names=(r"mixed\d+(_\w+)?", *CONV_BN_LAYER_NAMES),
        group_layers=inception_v3_layers,
    ),
}

STEM_TEMPLATES = {
    "resnet": "stems/resnet.py.j2",
    "resnet_preact": "stems/resnet.py.j2",
    "densenet": "stems/resnet.py.j2",  # the same layers; the max pool is named pool1
    "squeezenet": "stems/squeezenet.py.j2",
    "inception_v1": "stems/inception_v1.py.j2",
    "inception_v3": "stems/inception_v3.py.j2",
}
CLASSIFIER_TEMPLATES = {
    "avg_pool": "classifiers/avg_pool.py.j2",
    "flatten": "classifiers/flatten.py.j2",
    "conv": "classifiers/conv.py.j2",
    "avg_pool_dropout": "classifiers/avg_pool.py.j2",
}
# A detector's pieces after its backbone's: the region head, its region operation (warp or
# RoI pooling), then the region blocks that issue 8's Faster R-CNN reuses (templates/regions/)
# and the architecture's template (its training helpers; the skins import its builder).
REGION_PIECES = [
    "regions/boxes.py.j2",
    "regions/proposals.py.j2",
    "regions/sampling.py.j2",
    "regions/box_loss.py.j2",
]
DETECTOR_TEMPLATES = {
    "rcnn": [
        "regions/head.py.j2",
        "regions/crop.py.j2",
        *REGION_PIECES,
        "regions/svm_loss.py.j2",
        "architectures/rcnn.py.j2",
    ],
    "fast_rcnn": [
        "regions/head.py.j2",
        "regions/roi_pool.py.j2",
        *REGION_PIECES,
        "architectures/fast_rcnn.py.j2",
    ],
    "faster_rcnn": [
        "regions/head.py.j2",
        "regions/roi_pool.py.j2",
        "regions/boxes.py.j2",
        "regions/box_loss.py.j2",
        "regions/anchors.py.j2",
        "regions/nms.py.j2",
        "regions/rpn.py.j2",
        "regions/targets.py.j2",
        "regions/detections.py.j2",
        "architectures/faster_rcnn.py.j2",
    ],
}
AUX_TEMPLATES = {
    "inception_v1": "classifiers/aux_inception_v1.py.j2",
    "inception_v3": "classifiers/aux_inception_v3.py.j2",
}


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
    def templates(self) -> list[str]:
        """The piece templates the emitted file is made of, in reading order."""
        architecture = self.spec.architecture
        if architecture == "autoencoder":
            pieces = ["blocks/autoencoder.py.j2", "architectures/autoencoder.py.j2"]
            return ["pre_stem.py.j2", *pieces] if self.spec.pre_stem is not None else pieces
        pieces = self.backbone_templates
        if architecture == "siamese":
            return [*pieces, "blocks/siamese.py.j2", "architectures/siamese.py.j2"]
        if architecture in DETECTOR_TEMPLATES:
            return pieces + DETECTOR_TEMPLATES[architecture]
        pieces.append(CLASSIFIER_TEMPLATES[self.spec.classifier.kind])
        if self.spec.classifier.aux is not None:
            pieces.append(AUX_TEMPLATES[self.spec.classifier.aux.kind])
        return pieces

    @property
    def backbone_templates(self) -> list[str]:
        """The stem, learner, group and block pieces: a classifier's, a twin's or a
        detector's backbone."""
        pieces = [STEM_TEMPLATES[self.spec.stem.kind]] if self.spec.stem.kind != "none" else []
        if self.spec.pre_stem is not None:
            pieces.insert(0, "pre_stem.py.j2")  # detachable preprocessing before the stem
        if "inception_v3" in (self.spec.stem.kind, self.spec.learner.block):
            pieces.insert(0, "blocks/conv_bn.py.j2")  # the unit the stem and blocks call
        pieces += [self.block.learner_template, self.block.group_template]
        if self.block.block_template:
            pieces.append(self.block.block_template)
        pieces += self.block.more_block_templates
        if getattr(self.spec.learner, "se_ratio", None):
            pieces.append("blocks/se.py.j2")  # the SE link the residual blocks call
        return pieces

    @property
    def layer_names(self) -> list[tuple[str, str]]:
        """(piece, pattern) for every layer name a classifier's pieces write: the input, the
        pre-stem, the stem, the learner, the classifier and the auxiliary classifiers
        (regular expressions matched in full, see LAYER_NAMES)."""
        spec = self.spec
        pieces = [("input", INPUT_LAYER_NAMES)]
        if spec.pre_stem is not None:
            pieces.append(("pre-stem", PRE_STEM_LAYER_NAMES))
        pieces.append((f"{spec.stem.kind} stem", STEM_LAYER_NAMES[spec.stem.kind]))
        pieces.append((f"{spec.learner.block} learner", self.block.layer_names))
        pieces.append(("classifier", CLASSIFIER_LAYER_NAMES))
        if spec.classifier.aux is not None:
            pieces.append(("auxiliary classifiers", AUX_LAYER_NAMES))
        return [(piece, pattern) for piece, patterns in pieces for pattern in patterns]

    @property
    def bottleneck_width(self) -> str:
        """The bottleneck 3x3's width as the block template writes it: "n_filters" for a
        plain ResNet, "n_filters // 16 * 32" for ResNeXt 32x4d (see bottleneck_width)."""
        learner = self.spec.learner
        return width_expression(learner.width_per_group, learner.cardinality)

    @property
    def metaparameters(self) -> dict:
        """The sizes the emitted builder loops over (structure stays in code)."""
        if self.spec.architecture == "autoencoder":
            return {"filters": list(self.spec.autoencoder.filters)}
        params = {"groups": [g.model_dump() for g in self.spec.learner.groups]}
        for arg in self.block.learner_args:
            params[arg] = getattr(self.spec.learner, arg)
        if self.spec.architecture == "siamese":
            if self.spec.twin.embedding_units is not None:  # else: no dense layer, no size
                params["embedding_units"] = self.spec.twin.embedding_units
            return params
        for arg in self.classifier_args:
            value = getattr(self.spec.classifier, arg)
            params[arg] = list(value) if isinstance(value, tuple | list) else value
        if self.heads:
            params["heads"] = [
                {"name": head.name, "n_classes": head.n_classes, "activation": head.activation}
                for head in self.heads
            ]
        if self.spec.architecture == "rcnn":
            params["crop_size"] = self.spec.detector.crop_size
        elif self.spec.architecture in ("fast_rcnn", "faster_rcnn"):
            params["pool_size"] = self.spec.detector.pool_size
            params["feature_stride"] = self.feature_stride
        if self.spec.architecture == "faster_rcnn":
            rpn = self.spec.detector.rpn
            params["rpn_channels"] = rpn.channels
            params["anchor_scales"] = list(rpn.anchor_scales)
            params["anchor_ratios"] = list(rpn.anchor_ratios)
        return params

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
    def classifier_args(self) -> list[str]:
        """Metaparameters the classifier takes (besides n_classes and the activation)."""
        kind = self.spec.classifier.kind
        args = {"flatten": ["dense_units", "dropout"], "conv": ["dropout"]}
        return {**args, "avg_pool_dropout": ["dropout"]}.get(kind, [])


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
        prefix, layer = STEM_LAYERS[spec.stem.kind]
        _stage(plan, c, "stem", "stem", spec.stem.kind, shape, mark, prefix, scope + layer)

    for index, group in enumerate(spec.learner.groups):
        if index and block.plan_transition:  # between groups: after groups[index - 1]
            mark = c.mark()
            shape = block.plan_transition(spec, c, shape)  # c.where: the group it follows
            name = f"{block.transition_name}{index - 1 + block.first_index}"
            prefix, layer = block.transition_layers(spec, index)
            detail = "compress, H, W / 2"
            _stage(plan, c, name, "transition", detail, shape, mark, prefix, scope + layer)
        mark = c.mark()
        c.where = f"learner.groups[{index}]"
        prefix, layer = block.group_layers(spec, index, shape)
        shape = block.plan_group(spec, c, shape, group)
        name = f"{block.group_name}{index + block.first_index}"
        size = group.n_layers if spec.learner.block == "vgg" else getattr(group, "n_blocks", 1)
        detail = f"{spec.learner.block} x{size}"
        _stage(plan, c, name, "group", detail, shape, mark, prefix, scope + layer)

    if block.post_activation:
        mark = c.mark()
        c.where = "learner"
        shape = bn(c, shape)
        post = block.post_prefix
        prefix = post.rstrip("_") if post else span("bn", "relu")
        _stage(plan, c, "post", "norm", "BN-ReLU", shape, mark, prefix, f"{scope}{post}relu")
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


# The classifier's first layer, by kind (its stage spans it .. its output layer).
CLASSIFIER_FIRST_LAYER = {
    "avg_pool": "avg_pool",
    "avg_pool_dropout": "avg_pool",
    "flatten": "flatten",
    "conv": "top_dropout",
}


def plan_classifier(spec: Spec, c: Counter) -> Plan:
    """stem -> learner -> classifier (and Inception's auxiliary classifiers)."""
    block = BLOCK_TYPES[spec.learner.block]
    plan = Plan(spec, block)
    shape = plan_backbone(plan, c)

    mark = c.mark()
    c.where = "classifier"
    kind = spec.classifier.kind
    first = CLASSIFIER_FIRST_LAYER[kind]
    units = shape[0] * shape[1] * shape[2] if kind == "flatten" else shape[2]
    units, layer = plan_dense_head(spec, c, units)  # fc1, fc2 ... (flatten only)
    if kind != "flatten":
        layer = "dropout" if kind == "avg_pool_dropout" else "avg_pool"
    if kind == "conv":  # a 1x1 conv to n_classes maps, then their global average
        conv(c, shape, spec.n_classes, 1)
        prefix, shape = span(first, "predictions"), (spec.n_classes,)
        _stage(plan, c, "classifier", "classifier", kind, shape, mark, prefix, "predictions")
    elif plan.heads:  # one dense layer per head, all on the same pooled (or dense) features
        check_head_names(plan, c.source)
        parts = [_part(c, (units,), mark, span(first, layer), layer, "classifier")]
        for head in plan.heads:
            mark = c.mark()
            dense(c, units, head.n_classes)
            parts.append(_part(c, (head.n_classes,), mark, head.name, head.name, "head"))
        outputs = tuple(head.n_classes for head in plan.heads)
        _merge(plan, c, "classifier", "classifier", kind, outputs, parts)
    else:
        dense(c, units, spec.n_classes)
        prefix, shape = span(first, "predictions"), (spec.n_classes,)
        _stage(plan, c, "classifier", "classifier", kind, shape, mark, prefix, "predictions")

    aux = spec.classifier.aux
    if aux is not None and aux.include:  # the default build has the auxiliary classifiers
        for index, tap in enumerate(c.taps, start=1):
            mark = c.mark()
            c.where = "classifier.aux"
            AUX_CLASSIFIERS[aux.kind](spec, c, tap)
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
    plan = Plan(spec, BLOCK_TYPES[spec.learner.block])
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
    plan = Plan(spec, BLOCK_TYPES[spec.learner.block])
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
    shape = plan_backbone(Plan(spec, BLOCK_TYPES[spec.learner.block]), c, (side, side, 3))
    if drop_last_pool:
        shape = c.pool_input
    return round(side / shape[0])


def plan_siamese(spec: Spec, c: Counter) -> Plan:
    """One twin (stem -> learner -> embedding) applied to both images, so its weights count
    once; the L1 distance of the two embeddings (no weights) -> one sigmoid unit. The twin
    is the built model's "twin" sub-model; its MACs count twice (once per image)."""
    plan = Plan(spec, BLOCK_TYPES[spec.learner.block])
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


# spec.architecture -> its planner; make_plan dispatches on it.
ARCHITECTURES: dict[str, Callable[[Spec, Counter], Plan]] = {
    "classifier": plan_classifier,
    "siamese": plan_siamese,
    "autoencoder": plan_autoencoder,
    "rcnn": plan_rcnn,
    "fast_rcnn": plan_fast_rcnn,
    "faster_rcnn": plan_faster_rcnn,
}


def make_plan(spec: Spec, source: str, allow_large: bool = False) -> Plan:
    c = Counter(source)
    plan = ARCHITECTURES[spec.architecture](spec, c)
    plan.total_params, plan.trainable_params = c.total, c.trainable
    plan.total_macs = c.macs
    if not allow_large:
        check_size(plan, source)
    return plan
