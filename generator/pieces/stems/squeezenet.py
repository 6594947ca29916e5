"""SqueezeNet's stem: a kernel_size x kernel_size/2 conv and a ceil-mode max pool."""

from __future__ import annotations

from ...plan import ceil_pool
from ...registry import register_stem
from .resnet import plan_stem_conv


def plan_squeezenet_stem(spec, c, shape):
    """kernel_size x kernel_size/strides conv (no padding, ReLU) -> 3x3/2 ceil-mode max pool
    (pool: true)."""
    stem = spec.stem
    k, s = stem.kernel_size, stem.strides
    shape = plan_stem_conv(c, shape, stem.n_filters, stem, s, True, f"the stem's {k}x{k}/{s} conv1")
    return ceil_pool(c, shape, "the stem's 3x3/2 max pool") if stem.pool else shape


register_stem(
    kind="squeezenet",
    doc=(
        "kernel_size x kernel_size/2 conv (no padding) -> ReLU -> 3x3/2 max pool with "
        "PyTorch's ceil_mode (conv1, pool1); SqueezeNet 1.0 has a 7x7 conv1, 1.1 a 3x3"
    ),
    plan=plan_squeezenet_stem,
    template="stems/squeezenet.py.j2",
    layer_names=(r"conv1(_pad)?", r"pool1(_pad)?"),
    layers=lambda stem: ("conv1", "pool1" if stem.pool else "conv1"),
    fields={"n_filters": 96, "kernel_size": 7, "strides": 2, "padding": 0, "pool": True},
)
