"""MobileNet's stems: one full convolution (3x3/2, "same"), BN, ReLU6, at int(n_filters *
alpha) filters (v1) or that width rounded to a multiple of 8 (v2): the learner's width
multiplier scales the stem too."""

from __future__ import annotations

from ...plan import bn
from ...registry import register_stem
from ..blocks.depthwise import scaled
from ..blocks.inverted_residual import make_divisible
from .resnet import plan_stem_conv


def plan_mobilenet_stem(spec, c, shape):
    """kernel_size x kernel_size/strides conv to int(n_filters * alpha) (biased only with
    bias_before_bn) -> BN -> ReLU6 (conv1, conv1_bn, conv1_relu)."""
    stem = spec.stem
    k, s = stem.kernel_size, stem.strides
    filters = scaled(c, spec, stem.n_filters, "the stem's conv1")
    bias = spec.conventions.bias_before_bn
    what = f"the stem's {k}x{k}/{s} conv1"
    return bn(c, plan_stem_conv(c, shape, filters, stem, s, bias, what))


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
    """kernel_size x kernel_size/strides conv to make_divisible(n_filters * alpha), a
    multiple of 8 (biased only with bias_before_bn) -> BN -> ReLU6 (Conv1, bn_Conv1,
    Conv1_relu)."""
    stem = spec.stem
    k, s = stem.kernel_size, stem.strides
    filters = make_divisible(stem.n_filters * spec.learner.alpha)
    bias = spec.conventions.bias_before_bn
    what = f"the stem's {k}x{k}/{s} Conv1"
    return bn(c, plan_stem_conv(c, shape, filters, stem, s, bias, what))


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
