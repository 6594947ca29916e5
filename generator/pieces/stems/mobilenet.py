"""MobileNet's stems: one full convolution (3x3/2, "same"), BN and an activation. v1's and
v2's ReLU6 at int(n_filters * alpha) filters, v2's rounded to a multiple of 8 (the
learner's width multiplier scales the stem too); v3's at n_filters, with the learner's
nonlinearity."""

from __future__ import annotations

from ...plan import bn
from ...registry import register_stem
from ..blocks.depthwise import scaled
from ..blocks.inverted_residual import make_divisible
from .resnet import plan_stem_conv


def plan_conv_bn(spec, c, shape, filters: int, conv_name: str):
    """kernel_size x kernel_size/strides conv to filters (biased only with bias_before_bn)
    -> BN (-> the activation, which has no weights)."""
    stem = spec.stem
    k, s = stem.kernel_size, stem.strides
    bias = spec.conventions.bias_before_bn
    what = f"the stem's {k}x{k}/{s} {conv_name}"
    return bn(c, plan_stem_conv(c, shape, filters, stem, s, bias, what))


def plan_mobilenet_stem(spec, c, shape):
    """Conv to int(n_filters * alpha) -> BN -> ReLU6 (conv1, conv1_bn, conv1_relu)."""
    filters = scaled(c, spec, spec.stem.n_filters, "the stem's conv1")
    return plan_conv_bn(spec, c, shape, filters, "conv1")


register_stem(
    kind="mobilenet",
    doc=(
        "3x3/2 conv ('same') -> BN -> ReLU6 at int(n_filters * alpha) filters (conv1): "
        "MobileNet's, with the learner's alpha"
    ),
    plan=plan_mobilenet_stem,
    template="stems/mobilenet.py.j2",
    layer_names=(r"conv1(_pad|_bn|_relu)?",),
    layers=("conv1", "conv1_relu"),
    fields={"n_filters": 32, "kernel_size": 3, "strides": 2, "padding": "same"},
    args=("alpha",),
)


def plan_mobilenet_v2_stem(spec, c, shape):
    """Conv to make_divisible(n_filters * alpha), a multiple of 8 -> BN -> ReLU6 (Conv1,
    bn_Conv1, Conv1_relu)."""
    filters = make_divisible(spec.stem.n_filters * spec.learner.alpha)
    return plan_conv_bn(spec, c, shape, filters, "Conv1")


register_stem(
    kind="mobilenet_v2",
    doc=(
        "3x3/2 conv ('same') -> BN -> ReLU6 at make_divisible(n_filters * alpha) filters, "
        "a multiple of 8 (Conv1): MobileNetV2's, with the learner's alpha"
    ),
    plan=plan_mobilenet_v2_stem,
    template="stems/mobilenet_v2.py.j2",
    layer_names=(r"Conv1(_pad|_relu)?", r"bn_Conv1"),
    layers=("Conv1", "Conv1_relu"),
    fields={"n_filters": 32, "kernel_size": 3, "strides": 2, "padding": "same"},
    args=("alpha",),
    helpers=("blocks/make_divisible.py.j2",),
)


def plan_mobilenet_v3_stem(spec, c, shape):
    """Conv to n_filters (alpha leaves it alone) -> BN -> the learner's nonlinearity (conv,
    conv_bn, conv_act)."""
    return plan_conv_bn(spec, c, shape, spec.stem.n_filters, "conv")


register_stem(
    kind="mobilenet_v3",
    doc=(
        "3x3/2 conv ('same') -> BN -> the learner's nonlinearity (hard-swish or ReLU) at "
        "n_filters (conv): MobileNetV3's"
    ),
    plan=plan_mobilenet_v3_stem,
    template="stems/mobilenet_v3.py.j2",
    layer_names=(r"conv(_pad|_bn|_act)?",),
    layers=("conv", "conv_act"),
    fields={"n_filters": 16, "kernel_size": 3, "strides": 2, "padding": "same"},
    args=("nonlinearity",),
)
