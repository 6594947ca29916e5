"""SqueezeNet's stem: a kernel_size x kernel_size/2 conv and a ceil-mode max pool."""

from __future__ import annotations

from ...plan import ceil_pool, conv
from ...registry import register_stem


def plan_squeezenet_stem(spec, c, shape):
    """kernel_size x kernel_size/2 conv (no padding, ReLU) -> 3x3/2 ceil-mode max pool."""
    k = spec.stem.kernel_size
    shape = conv(c, shape, spec.stem.n_filters, k, 2, what=f"the stem's {k}x{k}/2 conv1")
    return ceil_pool(c, shape, "the stem's 3x3/2 max pool")


register_stem(
    kind="squeezenet",
    doc=(
        "kernel_size x kernel_size/2 conv (no padding) -> ReLU -> 3x3/2 max pool with "
        "PyTorch's ceil_mode (conv1, pool1); SqueezeNet 1.0 has a 7x7 conv1, 1.1 a 3x3"
    ),
    plan=plan_squeezenet_stem,
    template="stems/squeezenet.py.j2",
    layer_names=(r"conv1", r"pool1(_pad)?"),
    layers=("conv1", "pool1"),
    kernel_size=7,
)
