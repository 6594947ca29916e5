"""Plan limits: the parameter ceiling (and --allow-large), pooling windows bigger than their
input, strides wider than the map, and zero-sized pieces. Each is one clear line naming
the spot, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import plan as plan_module
from generator.cli import main
from generator.errors import SpecError
from generator.pipeline import plan_for
from generator.plan import MAX_PARAMS, Counter, make_plan, pool
from generator.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
# ResNet50 with a million classes: the 2048 x 1,000,000 classifier alone is 2.05e9.
HUGE = ["--set", "n_classes=1000000"]
HUGE_TOTAL = 2_072_587_712


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc: int, out: str, err: str) -> str:
    assert rc == 2, (rc, err)
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------------- parameters


def test_the_limit_is_two_billion():
    assert MAX_PARAMS == 2_000_000_000


def test_over_the_limit_is_refused_naming_the_total_and_the_largest_part(tmp_path, capsys):
    assert plan_for("resnet50", ["n_classes=1000000"], allow_large=True).total_params == HUGE_TOTAL
    target = tmp_path / "huge.py"
    line = one_error_line(*run(["generate", "resnet50", *HUGE, "-o", str(target)], capsys))
    assert line.startswith("error: resnet50: the network would have 2,072,587,712 parameters")
    assert "over the limit of 2,000,000,000" in line
    assert "classifier, 2,049,000,000" in line  # the largest part, by its spec path
    assert "--allow-large" in line
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_allow_large_generates_it_and_the_regenerate_line_keeps_the_flag(capsys):
    rc, out, err = run(["generate", "resnet50", *HUGE, "--allow-large"], capsys)
    assert rc == 0, err
    assert "# Regenerate: modelgen generate resnet50 --style procedural " in out
    assert "--set n_classes=1000000 --allow-large\n" in out
    assert "    n_classes=1000000,\n" in out


def test_show_plans_too_so_it_honours_the_limit_and_the_flag(capsys):
    one_error_line(*run(["show", "resnet50", *HUGE], capsys))
    rc, out, err = run(["show", "resnet50", *HUGE, "--allow-large"], capsys)
    assert rc == 0, err
    assert "n_classes: 1000000" in out


def test_the_limit_is_inclusive(monkeypatch):
    total = plan_for("resnet18").total_params
    monkeypatch.setattr(plan_module, "MAX_PARAMS", total)
    make_plan(*load_spec("resnet18"))  # exactly at the limit: fine
    monkeypatch.setattr(plan_module, "MAX_PARAMS", total - 1)
    with pytest.raises(SpecError, match=f"{total:,} parameters"):
        make_plan(*load_spec("resnet18"))
    assert make_plan(*load_spec("resnet18"), allow_large=True).total_params == total


def test_a_wide_learner_group_is_named_as_the_largest_part(capsys):
    line = one_error_line(
        *run(["generate", "vgg16", "--set", "learner.groups.4.n_filters=30000"], capsys)
    )
    assert "the largest part: learner.groups[4]" in line


def test_every_preset_is_under_the_limit():
    from generator.spec import preset_names

    for name in preset_names():
        assert plan_for(name).total_params < MAX_PARAMS / 10


def test_the_docs_state_the_limit_and_the_flag():
    readme = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    assert f"{MAX_PARAMS:,}" in readme
    assert "--allow-large" in readme


# ------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("side", "group"),
    [(16, 4), (8, 3), (3, 1), (1, 0)],  # five 2x2/2 pools: 16 -> 8 -> 4 -> 2 -> 1 -> (window)
)
def test_pooling_window_bigger_than_its_input_names_the_group(side, group, capsys):
    line = one_error_line(
        *run(["generate", "vgg16", "--set", f"input_shape=[{side},{side},3]"], capsys)
    )
    assert line.startswith(f"error: vgg16: learner.groups[{group}]: feature maps shrink to nothing")
    assert (
        "the group's 2x2 max pool needs at least 2x2 maps (its pooling window) but gets 1x1" in line
    )


def test_pool_checks_the_window_before_the_stride():
    counter = Counter("spec.yaml", "stem")
    with pytest.raises(SpecError) as info:
        pool(counter, (2, 2, 8), 3, 2, "the stem's 3x3/2 max pool")
    assert str(info.value) == (
        "spec.yaml: stem: feature maps shrink to nothing: the stem's 3x3/2 max pool needs at "
        "least 3x3 maps (its pooling window) but gets 2x2; the input is too small for this "
        "stride schedule"
    )
    assert pool(counter, (3, 3, 8), 3, 2, "ok") == (1, 1, 8)


def test_stride_wider_than_the_map_names_the_group(capsys):
    # 64x64 input: the stem leaves 16x16, groups 1 and 2 halve it to 4x4; stride 8 on that.
    argv = ["generate", "resnet50", "--set", "input_shape=[64,64,3]"]
    line = one_error_line(*run([*argv, "--set", "learner.groups.3.strides=8"], capsys))
    assert line.startswith("error: resnet50: learner.groups[3]: feature maps shrink to nothing")
    assert "gets 4x4 maps" in line


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "learner.groups.1.n_blocks=0",
            "resnet50: learner.groups[1].n_blocks: must be >= 1, got 0",
        ),
        ("learner.groups=[]", "resnet50: learner.groups: must have at least 1 item(s), got 0"),
        (
            "learner.groups.0.n_filters=0",
            "resnet50: learner.groups[0].n_filters: must be >= 1, got 0",
        ),
        ("n_classes=0", "resnet50: n_classes: must be >= 1, got 0"),
        ("stem.n_filters=0", "resnet50: stem.n_filters: must be >= 1, got 0"),
        ("learner.groups.0.strides=0", "resnet50: learner.groups[0].strides: must be >= 1, got 0"),
        ("input_shape=[0,224,3]", "resnet50: input_shape[0]: must be >= 1, got 0"),
    ],
)
def test_zero_sized_pieces_are_refused_naming_the_field(override, message, capsys):
    line = one_error_line(*run(["generate", "resnet50", "--set", override], capsys))
    assert line == f"error: {message}"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learner.groups.2.n_layers=0", "vgg16: learner.groups[2].n_layers: must be >= 1, got 0"),
        (
            "classifier.dense_units=[4096, 0]",
            "vgg16: classifier.dense_units[1]: must be >= 1, got 0",
        ),
    ],
)
def test_zero_sized_vgg_pieces_are_refused_naming_the_field(override, message, capsys):
    line = one_error_line(*run(["generate", "vgg16", "--set", override], capsys))
    assert line == f"error: {message}"
