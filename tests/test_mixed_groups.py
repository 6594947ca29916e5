"""A learner whose groups mix block types: each group may name its own block type (a group
`block`), within the learner's family (basic and bottleneck residual groups). The plan
walks each group with its own planner, the file holds each block type's functions under
its tag (basic_group, bottleneck_group ...) and the learner picks one per group from
METAPARAMETERS, so a user can re-mix the groups without regenerating."""

import importlib.util
import itertools

import pytest
from conftest import cli_errors

from generator.errors import SpecError
from generator.pipeline import generate, plan_for

SPEC = """\
name: mixed_resnet
input_shape: [64, 64, 3]
n_classes: 10
stem: {kind: resnet, n_filters: 16}
learner:
  block: basic
  groups:
    - {n_filters: 16, n_blocks: 2}
    - {n_filters: 32, n_blocks: 1, strides: 2}
    - {n_filters: 16, n_blocks: 2, strides: 2, block: bottleneck}
classifier: {kind: avg_pool}
"""
_ids = itertools.count()


@pytest.fixture
def spec_file(tmp_path):
    def write(text=SPEC):
        path = tmp_path / f"mixed{next(_ids)}.yaml"
        path.write_text(text)
        return str(path)

    return write


def _module(text: str, tmp_path):
    path = tmp_path / f"emitted{next(_ids)}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_group_is_planned_with_its_own_block_type(spec_file):
    plan = plan_for(spec_file())
    assert plan.group_blocks == ["basic", "basic", "bottleneck"] and plan.mixed
    groups = [stage for stage in plan.stages if stage.kind == "group"]
    assert [stage.detail for stage in groups] == ["basic x2", "basic x1", "bottleneck x2"]
    assert groups[-1].output_shape == (4, 4, 64)  # 4 * n_filters out of the bottleneck group
    assert [g["block"] for g in plan.metaparameters["groups"]] == plan.group_blocks


def test_the_file_holds_each_block_types_functions_under_its_tag(spec_file):
    text = generate(spec_file(), "procedural")
    for name in (
        "basic_group",
        "basic_identity_block",
        "bottleneck_group",
        "bottleneck_projection_block",
    ):
        assert f"def {name}(" in text, name
    assert "def group(" not in text and "def identity_block(" not in text
    oop = generate(spec_file(), "oop")
    assert "MixedResnet.bottleneck_group" in oop and "def basic_group(" in oop


def test_groups_of_one_block_type_keep_the_plain_file(spec_file):
    """Naming the learner's own block type in every group changes nothing."""
    same = SPEC.replace(", block: bottleneck", "").replace(
        "n_blocks: 2}", "n_blocks: 2, block: basic}"
    )
    plain = SPEC.replace(", block: bottleneck", "")
    assert (
        generate(spec_file(same), "procedural").split("\n", 2)[2]
        == generate(spec_file(plain), "procedural").split("\n", 2)[2]
    )
    assert not plan_for(spec_file(same)).mixed


def test_a_bottleneck_learner_of_basic_groups_only_takes_no_bottleneck_defaults(spec_file):
    """learner.block: bottleneck with every group basic: no group is a bottleneck one, so
    the bottleneck options are not filled in (and not refused)."""
    text = SPEC.replace("block: basic\n", "block: bottleneck\n").replace(
        ", block: bottleneck}", ", block: basic}"
    )
    text = text.replace("n_blocks: 2}", "n_blocks: 2, block: basic}").replace(
        "strides: 2}", "strides: 2, block: basic}"
    )
    plan = plan_for(spec_file(text))
    assert plan.group_blocks == ["basic"] * 3 and plan.spec.learner.stride_on is None


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            ("block: basic", "block: preact_bottleneck"),
            "groups[2].block: a preact_bottleneck learner",
        ),
        (("block: bottleneck}", "block: dense}"), "learner.groups[2].block: must be one of"),
        (("block: bottleneck}", "block: bottleneck}\n  stride_on: 3x3"), None),
        (("    - {n_filters: 16, n_blocks: 2, strides: 2, block: bottleneck}\n", ""), "stride_on"),
    ],
)
def test_mixing_rules(spec_file, capsys, edit, message):
    text = SPEC.replace(*edit)
    if message == "stride_on":  # no bottleneck group left: stride_on does not apply
        text = text.replace("  block: basic\n", "  block: basic\n  stride_on: 3x3\n")
        message = "learner: stride_on applies only to block 'bottleneck'"
    if message is None:  # stride_on applies: one group is a bottleneck group
        assert plan_for(spec_file(text)).mixed
        return
    with pytest.raises(SpecError):
        plan_for(spec_file(text))
    code, lines = cli_errors(["generate", spec_file(text), "--style", "oop"], capsys)
    assert code == 2 and len(lines) == 1 and message in lines[0], lines


@pytest.mark.slow
def test_both_styles_build_the_planned_network(spec_file, tmp_path):
    plan = plan_for(spec_file())
    procedural = _module(generate(spec_file(), "procedural"), tmp_path).build_model()
    oop = _module(generate(spec_file(), "oop"), tmp_path).MixedResnet().model
    for model in (procedural, oop):
        assert model.count_params() == plan.total_params
        for stage in plan.stages[1:-1]:  # each group's output
            last = [layer for layer in model.layers if layer.name.startswith(f"{stage.name}_")][-1]
            assert tuple(last.output.shape[1:]) == stage.output_shape, stage.name
    names = [layer.name for layer in procedural.layers[1:]]
    assert names == [layer.name for layer in oop.layers[1:]]


@pytest.mark.slow
def test_the_groups_re_mix_at_build_time(spec_file, tmp_path):
    """METAPARAMETERS are data: a user swaps a group's block type without regenerating."""
    module = _module(generate(spec_file(), "procedural"), tmp_path)
    groups = [dict(group) for group in module.METAPARAMETERS["groups"]]
    groups[0]["block"] = "bottleneck"
    swapped = SPEC.replace(
        "    - {n_filters: 16, n_blocks: 2}\n",
        "    - {n_filters: 16, n_blocks: 2, block: bottleneck}\n",
    )
    model = module.build_model(metaparameters={"groups": groups})
    assert model.count_params() == plan_for(spec_file(swapped)).total_params
    assert module.METAPARAMETERS["groups"][0]["block"] == "basic"  # not mutated
