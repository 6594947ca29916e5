"""The convolutional AutoEncoder: encoder (3x3/2 convolutions) -> decoder (the mirror)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...fields import PRE_STEM_RANDOM, Filters, Model
from ...harness import autoencoder_task
from ...plan import plan_autoencoder
from ...registry import register_architecture


class AutoEncoder(Model):
    """The convolutional AutoEncoder (architecture: autoencoder). The encoder is one 3x3/2
    convolution (ReLU) per entry of filters, each halving H and W; the decoder mirrors it
    with 3x3/2 transposed convolutions (ReLU) in reverse order, each doubling H and W, and a
    last 3x3 convolution restores the input's channels (output_activation). Loss: MSE."""

    filters: list[Filters] = Field(min_length=1, max_length=16)
    output_activation: Literal["sigmoid", "linear"] = "sigmoid"


register_architecture(
    name="autoencoder",
    doc="encoder -> decoder, the output shaped as the input",
    sections=("autoencoder",),
    section=("autoencoder", AutoEncoder),
    plan=plan_autoencoder,
    templates=lambda plan: ["blocks/autoencoder.py.j2", "architectures/autoencoder.py.j2"],
    task=lambda plan, common: {"kind": "autoencoder", **common},
    batches={"autoencoder": autoencoder_task},
    metaparameters=lambda plan, params: {"filters": list(plan.spec.autoencoder.filters)},
    has_backbone=False,
    pre_stem_refused=(
        PRE_STEM_RANDOM,
        "deterministic",
        "the model reconstructs the pre-stemmed image, and a random step would change its "
        "training target from one step to the next",
    ),
)
