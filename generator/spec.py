"""Spec: load a preset or a user's YAML file, apply --set overrides, validate.

A spec chooses STRUCTURE (stem kind, block type, where the stride sits, classifier kind,
framework conventions) and SIZES (groups, filters, blocks, dense units). Validation is
pydantic v2; every problem becomes one `SpecError` line naming the field path.
"""

from __future__ import annotations

import builtins
import difflib
import keyword
import re
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import SpecError

PRESETS_DIR = Path(__file__).parent / "presets"

# Sizes a spec may ask for. Generous, but they keep a typo from asking for a
# petabyte model or a Python int that Keras cannot hold.
MAX_FILTERS = 65536
MAX_BLOCKS = 1024
MAX_IMAGE_SIDE = 8192
MAX_SPEC_BYTES = 1_000_000  # a preset is about 2 kB

Filters = Annotated[StrictInt, Field(ge=1, le=MAX_FILTERS)]
Count = Annotated[StrictInt, Field(ge=1, le=MAX_BLOCKS)]
Side = Annotated[StrictInt, Field(ge=1, le=MAX_IMAGE_SIDE)]
Stride = Annotated[StrictInt, Field(ge=1, le=8)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]

# \Z, not $: "$" also matches before a trailing newline, and "Net\n" is no identifier.
_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
# Text that lands in a docstring: nothing that could end the string, escape out of it, or
# read as a template. Every character must also be printable (str.isprintable): no control
# characters (tab, NUL, ESC), no line or paragraph separators (U+2028, U+2029, U+0085), no
# invisible format characters (bidi overrides, zero-width spaces), no lone surrogates.
_UNSAFE_TEXT = re.compile(r'("""|\\|\{\{|\{%|\{#)')

# A class_name may not shadow what the emitted file uses. Builtins and __dunder__ names are
# refused here; the names the file itself binds or looks up (`class layers:` would break
# every `layers.Conv2D`, `class x:` make `x.group(...)` read the local tensor) are read from
# the rendered output, so render.check_class_name refuses those: no list to keep here.
_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value) or keyword.iskeyword(value):
        raise ValueError(f"must be a Python identifier (letters, digits, _), got {value!r}")
    return value


def _class_name(value: str) -> str:
    _identifier(value)
    if value.startswith("__") and value.endswith("__"):
        raise ValueError(f"{value!r} is reserved: Python keeps __dunder__ names for itself")
    if value in _BUILTINS:
        raise ValueError(
            f"{value!r} is reserved: the class would shadow the Python builtin {value!r}"
        )
    return value


def _unprintable(text: str) -> str | None:
    for char in text:
        if not char.isprintable():
            return f"{char!r} (U+{ord(char):04X})"
    return None


def _checked_text(value: str) -> None:
    bad = _UNSAFE_TEXT.search(value)
    if bad:
        raise ValueError(f"must not contain {bad.group(0)!r} (it would end up in Python source)")


def _one_line(value: str) -> str:
    """A single printable line, as written (it lands in the docstring verbatim)."""
    _checked_text(value)
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    char = _unprintable(value)
    if char:
        raise ValueError(f"must be printable text, but contains {char}")
    if value != value.strip(" "):
        raise ValueError("must not start or end with a space")
    return value


def _title(value: str) -> str:
    _one_line(value)
    if value.startswith('"'):
        # black would pad it away from the docstring's opening quotes.
        raise ValueError("must not start with '\"' (it would touch the docstring's quotes)")
    return value


def _safe_text(value: str) -> str:
    """Printable lines joined by \\n. Trailing spaces are dropped from each line (black
    would drop them from the docstring anyway); everything else is kept as written."""
    _checked_text(value)
    lines = value.split("\n")
    for number, line in enumerate(lines, start=1):
        char = _unprintable(line)
        if char:
            raise ValueError(f"must be printable text, but line {number} contains {char}")
    return "\n".join(line.rstrip(" ") for line in lines)


def _derive_class_name(name: str) -> str:
    """my_net -> MyNet; when that is no usable class name ("_0" -> "0", "value_error" ->
    the builtin ValueError), the name itself, else the CamelCase name + "Model". Whether the
    emitted file uses the name is only known once it is rendered: there a derived name that
    clashes (`name: detections` -> Detections, a layer class of the detectors) is reported
    like a written one, with the hint to set class_name (render.check_class_name)."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    for candidate in (camel, name, f"{camel}Model"):
        try:
            return _class_name(candidate)
        except ValueError:
            continue
    return name  # unreachable for an identifier name; validation reports it if so


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conventions(_Model):
    """Framework conventions that change layers but not the pattern."""

    # keras.applications' ResNet v1 puts a bias on convolutions that feed a
    # BatchNormalization; torchvision does not. Convolutions that do not feed a BN
    # always have a bias.
    bias_before_bn: StrictBool = False
    bn_epsilon: float = Field(1e-5, gt=0.0, lt=1.0, strict=True)


class Stem(_Model):
    """none: the first group sees the pixels (VGG). resnet: 7x7/2 conv -> BN -> ReLU -> 3x3/2
    max pool. resnet_preact: the same without BN-ReLU (pre-activation blocks normalise).
    densenet: the resnet stem under keras.applications' DenseNet names (max pool `pool1`).
    squeezenet: kernel_size x kernel_size/2 conv (no padding) -> ReLU -> 3x3/2 max pool with
    PyTorch's ceil_mode (conv1, pool1). inception_v1, inception_v3: the papers' stems, at the
    papers' sizes (n_filters does not apply): GoogLeNet's 7x7/2 conv -> 3x3/2 max pool -> 1x1
    -> 3x3 convs -> 3x3/2 max pool; Inception v3's five conv-BN-ReLU units and two max pools.
    """

    kind: Literal[
        "none", "resnet", "resnet_preact", "densenet", "squeezenet", "inception_v1", "inception_v3"
    ] = "none"
    n_filters: Filters = 64
    # squeezenet only (default 7): SqueezeNet 1.0 has a 7x7 conv1, 1.1 a 3x3.
    kernel_size: Annotated[StrictInt, Field(ge=1, le=15)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _squeezenet_default(cls, data):
        if isinstance(data, dict) and data.get("kind") == "squeezenet":
            if data.get("kernel_size") is None:
                data = {**data, "kernel_size": 7}
        return data

    @model_validator(mode="after")
    def _kernel_size_is_squeezenet_only(self):
        if self.kind != "squeezenet" and self.kernel_size is not None:
            raise ValueError(
                f"kernel_size applies only to stem kind 'squeezenet' (the {self.kind} stem's "
                "convolution is fixed)"
            )
        if self.kind.startswith("inception") and self.n_filters != 64:
            raise ValueError(
                f"n_filters does not apply to stem kind '{self.kind}' (its sizes are the paper's)"
            )
        return self


class VGGGroup(_Model):
    n_filters: Filters
    n_layers: Count


class ResidualGroup(_Model):
    n_filters: Filters
    n_blocks: Count
    strides: Stride = 1


class PlainGroup(_Model):
    """One convolution (kernel_size x kernel_size, no padding, ReLU), then a 2x2/2 max pool
    unless pool is false (Koch et al.'s Siamese twin: the last convolution is not pooled)."""

    n_filters: Filters
    kernel_size: Annotated[StrictInt, Field(ge=1, le=31)] = 3
    pool: StrictBool = True


class PlainLearner(_Model):
    """Plain convolutions, one per group, each optionally followed by a max pool."""

    block: Literal["plain"]
    groups: list[PlainGroup] = Field(min_length=1, max_length=64)


class VGGLearner(_Model):
    block: Literal["vgg"]
    groups: list[VGGGroup] = Field(min_length=1, max_length=64)


class ResidualLearner(_Model):
    """Residual blocks, with two options that compose: ResNeXt's grouped 3x3 (bottleneck:
    cardinality, width_per_group, grouped_conv) and an SE link (basic, bottleneck: se_ratio).
    """

    block: Literal["basic", "bottleneck", "preact_bottleneck"]
    # bottleneck only (default 1x1): v1 strides the first 1x1, v1.5 strides the 3x3.
    stride_on: Literal["1x1", "3x3"] | None = None
    # bottleneck only (defaults 1, 64, native): ResNeXt. The 3x3 is split into `cardinality`
    # groups of int(n_filters * width_per_group / 64) channels each (torchvision's
    # base_width); the block's output stays 4 * n_filters. native: one Conv2D(groups=...);
    # split: the paper's split-transform-merge, one Conv2D per group, then Concatenate.
    cardinality: Annotated[StrictInt, Field(ge=1, le=1024)] | None = None
    width_per_group: Filters | None = None
    grouped_conv: Literal["native", "split"] | None = None
    # basic and bottleneck: a squeeze-and-excitation link on the residual branch, with
    # channels // se_ratio channels in its bottleneck (None: no SE link).
    se_ratio: Annotated[StrictInt, Field(ge=1, le=MAX_FILTERS)] | None = None
    groups: list[ResidualGroup] = Field(min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _bottleneck_default(cls, data):
        if isinstance(data, dict) and data.get("block") == "bottleneck":
            defaults = {"stride_on": "1x1", "cardinality": 1, "width_per_group": 64}
            defaults["grouped_conv"] = "native"
            data = {**data, **{k: v for k, v in defaults.items() if data.get(k) is None}}
        return data

    @model_validator(mode="after")
    def _stride_on_is_bottleneck_only(self):
        if self.block != "bottleneck" and self.stride_on is not None:
            raise ValueError(
                f"stride_on applies only to block 'bottleneck' ({self.block} blocks "
                "stride their first 3x3)"
            )
        for option in ("cardinality", "width_per_group", "grouped_conv"):
            if self.block != "bottleneck" and getattr(self, option) is not None:
                raise ValueError(
                    f"{option} applies only to block 'bottleneck' (the ResNeXt grouped 3x3)"
                )
        if self.block == "preact_bottleneck" and self.se_ratio is not None:
            raise ValueError("se_ratio applies only to blocks 'basic' and 'bottleneck'")
        return self


class DenseGroup(_Model):
    n_blocks: Count


class DenseLearner(_Model):
    """DenseNet: each dense block adds growth_rate feature maps to its input's; a transition
    between groups compresses the channels to int(C * compression) and halves H and W."""

    block: Literal["dense"]
    growth_rate: Filters = 32
    compression: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.5
    groups: list[DenseGroup] = Field(min_length=1, max_length=64)


class FireGroup(_Model):
    # One fire module per entry, its squeeze width s: 1x1 squeeze to s, then 1x1 and 3x3
    # expands of 4 * s each, concatenated to 8 * s channels.
    n_filters: list[Filters] = Field(min_length=1, max_length=MAX_BLOCKS)

    @property
    def n_blocks(self) -> int:
        return len(self.n_filters)


class FireLearner(_Model):
    """SqueezeNet: groups of fire modules, a 3x3/2 max pool between consecutive groups
    (delayed downsampling). bypass: none; simple, an identity shortcut around each fire
    module whose input and output widths match (fire3, 5, 7, 9 in SqueezeNet 1.0); complex,
    also a 1x1 conv -> ReLU shortcut around the others."""

    block: Literal["fire"]
    bypass: Literal["none", "simple", "complex"] = "none"
    groups: list[FireGroup] = Field(min_length=1, max_length=64)


# Inception. Block sizes are the columns of the papers' tables: #1x1, #NxN reduce (the 1x1
# before an NxN branch), #NxN, pool proj (the 1x1 after the pooling branch).


class InceptionV1Block(_Model):
    """GoogLeNet inception module (Table 1's columns): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 |
    3x3/1 max pool -> 1x1, concatenated."""

    n_1x1: Filters
    n_3x3_reduce: Filters
    n_3x3: Filters
    n_5x5_reduce: Filters
    n_5x5: Filters
    n_pool_proj: Filters


class Inception35x35Block(_Model):
    """Inception v3 35x35 block (mixed0-2): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 |
    3x3 average pool -> 1x1."""

    n_1x1: Filters
    n_5x5_reduce: Filters
    n_5x5: Filters
    n_3x3dbl_reduce: Filters
    n_3x3dbl: Filters
    n_pool_proj: Filters


class Inception17x17Block(_Model):
    """Inception v3 17x17 block (mixed4-7), 7x7 factorised: 1x1 | 1x1 -> 1x7 -> 7x1 |
    1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | 3x3 average pool -> 1x1. The inner convolutions keep
    the reduce width; the last one of each branch has n_7x7 / n_7x7dbl filters."""

    n_1x1: Filters
    n_7x7_reduce: Filters
    n_7x7: Filters
    n_7x7dbl_reduce: Filters
    n_7x7dbl: Filters
    n_pool_proj: Filters


class Inception8x8Block(_Model):
    """Inception v3 8x8 block (mixed9-10), expanded: 1x1 | 1x1 -> (1x3 | 3x1) |
    1x1 -> 3x3 -> (1x3 | 3x1) | 3x3 average pool -> 1x1; a split contributes 2 * n maps."""

    n_1x1: Filters
    n_3x3_reduce: Filters
    n_3x3: Filters
    n_3x3dbl_reduce: Filters
    n_3x3dbl: Filters
    n_pool_proj: Filters


class Reduction35x35(_Model):
    """Grid reduction 35x35 -> 17x17 (mixed3): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pool."""

    n_3x3: Filters
    n_3x3dbl_reduce: Filters
    n_3x3dbl: Filters


class Reduction17x17(_Model):
    """Grid reduction 17x17 -> 8x8 (mixed8): 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 |
    3x3/2 max pool."""

    n_3x3_reduce: Filters
    n_3x3: Filters
    n_7x7x3_reduce: Filters
    n_7x7x3: Filters


# The blocks (1 = a group's first) whose outputs also feed an auxiliary classifier.
AuxAfter = Annotated[list[Count], Field(default_factory=list, max_length=MAX_BLOCKS)]


class _InceptionGroup(_Model):
    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @model_validator(mode="after")
    def _aux_after_names_blocks(self):
        taps = self.aux_after
        if taps != sorted(set(taps)):
            raise ValueError(f"aux_after must list block numbers in increasing order, got {taps}")
        if taps and taps[-1] > len(self.blocks):
            raise ValueError(
                f"aux_after names block {taps[-1]}, but the group has {len(self.blocks)} "
                "block(s) (1 is the first)"
            )
        return self


class InceptionV1Group(_InceptionGroup):
    # Blocks are named by letter (inception_3a, 3b ...), hence at most 26.
    blocks: list[InceptionV1Block] = Field(min_length=1, max_length=26)
    aux_after: AuxAfter


class Grid35x35Group(_InceptionGroup):
    grid: Literal["35x35"]
    blocks: list[Inception35x35Block] = Field(min_length=1, max_length=MAX_BLOCKS)
    reduction: Reduction35x35 | None = None
    aux_after: AuxAfter


class Grid17x17Group(_InceptionGroup):
    grid: Literal["17x17"]
    blocks: list[Inception17x17Block] = Field(min_length=1, max_length=MAX_BLOCKS)
    reduction: Reduction17x17 | None = None
    aux_after: AuxAfter


class Grid8x8Group(_InceptionGroup):
    grid: Literal["8x8"]
    blocks: list[Inception8x8Block] = Field(min_length=1, max_length=MAX_BLOCKS)
    reduction: None = None  # no grid reduction follows the 8x8 blocks
    aux_after: AuxAfter


GRID_TAGS = ("35x35", "17x17", "8x8")
GridGroup = Annotated[Grid35x35Group | Grid17x17Group | Grid8x8Group, Field(discriminator="grid")]


class InceptionV1Learner(_Model):
    """GoogLeNet: groups of inception modules, a 3x3/2 max pool between consecutive groups."""

    block: Literal["inception_v1"]
    groups: list[InceptionV1Group] = Field(min_length=1, max_length=64)


class InceptionV3Learner(_Model):
    """Inception v3: each group stacks the blocks of one grid size (its `grid` tag picks the
    block type), then its grid reduction to the next grid, if it has one."""

    block: Literal["inception_v3"]
    groups: list[GridGroup] = Field(min_length=1, max_length=64)


LEARNER_TAGS = (
    "plain",
    "vgg",
    "basic",
    "bottleneck",
    "preact_bottleneck",
    "dense",
    "fire",
    "inception_v1",
    "inception_v3",
)
Learner = Annotated[
    PlainLearner
    | VGGLearner
    | ResidualLearner
    | DenseLearner
    | FireLearner
    | InceptionV1Learner
    | InceptionV3Learner,
    Field(discriminator="block"),
]


class AuxClassifier(_Model):
    """Auxiliary classifiers (Inception), one on each block output a group lists in its
    aux_after. inception_v1: 5x5/3 average pool -> 1x1 conv (128) -> dense 1024 -> dropout
    0.7 -> softmax. inception_v3: 5x5/3 average pool -> 1x1 conv (128) -> 5x5 conv (768),
    each with BN-ReLU -> softmax. `include` is the default of the built model's include_aux
    switch; `loss_weight` is the weight the emitted docstring suggests for each auxiliary loss.
    """

    kind: Literal["inception_v1", "inception_v3"]
    include: StrictBool = True
    loss_weight: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.3


# Layer names the classifier writes itself: a head may not take one (Keras wants every
# layer name once). fc<N> and fc<N>_dropout are checked by pattern.
CLASSIFIER_LAYER_NAMES = frozenset({"avg_pool", "max_pool", "flatten", "dropout", "predictions"})
_FC_LAYER = re.compile(r"\Afc[0-9]+(_dropout)?\Z")


class Head(_Model):
    """One output of a multi-output classifier: a dense layer named `name` with n_classes
    units. softmax: one class per image (sparse categorical cross-entropy); sigmoid: any
    number of labels per image (multi-label, binary cross-entropy)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    n_classes: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    activation: Literal["softmax", "sigmoid"] = "softmax"
    # The weight the emitted docstring's compile call gives this head's loss.
    loss_weight: Annotated[float, Field(gt=0.0, le=1000.0, strict=True)] = 1.0

    @field_validator("name")
    @classmethod
    def _name_is_a_free_identifier(cls, value: str) -> str:
        _identifier(value)
        if value in CLASSIFIER_LAYER_NAMES or _FC_LAYER.match(value):
            raise ValueError(
                f"{value!r} is the name of one of the classifier's own layers; pick another"
            )
        return value

    @property
    def loss(self) -> str:
        """The Keras loss for this head, with integer labels for softmax."""
        if self.activation == "sigmoid":
            return "binary_crossentropy"
        return "sparse_categorical_crossentropy"


Flip = Literal["horizontal", "vertical", "horizontal_and_vertical"]


class Rescaling(_Model):
    """x * scale + offset (e.g. scale 1/255 = 0.00392156862745098 maps [0, 255] to [0, 1])."""

    scale: float = Field(allow_inf_nan=False, strict=False)
    offset: float = Field(0.0, allow_inf_nan=False, strict=False)

    @field_validator("scale", "offset", mode="before")
    @classmethod
    def _number(cls, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {_show(value)}")
        if abs(value) > 1e6:
            raise ValueError(f"must be within [-1e6, 1e6], got {_show(value)}")
        return float(value)

    @model_validator(mode="after")
    def _scale_is_not_zero(self):
        if self.scale == 0.0:
            raise ValueError("scale must not be 0 (it would erase the image)")
        return self


class Normalization(_Model):
    """(x - mean) / std per channel; one value for all channels, or one per channel."""

    mean: list[Annotated[float, Field(ge=-1e6, le=1e6, strict=False)]] = Field(
        min_length=1, max_length=4096
    )
    std: list[Annotated[float, Field(gt=0.0, le=1e6, strict=False)]] = Field(
        min_length=1, max_length=4096
    )

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _numbers(cls, value):
        if isinstance(value, list) and any(
            isinstance(v, bool) or not isinstance(v, int | float) for v in value
        ):
            raise ValueError(f"must be a list of numbers, got {_show(value)}")
        return [float(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _same_length(self):
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"mean has {len(self.mean)} value(s) but std has {len(self.std)}; give one "
                "per channel (or one for all)"
            )
        return self


class PreStem(_Model):
    """Detachable preprocessing in front of the stem, as Keras preprocessing layers, in this
    order: resizing or crop (to input_shape's H, W), flip, rotation, zoom, contrast (the
    random augmentations, which act only in training), rescaling, normalization."""

    # Resize any image to input_shape's H x W (bilinear): the model then takes any size.
    resizing: StrictBool = False
    # A random H x W window of a larger image while training (RandomCrop), the central one
    # at inference (CenterCrop: RandomCrop passes images through then): any size in.
    crop: StrictBool = False
    flip: Flip | None = None
    # Random rotation by up to +-rotation of a full turn (0.1: +-36 degrees).
    rotation: Annotated[float, Field(gt=0.0, le=0.5, strict=False)] | None = None
    # Random zoom in or out by up to this fraction of H and W.
    zoom: Annotated[float, Field(gt=0.0, lt=1.0, strict=False)] | None = None
    # Random contrast factor in [1 - contrast, 1 + contrast], on pixels in [0, 255].
    contrast: Annotated[float, Field(gt=0.0, le=1.0, strict=False)] | None = None
    rescaling: Rescaling | None = None
    normalization: Normalization | None = None

    @field_validator("rotation", "zoom", "contrast", mode="before")
    @classmethod
    def _factor(cls, value):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"must be a number, got {_show(value)}")
        return value

    @model_validator(mode="after")
    def _does_something(self):
        if self.resizing and self.crop:
            raise ValueError(
                "resizing and crop both bring the image to input_shape's size; choose one"
            )
        if not any(getattr(self, field) for field in type(self).model_fields):
            raise ValueError("an empty pre_stem does nothing; give at least one layer or drop it")
        return self

    @property
    def takes_any_size(self) -> bool:
        """Whether the pre-stem's input is (None, None, C): it resizes or crops."""
        return self.resizing or self.crop

    @property
    def augments(self) -> bool:
        return any((self.crop, self.flip, self.rotation, self.zoom, self.contrast))


class Classifier(_Model):
    """avg_pool: global average pool -> softmax (ResNet). flatten: flatten -> dense layers
    -> softmax (VGG). conv: dropout -> 1x1 conv to n_classes maps -> ReLU -> global average
    pool -> softmax (SqueezeNet: no dense layer). avg_pool_dropout: global average pool ->
    dropout -> softmax (GoogLeNet). aux: auxiliary classifiers besides the main one."""

    kind: Literal["avg_pool", "flatten", "conv", "avg_pool_dropout"]
    dense_units: list[Filters] = Field(default_factory=list, max_length=8)
    dropout: Rate = 0.0
    aux: AuxClassifier | None = None
    # A multi-output classifier: one named output per head, after the shared pooling (and
    # dense layers). None: the single `predictions` output of n_classes scores.
    heads: list[Head] | None = Field(None, max_length=64)

    @field_validator("heads")
    @classmethod
    def _heads_are_distinct(cls, heads, info: ValidationInfo):
        if heads is None:
            return heads
        if not heads:
            raise ValueError("must list at least one head (or leave heads out)")
        names = [head.name for head in heads]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"the head name {twice[0]!r} is used more than once")
        if info.data.get("kind") == "conv":
            raise ValueError(
                "not available with classifier kind 'conv' (its 1x1 conv is the single "
                "head); use avg_pool, avg_pool_dropout or flatten"
            )
        if info.data.get("aux") is not None:
            raise ValueError("not available with auxiliary classifiers (classifier.aux)")
        return heads

    @model_validator(mode="after")
    def _dense_needs_flatten(self):
        if self.kind == "avg_pool" and (self.dense_units or self.dropout):
            raise ValueError("dense_units and dropout apply only to classifier kind 'flatten'")
        if self.kind in ("conv", "avg_pool_dropout") and self.dense_units:
            raise ValueError("dense_units apply only to classifier kind 'flatten'")
        return self


class Twin(_Model):
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


class AutoEncoder(_Model):
    """The convolutional AutoEncoder (architecture: autoencoder). The encoder is one 3x3/2
    convolution (ReLU) per entry of filters, each halving H and W; the decoder mirrors it
    with 3x3/2 transposed convolutions (ReLU) in reverse order, each doubling H and W, and a
    last 3x3 convolution restores the input's channels (output_activation). Loss: MSE."""

    filters: list[Filters] = Field(min_length=1, max_length=16)
    output_activation: Literal["sigmoid", "linear"] = "sigmoid"


ARCHITECTURES = ("classifier", "siamese", "autoencoder", "rcnn", "fast_rcnn", "faster_rcnn")
DETECTORS = ("rcnn", "fast_rcnn", "faster_rcnn")
# The sections each architecture needs (the others are refused as stray).
ARCHITECTURE_SECTIONS = {
    "classifier": ("learner", "classifier"),
    "siamese": ("learner", "twin"),
    "autoencoder": ("autoencoder",),
    "rcnn": ("learner", "classifier", "detector"),
    "fast_rcnn": ("learner", "classifier", "detector"),
    "faster_rcnn": ("learner", "classifier", "detector"),
}
# The architectures that take n_classes (default 1000).
N_CLASSES_ARCHITECTURES = ("classifier", *DETECTORS)
OPTIONAL_SECTIONS = ("learner", "classifier", "twin", "autoencoder", "detector")

# The pre-stem works with every architecture, but not every step suits every one.
# Geometric steps move pixels (a box drawn on the image would no longer fit it); random
# steps change the image from one training step to the next.
PRE_STEM_GEOMETRIC = ("resizing", "crop", "flip", "rotation", "zoom")
PRE_STEM_RANDOM = ("crop", "flip", "rotation", "zoom", "contrast")
_DETECTOR_PRE_STEM = (
    PRE_STEM_GEOMETRIC,
    "photometric",
    "it would move the image under its boxes (pixel corners)",
)
# architecture -> (refused steps, what the allowed ones are, why): a detector takes only
# photometric steps; an AutoEncoder only deterministic ones, since it reconstructs the
# pre-stemmed image, and a random step would change that target at every training step.
PRE_STEM_REFUSED: dict[str, tuple[tuple[str, ...], str, str]] = {
    "autoencoder": (
        PRE_STEM_RANDOM,
        "deterministic",
        "the model reconstructs the pre-stemmed image, and a random step would change its "
        "training target from one step to the next",
    ),
    **{architecture: _DETECTOR_PRE_STEM for architecture in DETECTORS},
}


def _allowed_steps(refused: tuple[str, ...]) -> list[str]:
    return [step for step in PreStem.model_fields if step not in refused]


IoU = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
BoxScale = Annotated[float, Field(gt=0.0, le=10.0, strict=True)]


def _list_to_tuple(value):
    """YAML has lists, the spec's fixed-length fields are tuples."""
    return tuple(value) if isinstance(value, list) else value


TopN = Annotated[StrictInt, Field(ge=1, le=100_000)]
AnchorSide = Annotated[float, Field(gt=0.0, le=MAX_IMAGE_SIDE, strict=False)]
AnchorRatio = Annotated[float, Field(ge=0.05, le=20.0, strict=False)]


def _distinct_numbers(value):
    """A list of numbers (no booleans), each once."""
    if isinstance(value, list | tuple):
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
            raise ValueError(f"must be a list of numbers, got {_show(value)}")
        if len(set(value)) < len(value):
            raise ValueError(f"must not repeat a value, got {_show(value)}")
        return tuple(float(v) for v in value)
    return value


class RPN(_Model):
    """Faster R-CNN's region proposal network and proposal layer (architecture faster_rcnn).

    Anchors: one per (scale, ratio) pair at every cell of the shared maps, centred on the
    cell, side scale pixels for ratio 1; ratio is height / width at the same area (the paper:
    128, 256, 512 and 0.5, 1, 2). channels: the 3x3 conv's width (512 for VGG16). Anchor
    labels for training: foreground at IoU >= fg_iou with a ground-truth box (and the best
    anchor of each box), background below bg_iou; batch anchors sampled per image, at most
    fg_fraction of them foreground. Proposals: deltas decoded onto the anchors, clipped to
    the image, boxes narrower or shorter than min_size pixels dropped, the pre_nms top
    scores kept, non-maximum suppression at nms_iou, then the post_nms top (train_: while
    training, test_: at inference).
    """

    anchor_scales: tuple[AnchorSide, ...] = Field(
        (128.0, 256.0, 512.0), min_length=1, max_length=16
    )
    anchor_ratios: tuple[AnchorRatio, ...] = Field((0.5, 1.0, 2.0), min_length=1, max_length=16)
    channels: Filters = 512
    batch: Annotated[StrictInt, Field(ge=2, le=100_000)] = 256
    fg_fraction: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.5
    fg_iou: IoU = 0.7
    bg_iou: IoU = 0.3
    nms_iou: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.7
    min_size: Annotated[float, Field(ge=0.0, le=MAX_IMAGE_SIDE, strict=False)] = 16.0
    train_pre_nms: TopN = 6000
    train_post_nms: TopN = 2000
    test_pre_nms: TopN = 6000
    test_post_nms: TopN = 300

    _numbers = field_validator("anchor_scales", "anchor_ratios", mode="before")(_distinct_numbers)

    @field_validator("min_size", mode="before")
    @classmethod
    def _number(cls, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {_show(value)}")
        return float(value)

    @model_validator(mode="after")
    def _consistent(self):
        if self.bg_iou > self.fg_iou:
            raise ValueError(
                f"bg_iou ({self.bg_iou}) must not exceed fg_iou ({self.fg_iou}): background "
                "anchors overlap a ground-truth box less than foreground ones"
            )
        for stage in ("train", "test"):
            pre, post = getattr(self, f"{stage}_pre_nms"), getattr(self, f"{stage}_post_nms")
            if post > pre:
                raise ValueError(
                    f"{stage}_post_nms ({post}) must not exceed {stage}_pre_nms ({pre}): "
                    "NMS keeps some of the pre_nms top boxes"
                )
        return self


class Detections(_Model):
    """Faster R-CNN's inference output: per image, every class's boxes scoring at least
    score_threshold, non-maximum suppression at nms_iou within each class, the
    max_detections best kept (padded to max_detections)."""

    max_detections: Annotated[StrictInt, Field(ge=1, le=10_000)] = 100
    score_threshold: Annotated[float, Field(ge=0.0, lt=1.0, strict=True)] = 0.05
    nms_iou: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.3


class Detector(_Model):
    """A region-based detector's settings (architecture rcnn, fast_rcnn or faster_rcnn).
    The backbone is the spec's stem + learner; the classifier section (kind flatten) gives
    the region head's dense layers (fc1, fc2: 4096 each for VGG16). Boxes are (x1, y1, x2,
    y2) in pixels.

    n_regions: regions per image the built model takes (R-CNN's mini-batch of 128; Fast
    R-CNN's R / N = 64). rcnn: crop_size, the side every region is warped to (227 in the
    paper). fast_rcnn: pool_size (RoI max pooling to pool_size x pool_size, 7) and
    drop_last_pool (VGG: RoI pooling replaces the last max pool, so it reads conv5_3 at
    stride 16). Region sampling for training: fg_fraction of the regions are foreground
    (IoU >= fg_iou with a ground-truth box), the rest background (bg_iou <= IoU < fg_iou);
    box_std scales the regression targets (dx, dy, dw, dh). faster_rcnn: pool_size and
    drop_last_pool as fast_rcnn, n_regions the RoIs sampled per image inside its training
    model (128 in the paper), and its own rpn and detections sections.
    """

    n_regions: Annotated[StrictInt, Field(ge=1, le=4096)] = 64
    crop_size: Annotated[StrictInt, Field(ge=8, le=1024)] | None = None
    pool_size: Annotated[StrictInt, Field(ge=1, le=64)] | None = None
    drop_last_pool: StrictBool = False
    fg_fraction: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.25
    fg_iou: IoU = 0.5
    bg_iou: IoU = 0.1
    box_std: tuple[BoxScale, BoxScale, BoxScale, BoxScale] = (0.1, 0.1, 0.2, 0.2)
    # faster_rcnn only (required there, `{}` for the defaults): the RPN and the detections.
    rpn: RPN | None = None
    detections: Detections | None = None

    _list_is_fine = field_validator("box_std", mode="before")(_list_to_tuple)

    @model_validator(mode="after")
    def _ious_in_order(self):
        if self.bg_iou >= self.fg_iou:
            raise ValueError(
                f"bg_iou ({self.bg_iou}) must be below fg_iou ({self.fg_iou}): background "
                "regions overlap a ground-truth box less than foreground ones"
            )
        return self


class Spec(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    # Derived from `name` when absent (my_net -> MyNet, family "custom", title = class).
    class_name: Annotated[str, Field(min_length=1, max_length=64)]
    family: Annotated[str, Field(min_length=1, max_length=64)] = "custom"
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    citation: Annotated[str, Field(max_length=400)] = ""
    reference: Annotated[str, Field(max_length=200)] = ""
    input_shape: tuple[Side, Side, Annotated[StrictInt, Field(ge=1, le=4096)]]
    # Which macro-architecture: classifier (stem -> learner -> classifier), siamese (one twin
    # applied to two inputs), autoencoder (encoder -> decoder), rcnn, fast_rcnn and
    # faster_rcnn (region-based detectors).
    architecture: Literal[
        "classifier", "siamese", "autoencoder", "rcnn", "fast_rcnn", "faster_rcnn"
    ] = "classifier"
    # Classifiers and detectors only: 1000 when absent; none with classifier.heads (each
    # head has its own).
    n_classes: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    conventions: Conventions = Conventions()
    pre_stem: PreStem | None = None
    stem: Stem = Stem()
    # Each architecture's sections (ARCHITECTURE_SECTIONS): the backbone (learner, with the
    # stem) of a classifier, a twin or a detector, the classifier (a detector's region
    # head), the twin, the autoencoder, the detector.
    learner: Learner | None = None
    classifier: Classifier | None = None
    twin: Twin | None = None
    autoencoder: AutoEncoder | None = None
    detector: Detector | None = None

    _name_is_identifier = field_validator("name")(_identifier)
    _class_name_is_free = field_validator("class_name")(_class_name)
    _single_line = field_validator("family", "citation", "reference")(_one_line)
    _title_line = field_validator("title")(_title)
    _safe_description = field_validator("description")(_safe_text)

    @model_validator(mode="before")
    @classmethod
    def _derive_names(cls, data):
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            if "class_name" not in data and _IDENTIFIER.match(data["name"]):
                data = {**data, "class_name": _derive_class_name(data["name"])}
            if "title" not in data and isinstance(data.get("class_name"), str):
                data = {**data, "title": data["class_name"]}
        return data

    @model_validator(mode="before")
    @classmethod
    def _classifier_defaults(cls, data):
        architecture = data.get("architecture", "classifier") if isinstance(data, dict) else None
        if architecture in N_CLASSES_ARCHITECTURES:
            classifier = data.get("classifier")
            heads = isinstance(classifier, dict) and classifier.get("heads") is not None
            if data.get("n_classes") is None and not heads:  # heads have their own
                data = {**data, "n_classes": 1000}
        return data

    @model_validator(mode="before")
    @classmethod
    def _sections_match_architecture(cls, data):
        """Before the sections are validated, so a stray or missing one is one clear line."""
        if not isinstance(data, dict):
            return data
        architecture = data.get("architecture", "classifier")
        if architecture not in ARCHITECTURE_SECTIONS:
            return data  # the Literal reports it
        needed = ARCHITECTURE_SECTIONS[architecture]
        for section in needed:
            if data.get(section) is None:
                raise ValueError(
                    f"{section}: required for architecture {architecture!r} "
                    f"(which needs {', '.join(needed)})"
                )
        for section in OPTIONAL_SECTIONS:
            if section not in needed and data.get(section) is not None:
                raise ValueError(
                    f"{section}: does not apply to architecture {architecture!r} "
                    f"(which takes {', '.join(needed)})"
                )
        if architecture not in N_CLASSES_ARCHITECTURES and data.get("n_classes") is not None:
            raise ValueError(
                f"n_classes: applies only to architectures "
                f"{', '.join(map(repr, N_CLASSES_ARCHITECTURES))}, not {architecture!r}"
            )
        stem = data.get("stem")
        if architecture == "autoencoder" and isinstance(stem, dict) and stem.get("kind") != "none":
            raise ValueError(
                "stem: does not apply to architecture 'autoencoder' (its encoder starts at "
                "the pixels)"
            )
        if architecture == "autoencoder" and data.get("conventions") is not None:
            raise ValueError(
                "conventions: do not apply to architecture 'autoencoder' (its convolutions "
                "are biased and have no BatchNormalization)"
            )
        return data

    @model_validator(mode="after")
    def _heads_replace_n_classes(self):
        if self.pre_stem is not None:
            self._check_pre_stem_steps()
        heads = self.classifier.heads if self.classifier is not None else None
        if heads is not None and self.n_classes is not None:
            raise ValueError(
                "n_classes: does not apply with classifier.heads (each head has its own "
                "n_classes); drop it (--set n_classes=null)"
            )
        if self.pre_stem and self.pre_stem.normalization:
            channels = self.input_shape[2]
            width = len(self.pre_stem.normalization.mean)
            if width not in (1, channels):
                raise ValueError(
                    f"pre_stem.normalization: mean and std have {width} values, but the "
                    f"input has {channels} channel(s); give one per channel or one for all"
                )
        return self

    def _check_pre_stem_steps(self) -> None:
        """The pre-stem steps an architecture cannot take (PRE_STEM_REFUSED), one line."""
        refused = PRE_STEM_REFUSED.get(self.architecture)
        if refused is None:
            return
        steps, allowed, reason = refused
        for step in steps:
            if getattr(self.pre_stem, step):
                raise ValueError(
                    f"pre_stem.{step}: architecture {self.architecture!r} takes only the "
                    f"{allowed} pre-stem steps ({', '.join(_allowed_steps(steps))}): {reason}"
                )

    _list_is_fine = field_validator("input_shape", mode="before")(_list_to_tuple)

    @model_validator(mode="after")
    def _aux_classifiers_have_taps(self):
        groups = self.learner.groups if self.learner is not None else []
        tapped = [index for index, group in enumerate(groups) if getattr(group, "aux_after", None)]
        if tapped and self.architecture != "classifier":
            raise ValueError(
                f"learner.groups[{tapped[0]}].aux_after: auxiliary classifiers apply only to "
                f"architecture 'classifier', not {self.architecture!r}"
            )
        if self.architecture != "classifier":
            return self
        if self.classifier.aux is not None and not tapped:
            raise ValueError(
                "classifier.aux: no learner group lists aux_after, so the auxiliary "
                "classifiers have no block output to attach to"
            )
        if tapped and self.classifier.aux is None:
            raise ValueError(
                f"learner.groups[{tapped[0]}].aux_after: needs classifier.aux (the kind of "
                "auxiliary classifier to attach)"
            )
        return self

    @model_validator(mode="after")
    def _detector_settings(self):
        """A detector's region head and its architecture's own detector settings."""
        if self.architecture in DETECTORS:
            self._check_detector()
        return self

    def _check_detector(self) -> None:
        detector, arch = self.detector, self.architecture
        if self.classifier.kind != "flatten" or self.classifier.aux is not None:
            raise ValueError(
                f"classifier.kind: a {arch} detector's region head is kind 'flatten' (flatten "
                "-> dense_units -> class scores, box deltas), without aux"
            )
        if self.classifier.heads is not None:
            raise ValueError(
                f"classifier.heads: not available with architecture {arch!r} (its region head "
                "has its own two outputs: class scores and box deltas)"
            )
        settings = {
            "rcnn": ("crop_size",),
            "fast_rcnn": ("pool_size", "drop_last_pool"),
            "faster_rcnn": ("pool_size", "drop_last_pool", "rpn", "detections"),
        }
        for field in ("crop_size", "pool_size", "drop_last_pool", "rpn", "detections"):
            value = getattr(detector, field)
            if field in settings[arch]:
                if value is None:
                    raise ValueError(f"detector.{field}: required for architecture {arch!r}")
            elif value not in (None, False):
                others = [name for name in DETECTORS if field in settings[name]]
                raise ValueError(
                    f"detector.{field}: applies only to architecture "
                    f"{' or '.join(map(repr, others))}, not {arch!r}"
                )
        if detector.drop_last_pool and self.learner.block != "vgg":
            raise ValueError(
                "detector.drop_last_pool: applies only to a vgg learner (its groups end with "
                f"the max pool that RoI pooling replaces), not {self.learner.block!r}"
            )

    @property
    def keras_reference(self) -> bool:
        """Whether layer names follow a keras.applications model (weights load by name)."""
        return self.reference.startswith("keras.applications.")


# --------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read_yaml(path: Path, source: str) -> Any:
    try:
        with open(path, "rb") as handle:  # bounded: a pipe or a huge file cannot flood memory
            data = handle.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(source, "", f"is over {MAX_SPEC_BYTES:,} bytes; not a spec file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(source, "", "no such file") from None
    except IsADirectoryError:
        raise SpecError(source, "", "is a directory, not a spec file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(source, "", f"cannot read: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise SpecError(source, "", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    return _parse_yaml(text, source)


def _parse_yaml(text: str, source: str, path: str = "", what: str = "invalid YAML") -> Any:
    """yaml.safe_load, with every way it can fail turned into one SpecError line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark and not path else path
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [""])[0]
        raise SpecError(source, where, f"{what}: {problem[:200]}") from None
    except RecursionError:
        raise SpecError(source, path, f"{what}: nested too deeply") from None
    except ValueError as exc:
        # PyYAML converts numbers with int()/float(); Python refuses integers of more
        # than 4300 digits, and dates like 2024-13-45 do not exist.
        if "integer string conversion" in str(exc):
            raise SpecError(source, path, f"{what}: a number has too many digits") from None
        raise SpecError(source, path, f"{what}: {str(exc)[:200]}") from None
    except Exception as exc:  # whatever else the YAML constructors raise
        raise SpecError(source, path, f"{what}: {type(exc).__name__}") from None


def _exists(target: str) -> bool:
    try:
        return Path(target).exists()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def load_raw(target: str) -> tuple[dict, str]:
    """A preset name or a path to a YAML spec -> (raw mapping, source label)."""
    if not target.isprintable() or not target:
        raise SpecError(repr(target), "", "a preset name or file path must be printable text")
    looks_like_file = target.endswith((".yaml", ".yml")) or "/" in target or "\\" in target
    if not looks_like_file:
        if target in preset_names():
            return _read_yaml(PRESETS_DIR / f"{target}.yaml", target), target
        if not _exists(target):
            close = difflib.get_close_matches(target, preset_names(), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else "; `modelgen list` shows them"
            raise SpecError(target, "", f"unknown preset{hint}")
    data = _read_yaml(Path(target), target)
    if not isinstance(data, dict):
        raise SpecError(target, "", "a spec must be a YAML mapping of fields")
    return data, target


def apply_overrides(raw: dict, overrides: list[str], source: str) -> dict:
    """Apply `--set dotted.path=value` (value parsed as YAML) to a copy of the raw spec.

    `learner.groups.0.n_blocks=2` walks mappings by key and lists by index.
    """
    import copy

    data = copy.deepcopy(raw)
    for item in overrides:
        if not item.isprintable():
            raise SpecError(source, repr(item), "--set must be printable, single-line text")
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise SpecError(source, item, "--set needs the form dotted.path=value")
        value = _parse_yaml(text, source, path, f"--set value is not valid YAML ({_show(text)})")
        node: Any = data
        keys = path.split(".")
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            here = ".".join(keys[: depth + 1])
            if isinstance(node, list):
                # isascii: "²" and "٣" pass isdigit(); a 5000-digit index fails int().
                if not (key.isascii() and key.isdigit()) or len(key) > 9 or int(key) >= len(node):
                    raise SpecError(source, here, f"no list item {key} (the list has {len(node)})")
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                elif key not in node:
                    raise SpecError(source, here, "no such field to set inside")
                else:
                    node = node[key]
            else:
                raise SpecError(source, here, "cannot set a field inside a plain value")
    return data


def _loc_to_path(loc: tuple) -> str:
    out = ""
    previous = None
    for part in loc:
        if previous == "learner" and part in LEARNER_TAGS:
            continue  # the discriminated union's tag, not a field the user wrote
        if isinstance(previous, int) and part in GRID_TAGS:
            continue  # an Inception v3 group's tag (learner.groups[0].35x35.blocks ...)
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = _SHORT_REPR.maxlong = 60


def _show(value: Any) -> str:
    """A short repr of what the user wrote, whatever it is: huge integers (beyond Python's
    int-to-str limit), deep or self-referencing YAML structures included."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        shown = _SHORT_REPR.repr(value)
    except Exception:  # a repr that fails (RecursionError, ValueError) still gets a line
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _reason(err: dict) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = _show(value)
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}, got {shown}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}, got {shown}"
    if kind == "greater_than":
        return f"must be > {ctx['gt']}, got {shown}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}, got {shown}"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("literal_error", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags")
        return f"must be one of {expected}, got {shown}"
    if kind == "union_tag_not_found":
        return f"missing the field {ctx.get('discriminator', 'block')} that picks the kind"
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"must have {bound} {limit} item(s), got {ctx.get('actual_length')}"
    if kind in ("string_too_short", "string_too_long"):
        return err["msg"].lower().replace("string should", "must") + f", got {shown}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    # int_type, float_type, bool_type, string_type, list_type, dict_type, model_type ...
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {shown}"


def _annotation_types(annotation) -> list:
    """The annotation and every type inside it (Optional, unions, Annotated, list)."""
    found = [annotation]
    for inner in getattr(annotation, "__args__", None) or ():
        found += _annotation_types(inner)
    return found


def _suggest_field(err: dict, loc: tuple) -> str:
    """For an unknown key, name the closest allowed one."""
    parent = Spec
    for part in loc[:-1]:
        if isinstance(part, int) or part in LEARNER_TAGS:
            if part in LEARNER_TAGS:
                parent = {
                    "plain": PlainLearner,
                    "vgg": VGGLearner,
                    "dense": DenseLearner,
                    "fire": FireLearner,
                    "inception_v1": InceptionV1Learner,
                    "inception_v3": InceptionV3Learner,
                }.get(part, ResidualLearner)
            continue
        info = parent.model_fields.get(part) if isinstance(parent, type) else None
        if info is None:
            return ""
        candidates = _annotation_types(info.annotation)
        parent = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if parent is None:
            return ""
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def validate(raw: Any, source: str) -> Spec:
    """Raw mapping -> Spec, or SpecError with one line per problem (field path + reason)."""
    if not isinstance(raw, dict):
        raise SpecError(source, "", "a spec must be a YAML mapping of fields")
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:10]:
            loc = tuple(err["loc"])
            reason = _reason(err)
            if err["type"] == "extra_forbidden":
                reason += _suggest_field(err, loc)
            problems.append((_loc_to_path(loc), reason))
        (path, reason), *others = problems
        raise SpecError(source, path, reason, others) from None


def load_spec(target: str, overrides: list[str] | None = None) -> tuple[Spec, str]:
    """Preset name or file (+ overrides) -> validated Spec and the source label."""
    raw, source = load_raw(target)
    if overrides:
        raw = apply_overrides(raw, overrides, source)
    return validate(raw, source), source


def spec_to_yaml(spec: Spec) -> str:
    """The fully resolved spec (every default filled in) as YAML."""
    data = spec.model_dump(mode="json", exclude_none=True)
    if spec.architecture == "autoencoder":  # its encoder starts at the pixels: no stem, no BN
        del data["stem"], data["conventions"]
    if spec.twin is not None and spec.twin.embedding_units is None:
        twin = data["twin"]  # null, not absent: absent means 4096
        data["twin"] = {"pooling": twin.pop("pooling"), "embedding_units": None, **twin}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
