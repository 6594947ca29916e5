"""Classifier kinds (what turns the learner's maps into class scores) and the auxiliary
classifiers that Inception hangs on block outputs."""

from __future__ import annotations

from ..plan import plan_aux_inception_v1, plan_aux_inception_v3
from ..registry import register_aux, register_classifier


def pooled(shape) -> int:
    """Global pooling (or a 1x1 conv then pooling): one feature per channel."""
    return shape[2]


def flattened(shape) -> int:
    """Flatten: every value of the maps is a feature."""
    return shape[0] * shape[1] * shape[2]


register_classifier(
    kind="avg_pool",
    doc="global average pool -> softmax (ResNet)",
    plan=pooled,
    template="classifiers/avg_pool.py.j2",
    layer_names=(r"avg_pool", r"predictions"),
)
register_classifier(
    kind="flatten",
    doc="flatten -> dense layers -> softmax (VGG)",
    plan=flattened,
    template="classifiers/flatten.py.j2",
    layer_names=(r"flatten", r"fc\d+(_dropout)?", r"predictions"),
    args=("dense_units", "dropout"),
)
register_classifier(
    kind="conv",
    doc=(
        "dropout -> 1x1 conv to n_classes maps -> ReLU -> global average pool -> softmax "
        "(SqueezeNet: no dense layer)"
    ),
    plan=pooled,
    template="classifiers/conv.py.j2",
    layer_names=(r"top_(dropout|conv)", r"avg_pool", r"predictions"),
    args=("dropout",),
    allows_heads=False,
)
register_classifier(
    kind="avg_pool_dropout",
    doc="global average pool -> dropout -> softmax (GoogLeNet)",
    plan=pooled,
    template="classifiers/avg_pool.py.j2",
    layer_names=(r"avg_pool", r"dropout", r"predictions"),
    args=("dropout",),
)

register_aux(
    kind="inception_v1",
    doc="5x5/3 average pool -> 1x1 conv (128) -> dense 1024 -> dropout 0.7 -> softmax",
    plan=plan_aux_inception_v1,
    template="classifiers/aux_inception_v1.py.j2",
    layer_names=(r"aux\d+_(pool|conv|flatten|fc|dropout|predictions)",),
)
register_aux(
    kind="inception_v3",
    doc=("5x5/3 average pool -> 1x1 conv (128) -> 5x5 conv (768), each with BN-ReLU -> softmax"),
    plan=plan_aux_inception_v3,
    template="classifiers/aux_inception_v3.py.j2",
    layer_names=(r"aux\d+_(pool|conv[12]|bn[12]|relu[12]|flatten|predictions)",),
)
