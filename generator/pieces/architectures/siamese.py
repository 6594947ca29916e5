"""The Siamese twin: one twin (stem -> learner -> embedding) applied to two images, the
L1 distance of the two embeddings, one sigmoid unit: P(same class)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from ...fields import Filters, Model
from ...harness import siamese_task
from ...plan import plan_siamese
from ...registry import register_architecture


class Twin(Model):
    """The Siamese twin (architecture: siamese). Its backbone is the spec's stem and learner;
    this section says how the backbone's maps become the embedding and how two embeddings
    are compared. pooling: flatten (Koch et al.) or avg (global average pool, for deep
    backbones) -> dense embedding_units with embedding_activation -> the embedding; without
    embedding_units (null) the pooled features are the embedding, as keras.applications'
    include_top=False, pooling="avg" gives them (512 for a ResNet18 twin). The two
    embeddings' distance (l1: |a - b|, per unit) feeds one sigmoid unit: P(same class)."""

    pooling: Literal["flatten", "avg"] = "flatten"
    embedding_units: Filters | None = 4096
    # Default sigmoid with embedding_units; none without (there is no dense layer).
    embedding_activation: Literal["sigmoid", "relu", "linear"] | None = None
    distance: Literal["l1"] = "l1"

    @model_validator(mode="before")
    @classmethod
    def _activation_default(cls, data):
        if isinstance(data, dict) and data.get("embedding_activation") is None:
            if data.get("embedding_units", 4096) is not None:
                data = {**data, "embedding_activation": "sigmoid"}
        return data

    @model_validator(mode="after")
    def _activation_needs_a_dense_layer(self):
        if self.embedding_units is None and self.embedding_activation is not None:
            raise ValueError(
                "embedding_activation: applies only with embedding_units (without them the "
                "pooled features are the embedding: there is no dense layer to activate)"
            )
        return self


def metaparameters(plan, params: dict) -> dict:
    if plan.spec.twin.embedding_units is not None:  # else: no dense layer, no size
        params["embedding_units"] = plan.spec.twin.embedding_units
    return params


def dump(spec, data: dict) -> None:
    """`embedding_units: null` written out: absent means 4096."""
    if spec.twin.embedding_units is None:
        twin = data["twin"]
        data["twin"] = {"pooling": twin.pop("pooling"), "embedding_units": None, **twin}


register_architecture(
    name="siamese",
    doc="one twin applied to two inputs, L1 distance, one sigmoid unit",
    sections=("learner", "twin"),
    section=("twin", Twin),
    plan=plan_siamese,
    templates=lambda plan: ["blocks/siamese.py.j2", "architectures/siamese.py.j2"],
    task=lambda plan, common: {"kind": "siamese", **common},
    batches={"siamese": siamese_task},
    metaparameters=metaparameters,
    dump=dump,
)
