"""Classifier kinds (what turns the learner's maps into class scores) and the auxiliary
classifiers that Inception hangs on block outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plan import Counter, Shape, conv, conv_bn_units, dense, plan_dense_head, pool
from ..registry import register_aux, register_classifier

if TYPE_CHECKING:
    from ..spec import Spec


def plan_aux_inception_v1(spec: Spec, c: Counter, shape: Shape) -> None:
    """5x5/3 average pool -> 1x1 conv (128) -> flatten -> dense 1024 -> dropout -> dense."""
    shape = conv(c, pool(c, shape, 5, 3, "the auxiliary classifier's 5x5/3 average pool"), 128, 1)
    dense(c, dense(c, shape[0] * shape[1] * shape[2], 1024), spec.n_classes)


def plan_aux_inception_v3(spec: Spec, c: Counter, shape: Shape) -> None:
    """5x5/3 average pool -> 1x1 conv (128) -> 5x5 conv (768, valid) -> flatten -> dense;
    each conv then BN (no scale) -> ReLU."""
    unit = conv_bn_units(spec, c)
    shape = pool(c, shape, 5, 3, "the auxiliary classifier's 5x5/3 average pool")
    shape = unit(unit(shape, 128, 1), 768, 5, same=False)
    dense(c, shape[0] * shape[1] * shape[2], spec.n_classes)


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


def conv_preds(spec, c, shape):
    """MobileNet's scores: a 1x1 conv on the pooled 1x1 maps (conv_preds), biased."""
    conv(c, (1, 1, shape[2]), spec.n_classes, 1)


register_classifier(
    kind="conv_preds",
    doc=(
        "global average pool kept as 1x1 maps -> dropout -> 1x1 conv to n_classes -> "
        "softmax (MobileNet: keras.applications' conv_preds)"
    ),
    plan=pooled,
    plan_head=conv_preds,
    first_layer="avg_pool",
    template="classifiers/conv_preds.py.j2",
    layer_names=(r"avg_pool", r"dropout", r"conv_preds", r"reshape_2", r"predictions"),
    args=("dropout",),
    allows_heads=False,
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


def v3_hidden_width(spec) -> int:
    """MobileNetV3's conv_2: hidden_units, widened by alpha above 1 (keras.applications)."""
    from .blocks.inverted_residual import make_divisible

    units, alpha = spec.classifier.hidden_units, spec.learner.alpha
    return make_divisible(units * alpha) if alpha > 1.0 else units


def v3_features(spec, c, shape):
    """The features its scores read: conv_2's maps, after the dropout."""
    return v3_hidden_width(spec), "dropout"


def v3_head(spec, c, shape):
    """Global average pool (1x1 maps) -> 1x1 conv to the hidden width (conv_2, biased) ->
    1x1 conv to n_classes (logits, biased)."""
    hidden = conv(c, (1, 1, shape[2]), v3_hidden_width(spec), 1)
    conv(c, hidden, spec.n_classes, 1)


register_classifier(
    kind="mobilenet_v3",
    doc=(
        "global average pool kept as 1x1 maps -> 1x1 conv to hidden_units -> the learner's "
        "nonlinearity -> dropout -> 1x1 conv to n_classes -> softmax (MobileNetV3)"
    ),
    plan=v3_features,
    plan_head=v3_head,
    first_layer="avg_pool",
    template="classifiers/mobilenet_v3.py.j2",
    layer_names=(r"avg_pool", r"conv_2(_act)?", r"dropout", r"logits", r"flatten", r"predictions"),
    args=("hidden_units", "dropout"),
    allows_heads=False,
    learner_args=("alpha", "nonlinearity"),
    helpers=("blocks/make_divisible.py.j2",),  # its hidden width above alpha 1
)
