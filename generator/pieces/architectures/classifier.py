"""The classifier: stem -> learner -> classifier (and Inception's auxiliary classifiers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...harness import classifier_task, heads_task
from ...plan import (
    Counter,
    Plan,
    _merge,
    _part,
    _stage,
    check_head_names,
    classifier_metaparameters,
    dense,
    plan_backbone,
    span,
)
from ...registry import AUX, BLOCKS, CLASSIFIERS, register_architecture

if TYPE_CHECKING:
    from ...spec import Spec


def plan_classifier(spec: Spec, c: Counter) -> Plan:
    """stem -> learner -> classifier (and Inception's auxiliary classifiers)."""
    block = BLOCKS[spec.learner.block]
    plan = Plan(spec, block)
    shape = plan_backbone(plan, c)

    mark = c.mark()
    c.where = "classifier"
    kind = CLASSIFIERS[spec.classifier.kind]
    first = kind.first_layer
    units, layer = kind.plan(spec, c, shape)  # the features its head reads (fc1, fc2 ...)
    if kind.plan_head is not None:  # its own head (a 1x1 conv to n_classes maps ...)
        kind.plan_head(spec, c, shape)
        prefix, shape = span(first, "predictions"), (spec.n_classes,)
        _stage(plan, c, "classifier", "classifier", kind.kind, shape, mark, prefix, "predictions")
    elif plan.heads:  # one dense layer per head, all on the same pooled (or dense) features
        check_head_names(plan, c.source)
        parts = [_part(c, (units,), mark, span(first, layer), layer, "classifier")]
        for head in plan.heads:
            mark = c.mark()
            dense(c, units, head.n_classes)
            parts.append(_part(c, (head.n_classes,), mark, head.name, head.name, "head"))
        outputs = tuple(head.n_classes for head in plan.heads)
        _merge(plan, c, "classifier", "classifier", kind.kind, outputs, parts)
    else:
        dense(c, units, spec.n_classes)
        prefix, shape = span(first, "predictions"), (spec.n_classes,)
        _stage(plan, c, "classifier", "classifier", kind.kind, shape, mark, prefix, "predictions")

    aux = spec.classifier.aux
    if aux is not None and aux.include:  # the default build has the auxiliary classifiers
        for index, tap in enumerate(c.taps, start=1):
            mark = c.mark()
            c.where = "classifier.aux"
            AUX[aux.kind].plan(spec, c, tap)
            name = f"aux{index}"
            shape = (spec.n_classes,)
            _stage(plan, c, name, "classifier", aux.kind, shape, mark, name, f"{name}_predictions")
    return plan


def templates(plan) -> list[str]:
    """The classifier's piece, then the auxiliary classifiers' when the spec has them."""
    classifier = plan.spec.classifier
    pieces = [CLASSIFIERS[classifier.kind].template]
    if classifier.aux is not None:
        pieces.append(AUX[classifier.aux.kind].template)
    return pieces


def task(plan, common: dict) -> dict:
    """Labels per output; with classifier.heads a dict of outputs, one loss (by
    activation) and weight per head; Inception's auxiliary losses down-weighted."""
    if plan.heads:
        heads = [
            {"name": head.name, "n_classes": head.n_classes, "activation": head.activation}
            for head in plan.heads
        ]
        weights = [head.loss_weight for head in plan.heads]
        return {"kind": "heads", "heads": heads, "loss_weights": weights, **common}
    aux = plan.spec.classifier.aux
    if aux is not None and aux.include and plan.n_taps:
        weights = [1.0] + [aux.loss_weight] * plan.n_taps
        return {"kind": "classifier", "loss_weights": weights, **common}
    return {"kind": "classifier", **common}


register_architecture(
    name="classifier",
    doc="stem -> learner -> classifier",
    sections=("learner", "classifier"),
    plan=plan_classifier,
    templates=templates,
    task=task,
    batches={"classifier": classifier_task, "heads": heads_task},
    metaparameters=classifier_metaparameters,
    takes_n_classes=True,
)
