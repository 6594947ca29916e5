"""Scale: a 1000-layer-class network (ResNet50 with 40 and 60 blocks in its middle groups,
1,077 Keras layers) generates like any other spec and builds. The generation time is
measured in benchmarks/generate.md ("Scale"), not asserted here."""

from __future__ import annotations

import importlib.util

import pytest

from generator.pipeline import generate, plan_for
from generator.spec import MAX_BLOCKS

DEEP = ["learner.groups.1.n_blocks=40", "learner.groups.2.n_blocks=60"]


def bottleneck_layer_count(n_blocks: list[int]) -> int:
    """keras.applications ResNet v1 layers: input, stem (6), a projection block (12),
    identity blocks (10 each), average pool and predictions."""
    return 1 + 6 + sum(12 + 10 * (n - 1) for n in n_blocks) + 2


def test_the_deep_spec_is_a_thousand_layer_network():
    plan = plan_for("resnet50", DEEP)
    n_blocks = [group.n_blocks for group in plan.spec.learner.groups]
    assert n_blocks == [3, 40, 60, 3]
    assert bottleneck_layer_count(n_blocks) == 1077


def test_the_deepest_spec_allowed_plans_and_renders():
    """64 groups of MAX_BLOCKS blocks: the plan walks 65,536 blocks; sizes stay data."""
    groups = "[" + ", ".join([f"{{n_filters: 4, n_blocks: {MAX_BLOCKS}}}"] * 64) + "]"
    text = generate("resnet50", "oop", [f"learner.groups={groups}"])
    assert text.count("'n_blocks': 1024") + text.count('"n_blocks": 1024') == 64
    assert len(text.splitlines()) < 500  # depth is data: the file does not grow with it


@pytest.mark.slow
def test_a_1077_layer_network_builds_with_the_planned_parameter_count(tmp_path):
    import keras

    path = tmp_path / "deep_resnet.py"
    path.write_text(generate("resnet50", "procedural", DEEP), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("deep_resnet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    # 32x32 is the smallest input the stride schedule accepts: 32 -> 8 -> 8 -> 4 -> 2 -> 1.
    model = module.build_model(input_shape=(32, 32, 3), n_classes=10)
    assert isinstance(model, keras.Model)
    assert len(model.layers) == bottleneck_layer_count([3, 40, 60, 3]) == 1077
    planned = plan_for("resnet50", [*DEEP, "input_shape=[32, 32, 3]", "n_classes=10"])
    assert model.count_params() == planned.total_params
    assert model.output_shape == (None, 10)
