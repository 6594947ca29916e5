"""`modelgen summary`: the plan as a table or one JSON object, held to `modelgen list`, to
the built Keras model (count_params and every stage's output shape) and, for the
multiply-accumulates, to the figures torchvision and the papers report."""

from __future__ import annotations

import json

import pytest
from conftest import PRESETS, cli_errors, full_size, plan

from generator.cli import main


def summary(target: str, capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["summary", target, "--format", "json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "exactly one JSON object, on one line"
    return json.loads(out)


def list_counts(capsys) -> dict[str, tuple[int, int]]:
    capsys.readouterr()
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["preset", "family", "params", "trainable", "MACs"]
    rows = [line.split() for line in lines[1:]]
    return {row[0]: (int(row[2].replace(",", "")), int(row[3].replace(",", ""))) for row in rows}


def test_every_preset_totals_equal_the_plan_and_list(capsys):
    listed = list_counts(capsys)
    assert sorted(listed) == sorted(PRESETS)
    for preset in PRESETS:
        data = summary(preset, capsys)
        assert {"total_params", "trainable_params", "stages"} <= set(data)
        totals = (data["total_params"], data["trainable_params"])
        assert totals == (plan(preset).total_params, plan(preset).trainable_params), preset
        assert totals == listed[preset], preset
        assert data["total_macs"] == plan(preset).total_macs > 0
        stages = data["stages"]
        for stage in stages:
            assert {"name", "output_shape", "params"} <= set(stage)
            assert isinstance(stage["name"], str) and stage["name"], (preset, stage)
            assert stage["output_shape"] and all(
                isinstance(side, int) and side > 0 for side in stage["output_shape"]
            ), (preset, stage)
            assert isinstance(stage["params"], int) and isinstance(stage["macs"], int)
        assert sum(stage["params"] for stage in stages) == data["total_params"], preset
        assert sum(stage["trainable_params"] for stage in stages) == data["trainable_params"]
        assert sum(stage["macs"] for stage in stages) == data["total_macs"], preset


def test_resnet50_json(capsys):
    data = summary("resnet50", capsys)
    assert (data["total_params"], data["trainable_params"]) == (25_636_712, 25_583_592)
    rows = [(s["name"], s["output_shape"], s["params"]) for s in data["stages"]]
    assert rows == [
        ("conv1", [56, 56, 64], 9_728),
        ("conv2", [56, 56, 256], 220_032),
        ("conv3", [28, 28, 512], 1_230_336),
        ("conv4", [14, 14, 1024], 7_129_088),
        ("conv5", [7, 7, 2048], 14_998_528),
        ("avg_pool..predictions", [1000], 2_049_000),
    ]
    assert data["stages"][1]["layer"] == "conv2_block3_out"


def test_rows_of_heads_twins_and_detectors(capsys):
    heads = summary("multitask_resnet", capsys)["stages"]
    assert [(s["name"], s["output_shape"]) for s in heads[-3:]] == [
        ("avg_pool", [128]),
        ("category", [10]),
        ("colour", [6]),
    ]
    twin = summary("resnet18_twin", capsys)["stages"]
    assert twin[0]["layer"] == "twin/pool1_pool" and twin[-1]["layer"] == "similarity"
    faster = summary("faster_rcnn", capsys)["stages"]
    assert [s["layer"] for s in faster[-6:]] == [
        "rpn/rpn_conv",
        "rpn/rpn_objectness",
        "rpn/rpn_deltas",
        "head/fc2_dropout",
        "head/cls_score",
        "head/bbox_pred",
    ]
    assert faster[-5]["output_shape"] == [37 * 50 * 9] and faster[-4]["output_shape"] == [16650, 4]
    assert faster[-2]["output_shape"] == [128, 21]
    autoencoder = summary("conv_autoencoder", capsys)["stages"]
    assert [s["name"] for s in autoencoder] == ["encoder", "decoder"]
    assert autoencoder[-1]["output_shape"] == [32, 32, 3]


def test_the_text_table(capsys):
    capsys.readouterr()
    assert main(["summary", "resnet50"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "resnet50 (classifier), input 224x224x3"
    assert lines[2].split() == ["name", "output", "shape", "params", "MACs"]
    assert lines[4].split() == ["conv1", "56x56x64", "9,728", "118", "M"]
    assert "total params: 25,636,712" in lines
    assert "trainable params: 25,583,592" in lines
    assert "MACs: 3.86 G (3,857,973,248) per image" in lines
    assert main(["summary", "resnet18_twin"]) == 0
    out = capsys.readouterr().out
    assert "twin/conv2" in out and "per pair" in out and "note: the twin" in out


def test_overrides_and_errors(capsys):
    small = summary("resnet50", capsys, "--set", "input_shape=[112, 112, 3]")
    assert small["stages"][-2]["output_shape"] == [4, 4, 2048]
    assert small["total_params"] == 25_636_712  # convolutions do not depend on H, W
    full = summary("resnet50", capsys)["total_macs"]
    assert full / 4.5 < small["total_macs"] < full / 3.5  # about a quarter: half the side
    code, lines = cli_errors(["summary", "resnet5"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: resnet5: ")
    code, lines = cli_errors(["summary", "resnet50", "--format", "yaml"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    code, lines = cli_errors(["summary", "resnet50", "--set", "input_shape=[8, 8, 3]"], capsys)
    assert code == 2 and len(lines) == 1 and "shrink" in lines[0]


# Multiply-accumulates at 224x224 (299x299 for Inception v3), in G: torchvision's weights
# metadata ("_ops", its docs' GFLOPS column, counted as multiply-accumulates of the
# convolutions and linear layers); resnet50 there is v1.5 (stride on the 3x3).
TORCHVISION_GMACS = {
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50_v1_5": 4.089,
    "vgg16": 15.47,
    "vgg19": 19.632,
    "densenet121": 2.834,
    "densenet169": 3.36,
    "densenet201": 4.291,
    "inception_v3": 5.713,
    "squeezenet1_0": 0.819,
    "squeezenet1_1": 0.349,
    "resnext50_32x4d": 4.23,
    "resnext101_32x8d": 16.414,
}


@pytest.mark.parametrize("preset", sorted(TORCHVISION_GMACS))
def test_macs_match_torchvision(preset):
    assert plan(preset).total_macs / 1e9 == pytest.approx(TORCHVISION_GMACS[preset], abs=0.0015)


def test_macs_match_the_papers():
    # He et al. 2015, Table 1: ResNet-50 (v1, the stride on the first 1x1) "3.8 x 10^9
    # FLOPs" (multiply-adds); v1.5 moves the stride to the 3x3, about 4.1 G.
    assert 3.8e9 <= plan("resnet50").total_macs < 3.9e9
    assert 4.05e9 < plan("resnet50_v1_5").total_macs < 4.15e9
    # Simonyan and Zisserman: VGG16 about 15.5 G; Hu et al.: SE adds ~0.26% to ResNet-50.
    assert 15.4e9 < plan("vgg16").total_macs < 15.6e9
    assert plan("se_resnet50").total_macs / plan("resnet50_v1_5").total_macs < 1.01
    # A Siamese twin counts its backbone once per image of the pair.
    twin = plan("resnet18_twin")
    assert twin.total_macs == 2 * (plan("resnet18").total_macs - 512 * 1000) + 512


# ------------------------------------------------------------------- against Keras


def _layer(model, path: str):
    *scopes, name = path.split("/")
    for scope in scopes:
        model = model.get_layer(scope)
    return model.get_layer(name)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_full_size_summary_is_the_built_model(preset, capsys):
    """Every preset at full size (procedural; the golden file's own build, shared with the
    other full-size checks: conftest.full_size): count_params and each row's output shape
    are the built model's."""
    import numpy as np

    data = summary(preset, capsys)
    model = full_size(preset, "procedural").model
    assert model.count_params() == data["total_params"]
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert trainable == data["trainable_params"]
    for stage in data["stages"]:
        shape = list(_layer(model, stage["layer"]).output.shape[1:])
        if stage["layer"].startswith("head/"):  # Faster R-CNN's head: one RoI at a time
            shape = [stage["output_shape"][0], *shape[1:]]
        assert shape == stage["output_shape"], (preset, stage["name"], shape)
