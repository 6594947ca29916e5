"""Xception's stem (keras.applications' block1): conv -> BN -> ReLU per width of n_filters,
3x3 and unpadded ("valid"), the first at strides 2: 299x299 -> 149x149 -> 147x147."""

from __future__ import annotations

from ...plan import bn
from ...registry import register_stem
from .resnet import plan_stem_conv


def plan_xception_stem(spec, c, shape):
    """One conv (biased only with bias_before_bn) -> BN -> ReLU per width, the first at
    strides, the others at 1."""
    stem = spec.stem
    bias = spec.conventions.bias_before_bn
    for index, width in enumerate(stem.widths, start=1):
        strides = stem.strides if index == 1 else 1
        k = stem.kernel_size
        what = f"the stem's {k}x{k}/{strides} block1_conv{index}"
        shape = bn(c, plan_stem_conv(c, shape, width, stem, strides, bias, what))
    return shape


def xception_stem_layers(stem):
    return "block1", f"block1_conv{len(stem.widths)}_act"


register_stem(
    kind="xception",
    doc=(
        "conv -> BN -> ReLU per width of n_filters (3x3, unpadded, the first at strides 2; "
        "32 then 64 filters: Xception's block1)"
    ),
    plan=plan_xception_stem,
    template="stems/xception.py.j2",
    layer_names=(r"block1_conv\d+(_pad|_bn|_act)?",),
    layers=xception_stem_layers,
    fields={"n_filters": (32, 64), "kernel_size": 3, "strides": 2, "padding": "valid"},
    layered=True,
)
