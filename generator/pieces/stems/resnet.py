"""The ResNet stem and its relatives: none, resnet, resnet_preact, densenet, and conv (one or
more conv-BN-ReLU layers: the CIFAR networks' 3x3 stem, the "deep stem" of ResNet-C).

Each says what it does in metaparameters (spec.Stem): n_filters, kernel_size, strides,
padding, pool (and bn_relu for conv). The ImageNet ResNet stem is one set of their values.
"""

from __future__ import annotations

from ...plan import bn, conv, pad, pool
from ...registry import register_stem


def plan_stem_conv(c, shape, n_filters, stem, strides, bias, what):
    """One convolution of a stem: `padding` pixels of zeros around its input (padding an
    int), Keras' padding="same" or none ("valid"), then kernel_size x kernel_size/strides."""
    padding = stem.padding
    if not isinstance(padding, str):
        shape = pad(shape, padding)
    return conv(c, shape, n_filters, stem.kernel_size, strides, padding == "same", bias, what)


def plan_stem_pool(c, shape):
    """The 3x3/2 max pool after 1-pixel zero padding that follows a stem with pool: true."""
    return pool(c, pad(shape, 1), 3, 2, "the stem's 3x3/2 max pool")


def _conv_what(stem, strides=None) -> str:
    k, s = stem.kernel_size, stem.strides if strides is None else strides
    return f"the stem's {k}x{k}/{s} conv"


def plan_resnet_stem(spec, c, shape):
    """kernel_size x kernel_size/strides conv (conv1; 7x7/2 after 3 pixels of zeros in
    ResNet) -> BN -> ReLU (not resnet_preact, whose blocks normalise) -> 3x3/2 max pool
    after 1-pixel padding (pool: true)."""
    stem = spec.stem
    preact = stem.kind == "resnet_preact"
    bias = preact or spec.conventions.bias_before_bn
    shape = plan_stem_conv(c, shape, stem.n_filters, stem, stem.strides, bias, _conv_what(stem))
    if not preact:
        shape = bn(c, shape)
    return plan_stem_pool(c, shape) if stem.pool else shape


def resnet_layers(pool_name: str, conv_out: str):
    """The stage's (prefix, output layer): the pool when there is one, else conv_out."""
    return lambda stem: ("conv1", pool_name if stem.pool else conv_out)


# The ImageNet ResNet stem (keras.applications, torchvision): 64 filters, 7x7/2 after 3
# pixels of zeros, then the max pool.
RESNET_FIELDS = {"n_filters": 64, "kernel_size": 7, "strides": 2, "padding": 3, "pool": True}

register_stem(
    kind="none",
    doc="the first group sees the pixels (VGG, and any learner that wants them)",
    plan=None,
    template=None,
    layer_names=(),
)
register_stem(
    kind="resnet",
    doc="7x7/2 conv -> BN -> ReLU -> 3x3/2 max pool (each size a metaparameter)",
    plan=plan_resnet_stem,
    template="stems/resnet.py.j2",
    layer_names=(r"conv1_(pad|conv|bn|relu)", r"pool1_(pad|pool)"),
    layers=resnet_layers("pool1_pool", "conv1_relu"),
    fields=RESNET_FIELDS,
)
register_stem(
    kind="resnet_preact",
    doc="the resnet stem without BN-ReLU (pre-activation blocks normalise)",
    plan=plan_resnet_stem,
    template="stems/resnet.py.j2",
    layer_names=(r"conv1_(pad|conv)", r"pool1_(pad|pool)"),
    layers=resnet_layers("pool1_pool", "conv1_conv"),
    fields=RESNET_FIELDS,
)
register_stem(
    kind="densenet",
    doc="the resnet stem under keras.applications' DenseNet names (max pool `pool1`)",
    plan=plan_resnet_stem,
    template="stems/resnet.py.j2",  # the same layers; the max pool is named pool1
    layer_names=(r"conv1_(pad|conv|bn|relu)", r"pool1(_pad)?"),
    layers=resnet_layers("pool1", "conv1_relu"),
    fields=RESNET_FIELDS,
)


def plan_conv_stem(spec, c, shape):
    """One conv -> BN -> ReLU per width of n_filters (the first at strides, the others at
    1); bn_relu: false leaves the last convolution bare, for pre-activation blocks, whose
    BN normalises it (so bias_before_bn decides its bias too); then the 3x3/2 max pool
    when pool is set."""
    stem = spec.stem
    bias = spec.conventions.bias_before_bn
    for index, width in enumerate(stem.widths):
        strides = stem.strides if index == 0 else 1
        norm = stem.bn_relu or index < len(stem.widths) - 1
        shape = plan_stem_conv(c, shape, width, stem, strides, bias, _conv_what(stem, strides))
        if norm:
            shape = bn(c, shape)
    return plan_stem_pool(c, shape) if stem.pool else shape


def conv_layers(stem):
    if stem.pool:
        return "conv1", "pool1_pool"
    last = "conv1" if len(stem.widths) == 1 else f"conv1_{len(stem.widths)}"
    return "conv1", f"{last}_relu" if stem.bn_relu else f"{last}_conv"


register_stem(
    kind="conv",
    doc=(
        "conv -> BN -> ReLU, once per width of n_filters (3x3/1, 16 filters: the CIFAR "
        "ResNets' stem; [32, 32, 64] with strides 2 and pool: ResNet-C's deep stem)"
    ),
    plan=plan_conv_stem,
    template="stems/conv.py.j2",
    layer_names=(r"conv1(_\d+)?_(pad|conv|bn|relu)", r"pool1_(pad|pool)"),
    layers=conv_layers,
    fields={
        "n_filters": 16,
        "kernel_size": 3,
        "strides": 1,
        "padding": "same",
        "pool": False,
        "bn_relu": True,
    },
    layered=True,
)
