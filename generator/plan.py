"""Plan: walk a validated spec statically (no keras) and work out the network.

The walk computes every group's output shape and the parameter count, layer by layer,
with the same arithmetic Keras uses, and decides which templates the file needs.
A spec whose feature maps collapse is rejected here, naming the spot.

This module is the mechanism: the layer arithmetic (conv, bn, pool, dense, conv-BN units),
the Counter, Stage and Plan, the backbone walk (stem -> groups, with the pieces between
them and the tail) and make_plan. The planners of the pieces live with the pieces, in
generator/pieces/ (a block type's group planner, a stem's, an architecture's), and reach
this arithmetic through their imports; make_plan asks the registry for the architecture.

Each block type's planner mirrors its template in templates/blocks/; tests build every
preset, and random valid specs of every block type and architecture
(tests/test_plan_vs_keras.py), with Keras and hold the counts and every stage's output
shape equal. The walk also counts multiply-accumulates (MACs, `modelgen summary`): a
convolution's H_out * W_out * kh * kw * (C_in / groups) * C_out, a transposed
convolution's H_in * W_in * kh * kw * C_in * C_out, a dense layer's inputs * units; BN,
pooling, activations, adds, concatenations and biases count 0 (the usual convention, as
torchvision's and fvcore's figures count them), per sample of the model's input.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from .errors import SpecError
from .registry import ARCHITECTURES, AUX, BLOCKS, CLASSIFIERS, POOLING_LAYER_NAMES, STEMS, BlockType

if TYPE_CHECKING:
    from .spec import Spec

Shape = tuple[int, int, int]  # (H, W, C), channels last

# Above this many parameters (8 GB of float32 weights) a spec is almost surely a typo, and
# Keras would spend minutes allocating it: the plan refuses unless --allow-large is given.
MAX_PARAMS = 2_000_000_000


@dataclass
class Stage:
    """One macro-architecture piece: what it is called and what it leaves behind.

    `name` is the piece's name in the plan and the diagram (stem, conv2, classifier ...);
    `prefix` the prefix of its layers' names in the built model (keras.applications' block
    names: conv1, conv2, block1, pool2, inception_3; "first..last" where the piece spans
    several named blocks, mixed0..mixed3); `layer` the layer whose output is the stage's
    output, as a path through the built model's sub-models ("conv2_block3_out",
    "twin/conv5_block2_out"). A stage with several outputs (classifier.heads, a detector's
    region head, the RPN) lists them as `parts`, one Stage each; its counts are their sum.
    """

    name: str
    kind: str  # stem | group | transition | norm | classifier | ...
    detail: str
    output_shape: tuple
    params: int
    trainable: int
    path: str = ""  # where it sits in the spec (stem, learner.groups[2], classifier)
    prefix: str = ""
    layer: str = ""
    macs: int = 0  # multiply-accumulates per sample of the model's input
    parts: list[Stage] = field(default_factory=list)

    @property
    def rows(self) -> list[Stage]:
        """One row per output: the parts, or the stage itself (`modelgen summary`)."""
        return self.parts or [self]


@dataclass
class Counter:
    """Running parameter count, and the stage being walked (for error messages)."""

    source: str
    where: str = ""
    total: int = 0
    trainable: int = 0
    macs: int = 0
    # How many times the layers being walked run per sample of the model's input: a twin's
    # backbone twice (one per image of the pair), a detector's region head once per region.
    repeat: int = 1
    # Shapes of the block outputs that feed auxiliary classifiers (Inception's aux_after).
    taps: list = field(default_factory=list)
    # The maps the last VGG max pool received (Fast R-CNN's drop_last_pool reads them).
    pool_input: tuple | None = None

    def add(self, total: int, trainable: int | None = None) -> None:
        self.total += total
        self.trainable += total if trainable is None else trainable

    def add_macs(self, macs: int) -> None:
        self.macs += macs * self.repeat

    def mark(self) -> tuple[int, int, int]:
        """The counts so far: a stage's counts are the difference to its mark."""
        return (self.total, self.trainable, self.macs)

    def check_stride(self, shape: Shape, strides: int, what: str) -> None:
        """A stride wider than the map has nothing left to downsample: Keras would keep a
        1-pixel map and silently skip the reduction the spec asks for."""
        if strides > 1 and min(shape[0], shape[1]) < strides:
            raise SpecError(
                self.source,
                self.where,
                f"feature maps shrink to nothing: {what} gets {shape[0]}x{shape[1]} maps; "
                "the input is too small for this stride schedule",
            )

    def check(self, shape: Shape, what: str) -> Shape:
        if shape[0] < 1 or shape[1] < 1:
            raise SpecError(
                self.source,
                self.where,
                f"feature maps shrink to {shape[0]}x{shape[1]} at {what}: the input is too "
                "small for this stride schedule",
            )
        return shape


# ------------------------------------------------------------------ layer arithmetic


def conv(
    c: Counter,
    shape: Shape,
    filters: int,
    k: int,
    strides=1,
    same=False,
    bias=True,
    what="",
    groups=1,
):
    h, w, cin = shape
    c.check_stride(shape, strides, what or f"a {k}x{k}/{strides} convolution")
    if same:
        h, w = math.ceil(h / strides), math.ceil(w / strides)
    else:
        h, w = (h - k) // strides + 1, (w - k) // strides + 1
    c.add(k * k * (cin // groups) * filters + (filters if bias else 0))
    c.add_macs(h * w * k * k * (cin // groups) * filters)
    return c.check((h, w, filters), what or f"a {k}x{k} convolution")


def bn(c: Counter, shape: Shape) -> Shape:
    # gamma, beta (trainable) + moving mean, moving variance (Keras counts them too)
    c.add(4 * shape[2], 2 * shape[2])
    return shape


def pad(shape: Shape, p: int) -> Shape:
    return (shape[0] + 2 * p, shape[1] + 2 * p, shape[2])


def pool(c: Counter, shape: Shape, size: int, strides: int, what: str) -> Shape:
    h, w, ch = shape
    if h < size or w < size:
        raise SpecError(
            c.source,
            c.where,
            f"feature maps shrink to nothing: {what} needs at least {size}x{size} maps (its "
            f"pooling window) but gets {h}x{w}; the input is too small for this stride schedule",
        )
    c.check_stride(shape, strides, what)
    return c.check(((h - size) // strides + 1, (w - size) // strides + 1, ch), what)


def ceil_pool(c: Counter, shape: Shape, what: str) -> Shape:
    """3x3/2 max pool with PyTorch's ceil_mode=True (Caffe's rounding): ceil((H - 3) / 2) + 1.
    Emitted as one row and column of zero padding at the end, then a valid 3x3/2 pool."""
    return pool(c, (shape[0] + 1, shape[1] + 1, shape[2]), 3, 2, what)


def dense(c: Counter, n_in: int, units: int) -> int:
    c.add(n_in * units + units)
    c.add_macs(n_in * units)
    return units


# ------------------------------------------------------------------ stems


def plan_stem(spec: Spec, c: Counter, shape: Shape) -> Shape:
    """The registered stem kind's planner (generator/pieces/stems/); none: the pixels."""
    stem = STEMS[spec.stem.kind]
    if stem.plan is None:
        return shape
    c.where = "stem"
    return stem.plan(spec, c, shape)


# ------------------------------------------------------------------ groups


# ------------------------------------------------------------------ Inception


def same_pool(c: Counter, shape: Shape, strides: int, what: str) -> Shape:
    """A pool with padding "same": H, W / strides, rounded up."""
    c.check_stride(shape, strides, what)
    return (math.ceil(shape[0] / strides), math.ceil(shape[1] / strides), shape[2])


def conv_bn_unit(
    c: Counter, shape: Shape, filters: int, kh: int, kw=None, strides=1, same=True, bias=False
):
    """keras.applications' conv2d_bn: a kh x kw Conv2D (without bias unless the spec's
    bias_before_bn) -> BN without scale (beta, moving mean and variance) -> ReLU."""
    kw = kh if kw is None else kw
    h, w, cin = shape
    what = f"a {kh}x{kw}/{strides} convolution"
    c.check_stride(shape, strides, what)
    if same:
        h, w = math.ceil(h / strides), math.ceil(w / strides)
    else:
        h, w = (h - kh) // strides + 1, (w - kw) // strides + 1
    c.add(kh * kw * cin * filters + (filters if bias else 0))
    c.add_macs(h * w * kh * kw * cin * filters)
    c.add(3 * filters, filters)
    return c.check((h, w, filters), what)


def conv_bn_units(spec: Spec, c: Counter) -> Callable:
    """conv_bn_unit(c, ...) with the spec's bias convention: unit(shape, filters, kh, ...)."""
    return partial(conv_bn_unit, c, bias=spec.conventions.bias_before_bn)


# ------------------------------------------------------------------ stage layer names
# Each stage's layer-name prefix in the built model and the layer that leaves its output
# (see Stage), as the templates name them. A group's: group_layers(spec, index, shape), the
# group at learner.groups[index] and the maps it receives; a transition's:
# transition_layers(spec, index), the one before learner.groups[index].


# Layer names, as regular expressions matched in full. Keras wants every layer name once and
# says so only when the model is built; the plan refuses a head of classifier.heads named
# like a layer the rest of the model writes. Each piece lists the names it writes (its
# f-strings, with \d+ for a number and \w+ for a suffix); tests/test_heads.py builds every
# classifier preset and holds each of its layer names to its plan's patterns.
# keras.applications' automatic names in Inception v3 (the emitted conv_bn unit counts them).
CONV_BN_LAYER_NAMES = (
    r"(conv2d|batch_normalization|activation)(_\d+)?",
    r"(max|average)_pooling2d(_\d+)?",
)
INPUT_LAYER_NAMES = (r"input_layer(_\d+)?",)  # keras.Input's automatic name
PRE_STEM_LAYER_NAMES = (r"pre_stem_\w+",)


# ------------------------------------------------------------------ the whole network


@dataclass
class Plan:
    spec: Spec
    block: BlockType | None  # the backbone's block type (None: no learner, the autoencoder)
    stages: list[Stage] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    # The autoencoder's latent maps (H, W, C), what its decoder takes.
    latent_shape: tuple = ()
    feature_stride: int = 0  # fast_rcnn: image pixels per cell of the maps RoI pooling reads
    total_macs: int = 0  # multiply-accumulates per sample of the model's input

    @property
    def architecture(self):
        """The registered architecture (generator/pieces/architectures/)."""
        return ARCHITECTURES[self.spec.architecture]

    @property
    def published_weights(self):
        """The published ImageNet weights this classifier loads with weights="imagenet"
        (generator/pretrained.py), or None."""
        from .pretrained import published_for

        return published_for(self.spec)

    @property
    def builds_reference(self) -> bool:
        """Whether it builds its keras.applications reference's network, layer for layer
        (generator/pretrained.py), whether or not modelgen has its published file."""
        from .pretrained import builds_reference

        return builds_reference(self.spec)

    @property
    def templates(self) -> list[str]:
        """The piece templates the emitted file is made of, in reading order: the helpers
        the pieces call, the pre-stem, the backbone's pieces, then the architecture's."""
        return [name for name, _ in self.pieces]

    @property
    def pieces(self) -> list[tuple[str, BlockType | None]]:
        """(template, scope) in reading order. The scope is None, or where the learner
        mixes block types, the block type whose group and block pieces the template
        renders (their functions then carry its tag: basic_group, bottleneck_group)."""
        own = [(name, None) for name in self.architecture.templates(self)]
        if not self.architecture.has_backbone:
            pre_stem = [("pre_stem.py.j2", None)] if self.spec.pre_stem is not None else []
            return pre_stem + own
        return self.backbone_pieces + own

    @property
    def backbone_pieces(self) -> list[tuple[str, BlockType | None]]:
        """The stem, learner, group and block pieces: a classifier's, a twin's or a
        detector's backbone, after the helper units they call (each once)."""
        stem = STEMS[self.spec.stem.kind]
        classifier = getattr(self.spec, "classifier", None)
        head = CLASSIFIERS[classifier.kind].helpers if classifier is not None else ()
        helpers = [*stem.helpers, *self.block.helpers, *head]
        pieces = list(dict.fromkeys(helpers))
        if self.spec.pre_stem is not None:
            pieces.append("pre_stem.py.j2")  # detachable preprocessing before the stem
        if stem.template is not None:
            pieces.append(stem.template)
        learner = self.spec.learner
        if not self.mixed:
            return [(name, None) for name in pieces + self.block.pieces(learner)]
        scoped = [(name, None) for name in [*pieces, self.block.templates[0]]]
        options = []
        for tag in dict.fromkeys(self.group_blocks):
            block = BLOCKS[tag]
            scoped += [(name, block) for name in block.templates[1:]]
            options += block.pieces(learner)[len(block.templates) :]
        return scoped + [(name, None) for name in dict.fromkeys(options)]

    @property
    def layer_names(self) -> list[tuple[str, str]]:
        """(piece, pattern) for every layer name a classifier's pieces write: the input, the
        pre-stem, the stem, the learner, the classifier and the auxiliary classifiers
        (regular expressions matched in full, see LAYER_NAMES)."""
        spec = self.spec
        pieces = [("input", INPUT_LAYER_NAMES)]
        if spec.pre_stem is not None:
            pieces.append(("pre-stem", PRE_STEM_LAYER_NAMES))
        pieces.append((f"{spec.stem.kind} stem", STEMS[spec.stem.kind].layer_names))
        for tag in dict.fromkeys(self.group_blocks):
            pieces.append((f"{tag} learner", BLOCKS[tag].layer_names))
        pieces.append(("pooling", POOLING_LAYER_NAMES))
        pieces.append(
            (f"{spec.classifier.kind} classifier", CLASSIFIERS[spec.classifier.kind].layer_names)
        )
        if spec.classifier.aux is not None:
            pieces.append(("auxiliary classifiers", AUX[spec.classifier.aux.kind].layer_names))
        return [(piece, pattern) for piece, patterns in pieces for pattern in patterns]

    @property
    def metaparameters(self) -> dict:
        """The sizes the emitted builder loops over (structure stays in code): the
        backbone's groups and learner-level sizes, then the architecture's own."""
        params: dict = {}
        if self.architecture.has_backbone:
            params["groups"] = self.group_metaparameters
            for arg in self.block.learner_args:
                params[arg] = getattr(self.spec.learner, arg)
        add = self.architecture.metaparameters
        return add(self, params) if add is not None else params

    @property
    def pre_stem_summary(self) -> str:
        """What the pre-stem does, in its layers' order (for its docstring)."""
        p = self.spec.pre_stem
        steps = [
            (p.resizing, "resize to height x width"),
            (p.crop, "random (center at inference) height x width crop"),
            (p.flip, f"random {(p.flip or '').replace('_', ' ')} flip"),
            (p.rotation, "random rotation"),
            (p.zoom, "random zoom"),
            (p.contrast, "random contrast"),
            (p.rescaling, "rescale"),
            (p.normalization, "normalise by mean and std per channel"),
        ]
        text = " -> ".join(text for on, text in steps if on)
        # Wrapped to fit the docstring (4 spaces in, 8 in a class): its first line starts
        # after '    """Pre-stem, in order: '.
        lines = textwrap.wrap(" " * 26 + text, width=80, break_on_hyphens=False)
        return "\n".join([lines[0].lstrip(), *lines[1:]])

    @property
    def heads(self) -> list:
        """The classifier's named heads (classifier.heads), or [] for one `predictions`."""
        return list(getattr(self.spec.classifier, "heads", None) or [])

    @property
    def n_taps(self) -> int:
        """How many auxiliary classifiers include_aux adds (the groups' aux_after)."""
        return sum(len(getattr(group, "aux_after", ())) for group in self.spec.learner.groups)

    @property
    def group_blocks(self) -> list[str]:
        """Each learner group's block type: its own `block`, else the learner's."""
        learner = self.spec.learner
        return [getattr(group, "block", None) or learner.block for group in learner.groups]

    @property
    def mixed(self) -> bool:
        """Whether the learner's groups mix block types (basic and bottleneck groups)."""
        return self.block is not None and len(set(self.group_blocks)) > 1

    @property
    def group_metaparameters(self) -> list[dict]:
        """The groups' sizes; each names its block type only where the learner mixes them."""
        groups = []
        for group, tag in zip(self.spec.learner.groups, self.group_blocks, strict=True):
            params = group.model_dump(exclude={"block"})
            groups.append({"block": tag, **params} if self.mixed else params)
        return groups

    @property
    def classifier_args(self) -> list[str]:
        """Metaparameters the classifier takes (besides n_classes and the activation)."""
        return list(CLASSIFIERS[self.spec.classifier.kind].args)

    @property
    def classifier_learner_args(self) -> list[str]:
        """Learner metaparameters the classifier takes after its own (ClassifierKind.
        learner_args: MobileNetV3's alpha and nonlinearity)."""
        return list(CLASSIFIERS[self.spec.classifier.kind].learner_args)


def classifier_metaparameters(plan: Plan, params: dict) -> dict:
    """The classifier's sizes (its kind's args) and heads, after the backbone's: a
    classifier's and a detector's region head's."""
    for arg in plan.classifier_args:
        value = getattr(plan.spec.classifier, arg)
        params[arg] = list(value) if isinstance(value, tuple | list) else value
    if plan.heads:
        params["heads"] = [
            {"name": head.name, "n_classes": head.n_classes, "activation": head.activation}
            for head in plan.heads
        ]
    return params


def _stage(
    plan: Plan, c: Counter, name: str, kind: str, detail: str, shape, before, prefix="", layer=""
) -> Stage:
    """Record a stage: its counts are what c counted since the mark `before`."""
    total, trainable, macs = (now - then for now, then in zip(c.mark(), before, strict=True))
    stage = Stage(name, kind, detail, tuple(shape), total, trainable, c.where, prefix, layer, macs)
    plan.stages.append(stage)
    return stage


def _part(c: Counter, shape, before, prefix: str, layer: str, kind: str = "part") -> Stage:
    """One output of a stage with several (a head, a detector's class scores ...)."""
    total, trainable, macs = (now - then for now, then in zip(c.mark(), before, strict=True))
    return Stage(prefix, kind, "", tuple(shape), total, trainable, c.where, prefix, layer, macs)


def _merge(plan: Plan, c: Counter, name: str, kind: str, detail: str, shape, parts) -> Stage:
    """A stage made of its parts: their counts summed, its output_shape the diagram's."""
    stage = Stage(name, kind, detail, tuple(shape), 0, 0, c.where, parts=list(parts))
    stage.params = sum(part.params for part in parts)
    stage.trainable = sum(part.trainable for part in parts)
    stage.macs = sum(part.macs for part in parts)
    plan.stages.append(stage)
    return stage


def blocks_before(spec: Spec, index: int) -> int:
    """Blocks in the learner's groups before groups[index]: where a family numbers its
    blocks across the groups (fire2 ..., conv_dw_1 ...), the offset of that group's first."""
    return sum(group.n_blocks for group in spec.learner.groups[:index])


def span(first: str, last: str) -> str:
    """A stage's layer-name prefix when it spans several named blocks: "mixed0..mixed2"."""
    return first if first == last else f"{first}..{last}"


def check_size(plan: Plan, source: str) -> None:
    """Refuse a network over MAX_PARAMS parameters, naming the total and its largest stage."""
    if plan.total_params <= MAX_PARAMS:
        return
    big = max(plan.stages, key=lambda stage: stage.params)
    raise SpecError(
        source,
        "",
        f"the network would have {plan.total_params:,} parameters, over the limit of "
        f"{MAX_PARAMS:,} (the largest part: {big.path or big.name}, {big.params:,}); "
        "check the sizes, or pass --allow-large to generate it anyway",
    )


def plan_backbone(plan: Plan, c: Counter, shape: Shape | None = None, scope: str = "") -> Shape:
    """Stem and learner groups (and the final BN-ReLU of pre-activation learners): the
    backbone of a classifier, a Siamese twin or a detector, on spec.input_shape unless
    shape says otherwise (R-CNN's warped regions). Returns the maps it leaves. scope is
    the path of the sub-model that holds the backbone's layers ("twin/", "rpn/")."""
    spec, block = plan.spec, plan.block
    if shape is None:
        shape = tuple(spec.input_shape)

    mark = c.mark()
    if spec.stem.kind != "none":
        shape = plan_stem(spec, c, shape)
        prefix, layer = STEMS[spec.stem.kind].stage_layers(spec.stem)
        _stage(plan, c, "stem", "stem", spec.stem.kind, shape, mark, prefix, scope + layer)

    for index, group in enumerate(spec.learner.groups):
        if index and block.plan_between:  # between groups: after groups[index - 1]
            mark = c.mark()
            shape = block.plan_between(spec, c, shape)  # c.where: the group it follows
            name = f"{block.between_name}{index - 1 + block.first_index}"
            prefix, layer = block.between_layers(spec, index)
            detail = "compress, H, W / 2"
            _stage(plan, c, name, "transition", detail, shape, mark, prefix, scope + layer)
        mark = c.mark()
        c.where = f"learner.groups[{index}]"
        tag = plan.group_blocks[index]  # the group's own block type, or the learner's
        own = BLOCKS[tag]
        prefix, layer = own.group_layers(spec, index, shape)
        shape = own.plan_group(spec, c, shape, group)
        name = f"{block.group_name}{index + block.first_index}"
        size = getattr(group, "n_blocks", getattr(group, "n_layers", 1))
        _stage(plan, c, name, "group", f"{tag} x{size}", shape, mark, prefix, scope + layer)

    if block.plan_tail:  # after the last group, kept with include_top=False
        mark = c.mark()
        c.where = "learner"
        shape = block.plan_tail(spec, c, shape)
        prefix, layer = block.stage_tail_layers(spec)
        detail = block.tail_detail
        _stage(plan, c, block.tail_name, "norm", detail, shape, mark, prefix, scope + layer)
    return shape


def plan_dense_head(spec: Spec, c: Counter, units: int) -> tuple[int, str]:
    """The flatten classifier's dense layers (fc1, fc2 ...): units in -> units out, and
    the name of the layer that leaves them (fcN, fcN_dropout, or flatten without any)."""
    layer = "flatten"
    for number, n in enumerate(spec.classifier.dense_units, start=1):
        units = dense(c, units, n)
        layer = f"fc{number}_dropout" if spec.classifier.dropout else f"fc{number}"
    return units, layer


def check_head_names(plan: Plan, source: str) -> None:
    """Refuse a head named like a layer the rest of the model writes (Keras would refuse
    the duplicate name only when the model is built)."""
    for index, head in enumerate(plan.heads):
        for piece, pattern in plan.layer_names:
            if re.fullmatch(pattern, head.name):
                raise SpecError(
                    source,
                    f"classifier.heads[{index}].name",
                    f"{head.name!r} is reserved for the model's own layers (the {piece} "
                    f"names its layers {pattern}; Keras wants each name once); pick another",
                )


def make_plan(spec: Spec, source: str, allow_large: bool = False) -> Plan:
    c = Counter(source)
    plan = ARCHITECTURES[spec.architecture].plan(spec, c)  # generator/pieces/architectures/
    plan.total_params, plan.trainable_params = c.total, c.trainable
    plan.total_macs = c.macs
    if not allow_large:
        check_size(plan, source)
    return plan
