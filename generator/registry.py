"""The registry: every piece of a network, declared once, under its tag.

A piece is a block type (what a learner's groups are made of), a stem kind, a classifier
kind, an auxiliary classifier kind or an architecture. Each is declared in ONE module of
generator/pieces/ (its spec model, its planner, its templates, the layer names it writes,
its own rules) and registered here by that module. Everything that enumerates pieces asks
the registry: the spec's discriminated unions and Literals, the did-you-mean hints, the
template tables, the architecture sections and rules, the detector set, the harness's task
kinds, the diagram. tests/test_registry.py fails when a registered piece lacks its
template, its planner or its layer names.

Importing generator.pieces registers every piece (generator/spec.py does it first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """How `modelgen verify` and the GPU smoke run train a model of a family on one
    synthetic batch: a Keras optimizer (its registered name), its learning rate, and why
    (a family's paper, or what a few steps on a tiny batch need). JSON-able as_task()."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    why: str = "Adam 1e-3: its step size does not grow with the gradient"

    def as_task(self) -> dict:
        return {"optimizer": self.optimizer, "learning_rate": self.learning_rate}


DEFAULT_RECIPE = Recipe()


@dataclass(frozen=True)
class BlockType:
    """A learner block type (`learner.block`). Its group planner mirrors its templates.

    `group_name` and `first_index` give keras.applications' group names (conv2..conv5 for
    ResNet, block1..block5 for VGG), so weights copy across by layer name. `templates` are
    the learner, group and block pieces in reading order (the learner template first).
    `values` holds what this family's own templates read besides (block.expansion ...).
    """

    tag: str
    learner: type  # the pydantic model of the learner section; its `block` Literal has tag
    plan_group: Callable  # (spec, counter, shape, group) -> shape
    templates: tuple[str, ...]
    group_name: str
    first_index: int
    learner_doc: str
    # The layer names the learner's pieces write (regular expressions matched in full).
    layer_names: tuple[str, ...]
    # A group's layer-name prefix and the layer that leaves its output in the built model:
    # group_layers(spec, index, shape in) -> ("conv2", "conv2_block3_out") (see plan.Stage).
    group_layers: Callable | None = None
    # Learner-level metaparameters (spec.learner fields, METAPARAMETERS entries) the learner
    # function takes after `groups`.
    learner_args: tuple[str, ...] = ()
    # A piece between consecutive groups (DenseNet's transition, SqueezeNet's and
    # GoogLeNet's max pools): plan_between(spec, c, shape), its stage named between_name +
    # the index of the group it follows (pool2 after conv2).
    plan_between: Callable | None = None
    between_name: str = ""
    between_layers: Callable | None = None  # (spec, index of the group after it) -> names
    # The tail: layers after the last group that stay with include_top=False (the final
    # BN-ReLU of pre-activation nets, MobileNetV2's last 1x1 convolution): plan_tail(spec,
    # c, shape), its stage named tail_name.
    plan_tail: Callable | None = None
    tail_name: str = ""
    # Its prefix and its output layer, or a function of the spec that gives them (a tail
    # numbered after the last block: Xception's block14).
    tail_layers: tuple[str, str] | Callable = ("", "")
    tail_detail: str = "BN-ReLU"  # what it does, in the summary and the diagram
    # Tags of a group-level discriminated union (Inception v3's `grid`): pydantic puts them
    # in an error's location, and the spec's error lines leave them out.
    group_tags: tuple[str, ...] = ()
    # Templates of units that several pieces call (Inception v3's conv_bn): they open the
    # file, once, whichever pieces need them.
    helpers: tuple[str, ...] = ()
    # learner field -> the template its option needs when set (se_ratio: the SE link), or
    # "field=value" -> the template that value needs (shortcut=zero_pad: ZeroChannels).
    options: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    # How verify trains this family's networks (DEFAULT_RECIPE unless it needs another).
    recipe: Recipe = DEFAULT_RECIPE

    def stage_tail_layers(self, spec) -> tuple[str, str]:
        """(prefix, output layer) of the tail's stage for this spec."""
        return self.tail_layers(spec) if callable(self.tail_layers) else self.tail_layers

    def pieces(self, learner) -> list[str]:
        """The learner's templates for this spec's learner section (options included)."""
        chosen = [name for option, name in self.options.items() if _chosen(learner, option)]
        return [*self.templates, *chosen]

    def __getattr__(self, name: str):
        # Only reached for names that are not fields: the family's template values.
        values = object.__getattribute__(self, "values")
        if name in values:
            return values[name]
        raise AttributeError(name)

    @property
    def group_model(self) -> Any:
        return self.learner.model_fields["groups"].annotation.__args__[0]

    @property
    def returns_taps(self) -> bool:
        """The learner returns (x, taps): its groups name blocks that feed auxiliary
        classifiers (aux_after)."""
        return any(
            "aux_after" in getattr(model, "model_fields", {}) for model in _models(self.group_model)
        )

    @property
    def has_blocks(self) -> bool:
        """Whether blocks tear off on their own besides groups (VGG's groups hold the layers)."""
        return any(name.startswith("blocks/") for name in self.templates)


@dataclass(frozen=True)
class StemKind:
    """A stem kind (`stem.kind`): its planner (spec, counter, shape) -> shape, its template,
    the layer names it writes. `fields`: the stem metaparameters it takes (spec.STEM_FIELDS)
    with its defaults; the spec refuses the others. `layered`: whether n_filters may be a
    list (one convolution per width)."""

    kind: str
    doc: str
    plan: Callable | None
    template: str | None
    layer_names: tuple[str, ...]
    # Its layer-name prefix ("conv1", "conv1..pool2") and the layer that leaves its output,
    # or a function of the spec's stem section that gives them (a pool that may be off).
    layers: tuple[str, str] | Callable = ("", "")
    fields: Mapping[str, Any] = field(default_factory=dict)
    layered: bool = False
    helpers: tuple[str, ...] = ()
    # Learner metaparameters (METAPARAMETERS entries) the stem function takes after x: a
    # width multiplier that scales the stem as well as the blocks (MobileNet's alpha).
    args: tuple[str, ...] = ()
    # keras' automatic names its layers take, as (layer class base, how many): conv2d ...
    # conv2d_4 for Inception v3's stem. A learner that names layers the same way counts on
    # from there (the template's `stem_auto_names`), so no name is taken twice.
    auto_names: tuple[tuple[str, int], ...] = ()

    def stage_layers(self, stem) -> tuple[str, str]:
        """(prefix, output layer) of this kind's stage for the spec's stem section."""
        return self.layers(stem) if callable(self.layers) else self.layers


@dataclass(frozen=True)
class ClassifierKind:
    """A classifier kind (`classifier.kind`): its planner plan(spec, c, shape) -> (the
    number of features its output layer reads, the layer that leaves them: a pooling, its
    dense layers' last), its first layer's name, its template, the metaparameters it takes
    besides n_classes and the activation (`args`). plan_head(spec, c, shape): where the
    scores are not one dense layer on those features (SqueezeNet's 1x1 conv)."""

    kind: str
    doc: str
    plan: Callable
    first_layer: str
    template: str
    layer_names: tuple[str, ...]
    args: tuple[str, ...] = ()
    plan_head: Callable | None = None
    allows_heads: bool = True
    # Learner metaparameters (METAPARAMETERS entries) the classifier function takes after
    # its own args: MobileNetV3's alpha, which widens its hidden 1x1 convolution above 1,
    # and its nonlinearity. The spec refuses such a kind beside a learner without them.
    learner_args: tuple[str, ...] = ()
    # Templates of units its template calls (MobileNetV3's make_divisible), as a stem's
    # and a block type's: they open the file, once.
    helpers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuxKind:
    """An auxiliary classifier kind (`classifier.aux.kind`): planner (spec, c, tap shape)."""

    kind: str
    doc: str
    plan: Callable
    template: str
    layer_names: tuple[str, ...]


@dataclass(frozen=True)
class Architecture:
    """A macro-architecture (`architecture`).

    sections: the spec sections it needs (the other optional ones are refused as stray);
    plan(spec, counter) -> Plan; templates(plan) -> the pieces after the backbone's (or all
    of them, without a backbone); metaparameters(plan, params) adds its own sizes to the
    backbone's; task(plan, common) -> what `modelgen verify` tells the harness child;
    batches: the harness's batch makers it brings, by task kind (keras imported inside).
    """

    name: str
    doc: str
    sections: tuple[str, ...]
    plan: Callable
    templates: Callable
    task: Callable
    batches: Mapping[str, Callable] = field(default_factory=dict)
    # Its own spec section (name, pydantic model), for the ones that have one.
    section: tuple[str, type] | None = None
    metaparameters: Callable | None = None
    takes_n_classes: bool = False
    is_detector: bool = False
    has_backbone: bool = True  # stem + learner (an autoencoder starts at the pixels)
    # (refused pre-stem steps, what the allowed ones are, why), or None: every step.
    pre_stem_refused: tuple[tuple[str, ...], str, str] | None = None
    # Cross-section rules: check(spec) raises ValueError with the field path first.
    check: Callable | None = None
    # How `modelgen show` writes its resolved spec: dump(spec, data) edits the dict.
    dump: Callable | None = None
    # What this architecture's own rules read besides (the detectors' required settings).
    values: Mapping[str, Any] = field(default_factory=dict)


# What the head switches write whatever the classifier kind (include_top=False's pooling).
POOLING_LAYER_NAMES = (r"avg_pool|max_pool",)

BLOCKS: dict[str, BlockType] = {}
STEMS: dict[str, StemKind] = {}
CLASSIFIERS: dict[str, ClassifierKind] = {}
AUX: dict[str, AuxKind] = {}
ARCHITECTURES: dict[str, Architecture] = {}


def _register(table: dict, key: str, piece):
    if key in table:
        raise ValueError(f"a piece is registered twice under {key!r}")
    table[key] = piece
    return piece


def register_block(**fields) -> BlockType:
    piece = BlockType(**fields)
    return _register(BLOCKS, piece.tag, piece)


def register_stem(**fields) -> StemKind:
    piece = StemKind(**fields)
    return _register(STEMS, piece.kind, piece)


def register_classifier(**fields) -> ClassifierKind:
    piece = ClassifierKind(**fields)
    return _register(CLASSIFIERS, piece.kind, piece)


def register_aux(**fields) -> AuxKind:
    piece = AuxKind(**fields)
    return _register(AUX, piece.kind, piece)


def register_architecture(**fields) -> Architecture:
    piece = Architecture(**fields)
    return _register(ARCHITECTURES, piece.name, piece)


# ------------------------------------------------------------------ derived lists


def learner_models() -> list[type]:
    """The learner section's models, once each (one model may serve several tags)."""
    models: list[type] = []
    for block in BLOCKS.values():
        if block.learner not in models:
            models.append(block.learner)
    return models


def group_tags() -> frozenset[str]:
    return frozenset(tag for block in BLOCKS.values() for tag in block.group_tags)


def recipe_for(spec) -> Recipe:
    """The training recipe of a spec's learner family (DEFAULT_RECIPE without a learner)."""
    learner = getattr(spec, "learner", None)
    block = BLOCKS.get(getattr(learner, "block", None))
    return block.recipe if block is not None else DEFAULT_RECIPE


def detectors() -> tuple[str, ...]:
    return tuple(name for name, arch in ARCHITECTURES.items() if arch.is_detector)


def sections() -> tuple[str, ...]:
    """Every optional spec section some architecture needs, in registration order."""
    found: list[str] = []
    for arch in ARCHITECTURES.values():
        found += [section for section in arch.sections if section not in found]
    return tuple(found)


def task_batches() -> dict[str, Callable]:
    """Task kind -> batch maker, from every architecture (the harness adds "auto")."""
    batches: dict[str, Callable] = {}
    for arch in ARCHITECTURES.values():
        for kind, maker in arch.batches.items():
            if batches.setdefault(kind, maker) is not maker:
                raise ValueError(f"two architectures bring a batch maker for {kind!r}")
    return batches


def _chosen(learner, option: str) -> bool:
    """Whether a learner section picks an option: "field" set, or "field=value"."""
    name, _, value = option.partition("=")
    got = getattr(learner, name, None)
    return got == value if value else bool(got)


def _models(annotation) -> list:
    """The annotation and every type inside it (Optional, unions, Annotated, list)."""
    found = [annotation]
    for inner in getattr(annotation, "__args__", None) or ():
        found += _models(inner)
    metadata = getattr(annotation, "__metadata__", None)
    if metadata is not None:
        found += _models(getattr(annotation, "__origin__", None))
    return found


# ------------------------------------------------------------------ completeness


def piece_problems(piece, templates_dir) -> list[str]:
    """What a registered piece lacks: a planner, a template that exists under templates_dir
    (a Path), valid layer-name patterns. [] when it is complete."""
    import re

    key = getattr(piece, "tag", None) or getattr(piece, "kind", None) or piece.name
    label = f"{type(piece).__name__} {key!r}"
    problems: list[str] = []
    none_stem = isinstance(piece, StemKind) and piece.plan is None and piece.template is None
    planner = getattr(piece, "plan_group", None) or getattr(piece, "plan", None)
    if not none_stem and not callable(planner):
        problems.append(f"{label}: no planner")
    if isinstance(piece, BlockType):
        names = [*piece.helpers, *piece.templates, *piece.options.values()]
        if not piece.templates:
            problems.append(f"{label}: no templates")
        if not callable(piece.group_layers):
            problems.append(f"{label}: no group_layers (its stages' layer names)")
        if piece.plan_between and not callable(piece.between_layers):
            problems.append(f"{label}: no between_layers for its plan_between")
        if piece.plan_tail and not (callable(piece.tail_layers) or all(piece.tail_layers)):
            problems.append(f"{label}: no tail_layers for its plan_tail")
        if "block" not in piece.learner.model_fields or "groups" not in piece.learner.model_fields:
            problems.append(f"{label}: its learner model has no `block` tag or no `groups`")
    elif isinstance(piece, Architecture):
        names = []
        if not callable(piece.templates) or not callable(piece.task):
            problems.append(f"{label}: no templates or no task")
    else:
        names = [*getattr(piece, "helpers", ()), piece.template] if not none_stem else []
        layers = getattr(piece, "layers", None)
        if (
            isinstance(piece, StemKind)
            and not none_stem
            and not callable(layers)
            and not all(layers)
        ):
            problems.append(f"{label}: no layers (its stage's layer names)")
    for name in names:
        if name is None or not (templates_dir / name).is_file():
            problems.append(f"{label}: template {name!r} is not in {templates_dir}")
    if not isinstance(piece, Architecture) and not none_stem:
        patterns = getattr(piece, "layer_names", ())
        if not patterns:
            problems.append(f"{label}: no layer names")
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"{label}: layer-name pattern {pattern!r}: {exc}")
    return problems


def problems(templates_dir) -> list[str]:
    """Every registered piece's piece_problems."""
    tables = (BLOCKS, STEMS, CLASSIFIERS, AUX, ARCHITECTURES)
    return [
        line
        for table in tables
        for piece in table.values()
        for line in piece_problems(piece, templates_dir)
    ]
