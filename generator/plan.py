"""Plan: walk a validated spec statically (no keras) and work out the network.

The walk computes every group's output shape and the parameter count, layer by layer,
with the same arithmetic Keras uses, and decides which templates the file needs.
A spec whose feature maps collapse is rejected here, naming the spot.

Each block type's planner mirrors its template in templates/blocks/; a test builds every
preset with Keras and holds the two counts equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SpecError
from .spec import Spec

Shape = tuple[int, int, int]  # (H, W, C), channels last


@dataclass
class Stage:
    """One macro-architecture piece: what it is called and what it leaves behind."""

    name: str
    kind: str  # stem | group | classifier
    detail: str
    output_shape: tuple
    params: int
    trainable: int


@dataclass
class Counter:
    """Running parameter count, and the stage being walked (for error messages)."""

    source: str
    where: str = ""
    total: int = 0
    trainable: int = 0

    def add(self, total: int, trainable: int | None = None) -> None:
        self.total += total
        self.trainable += total if trainable is None else trainable

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


def conv(c: Counter, shape: Shape, filters: int, k: int, strides=1, same=False, bias=True, what=""):
    h, w, cin = shape
    c.check_stride(shape, strides, what or f"a {k}x{k}/{strides} convolution")
    if same:
        h, w = math.ceil(h / strides), math.ceil(w / strides)
    else:
        h, w = (h - k) // strides + 1, (w - k) // strides + 1
    c.add(k * k * cin * filters + (filters if bias else 0))
    return c.check((h, w, filters), what or f"a {k}x{k} convolution")


def bn(c: Counter, shape: Shape) -> Shape:
    # gamma, beta (trainable) + moving mean, moving variance (Keras counts them too)
    c.add(4 * shape[2], 2 * shape[2])
    return shape


def pad(shape: Shape, p: int) -> Shape:
    return (shape[0] + 2 * p, shape[1] + 2 * p, shape[2])


def pool(c: Counter, shape: Shape, size: int, strides: int, what: str) -> Shape:
    h, w, ch = shape
    c.check_stride(shape, strides, what)
    if h < size or w < size:
        raise SpecError(
            c.source, c.where, f"the {size}x{size} pooling window is bigger than its {h}x{w} input"
        )
    return c.check(((h - size) // strides + 1, (w - size) // strides + 1, ch), what)


def dense(c: Counter, n_in: int, units: int) -> int:
    c.add(n_in * units + units)
    return units


# ------------------------------------------------------------------ stems


def plan_stem(spec: Spec, c: Counter, shape: Shape) -> Shape:
    stem = spec.stem
    if stem.kind == "none":
        return shape
    c.where = "stem"
    preact = stem.kind == "resnet_preact"
    # 7x7/2 after 3-pixel zero padding (conv1), then 3x3/2 max pool after 1-pixel padding.
    bias = preact or spec.conventions.bias_before_bn
    shape = conv(c, pad(shape, 3), stem.n_filters, 7, 2, bias=bias, what="the stem's 7x7/2")
    if not preact:
        shape = bn(c, shape)
    return pool(c, pad(shape, 1), 3, 2, "the stem's 3x3/2 max pool")


# ------------------------------------------------------------------ groups


def plan_vgg_group(spec, c, shape, group):
    for _ in range(group.n_layers):
        shape = conv(c, shape, group.n_filters, 3, same=True)
    return pool(c, shape, 2, 2, "the group's 2x2 max pool")


def plan_basic_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    f = group.n_filters
    for index in range(group.n_blocks):
        strides = group.strides if index == 0 else 1
        if index == 0 and (strides != 1 or shape[2] != f):
            short = bn(c, conv(c, shape, f, 1, strides, bias=bias))
        else:
            short = shape
        x = bn(c, conv(c, pad(shape, 1), f, 3, strides, bias=bias))
        x = bn(c, conv(c, pad(x, 1), f, 3, bias=bias))
        assert x == short, (x, short)
        shape = x
    return shape


def plan_bottleneck_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    v1_5 = spec.learner.stride_on == "3x3"
    f = group.n_filters
    for index in range(group.n_blocks):
        strides = group.strides if index == 0 else 1
        short = bn(c, conv(c, shape, 4 * f, 1, strides, bias=bias)) if index == 0 else shape
        x = bn(c, conv(c, shape, f, 1, 1 if v1_5 else strides, bias=bias))
        if v1_5:
            x = bn(c, conv(c, pad(x, 1), f, 3, strides, bias=bias))
        else:
            x = bn(c, conv(c, x, f, 3, same=True, bias=bias))
        x = bn(c, conv(c, x, 4 * f, 1, bias=bias))
        assert x == short, (x, short)
        shape = x
    return shape


def plan_preact_bottleneck_group(spec, c, shape, group):
    bias = spec.conventions.bias_before_bn
    f, n = group.n_filters, group.n_blocks
    for index in range(1, n + 1):
        strides = group.strides if index == n else 1
        preact = bn(c, shape)
        if index == 1:
            short = conv(c, preact, 4 * f, 1, strides)  # feeds the add: always biased
        else:
            short = pool(c, shape, 1, strides, "the shortcut's 1x1 max pool")
        x = bn(c, conv(c, preact, f, 1, bias=bias))
        x = bn(c, conv(c, pad(x, 1), f, 3, strides, bias=bias))
        x = conv(c, x, 4 * f, 1)
        assert x == short, (x, short)
        shape = x
    return shape


@dataclass(frozen=True)
class BlockType:
    """How a learner block type is planned and rendered.

    `group_name` and `first_index` give keras.applications' group names (conv2..conv5 for
    ResNet, block1..block5 for VGG), so weights copy across by layer name.
    """

    plan_group: Callable
    group_template: str
    block_template: str | None  # None: the group holds the layers itself (VGG)
    group_name: str
    first_index: int
    learner_doc: str
    expansion: int = 1  # output channels = expansion * n_filters
    post_activation: bool = False  # pre-activation nets end with BN-ReLU before pooling


BLOCK_TYPES: dict[str, BlockType] = {
    "vgg": BlockType(
        plan_vgg_group,
        "groups/vgg.py.j2",
        None,
        "block",
        1,
        "Each VGG group stacks 3x3 convolutions and halves H and W.",
    ),
    "basic": BlockType(
        plan_basic_group,
        "groups/residual.py.j2",
        "blocks/basic.py.j2",
        "conv",
        2,
        "Each group stacks basic residual blocks (two 3x3 convolutions).",
    ),
    "bottleneck": BlockType(
        plan_bottleneck_group,
        "groups/residual.py.j2",
        "blocks/bottleneck.py.j2",
        "conv",
        2,
        "Each group stacks bottleneck residual blocks (1x1 -> 3x3 -> 1x1).",
        expansion=4,
    ),
    "preact_bottleneck": BlockType(
        plan_preact_bottleneck_group,
        "groups/preact.py.j2",
        "blocks/preact_bottleneck.py.j2",
        "conv",
        2,
        "Each group stacks pre-activation bottleneck blocks (BN-ReLU-conv).",
        expansion=4,
        post_activation=True,
    ),
}

STEM_TEMPLATES = {"resnet": "stems/resnet.py.j2", "resnet_preact": "stems/resnet.py.j2"}
CLASSIFIER_TEMPLATES = {
    "avg_pool": "classifiers/avg_pool.py.j2",
    "flatten": "classifiers/flatten.py.j2",
}


# ------------------------------------------------------------------ the whole network


@dataclass
class Plan:
    spec: Spec
    block: BlockType
    stages: list[Stage] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0

    @property
    def templates(self) -> list[str]:
        """The piece templates the emitted file is made of, in reading order."""
        pieces = [STEM_TEMPLATES[self.spec.stem.kind]] if self.spec.stem.kind != "none" else []
        pieces += ["learner.py.j2", self.block.group_template]
        if self.block.block_template:
            pieces.append(self.block.block_template)
        return [*pieces, CLASSIFIER_TEMPLATES[self.spec.classifier.kind]]

    @property
    def metaparameters(self) -> dict:
        """The sizes the emitted builder loops over (structure stays in code)."""
        params = {"groups": [g.model_dump() for g in self.spec.learner.groups]}
        if self.spec.classifier.kind == "flatten":
            params["dense_units"] = list(self.spec.classifier.dense_units)
            params["dropout"] = self.spec.classifier.dropout
        return params

    @property
    def classifier_args(self) -> list[str]:
        """Metaparameters the classifier takes (besides n_classes and the activation)."""
        return ["dense_units", "dropout"] if self.spec.classifier.kind == "flatten" else []


def _stage(plan: Plan, c: Counter, name: str, kind: str, detail: str, shape, before):
    plan.stages.append(
        Stage(name, kind, detail, tuple(shape), c.total - before[0], c.trainable - before[1])
    )


def make_plan(spec: Spec, source: str) -> Plan:
    block = BLOCK_TYPES[spec.learner.block]
    plan = Plan(spec, block)
    c = Counter(source)
    shape: Shape = tuple(spec.input_shape)

    mark = (c.total, c.trainable)
    if spec.stem.kind != "none":
        shape = plan_stem(spec, c, shape)
        _stage(plan, c, "stem", "stem", spec.stem.kind, shape, mark)

    for index, group in enumerate(spec.learner.groups):
        mark = (c.total, c.trainable)
        c.where = f"learner.groups[{index}]"
        shape = block.plan_group(spec, c, shape, group)
        name = f"{block.group_name}{index + block.first_index}"
        size = group.n_layers if spec.learner.block == "vgg" else group.n_blocks
        _stage(plan, c, name, "group", f"{spec.learner.block} x{size}", shape, mark)

    if block.post_activation:
        mark = (c.total, c.trainable)
        shape = bn(c, shape)
        _stage(plan, c, "post", "norm", "BN-ReLU", shape, mark)

    mark = (c.total, c.trainable)
    c.where = "classifier"
    if spec.classifier.kind == "flatten":
        units = shape[0] * shape[1] * shape[2]
    else:
        units = shape[2]
    for n in spec.classifier.dense_units:
        units = dense(c, units, n)
    dense(c, units, spec.n_classes)
    _stage(plan, c, "classifier", "classifier", spec.classifier.kind, (spec.n_classes,), mark)

    plan.total_params, plan.trainable_params = c.total, c.trainable
    return plan
