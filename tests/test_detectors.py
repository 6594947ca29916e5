"""R-CNN and Fast R-CNN (architecture rcnn, fast_rcnn): the region blocks against hand-computed
cases, the spec rules, the parameter counts, training on a synthetic detection set, the
torch backend, and bad boxes.

The region blocks are imported from the golden files (what a user gets): they are plain
functions of keras.ops, so they run on real tensors as well as inside the model.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import ROOT, backend_child_env, cli_errors, golden_module, plan, sample_inputs

from generator.errors import SpecError
from generator.pipeline import generate, plan_for

FAST = golden_module("fast_rcnn", "procedural")
RCNN = golden_module("rcnn", "procedural")
FAST_OOP = golden_module("fast_rcnn", "oop").FastRCNN
BOX_STD = (0.1, 0.1, 0.2, 0.2)


def array(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- IoU, deltas


@pytest.mark.parametrize(
    "box, other, expected",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 5, 15, 15], 25 / 175),  # a 5x5 corner shared
        ([0, 0, 10, 10], [0, 0, 5, 10], 0.5),  # half of it, inside
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([2, 2, 2, 2], [2, 2, 2, 2], 0.0),  # two empty boxes: 0, not NaN
    ],
)
def test_iou_hand_computed(box, other, expected):
    got = array(FAST.box_iou(np.array([box], "float32"), np.array([other], "float32")))
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(expected, abs=1e-6)


def test_iou_is_every_box_against_every_other():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30]], "float32")
    others = np.array([[0, 0, 10, 10], [0, 0, 5, 10]], "float32")
    got = array(FAST.box_iou(boxes, others))
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, [[1, 0.5], [25 / 175, 0], [0, 0]], atol=1e-6)


def test_encode_hand_computed():
    box = np.array([[0, 0, 10, 10]], "float32")
    target = np.array([[5, 5, 15, 25]], "float32")  # centre +5, +10; width x1, height x2
    got = array(FAST.encode_boxes(box, target, BOX_STD))[0]
    np.testing.assert_allclose(got, [0.5 / 0.1, 1.0 / 0.1, 0.0, math.log(2) / 0.2], rtol=1e-5)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 500, (2, 50, 2, 2)).astype("float32")
    corners[..., 1, :] = corners[..., 0, :] + rng.uniform(20, 200, (2, 50, 2))  # x2, y2
    boxes = corners.reshape(2, 50, 4)
    targets = boxes[:, ::-1].copy()  # each box's target: another box
    for std in (BOX_STD, (1.0, 1.0, 1.0, 1.0)):
        deltas = FAST.encode_boxes(boxes, targets, std)
        np.testing.assert_allclose(array(FAST.decode_boxes(boxes, deltas, std)), targets, atol=1e-2)
    zero = FAST.decode_boxes(boxes, np.zeros_like(boxes), BOX_STD)
    np.testing.assert_allclose(array(zero), boxes, atol=1e-3)  # no delta: the box itself


# --------------------------------------------------------------------------- RoI pooling


def grid_map(height=8, width=8):
    """One channel, cell (i, j) = 10 * i + j: every max names its cell."""
    rows = np.arange(height, dtype="float32")[:, None]
    return (10 * rows + np.arange(width, dtype="float32"))[None, :, :, None]


def roi_pool(maps, boxes, pool_size, stride=1):
    got = FAST.roi_max_pool(maps, np.array([boxes], "float32"), pool_size, stride)
    return array(got)[0, ..., 0]  # (R, pool, pool)


def test_roi_pool_bins_of_a_known_map():
    got = roi_pool(grid_map(), [[0, 0, 7, 7], [1, 2, 4, 5]], 2)
    # Cells 0..7 in two bins of 4: maxima at the bins' bottom-right cells.
    np.testing.assert_array_equal(got[0], [[33, 37], [73, 77]])
    # Rows 2..5, columns 1..4: bins rows 2-3 | 4-5, columns 1-2 | 3-4.
    np.testing.assert_array_equal(got[1], [[32, 34], [52, 54]])


def test_roi_pool_uneven_bins_overlap():
    # Cells 0..4 (5) in 2 bins: floor(0)..ceil(2.5)-1 = 0..2 and floor(2.5)..ceil(5)-1 = 2..4.
    got = roi_pool(grid_map(), [[0, 0, 4, 4]], 2)[0]
    np.testing.assert_array_equal(got, [[22, 24], [42, 44]])


def test_roi_pool_region_at_the_border():
    # Cells 6..12 on an 8-cell map: bin 0 covers 6..9 -> 6..7; bin 1 covers 9..12 -> off the
    # map, so it pools to 0.
    got = roi_pool(grid_map(), [[6, 6, 12, 12], [-3, -3, 1, 1]], 2)
    np.testing.assert_array_equal(got[0], [[77, 0], [0, 0]])
    # Cells -3..1 (5): bin 0 covers -3..-1 (off the map), bin 1 covers -1..1 -> 0..1.
    np.testing.assert_array_equal(got[1], [[0, 0], [0, 11]])


def test_roi_pool_region_smaller_than_the_grid():
    # One cell pooled to 3x3: every bin repeats it.
    got = roi_pool(grid_map(), [[2, 3, 2, 3]], 3)[0]
    np.testing.assert_array_equal(got, np.full((3, 3), 32))
    # Two cells across, pooled to 3 bins: 0..0, 0..1, 1..1 past the start.
    got = roi_pool(grid_map(), [[2, 3, 3, 3]], 3)[0]
    np.testing.assert_array_equal(got, [[32, 33, 33]] * 3)


def test_roi_pool_maps_pixels_by_the_stride():
    # Stride 4: pixels 8..20 -> cells round(2)..round(5) = 2..5; 6..9.9 -> 2..2 (9.9 / 4 =
    # 2.475 rounds down, 10 / 4 = 2.5 rounds up to 3).
    got = roi_pool(grid_map(), [[8, 8, 20, 20], [6, 6, 9.9, 10]], 2, stride=4)
    np.testing.assert_array_equal(got[0], [[33, 35], [53, 55]])
    np.testing.assert_array_equal(got[1], [[22, 22], [32, 32]])


def reference_roi_pool(maps, boxes, pool_size, stride):
    """Caffe's RoIPool, loop by loop, from its definition."""
    _, height, width, channels = maps.shape
    out = np.zeros((len(boxes), pool_size, pool_size, channels), "float32")
    for r, box in enumerate(boxes):
        x1, y1, x2, y2 = (math.floor(v / stride + 0.5) for v in box)
        h_bin = max(y2 - y1 + 1, 1) / pool_size
        w_bin = max(x2 - x1 + 1, 1) / pool_size
        for i in range(pool_size):
            top = min(max(math.floor(i * h_bin) + y1, 0), height)
            bottom = min(max(math.ceil((i + 1) * h_bin) + y1, 0), height)
            for j in range(pool_size):
                left = min(max(math.floor(j * w_bin) + x1, 0), width)
                right = min(max(math.ceil((j + 1) * w_bin) + x1, 0), width)
                if bottom > top and right > left:
                    out[r, i, j] = maps[0, top:bottom, left:right].max(axis=(0, 1))
    return out


def test_roi_pool_matches_a_loop_reference_on_random_regions():
    rng = np.random.default_rng(1)
    maps = rng.standard_normal((1, 9, 13, 3)).astype("float32")
    corners = rng.uniform(-20, 220, (40, 2, 2))
    boxes = np.concatenate([corners.min(1), corners.max(1)], -1).astype("float32")
    boxes[:5, 2:] = boxes[:5, :2] + rng.uniform(0, 6, (5, 2))  # smaller than a cell
    got = array(FAST.roi_max_pool(maps, boxes[None], 7, 16))[0]
    np.testing.assert_allclose(got, reference_roi_pool(maps, boxes, 7, 16), atol=1e-6)


# --------------------------------------------------------------------------- warp, helpers


def test_crop_of_the_whole_image_at_its_size_is_the_image():
    image = np.random.default_rng(2).random((1, 12, 12, 3)).astype("float32")
    got = array(RCNN.crop_and_resize(image, np.array([[[0, 0, 12, 12]]], "float32"), 12))
    np.testing.assert_allclose(got[0, 0], image[0], atol=1e-5)


def test_crop_samples_the_region_bilinearly():
    rows = np.arange(16, dtype="float32")[:, None]
    image = (rows + 0 * rows.T)[None, :, :, None].repeat(3, -1)  # pixel value = its row
    got = array(RCNN.crop_and_resize(image, np.array([[[4, 4, 8, 12]]], "float32"), 4))
    # Samples at rows 4 + (i + 0.5) * 2 - 0.5 = 4.5, 6.5, 8.5, 10.5 (pixel centres).
    np.testing.assert_allclose(got[0, 0, :, 0, 0], [4.5, 6.5, 8.5, 10.5], atol=1e-5)


def test_sliding_window_proposals_are_deterministic_and_inside():
    first = array(FAST.sliding_window_proposals(64, 96, 50))
    assert first.shape == (50, 4)
    np.testing.assert_array_equal(first, array(FAST.sliding_window_proposals(64, 96, 50)))
    assert (first[:, 2] > first[:, 0]).all() and (first[:, 3] > first[:, 1]).all()
    assert first.min() >= 0 and (first[:, 2] <= 96).all() and (first[:, 3] <= 64).all()
    assert len({tuple(box) for box in first}) > 20  # several scales and positions


def test_sample_regions_fraction_labels_and_targets():
    gt_boxes = np.array([[10, 10, 40, 40], [50, 20, 90, 60]], "float32")
    gt_labels = np.array([1, 0])
    proposals = array(FAST.sliding_window_proposals(100, 100, 60))
    boxes, labels, targets = (
        array(part)
        for part in FAST.sample_regions(
            proposals, gt_boxes, gt_labels, 32, 0.25, 0.5, 0.1, BOX_STD, seed=3
        )
    )
    assert boxes.shape == (32, 4) and labels.shape == (32,) and targets.shape == (32, 4)
    overlaps = array(FAST.box_iou(boxes, gt_boxes))
    foreground = overlaps.max(1) >= 0.5
    assert 0 < foreground.sum() <= 8  # at most a quarter
    np.testing.assert_array_equal(labels[foreground], gt_labels[overlaps.argmax(1)][foreground] + 1)
    assert (labels[~foreground] == 0).all()
    matched = gt_boxes[overlaps.argmax(1)]
    np.testing.assert_allclose(
        array(FAST.decode_boxes(boxes, targets, BOX_STD)), matched, atol=1e-2
    )
    again = FAST.sample_regions(proposals, gt_boxes, gt_labels, 32, 0.25, 0.5, 0.1, BOX_STD, seed=3)
    np.testing.assert_array_equal(array(again[0]), boxes)  # the same seed, the same picks


def test_box_loss_reads_the_own_class_deltas_of_foreground_regions():
    deltas = np.zeros((1, 2, 8), "float32")  # 2 classes
    deltas[0, 0, 4:] = [2.0, 0.5, 0.0, 0.0]  # region 0, class 2 (label 2)
    deltas[0, 1, :4] = [9.0, 9.0, 9.0, 9.0]  # region 1 is background: ignored
    targets = np.array([[[2, 0, 0, 0, 0], [0, 0, 0, 0, 0]]], "float32")
    got = array(FAST.box_loss(targets, deltas))
    # smooth-L1: |2| -> 2 - 0.5 = 1.5; |0.5| -> 0.5 * 0.25 = 0.125
    np.testing.assert_allclose(got, [[1.625, 0.0]], atol=1e-6)


def test_svm_loss_is_squared_hinge_over_counted_pairs():
    scores = np.array([[[2.0, 0.5, -1.0]]], "float32")
    targets = np.array([[[1.0, 1.0, 0.0]]], "float32")  # class 3 left out
    got = array(RCNN.svm_loss(targets, scores))
    np.testing.assert_allclose(got, [[(0 + 0.25 + 0) / 3]], atol=1e-6)


# --------------------------------------------------------------------------- spec and plan


def test_parameter_counts_are_vgg16_with_detection_heads(param_counts):
    """VGG16 (keras.applications' 138,357,544) without its 1000-way layer, plus the heads."""
    vgg16 = param_counts["vgg16"][1]
    imagenet_layer = 4096 * 1000 + 1000
    svm, boxes = 4096 * 20 + 20, 4096 * 80 + 80
    softmax = 4096 * 21 + 21  # 20 classes + background
    assert plan("rcnn").total_params == vgg16 - imagenet_layer + svm + boxes == 134_670_244
    assert plan("fast_rcnn").total_params == vgg16 - imagenet_layer + softmax + boxes
    assert plan("fast_rcnn").total_params == 134_674_341
    # The counts the emitted docstrings state.
    for preset in ("rcnn", "fast_rcnn"):
        assert f"{plan(preset).total_params:,} parameters" in generate(preset, "procedural")


def test_fast_rcnn_reads_conv5_at_stride_16():
    assert plan("fast_rcnn").feature_stride == 16
    assert plan("fast_rcnn").metaparameters["feature_stride"] == 16
    keep = plan_for("fast_rcnn", ["detector.drop_last_pool=false", "input_shape=[576, 576, 3]"])
    assert keep.feature_stride == 32
    # At 600x600 the kept pool leaves 18x18 maps, one per 33 pixels: the built model would
    # refuse them (its feature_stride check), so the plan does.
    with pytest.raises(SpecError, match="not 1 per 32 pixels"):
        plan_for("fast_rcnn", ["detector.drop_last_pool=false"])


@pytest.mark.parametrize(
    "preset, sets",
    [
        ("fast_rcnn", []),  # the preset: drop_last_pool, stride-16 maps
        # the last pool kept: stride 32, at a multiple of 32
        ("fast_rcnn", ["detector.drop_last_pool=false", "input_shape=[576, 576, 3]"]),
        ("rcnn", []),  # the backbone runs on the 227x227 warps, whatever the image size
    ],
)
def test_plan_stage_shapes_are_the_built_maps(preset, sets, tmp_path):
    """Each backbone stage of the plan (what `modelgen diagram` draws) has the shape of the
    maps Keras builds for it, the output of the last layer named after the group: Fast
    R-CNN's last VGG group keeps its 37x37 maps at 600x600 (its max pool dropped)."""
    from generator.harness import load_module

    small = [*sets, f"input_shape=[{SIDE}, {SIDE}, 3]", "classifier.dense_units=[16]"]
    meta = {"dense_units": [16]}
    if preset == "fast_rcnn":
        small.append("detector.pool_size=2")
        meta["pool_size"] = 2
    path = tmp_path / f"{preset}.py"
    path.write_text(generate(preset, "procedural", sets), encoding="utf-8")
    model = load_module(path).build_model(
        input_shape=(SIDE, SIDE, 3), n_regions=2, metaparameters=meta
    )
    groups = [stage for stage in plan_for(preset, small).stages if stage.kind == "group"]
    assert [stage.name for stage in groups] == [f"block{i}" for i in range(1, 6)]
    for stage in groups:
        built = [layer for layer in model.layers if layer.name.startswith(f"{stage.name}_")]
        assert built, stage.name
        shape = tuple(built[-1].output.shape[-3:])
        assert shape == stage.output_shape, (stage.name, shape, stage.output_shape)
    full = {stage.name: stage for stage in plan_for(preset, sets).stages}
    if preset == "rcnn":
        assert full["block5"].output_shape == (7, 7, 512)  # 227 -> 113 -> 56 -> 28 -> 14 -> 7
    elif not sets:  # stride 16 at 600x600: 37x37, like block4
        assert full["block5"].output_shape == full["block4"].output_shape == (37, 37, 512)
        assert full["block5"].detail == "vgg x3, no max pool"
    else:
        assert full["block5"].output_shape == (18, 18, 512)
        assert full["block5"].detail == "vgg x3"


SIDE = 128  # a small image for the shape check above: 8x8 maps at stride 16


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["architecture=siamese"], "twin: required for architecture 'siamese'"),
        (["architecture=classifier"], "detector: does not apply to architecture 'classifier'"),
        (["detector.crop_size=227"], "detector.crop_size: applies only to architecture 'rcnn'"),
        (["detector.pool_size=null"], "detector.pool_size: required for architecture"),
        (
            ["classifier.kind=avg_pool", "classifier.dense_units=[]", "classifier.dropout=0.0"],
            "classifier.kind: a fast_rcnn detector's region head is kind 'flatten'",
        ),
        (["detector.bg_iou=0.6"], "bg_iou (0.6) must be below fg_iou (0.5)"),
        (
            ["classifier.heads=[{name: objects, n_classes: 2}]", "n_classes=null"],
            "classifier.heads: not available with architecture 'fast_rcnn'",
        ),
        (  # geometric steps would move the image under the boxes
            ["pre_stem={flip: horizontal}"],
            "pre_stem.flip: architecture 'fast_rcnn' takes only the photometric pre-stem steps",
        ),
        (
            ["learner={block: basic, groups: [{n_filters: 8, n_blocks: 1}]}"],
            "detector.drop_last_pool: applies only to a vgg learner",
        ),
    ],
)
def test_bad_detector_specs_are_one_line(overrides, message, capsys):
    argv = ["generate", "fast_rcnn", "--style", "oop"]
    for item in overrides:
        argv += ["--set", item]
    code, lines = cli_errors(argv, capsys)
    assert code == 2
    assert len(lines) == 1 and message in lines[0], lines


def test_a_classifier_spec_may_not_carry_a_detector_section(capsys):
    code, lines = cli_errors(["generate", "vgg16", "--set", "detector={n_regions: 4}"], capsys)
    assert code == 2 and len(lines) == 1
    assert "detector: does not apply to architecture 'classifier'" in lines[0], lines


def test_a_detector_spec_needs_its_section(capsys):
    code, lines = cli_errors(["generate", "vgg16", "--set", "architecture=rcnn"], capsys)
    assert code == 2 and len(lines) == 1
    assert "detector: required for architecture 'rcnn'" in lines[0], lines


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "boxes, message",
    [
        (np.zeros((2, 5), "float32"), "shape"),
        (np.zeros((4,), "float32"), "shape"),
        (np.zeros((1, 3, 5), "float32"), "shape"),
        (np.array([[[10, 0, 5, 8]]], "float32"), "x2 >= x1"),
        (np.array([[[0, 9, 5, 8]]], "float32"), "y2 >= y1"),
        (np.array([[[0, 0, np.nan, 8]]], "float32"), "NaN"),
    ],
)
def test_check_boxes_refuses_bad_boxes(boxes, message):
    with pytest.raises(ValueError, match=message):
        FAST.check_boxes(boxes)
    with pytest.raises(ValueError, match=message):
        FAST_OOP.check_boxes(boxes)


def test_training_targets_refuse_flipped_proposals():
    gt_boxes, gt_labels = [np.array([[0, 0, 8, 8]], "float32")], [np.array([0])]
    proposals = np.array([[0, 0, 8, 8]] * 3 + [[9, 0, 4, 8]], "float32")
    for api in (FAST, RCNN):
        extra = (2,) if api is RCNN else ()
        with pytest.raises(ValueError, match="x2 >= x1"):
            api.training_targets([proposals], gt_boxes, gt_labels, *extra, n_regions=2)
    with pytest.raises(ValueError, match="shape"):
        FAST.training_targets([proposals[:, :3]], gt_boxes, gt_labels, n_regions=2)


def test_check_boxes_counts_the_regions():
    boxes = np.array([[[0, 0, 5, 8]] * 3], "float32")
    assert tuple(FAST.check_boxes(boxes, 3).shape) == (1, 3, 4)
    with pytest.raises(ValueError, match="takes 4 regions per image, got 3"):
        FAST.check_boxes(boxes, 4)


TINY = {
    "input_shape": (32, 32, 3),
    "n_classes": 2,
    "n_regions": 3,
}


def test_builder_refuses_bad_arguments():
    small = {"pool_size": 2}
    for kwargs, message in (
        ({"n_regions": 0}, "n_regions"),
        ({"n_classes": 0}, "n_classes"),
        ({"input_shape": (None, None, 3)}, "fixed input_shape"),
        ({"metaparameters": {"nope": 1}}, "nope"),
        ({"metaparameters": {**small, "feature_stride": 8}}, "feature_stride"),
    ):
        arguments = {**TINY, "metaparameters": small, **kwargs}
        with pytest.raises(ValueError, match=message):
            FAST.build_model(**arguments)


def test_model_refuses_boxes_of_the_wrong_shape():
    model = FAST.build_model(**TINY, metaparameters={"pool_size": 2})
    images, boxes = sample_inputs("fast_rcnn", TINY["input_shape"], n_regions=TINY["n_regions"])
    assert [tuple(o.shape) for o in model([images, boxes])] == [(2, 3, 3), (2, 3, 8)]
    with pytest.raises(ValueError):
        model([images, boxes[:, :, :3]])
    with pytest.raises(ValueError):
        model([images, np.concatenate([boxes, boxes], axis=1)])


@pytest.mark.parametrize("style", ["procedural", "oop"])
@pytest.mark.parametrize("arch", ["fast_rcnn", "rcnn"])
def test_a_direct_call_refuses_flipped_or_infinite_boxes(arch, style):
    module = golden_module(arch, style)
    api = module if style == "procedural" else getattr(module, plan(arch).spec.class_name)
    small = {"fast_rcnn": {"pool_size": 2}, "rcnn": {"crop_size": 32}}[arch]
    if style == "procedural":
        model = api.build_model(**TINY, metaparameters=small)
    else:
        model = api(**TINY, **small).model
    images, boxes = sample_inputs(arch, TINY["input_shape"], n_regions=TINY["n_regions"])
    model([images, boxes])  # well-formed boxes pass
    flipped = np.array(boxes)
    flipped[1, 2] = flipped[1, 2, [2, 1, 0, 3]]  # x1 <-> x2 of one box
    with pytest.raises(ValueError, match="x2 >= x1 and y2 >= y1"):
        model([images, flipped])
    flipped = np.array(boxes)
    flipped[0, 0] = flipped[0, 0, [0, 3, 2, 1]]  # y1 <-> y2
    with pytest.raises(ValueError, match="x2 >= x1 and y2 >= y1"):
        model([images, flipped])
    infinite = np.array(boxes)
    infinite[0, 1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        model([images, infinite])


# --------------------------------------------------------------------------- training

# A small backbone on small images, so that training on CPU takes seconds: three VGG groups
# (Fast R-CNN drops the last max pool: stride 4), 64-unit fc layers.
TINY_SPEC = """
name: tiny_{arch}
input_shape: [48, 48, 3]
n_classes: 2
architecture: {arch}
learner:
  block: vgg
  groups:
    - {{n_filters: 8, n_layers: 1}}
    - {{n_filters: 16, n_layers: 1}}
    - {{n_filters: 32, n_layers: 1}}
classifier: {{kind: flatten, dense_units: [64, 64]}}
detector: {detector}
"""
TINY_DETECTORS = {
    "fast_rcnn": "{n_regions: 16, pool_size: 4, drop_last_pool: true}",
    "rcnn": "{n_regions: 16, crop_size: 24, bg_iou: 0.0}",
}

# The synthetic detection set and the training loop, run in a child process (so that the
# backend can be chosen): 1-3 rectangles on noise, class 0 brightens the red channel, class
# 1 the green one. Prints the first and last total loss and the first and last loss of the
# classifying output (softmax or SVMs).
TRAIN_SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    import numpy as np
    import keras

    path, style, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = importlib.util.spec_from_file_location("detector", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    api = module if style == "procedural" else getattr(module, sys.argv[4])

    rng = np.random.default_rng(0)
    side, n_images = 48, 8
    images = rng.normal(0, 0.3, (n_images, side, side, 3)).astype("float32")
    gt_boxes, gt_labels = [], []
    for index in range(n_images):
        boxes, labels = [], []
        for _ in range(rng.integers(1, 4)):
            w, h = rng.integers(10, 24, 2)
            x, y = rng.integers(0, side - w), rng.integers(0, side - h)
            label = int(rng.integers(0, 2))
            images[index, y : y + h, x : x + w, label] += 1.5
            boxes.append([x, y, x + w, y + h])
            labels.append(label)
        gt_boxes.append(np.array(boxes, "float32"))
        gt_labels.append(np.array(labels, "int32"))

    # keras.utils.set_random_seed imports tensorflow on every backend where it is
    # installed (about 2 s of a torch child's start); the harness's does not.
    from generator.harness import set_random_seed

    set_random_seed(keras, 0)
    model = module.build_model() if style == "procedural" else api().model
    n_regions = model.inputs[1].shape[1]
    proposals = [api.sliding_window_proposals(side, side, 64)] * n_images
    extra = (2,) if "svm" in [layer.name for layer in model.layers] else ()
    boxes, targets, box_targets = api.training_targets(
        proposals, gt_boxes, gt_labels, *extra, n_regions=n_regions, seed=1
    )
    api.check_boxes(boxes, n_regions)
    api.compile_for_training(model, optimizer=keras.optimizers.Adam(1e-3))
    losses = [model.train_on_batch([images, boxes], [targets, box_targets]) for _ in range(steps)]
    assert all(np.isfinite(loss).all() for loss in losses), losses
    print("LOSSES", losses[0][0], losses[-1][0], losses[0][1], losses[-1][1])
    flipped = np.array(boxes)
    flipped[0, 0] = flipped[0, 0, [2, 1, 0, 3]]
    try:
        model([images, flipped])
    except ValueError as error:
        print("FLIPPED", error)
    """
)


def train_in_child(arch, style, steps, backend, tmp_path):
    spec = tmp_path / f"tiny_{arch}.yaml"
    spec.write_text(TINY_SPEC.format(arch=arch, detector=TINY_DETECTORS[arch]))
    path = tmp_path / f"tiny_{arch}_{style}.py"
    path.write_text(generate(str(spec), style))
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    class_name = {"fast_rcnn": "TinyFastRcnn", "rcnn": "TinyRcnn"}[arch]
    env = backend_child_env(backend)
    result = subprocess.run(
        [sys.executable, str(script), str(path), style, str(steps), class_name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # A direct call with a flipped box raised ValueError on this backend.
    flipped = result.stdout.partition("FLIPPED")[2]
    assert "boxes must have x2 >= x1" in flipped, result.stdout[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOSSES"))
    return [float(value) for value in line.split()[1:]]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["fast_rcnn", "rcnn"])
def test_training_on_a_synthetic_set_halves_the_loss(arch, tmp_path):
    first, last, first_cls, last_cls = train_in_child(
        arch, "procedural", 40, "tensorflow", tmp_path
    )
    assert last <= first / 2, f"{arch}: total loss {first:.4f} -> {last:.4f}"
    # Fast R-CNN: the softmax cross-entropy; R-CNN: the SVMs' squared hinge loss.
    assert last_cls <= first_cls / 2, f"{arch}: class loss {first_cls:.4f} -> {last_cls:.4f}"


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["fast_rcnn", "rcnn"])
def test_the_emitted_files_train_on_the_torch_backend(arch, tmp_path):
    pytest.importorskip("torch")
    first, last, _, _ = train_in_child(arch, "oop", 2, "torch", tmp_path)
    assert math.isfinite(first) and math.isfinite(last)


def test_torch_is_pinned_in_the_test_extra():
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
