"""The convolutional AutoEncoder: encoder (3x3/2 convolutions) -> decoder (the mirror)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ...errors import SpecError
from ...fields import PRE_STEM_RANDOM, Filters, Model
from ...harness import autoencoder_task
from ...plan import (
    Counter,
    Plan,
    Shape,
    _stage,
    conv,
)
from ...registry import register_architecture

if TYPE_CHECKING:
    from ...spec import Spec


class AutoEncoder(Model):
    """The convolutional AutoEncoder (architecture: autoencoder). The encoder is one 3x3/2
    convolution (ReLU) per entry of filters, each halving H and W; the decoder mirrors it
    with 3x3/2 transposed convolutions (ReLU) in reverse order, each doubling H and W, and a
    last 3x3 convolution restores the input's channels (output_activation). Loss: MSE."""

    filters: list[Filters] = Field(min_length=1, max_length=16)
    output_activation: Literal["sigmoid", "linear"] = "sigmoid"


def plan_autoencoder(spec: Spec, c: Counter) -> Plan:
    """Encoder: a 3x3/2 convolution per entry of filters (H, W / 2 each). Decoder: the
    mirror, 3x3/2 transposed convolutions in reverse order (H, W * 2 each), then a 3x3
    convolution back to the input's channels. The output has the input's shape. The
    encoder and the decoder are the built model's "encoder" and "decoder" sub-models."""
    plan = Plan(spec, None)
    filters = spec.autoencoder.filters
    height, width, channels = spec.input_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise SpecError(
            c.source,
            "input_shape",
            f"{height}x{width} cannot be halved {len(filters)} times (one per entry of "
            f"autoencoder.filters) and restored: H and W must be multiples of {factor}",
        )
    shape: Shape = tuple(spec.input_shape)
    mark = c.mark()
    c.where = "autoencoder.filters"
    for n_filters in filters:
        shape = conv(c, shape, n_filters, 3, 2, same=True)
    plan.latent_shape = shape
    detail, layer = f"{len(filters)} x conv 3x3/2", f"encoder/encoder_conv{len(filters)}"
    _stage(plan, c, "encoder", "encoder", detail, shape, mark, "encoder", layer)

    mark = c.mark()
    for n_filters in reversed(filters):
        c.add(9 * shape[2] * n_filters + n_filters)  # Conv2DTranspose 3x3/2, padding same
        c.add_macs(shape[0] * shape[1] * 9 * shape[2] * n_filters)  # each input pixel's kernel
        shape = (2 * shape[0], 2 * shape[1], n_filters)
    shape = conv(c, shape, channels, 3, same=True)
    assert shape == tuple(spec.input_shape), (shape, spec.input_shape)
    detail = f"{len(filters)} x transposed conv 3x3/2"
    _stage(plan, c, "decoder", "decoder", detail, shape, mark, "decoder", "decoder/decoder_output")
    return plan


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
