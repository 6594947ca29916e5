"""The classifier: stem -> learner -> classifier (and Inception's auxiliary classifiers)."""

from __future__ import annotations

from ...harness import classifier_task, heads_task
from ...plan import classifier_metaparameters, plan_classifier
from ...registry import AUX, CLASSIFIERS, register_architecture


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
