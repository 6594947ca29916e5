"""Region-based detectors: R-CNN, Fast R-CNN and Faster R-CNN. The backbone is the spec's
stem + learner; the classifier section (kind flatten) gives the region head's fc layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from ...errors import SpecError
from ...fields import (
    MAX_IMAGE_SIDE,
    PRE_STEM_GEOMETRIC,
    Filters,
    Model,
    distinct_numbers,
    list_to_tuple,
    number,
)
from ...harness import detector_task, faster_rcnn_task
from ...plan import (
    Counter,
    Plan,
    Shape,
    _merge,
    _part,
    classifier_metaparameters,
    conv,
    dense,
    plan_backbone,
    plan_dense_head,
    span,
)
from ...registry import ARCHITECTURES, BLOCKS, register_architecture

if TYPE_CHECKING:
    from ...spec import Spec

IoU = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
BoxScale = Annotated[float, Field(gt=0.0, le=10.0, strict=True)]
TopN = Annotated[StrictInt, Field(ge=1, le=100_000)]
AnchorSide = Annotated[float, Field(gt=0.0, le=MAX_IMAGE_SIDE, strict=False)]
AnchorRatio = Annotated[float, Field(ge=0.05, le=20.0, strict=False)]


class RPN(Model):
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

    _numbers = field_validator("anchor_scales", "anchor_ratios", mode="before")(distinct_numbers)

    @field_validator("min_size", mode="before")
    @classmethod
    def _number(cls, value):
        return number(value)

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


class Detections(Model):
    """Faster R-CNN's inference output: per image, every class's boxes scoring at least
    score_threshold, non-maximum suppression at nms_iou within each class, the
    max_detections best kept (padded to max_detections)."""

    max_detections: Annotated[StrictInt, Field(ge=1, le=10_000)] = 100
    score_threshold: Annotated[float, Field(ge=0.0, lt=1.0, strict=True)] = 0.05
    nms_iou: Annotated[float, Field(gt=0.0, le=1.0, strict=True)] = 0.3


class Detector(Model):
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

    _list_is_fine = field_validator("box_std", mode="before")(list_to_tuple)

    @model_validator(mode="after")
    def _ious_in_order(self):
        if self.bg_iou >= self.fg_iou:
            raise ValueError(
                f"bg_iou ({self.bg_iou}) must be below fg_iou ({self.fg_iou}): background "
                "regions overlap a ground-truth box less than foreground ones"
            )
        return self


def plan_region_head(
    spec: Spec, plan: Plan, c: Counter, shape: Shape, n_scores: int, scope: str = ""
) -> None:
    """A detector's per-region head: flatten -> fc layers -> n_scores class scores and
    4 * n_classes class-specific box deltas, both from the last fc layer. Its rows: the
    fc layers' features, the scores and the deltas, each (n_regions, ...). Counted once
    per region."""
    regions = spec.detector.n_regions
    c.where, c.repeat = "classifier", regions
    mark = c.mark()
    units, layer = plan_dense_head(spec, c, shape[0] * shape[1] * shape[2])
    parts = [_part(c, (regions, units), mark, span("flatten", layer), scope + layer, "fc")]
    scores = "svm" if spec.architecture == "rcnn" else "cls_score"
    for name, width in ((scores, n_scores), ("bbox_pred", 4 * spec.n_classes)):
        mark = c.mark()
        dense(c, units, width)
        parts.append(_part(c, (regions, width), mark, name, scope + name, "head"))
    c.repeat = 1
    _merge(plan, c, "head", "classifier", "region head", (regions, n_scores), parts)


def plan_rcnn(spec: Spec, c: Counter) -> Plan:
    """R-CNN: every region warped to crop_size x crop_size -> backbone -> fc layers ->
    n_classes linear SVMs and 4 * n_classes box deltas. The backbone's stages are per
    region (its MACs once per region)."""
    plan = Plan(spec, BLOCKS[spec.learner.block])
    crop = spec.detector.crop_size
    c.where, c.repeat = "detector.crop_size", spec.detector.n_regions
    shape = plan_backbone(plan, c, (crop, crop, spec.input_shape[2]))
    plan_region_head(spec, plan, c, shape, spec.n_classes)
    return plan


def drop_last_pool(plan: Plan, c: Counter) -> Shape:
    """detector.drop_last_pool: the last vgg group's 2x2/2 max pool is not built, so the
    group (its stage, as the diagram draws it) leaves its conv maps, unpooled."""
    last = plan.stages[-1]
    last.output_shape = tuple(c.pool_input)
    last.detail += ", no max pool"
    group = plan.spec.learner.groups[-1]
    last.layer = last.layer.removesuffix("_pool") + f"_conv{group.n_layers}"
    return c.pool_input


def plan_shared_maps(spec: Spec, c: Counter, scope: str = "") -> tuple[Plan, tuple]:
    """The backbone run once over the whole image (Fast and Faster R-CNN): its plan and
    the shape of the maps the regions are pooled from (the last max pool dropped with
    drop_last_pool), with the plan's feature_stride set."""
    plan = Plan(spec, BLOCKS[spec.learner.block])
    shape = plan_backbone(plan, c, scope=scope)
    if spec.detector.drop_last_pool:
        shape = drop_last_pool(plan, c)
    plan.feature_stride = stride = feature_stride(spec, spec.detector.drop_last_pool)
    height = spec.input_shape[0]
    if round(height / shape[0]) != stride:  # the emitted builder's check, in the plan
        raise SpecError(
            c.source,
            "input_shape",
            f"the backbone's maps are {shape[0]} cells high for {height} pixels, not 1 per "
            f"{stride} pixels (its feature stride, which maps boxes onto them): the input is "
            f"too small or too odd for its stride schedule; try a multiple of {stride}",
        )
    return plan, shape


def plan_fast_rcnn(spec: Spec, c: Counter) -> Plan:
    """Fast R-CNN: backbone on the whole image (its last max pool dropped with
    drop_last_pool) -> RoI max pooling to pool_size x pool_size per region -> fc layers ->
    softmax over n_classes + 1 and 4 * n_classes box deltas."""
    plan, shape = plan_shared_maps(spec, c)
    pool = spec.detector.pool_size
    plan_region_head(spec, plan, c, (pool, pool, shape[2]), spec.n_classes + 1)
    return plan


def plan_faster_rcnn(spec: Spec, c: Counter) -> Plan:
    """Faster R-CNN: backbone on the whole image (last max pool dropped with drop_last_pool)
    -> the RPN (3x3 conv, then 1x1 convs to k objectness logits and 4k box deltas, k anchors
    per cell) -> proposals -> RoI max pooling -> fc layers -> softmax over n_classes + 1 and
    4 * n_classes box deltas (Fast R-CNN's head). The backbone and the RPN are the "rpn"
    sub-model of the built model, the head its "head" sub-model (run on the n_regions RoIs
    sampled per image)."""
    plan, shape = plan_shared_maps(spec, c, scope="rpn/")
    detector = spec.detector
    rpn = detector.rpn
    k = len(rpn.anchor_scales) * len(rpn.anchor_ratios)
    c.where = "detector.rpn"
    mark = c.mark()
    maps = conv(c, shape, rpn.channels, 3, same=True)
    parts = [_part(c, maps, mark, "rpn_conv", "rpn/rpn_conv", "rpn")]
    anchors = shape[0] * shape[1] * k
    for name, width, layer, out in (
        ("rpn_cls", k, "rpn_objectness", (anchors,)),
        ("rpn_bbox", 4 * k, "rpn_deltas", (anchors, 4)),
    ):
        mark = c.mark()
        conv(c, maps, width, 1)
        parts.append(_part(c, out, mark, span(name, layer), f"rpn/{layer}", "rpn"))
    _merge(plan, c, "rpn", "rpn", f"{k} anchors per cell", (anchors,), parts)
    pool = detector.pool_size
    plan_region_head(spec, plan, c, (pool, pool, shape[2]), spec.n_classes + 1, "head/")
    return plan


def feature_stride(spec: Spec, drop_last_pool: bool) -> int:
    """How many image pixels one cell of the backbone's last maps spans (16 for VGG16's
    conv5_3): the backbone walked on the largest image a spec may ask for (MAX_IMAGE_SIDE:
    every spec that plans plans at it too), its side / the maps' side."""
    side = MAX_IMAGE_SIDE
    c = Counter("")
    shape = plan_backbone(Plan(spec, BLOCKS[spec.learner.block]), c, (side, side, 3))
    if drop_last_pool:
        shape = c.pool_input
    return round(side / shape[0])


# The fields of the detector section that only some detectors take (each architecture's
# `settings` says which it requires; the others refuse them).
SETTINGS = ("crop_size", "pool_size", "drop_last_pool", "rpn", "detections")


def check(spec) -> None:
    """A detector's region head and its architecture's own detector settings."""
    detector, arch = spec.detector, spec.architecture
    if spec.classifier.kind != "flatten" or spec.classifier.aux is not None:
        raise ValueError(
            f"classifier.kind: a {arch} detector's region head is kind 'flatten' (flatten "
            "-> dense_units -> class scores, box deltas), without aux"
        )
    if spec.classifier.heads is not None:
        raise ValueError(
            f"classifier.heads: not available with architecture {arch!r} (its region head "
            "has its own two outputs: class scores and box deltas)"
        )
    settings = ARCHITECTURES[arch].values["settings"]
    for field in SETTINGS:
        value = getattr(detector, field)
        if field in settings:
            if value is None:
                raise ValueError(f"detector.{field}: required for architecture {arch!r}")
        elif value not in (None, False):
            others = [
                name
                for name, other in ARCHITECTURES.items()
                if field in other.values.get("settings", ())
            ]
            raise ValueError(
                f"detector.{field}: applies only to architecture "
                f"{' or '.join(map(repr, others))}, not {arch!r}"
            )
    if detector.drop_last_pool and spec.learner.block != "vgg":
        raise ValueError(
            "detector.drop_last_pool: applies only to a vgg learner (its groups end with "
            f"the max pool that RoI pooling replaces), not {spec.learner.block!r}"
        )


def rcnn_metaparameters(plan, params: dict) -> dict:
    params = classifier_metaparameters(plan, params)
    params["crop_size"] = plan.spec.detector.crop_size
    return params


def fast_rcnn_metaparameters(plan, params: dict) -> dict:
    params = classifier_metaparameters(plan, params)
    params["pool_size"] = plan.spec.detector.pool_size
    params["feature_stride"] = plan.feature_stride
    return params


def faster_rcnn_metaparameters(plan, params: dict) -> dict:
    params = fast_rcnn_metaparameters(plan, params)
    rpn = plan.spec.detector.rpn
    params["rpn_channels"] = rpn.channels
    params["anchor_scales"] = list(rpn.anchor_scales)
    params["anchor_ratios"] = list(rpn.anchor_ratios)
    return params


def region_task(plan, common: dict) -> dict:
    """[images, boxes] in, per-region class scores and box deltas out: the file's own
    training helpers make the targets and losses (harness.detector_task)."""
    return {"kind": "detector", "loss_weights": [1.0, 1.0], **common}


# After the backbone's pieces: the region head, its region operation (warp or RoI
# pooling), the region blocks (templates/regions/) and the architecture's template (its
# training helpers; the skins import its builder).
REGION_PIECES = [
    "regions/boxes.py.j2",
    "regions/proposals.py.j2",
    "regions/sampling.py.j2",
    "regions/box_loss.py.j2",
]
PHOTOMETRIC_ONLY = (
    PRE_STEM_GEOMETRIC,
    "photometric",
    "it would move the image under its boxes (pixel corners)",
)
DETECTOR = {
    "sections": ("learner", "classifier", "detector"),
    "section": ("detector", Detector),
    "takes_n_classes": True,
    "is_detector": True,
    "pre_stem_refused": PHOTOMETRIC_ONLY,
    "check": check,
}

register_architecture(
    name="rcnn",
    doc="every region warped to crop_size, the whole CNN on each, SVMs and box deltas",
    plan=plan_rcnn,
    templates=lambda plan: [
        "regions/head.py.j2",
        "regions/crop.py.j2",
        *REGION_PIECES,
        "regions/svm_loss.py.j2",
        "architectures/rcnn.py.j2",
    ],
    task=region_task,
    batches={"detector": detector_task},
    metaparameters=rcnn_metaparameters,
    values={"settings": ("crop_size",)},
    **DETECTOR,
)
register_architecture(
    name="fast_rcnn",
    doc="the CNN once per image, RoI max pooling of its maps, softmax and box deltas",
    plan=plan_fast_rcnn,
    templates=lambda plan: [
        "regions/head.py.j2",
        "regions/roi_pool.py.j2",
        *REGION_PIECES,
        "architectures/fast_rcnn.py.j2",
    ],
    task=region_task,
    metaparameters=fast_rcnn_metaparameters,
    values={"settings": ("pool_size", "drop_last_pool")},
    **DETECTOR,
)
register_architecture(
    name="faster_rcnn",
    doc="Fast R-CNN with its own region proposal network, proposals made in the graph",
    plan=plan_faster_rcnn,
    templates=lambda plan: [
        "regions/head.py.j2",
        "regions/roi_pool.py.j2",
        "regions/boxes.py.j2",
        "regions/box_loss.py.j2",
        "regions/anchors.py.j2",
        "regions/nms.py.j2",
        "regions/rpn.py.j2",
        "regions/targets.py.j2",
        "regions/detections.py.j2",
        "architectures/faster_rcnn.py.j2",
    ],
    task=lambda plan, common: {"kind": "faster_rcnn", "loss_weights": [1.0] * 4, **common},
    batches={"faster_rcnn": faster_rcnn_task},
    metaparameters=faster_rcnn_metaparameters,
    values={"settings": ("pool_size", "drop_last_pool", "rpn", "detections")},
    **DETECTOR,
)
