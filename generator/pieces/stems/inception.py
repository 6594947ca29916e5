"""The Inception stems, at the papers' sizes (n_filters does not apply)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...plan import CONV_BN_LAYER_NAMES, Counter, Shape, conv, conv_bn_units, pool, same_pool
from ...registry import register_stem

if TYPE_CHECKING:
    from ...spec import Spec


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


register_stem(
    kind="inception_v1",
    doc=("GoogLeNet's 7x7/2 conv -> 3x3/2 max pool -> 1x1 -> 3x3 convs -> 3x3/2 max pool"),
    plan=plan_inception_v1_stem,
    template="stems/inception_v1.py.j2",
    layer_names=(r"conv1_7x7_s2", r"conv2_3x3(_reduce)?", r"pool[12]_3x3_s2"),
    layers=("conv1..pool2", "pool2_3x3_s2"),
)
register_stem(
    kind="inception_v3",
    doc="Inception v3's five conv-BN-ReLU units and two max pools",
    plan=plan_inception_v3_stem,
    template="stems/inception_v3.py.j2",
    layer_names=CONV_BN_LAYER_NAMES,
    layers=("conv2d..max_pooling2d_1", "max_pooling2d_1"),
    helpers=("blocks/conv_bn.py.j2",),
    # its five conv2d_bn units: conv2d ... conv2d_4, their BNs and ReLUs
    auto_names=(("conv2d", 5), ("batch_normalization", 5), ("activation", 5)),
)
