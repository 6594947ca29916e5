"""The ResNet stem and its relatives: none, resnet, resnet_preact, densenet."""

from __future__ import annotations

from ...plan import bn, conv, pad, pool
from ...registry import register_stem


def plan_resnet_stem(spec, c, shape):
    """7x7/2 conv after 3-pixel zero padding (conv1) -> BN -> ReLU (not resnet_preact,
    whose blocks normalise) -> 3x3/2 max pool after 1-pixel padding."""
    preact = spec.stem.kind == "resnet_preact"
    bias = preact or spec.conventions.bias_before_bn
    shape = conv(c, pad(shape, 3), spec.stem.n_filters, 7, 2, bias=bias, what="the stem's 7x7/2")
    if not preact:
        shape = bn(c, shape)
    return pool(c, pad(shape, 1), 3, 2, "the stem's 3x3/2 max pool")


register_stem(
    kind="none",
    doc="the first group sees the pixels (VGG)",
    plan=None,
    template=None,
    layer_names=(),
)
register_stem(
    kind="resnet",
    doc="7x7/2 conv -> BN -> ReLU -> 3x3/2 max pool",
    plan=plan_resnet_stem,
    template="stems/resnet.py.j2",
    layer_names=(r"conv1_(pad|conv|bn|relu)", r"pool1_(pad|pool)"),
    layers=("conv1", "pool1_pool"),
)
register_stem(
    kind="resnet_preact",
    doc="the resnet stem without BN-ReLU (pre-activation blocks normalise)",
    plan=plan_resnet_stem,
    template="stems/resnet.py.j2",
    layer_names=(r"conv1_(pad|conv)", r"pool1_(pad|pool)"),
    layers=("conv1", "pool1_pool"),
)
register_stem(
    kind="densenet",
    doc="the resnet stem under keras.applications' DenseNet names (max pool `pool1`)",
    plan=plan_resnet_stem,
    template="stems/resnet.py.j2",  # the same layers; the max pool is named pool1
    layer_names=(r"conv1_(pad|conv|bn|relu)", r"pool1(_pad)?"),
    layers=("conv1", "pool1"),
)
