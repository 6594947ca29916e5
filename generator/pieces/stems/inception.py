"""The Inception stems, at the papers' sizes (n_filters does not apply)."""

from __future__ import annotations

from ...plan import CONV_BN_LAYER_NAMES, plan_inception_v1_stem, plan_inception_v3_stem
from ...registry import register_stem

register_stem(
    kind="inception_v1",
    doc=("GoogLeNet's 7x7/2 conv -> 3x3/2 max pool -> 1x1 -> 3x3 convs -> 3x3/2 max pool"),
    plan=plan_inception_v1_stem,
    template="stems/inception_v1.py.j2",
    layer_names=(r"conv1_7x7_s2", r"conv2_3x3(_reduce)?", r"pool[12]_3x3_s2"),
    layers=("conv1..pool2", "pool2_3x3_s2"),
    sized=False,
)
register_stem(
    kind="inception_v3",
    doc="Inception v3's five conv-BN-ReLU units and two max pools",
    plan=plan_inception_v3_stem,
    template="stems/inception_v3.py.j2",
    layer_names=CONV_BN_LAYER_NAMES,
    layers=("conv2d..max_pooling2d_1", "max_pooling2d_1"),
    sized=False,
    helpers=("blocks/conv_bn.py.j2",),
)
