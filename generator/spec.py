"""Spec: load a preset or a user's YAML file, apply --set overrides, validate.

A spec chooses STRUCTURE (stem kind, block type, where the stride sits, classifier kind,
framework conventions) and SIZES (groups, filters, blocks, dense units). Validation is
pydantic v2; every problem becomes one `SpecError` line naming the field path.
"""

from __future__ import annotations

import builtins
import difflib
import json
import keyword
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from . import pieces  # noqa: F401  (registers every piece)
from .errors import SpecError

# The limits and field types are spec's public names too (tests and users import them).
from .fields import (  # noqa: F401
    IDENTIFIER as _IDENTIFIER,
)
from .fields import (  # noqa: F401
    MAX_BLOCKS,
    MAX_FILTERS,
    MAX_IMAGE_SIDE,
    MAX_SPEC_BYTES,
    Count,
    Filters,
    Rate,
    Side,
    Stride,
    is_tag,
    list_to_tuple,
    number,
)
from .fields import Model as _Model
from .fields import show as _show
from .registry import (
    ARCHITECTURES,
    AUX,
    BLOCKS,
    CLASSIFIERS,
    POOLING_LAYER_NAMES,
    STEMS,
    group_tags,
    learner_models,
)
from .registry import sections as architecture_sections

PRESETS_DIR = Path(__file__).parent / "presets"

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
    for line_number, line in enumerate(lines, start=1):
        char = _unprintable(line)
        if char:
            raise ValueError(f"must be printable text, but line {line_number} contains {char}")
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


class Conventions(_Model):
    """Framework conventions that change layers but not the pattern."""

    # keras.applications' ResNet v1 puts a bias on convolutions that feed a
    # BatchNormalization; torchvision does not. Convolutions that do not feed a BN
    # always have a bias.
    bias_before_bn: StrictBool = False
    bn_epsilon: float = Field(1e-5, gt=0.0, lt=1.0, strict=True)
    # The weight of the old moving mean and variance at each training step: Keras' 0.99,
    # or PyTorch's momentum=0.1 (0.9 here) for its ports. Short runs need the latter: after
    # 200 steps at 0.99 the moving statistics still lag the weights.
    bn_momentum: float = Field(0.99, gt=0.0, lt=1.0, strict=True)

    @property
    def bn_args(self) -> str:
        """BatchNormalization's arguments as the templates write them (Keras' default
        momentum left out)."""
        epsilon = f"epsilon={self.bn_epsilon!r}"
        return epsilon if self.bn_momentum == 0.99 else f"momentum={self.bn_momentum!r}, {epsilon}"


def _choices(table: dict):
    """Literal[every registered key], in registration order."""
    return Literal[tuple(table)]


# The metaparameters a stem kind may take (StemKind.fields lists its own, with defaults).
STEM_FIELDS = ("n_filters", "kernel_size", "strides", "padding", "pool", "bn_relu")


class Stem(_Model):
    """What turns the pixels into the first group's input; `kind` picks a registered stem
    (generator/pieces/stems/). Each kind takes some of these metaparameters, with its own
    defaults (StemKind.fields), and refuses the others:
    n_filters: its convolution's width (the conv stem: a list gives one conv per width);
    kernel_size, strides: its (first) convolution's; padding: pixels of zeros around the
    input of each convolution, "same" (Keras' padding="same") or "valid" (none);
    pool: whether a 3x3/2 max pool follows; bn_relu: whether BN-ReLU follows its last
    convolution (false for pre-activation learners, whose blocks normalise)."""

    kind: _choices(STEMS) = "none"
    n_filters: Filters | tuple[Filters, ...] | None = None
    kernel_size: Annotated[StrictInt, Field(ge=1, le=15)] | None = None
    strides: Stride | None = None
    padding: Literal["same", "valid"] | Annotated[StrictInt, Field(ge=0, le=15)] | None = None
    pool: StrictBool | None = None
    bn_relu: StrictBool | None = None

    @field_validator("n_filters", mode="before")
    @classmethod
    def _widths(cls, value):
        """One width, or (where the kind takes a list) a list of them: checked here, so a
        bad value gets one reason rather than one per member of the union."""
        if value is None:
            return value
        values = value if isinstance(value, list | tuple) else [value]
        if isinstance(value, list | tuple) and not value:
            raise ValueError("must list at least one width")
        if len(values) > 8:
            raise ValueError(f"must list at most 8 widths, got {len(values)}")
        for item in values:
            if isinstance(item, bool) or not isinstance(item, int):
                raise ValueError(
                    f"must be a positive integer or a list of them, got {_show(value)}"
                )
            if item < 1:
                raise ValueError(f"must be >= 1, got {_show(item)}")
            if item > MAX_FILTERS:
                raise ValueError(f"must be <= {MAX_FILTERS}, got {_show(item)}")
        return tuple(value) if isinstance(value, list | tuple) else value

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value):
        """ "same", "valid" or pixels of zeros: checked here for one reason, not a union's."""
        if value is None or value in ("same", "valid"):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 15:
            return value
        raise ValueError(
            f"must be 'same', 'valid' or the pixels of zeros around the input (0 to 15), "
            f"got {_show(value)}"
        )

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data):
        """The kind's defaults for the metaparameters it takes and the spec leaves out."""
        if isinstance(data, dict):
            kind = data.get("kind", "none")
            if is_tag(kind, STEMS):
                own = STEMS[kind].fields
                data = {**data, **{k: v for k, v in own.items() if data.get(k) is None}}
        return data

    @model_validator(mode="after")
    def _fields_apply_to_the_kind(self):
        stem = STEMS[self.kind]
        for name in STEM_FIELDS:
            if name not in stem.fields and getattr(self, name) is not None:
                takes = [kind for kind, other in STEMS.items() if name in other.fields]
                if stem.plan is None:
                    why = "stem kind 'none' has no layers"
                elif not stem.fields:
                    why = f"the {self.kind} stem's sizes are the paper's"
                else:
                    why = f"the {self.kind} stem takes {', '.join(stem.fields)}"
                raise ValueError(
                    f"{name} applies only to stem kind {' or '.join(map(repr, takes))} ({why})"
                )
        if isinstance(self.n_filters, tuple) and not stem.layered:
            takes = [kind for kind, other in STEMS.items() if other.layered]
            raise ValueError(
                f"n_filters: a list of widths (one convolution each) applies only to stem kind "
                f"{' or '.join(map(repr, takes))}; the {self.kind} stem has one convolution"
            )
        return self

    @property
    def widths(self) -> tuple[int, ...]:
        """The widths of its convolutions, in order (one for every kind but a layered conv)."""
        if self.n_filters is None:
            return ()
        return self.n_filters if isinstance(self.n_filters, tuple) else (self.n_filters,)

    @property
    def scale(self) -> int:
        """How many times its strides (and its pool) divide H and W (1: kept)."""
        return (self.strides or 1) * (2 if self.pool else 1)


# The learner section: one model per registered block family, picked by `block`.
Learner = Annotated[Union[tuple(learner_models())], Field(discriminator="block")]  # noqa: UP007


class AuxClassifier(_Model):
    """Auxiliary classifiers (Inception), one on each block output a group lists in its
    aux_after; `kind` picks a registered one. `include` is the default of the built model's
    include_aux switch; `loss_weight` is the weight the emitted docstring suggests for each
    auxiliary loss."""

    kind: _choices(AUX)
    include: StrictBool = True
    loss_weight: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.3


def _classifier_layer(name: str) -> bool:
    """Whether a classifier of some registered kind (or the head switches' pooling) names a
    layer so: a head may not take that name (Keras wants every layer name once)."""
    patterns = [*POOLING_LAYER_NAMES]
    patterns += [p for kind in CLASSIFIERS.values() for p in kind.layer_names]
    return any(re.fullmatch(pattern, name) for pattern in patterns)


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
        if _classifier_layer(value):
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
        value = number(value)
        if abs(value) > 1e6:
            raise ValueError(f"must be within [-1e6, 1e6], got {_show(value)}")
        return value

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
        return [number(v) for v in value] if isinstance(value, list) else value

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
        return None if value is None else number(value)

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


# The Classifier fields that a kind takes or refuses (ClassifierKind.args).
CLASSIFIER_SIZES = ("dense_units", "dropout", "hidden_units")


class Classifier(_Model):
    """What turns the learner's maps into class scores; `kind` picks a registered one
    (generator/pieces/classifiers.py). aux: auxiliary classifiers besides the main one."""

    kind: _choices(CLASSIFIERS)
    dense_units: list[Filters] = Field(default_factory=list, max_length=8)
    dropout: Rate = 0.0
    # MobileNetV3's hidden 1x1 convolution on the pooled maps (conv_2): its width.
    hidden_units: Filters | None = None
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
        kind = info.data.get("kind")
        if is_tag(kind, CLASSIFIERS) and not CLASSIFIERS[kind].allows_heads:
            others = [name for name, other in CLASSIFIERS.items() if other.allows_heads]
            raise ValueError(
                f"not available with classifier kind {kind!r} (its output is the single "
                f"head); use {', '.join(others)}"
            )
        if info.data.get("aux") is not None:
            raise ValueError("not available with auxiliary classifiers (classifier.aux)")
        return heads

    @model_validator(mode="after")
    def _arguments_apply_to_the_kind(self):
        for arg in CLASSIFIER_SIZES:
            if getattr(self, arg) and arg not in CLASSIFIERS[self.kind].args:
                takes = [kind for kind, other in CLASSIFIERS.items() if arg in other.args]
                raise ValueError(
                    f"{arg} applies only to classifier kind {' or '.join(map(repr, takes))}, "
                    f"not {self.kind!r}"
                )
        if "hidden_units" in CLASSIFIERS[self.kind].args and self.hidden_units is None:
            raise ValueError(
                f"hidden_units: the {self.kind} classifier needs it (the width of its 1x1 "
                "convolution on the pooled maps)"
            )
        return self


def _allowed_steps(refused: tuple[str, ...]) -> list[str]:
    return [step for step in PreStem.model_fields if step not in refused]


class _Spec(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    # Derived from `name` when absent (my_net -> MyNet, family "custom", title = class).
    class_name: Annotated[str, Field(min_length=1, max_length=64)]
    family: Annotated[str, Field(min_length=1, max_length=64)] = "custom"
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    citation: Annotated[str, Field(max_length=400)] = ""
    reference: Annotated[str, Field(max_length=200)] = ""
    input_shape: tuple[Side, Side, Annotated[StrictInt, Field(ge=1, le=4096)]]
    # Which macro-architecture (generator/pieces/architectures/): classifier (stem ->
    # learner -> classifier), siamese (one twin applied to two inputs), autoencoder
    # (encoder -> decoder), rcnn, fast_rcnn and faster_rcnn (region-based detectors).
    architecture: _choices(ARCHITECTURES) = "classifier"
    # Classifiers and detectors only: 1000 when absent; none with classifier.heads (each
    # head has its own).
    n_classes: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    conventions: Conventions = Conventions()
    pre_stem: PreStem | None = None
    stem: Stem = Stem()
    # Each architecture's sections (Architecture.sections): the backbone (learner, with the
    # stem) of a classifier, a twin or a detector, the classifier (a detector's region
    # head), then the architectures' own sections (twin, autoencoder, detector: added from
    # the registry below).
    learner: Learner | None = None
    classifier: Classifier | None = None

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
        if is_tag(architecture, ARCHITECTURES) and ARCHITECTURES[architecture].takes_n_classes:
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
        if not is_tag(architecture, ARCHITECTURES):
            return data  # the Literal reports it
        arch = ARCHITECTURES[architecture]
        needed = arch.sections
        unknown = [key for key in data if isinstance(key, str) and key not in cls.model_fields]
        for section in needed:
            if data.get(section) is None:
                typo = difflib.get_close_matches(section, unknown, n=1, cutoff=0.6)
                if typo:  # `lerner:` is why learner is missing: say so, not "required"
                    raise ValueError(f"{typo[0]}: unknown section; did you mean {section!r}?")
                stray = f"; unknown: {', '.join(map(repr, unknown))}" if unknown else ""
                raise ValueError(
                    f"{section}: required for architecture {architecture!r} "
                    f"(which needs {', '.join(needed)}){stray}"
                )
        for section in architecture_sections():
            if section not in needed and data.get(section) is not None:
                raise ValueError(
                    f"{section}: does not apply to architecture {architecture!r} "
                    f"(which takes {', '.join(needed)})"
                )
        if not arch.takes_n_classes and data.get("n_classes") is not None:
            takes = [name for name, other in ARCHITECTURES.items() if other.takes_n_classes]
            raise ValueError(
                f"n_classes: applies only to architectures "
                f"{', '.join(map(repr, takes))}, not {architecture!r}"
            )
        stem = data.get("stem")
        if not arch.has_backbone and isinstance(stem, dict) and stem.get("kind") != "none":
            raise ValueError(
                f"stem: does not apply to architecture {architecture!r} (its encoder starts at "
                "the pixels)"
            )
        if not arch.has_backbone and data.get("conventions") is not None:
            raise ValueError(
                f"conventions: do not apply to architecture {architecture!r} (its "
                "convolutions are biased and have no BatchNormalization)"
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
        refused = ARCHITECTURES[self.architecture].pre_stem_refused
        if refused is None:
            return
        steps, allowed, reason = refused
        for step in steps:
            if getattr(self.pre_stem, step):
                raise ValueError(
                    f"pre_stem.{step}: architecture {self.architecture!r} takes only the "
                    f"{allowed} pre-stem steps ({', '.join(_allowed_steps(steps))}): {reason}"
                )

    _list_is_fine = field_validator("input_shape", mode="before")(list_to_tuple)

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
    def _stem_args_are_the_learners(self):
        """A stem or a classifier that takes learner metaparameters (StemKind.args:
        MobileNet's alpha; ClassifierKind.learner_args: MobileNetV3's nonlinearity) needs
        a learner that has them."""
        classifier = getattr(self, "classifier", None)
        takers = [("stem", self.stem.kind, STEMS[self.stem.kind].args)]
        if isinstance(classifier, Classifier):
            kind = classifier.kind
            takers.append(("classifier", kind, CLASSIFIERS[kind].learner_args))
        for section, kind, args in takers:
            missing = [arg for arg in args if not hasattr(self.learner, arg)]
            if missing:
                takes = [
                    tag
                    for tag, block in BLOCKS.items()
                    if all(arg in block.learner.model_fields for arg in args)
                ]
                block = getattr(self.learner, "block", None)
                raise ValueError(
                    f"{section}.kind: the {kind} {section} takes learner.{missing[0]}, which "
                    f"a {block} learner does not have (a {' or '.join(takes)} learner has it)"
                )
        return self

    @model_validator(mode="after")
    def _architecture_rules(self):
        """The architecture's own cross-section rules (a detector's region head and its
        settings, say)."""
        check = ARCHITECTURES[self.architecture].check
        if check is not None:
            check(self)
        return self

    @property
    def keras_reference(self) -> bool:
        """Whether layer names follow a keras.applications model (weights load by name)."""
        return self.reference.startswith("keras.applications.")


def _section_fields() -> dict:
    """The architectures' own sections (twin, autoencoder, detector), each once."""
    found: dict = {}
    for arch in ARCHITECTURES.values():
        if arch.section is not None:
            name, model = arch.section
            found.setdefault(name, (model | None, None))
    return found


Spec = create_model("Spec", __base__=_Spec, __module__=__name__, **_section_fields())


# --------------------------------------------------------------------------- loading


SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> str:
    """The spec's JSON Schema (pydantic's, from the same models validate() uses), as
    deterministic JSON text: what `modelgen schema` prints for editors (a YAML file's
    `# yaml-language-server: $schema=...` line) and validators."""
    schema = {"$schema": SCHEMA_DIALECT, **Spec.model_json_schema()}
    schema["title"] = "modelgen spec"
    schema["description"] = (
        "A modelgen spec: a network by its metaparameters (see `modelgen show PRESET`)."
    )
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def matching_presets(patterns: list[str]) -> list[str]:
    """The presets matching any of the shell-style patterns (fnmatch, any case), in name
    order; every preset when there are none. A pattern that matches nothing is a
    SpecError naming it."""
    import fnmatch

    names = preset_names()
    if not patterns:
        return names
    found: set[str] = set()
    for pattern in patterns:
        matches = {name for name in names if fnmatch.fnmatchcase(name.lower(), pattern.lower())}
        if not matches:
            shown = pattern if pattern.isprintable() else repr(pattern)
            raise SpecError(shown, "", "no preset matches; `modelgen list` shows them all")
        found |= matches
    return sorted(found)


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


class _SpecLoader(yaml.SafeLoader):
    """yaml.safe_load's loader (no tag builds an object), reading 1e-5 as the number it is
    in YAML 1.2 and JSON: YAML 1.1 (PyYAML) wants a dot (1.0e-5) and reads 1e-5 as the
    string '1e-5', which a number field would refuse for no reason the user can see.

    A key written twice in one mapping is refused, naming it and both lines: PyYAML keeps
    the last silently, so a typo'd override (`n_classes: 1000` ... `n_classes: 10`) would
    be lost. Keys a merge (`<<: *base`) brings in may be overridden: that is what it is for.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if first is not key_node:
                    lines = (first.start_mark.line + 1, key_node.start_mark.line + 1)
                    where = f"on lines {lines[0]} and {lines[1]}"
                    if lines[0] == lines[1]:
                        where = f"twice on line {lines[0]}"
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_show(key)} {where}", key_node.start_mark
                    )
        return super().construct_mapping(node, deep=deep)


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse_yaml(text: str, source: str, path: str = "", what: str = "invalid YAML") -> Any:
    """Safe YAML loading, with every way it can fail turned into one SpecError line."""
    try:
        return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 (a SafeLoader)
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


def preset_name(target: str) -> str:
    """The preset target names, in any case (ResNet18 is resnet18: a note on stderr says
    so); else a SpecError with the nearest name."""
    names = preset_names()
    if target in names:
        return target
    folded = {name.lower(): name for name in names}.get(target.lower())
    if folded is not None:
        sys.stderr.write(f"note: {target}: the preset is called '{folded}'\n")
        return folded
    close = difflib.get_close_matches(target.lower(), names, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else "; `modelgen list` shows them"
    raise SpecError(target, "", f"unknown preset{hint}")


def load_raw(target: str) -> tuple[dict, str]:
    """A preset name or a path to a YAML spec -> (raw mapping, source label)."""
    if not target.isprintable() or not target:
        raise SpecError(repr(target), "", "a preset name or file path must be printable text")
    looks_like_file = target.endswith((".yaml", ".yml")) or "/" in target or "\\" in target
    if not looks_like_file:
        if target in preset_names():
            return _read_yaml(PRESETS_DIR / f"{target}.yaml", target), target
        if not _exists(target):  # a preset in another case, or an error line
            name = preset_name(target)
            return _read_yaml(PRESETS_DIR / f"{name}.yaml", name), name
    data = _read_yaml(Path(target), target)
    if not isinstance(data, dict):
        raise SpecError(target, "", "a spec must be a YAML mapping of fields")
    return data, target


def apply_overrides(raw: dict, overrides: list[str], source: str) -> dict:
    """Apply `--set dotted.path=value` (value parsed as YAML) to a copy of the raw spec.

    `learner.groups.0.n_blocks=2` walks mappings by key and lists by index; an index may
    also be written as the errors print it, `learner.groups[0].n_blocks=2`.
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
        steps = _override_steps(path, source, item)
        keys = [key for key, _ in steps]
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            here = "".join(shown for _, shown in steps[: depth + 1])
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
                    names = [name for name in node if isinstance(name, str)]
                    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    raise SpecError(source, here, f"no such field to set inside{hint}")
                else:
                    node = node[key]
            else:
                raise SpecError(source, here, "cannot set a field inside a plain value")
    return data


_PATH_PART = re.compile(r"(?P<name>[^\[\]]*)(?P<indexes>(?:\[[^\[\]]*\])*)")


def _override_steps(path: str, source: str, item: str) -> list[tuple[str, str]]:
    """A --set path's keys, each with the text it had in the path (for error lines):
    `a.b.0` and `a.b[0]` both give the keys a, b, 0."""
    steps: list[tuple[str, str]] = []
    for part in path.split("."):
        match = _PATH_PART.fullmatch(part)
        if match is None:
            raise SpecError(source, item, "--set path: dotted keys, each with optional [index]")
        name, indexes = match["name"], match["indexes"]
        if name or not indexes:
            steps.append((name, f".{name}" if steps else name))
        steps += [(index[1:-1], index) for index in re.findall(r"\[[^\[\]]*\]", indexes)]
    return steps


def _loc_to_path(loc: tuple) -> str:
    out = ""
    previous = None
    for part in loc:
        if previous == "learner" and part in BLOCKS:
            continue  # the discriminated union's tag, not a field the user wrote
        if isinstance(previous, int) and part in group_tags():
            continue  # a group-level union's tag (learner.groups[0].35x35.blocks ...)
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


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
    """For an unknown key, name the closest allowed one, else list the allowed ones."""
    parent = Spec
    for part in loc[:-1]:
        if isinstance(part, int) or part in BLOCKS:
            if part in BLOCKS:
                parent = BLOCKS[part].learner
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
    fields = list(parent.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; the fields here are {', '.join(fields)} (modelgen schema lists them all)"


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
    classifier = data.get("classifier")
    if classifier is not None:  # only the arguments its kind takes (no dense_units: []
        takes = CLASSIFIERS[classifier["kind"]].args  # under avg_pool)
        for arg in CLASSIFIER_SIZES:
            if arg not in takes:
                classifier.pop(arg, None)
    arch = ARCHITECTURES[spec.architecture]
    if not arch.has_backbone:  # its encoder starts at the pixels: no stem, no BN
        del data["stem"], data["conventions"]
    if arch.dump is not None:
        arch.dump(spec, data)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
