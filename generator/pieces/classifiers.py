"""Classifier kinds (what turns the learner's maps into class scores) and the auxiliary
classifiers that Inception hangs on block outputs."""

from __future__ import annotations

from ..plan import conv, plan_aux_inception_v1, plan_aux_inception_v3, plan_dense_head
from ..registry import register_aux, register_classifier


def pooled(spec, c, shape):
    """Global average pooling: one feature per channel (avg_pool)."""
    return shape[2], "avg_pool"


def pooled_dropout(spec, c, shape):
    """Global average pooling, then dropout (the layer that leaves the features)."""
    return shape[2], "dropout"


def flattened(spec, c, shape):
    """Flatten (every value of the maps a feature), then the dense layers fc1, fc2 ..."""
    return plan_dense_head(spec, c, shape[0] * shape[1] * shape[2])


def conv_head(spec, c, shape):
    """SqueezeNet's scores: a 1x1 conv to n_classes maps (then their global average)."""
    conv(c, shape, spec.n_classes, 1)


register_classifier(
    kind="avg_pool",
    doc="global average pool -> softmax (ResNet)",
    plan=pooled,
    first_layer="avg_pool",
    template="classifiers/avg_pool.py.j2",
    layer_names=(r"avg_pool", r"predictions"),
)
register_classifier(
    kind="flatten",
    doc="flatten -> dense layers -> softmax (VGG)",
    plan=flattened,
    first_layer="flatten",
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
    plan_head=conv_head,
    first_layer="top_dropout",
    template="classifiers/conv.py.j2",
    layer_names=(r"top_(dropout|conv)", r"avg_pool", r"predictions"),
    args=("dropout",),
    allows_heads=False,
)
register_classifier(
    kind="avg_pool_dropout",
    doc="global average pool -> dropout -> softmax (GoogLeNet)",
    plan=pooled_dropout,
    first_layer="avg_pool",
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
