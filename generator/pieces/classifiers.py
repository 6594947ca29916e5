"""Classifier kinds (what turns the learner's maps into class scores) and the auxiliary
classifiers that Inception hangs on block outputs."""

from __future__ import annotations

from ..plan import plan_aux_inception_v1, plan_aux_inception_v3
from ..registry import register_aux, register_classifier

register_classifier(
    kind="avg_pool",
    doc="global average pool -> softmax (ResNet)",
    template="classifiers/avg_pool.py.j2",
)
register_classifier(
    kind="flatten",
    doc="flatten -> dense layers -> softmax (VGG)",
    template="classifiers/flatten.py.j2",
    args=("dense_units", "dropout"),
    flattens=True,
)
register_classifier(
    kind="conv",
    doc=(
        "dropout -> 1x1 conv to n_classes maps -> ReLU -> global average pool -> softmax "
        "(SqueezeNet: no dense layer)"
    ),
    template="classifiers/conv.py.j2",
    args=("dropout",),
    allows_heads=False,
)
register_classifier(
    kind="avg_pool_dropout",
    doc="global average pool -> dropout -> softmax (GoogLeNet)",
    template="classifiers/avg_pool.py.j2",
    args=("dropout",),
)

register_aux(
    kind="inception_v1",
    doc="5x5/3 average pool -> 1x1 conv (128) -> dense 1024 -> dropout 0.7 -> softmax",
    plan=plan_aux_inception_v1,
    template="classifiers/aux_inception_v1.py.j2",
)
register_aux(
    kind="inception_v3",
    doc=("5x5/3 average pool -> 1x1 conv (128) -> 5x5 conv (768), each with BN-ReLU -> softmax"),
    plan=plan_aux_inception_v3,
    template="classifiers/aux_inception_v3.py.j2",
)
