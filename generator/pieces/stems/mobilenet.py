"""MobileNet's stem: one full convolution (3x3/2, "same"), BN, ReLU6, at int(n_filters *
alpha) filters: the learner's width multiplier scales it too."""

from __future__ import annotations

from ...plan import bn
from ...registry import register_stem
from ..blocks.depthwise import scaled
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
