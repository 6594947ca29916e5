"""Spec validation (field paths, reasons) and the static plan (shapes, parameter counts)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.errors import SpecError
from generator.plan import make_plan
from generator.spec import (
    MAX_FILTERS,
    Spec,
    apply_overrides,
    load_raw,
    load_spec,
    preset_names,
    validate,
)

PRESETS = preset_names()
PRESETS_DIR = Path(__file__).resolve().parent.parent / "generator" / "presets"


def raw(name: str) -> dict:
    data, _ = load_raw(name)
    return copy.deepcopy(data)


def spec_error(data: dict, source: str = "test.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        validate(data, source)
    return info.value


def plan_error(data: dict, source: str = "test.yaml") -> SpecError:
    spec = validate(data, source)
    with pytest.raises(SpecError) as info:
        make_plan(spec, source)
    return info.value


# ------------------------------------------------------------------------- presets


def test_preset_names():
    assert len(PRESETS) >= 11  # each family adds its own; the sets below must be there
    assert {"inception_v1", "inception_v3"} <= set(PRESETS)
    assert {"resnext50_32x4d", "resnext101_32x8d", "se_resnet50", "se_resnext50_32x4d"} <= set(
        PRESETS
    )
    assert {"squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass"} <= set(PRESETS)
    assert "squeezenet1_0_complex_bypass" in PRESETS
    assert {"resnet18", "resnet34", "resnet50", "resnet50_v1_5", "resnet50_v2"} <= set(PRESETS)
    assert {"resnet101", "resnet101_v2", "resnet152", "resnet152_v2", "vgg16", "vgg19"} <= set(
        PRESETS
    )


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_validates_and_plans(name):
    data, source = load_raw(name)
    assert source == name
    spec = validate(data, name)
    assert isinstance(spec, Spec)
    assert spec.name == name
    assert spec.class_name.isidentifier()
    plan = make_plan(spec, name)
    assert plan.total_params >= plan.trainable_params > 0
    final = {  # what each macro-architecture's last stage outputs
        "classifier": tuple(h.n_classes for h in plan.heads) or (spec.n_classes,),  # scores
        "siamese": (1,),  # P(same class) for a pair
        "autoencoder": tuple(spec.input_shape),  # the reconstructed image
    }
    if spec.detector is not None:  # class scores per region (+ background for Fast R-CNN)
        regions = spec.detector.n_regions
        final.update(rcnn=(regions, spec.n_classes), fast_rcnn=(regions, spec.n_classes + 1))
        final["faster_rcnn"] = final["fast_rcnn"]  # the same head, on sampled RoIs
    assert plan.stages[-1].output_shape == final[spec.architecture]
    assert sum(stage.params for stage in plan.stages) == plan.total_params
    assert sum(stage.trainable for stage in plan.stages) == plan.trainable_params
    assert load_spec(name) == (spec, name)


def test_validate_does_not_mutate_its_input():
    data = raw("resnet50")
    before = copy.deepcopy(data)
    validate(data, "x")
    assert data == before


# ------------------------------------------------------------------------- error paths


def test_nested_field_path_and_range_reason():
    data = raw("resnet50")
    data["learner"]["groups"][2]["n_filters"] = 0
    err = spec_error(data, "src.yaml")
    assert err.path == "learner.groups[2].n_filters"
    assert err.reason == "must be >= 1, got 0"
    assert str(err) == "src.yaml: learner.groups[2].n_filters: must be >= 1, got 0"
    assert "\n" not in str(err)


def test_upper_bound_reason():
    data = raw("resnet50")
    data["learner"]["groups"][0]["n_filters"] = MAX_FILTERS + 1
    err = spec_error(data)
    assert err.path == "learner.groups[0].n_filters"
    assert err.reason == f"must be <= {MAX_FILTERS}, got {MAX_FILTERS + 1}"


def test_vgg_group_path_skips_the_union_tag():
    data = raw("vgg16")
    data["learner"]["groups"][4]["n_layers"] = -3
    err = spec_error(data)
    assert err.path == "learner.groups[4].n_layers"
    assert "vgg" not in err.path
    assert err.reason == "must be >= 1, got -3"


def test_several_problems_give_one_line_each():
    data = raw("resnet50")
    data["learner"]["groups"][0]["n_filters"] = 0
    data["n_classes"] = 0
    err = spec_error(data, "s")
    lines = str(err).splitlines()
    assert len(lines) == 2
    assert "s: n_classes: must be >= 1, got 0" in lines
    assert "s: learner.groups[0].n_filters: must be >= 1, got 0" in lines


def test_wrong_type_names_the_field():
    data = raw("resnet50")
    data["learner"]["groups"][0]["n_filters"] = "abc"
    err = spec_error(data)
    assert err.path == "learner.groups[0].n_filters"
    assert "integer" in err.reason and "'abc'" in err.reason


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("n_classes",), True),
        (("learner", "groups", 0, "n_filters"), True),
        (("learner", "groups", 1, "strides"), False),
        (("stem", "n_filters"), True),
    ],
)
def test_bool_where_int_expected_is_rejected(path, value):
    data = raw("resnet50")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    err = spec_error(data)
    expected = ".".join(str(p) for p in path).replace(".0.", "[0].").replace(".1.", "[1].")
    assert err.path == expected
    assert "integer" in err.reason


def test_int_where_bool_expected_is_rejected():
    data = raw("resnet50")
    data["conventions"]["bias_before_bn"] = 1
    err = spec_error(data)
    assert err.path == "conventions.bias_before_bn"


def test_float_where_int_expected_is_rejected():
    data = raw("resnet50")
    data["learner"]["groups"][0]["n_blocks"] = 2.5
    assert spec_error(data).path == "learner.groups[0].n_blocks"


def test_unknown_field_suggests_the_right_name():
    data = raw("resnet50")
    data["learner"]["groups"][1]["n_filter"] = 3
    err = spec_error(data)
    assert err.path == "learner.groups[1].n_filter"
    assert err.reason == "unknown field; did you mean 'n_filters'?"

    data = raw("resnet50")
    data["clasifier"] = {"kind": "avg_pool"}
    err = spec_error(data)
    assert err.path == "clasifier"
    assert err.reason == "unknown field; did you mean 'classifier'?"


def test_unknown_field_far_from_any_name_lists_the_fields_there():
    data = raw("resnet50")
    data["colour"] = "red"
    err = spec_error(data)
    assert err.path == "colour"
    assert err.reason.startswith("unknown field; the fields here are name, class_name, family,")
    assert err.reason.endswith(", twin (modelgen schema lists them all)")

    data = raw("resnet50")
    data["stem"]["colour"] = 2
    err = spec_error(data)
    assert err.path == "stem.colour"
    assert err.reason.startswith("unknown field; the fields here are kind, n_filters")


def test_missing_required_field():
    data = raw("resnet50")
    del data["learner"]["groups"][3]["n_blocks"]
    err = spec_error(data)
    assert err.path == "learner.groups[3].n_blocks"
    assert err.reason == "required field is missing"


def test_bad_learner_block():
    data = raw("resnet50")
    data["learner"]["block"] = "capsule"
    err = spec_error(data)
    assert err.path == "learner.block" or err.path == "learner"
    assert "'capsule'" in err.reason


def test_stride_on_on_a_basic_learner_is_rejected():
    data = raw("resnet18")
    data["learner"]["stride_on"] = "3x3"
    err = spec_error(data)
    assert err.path == "learner"
    assert "stride_on" in err.reason and "bottleneck" in err.reason


def test_stride_on_on_a_preact_learner_is_rejected():
    data = raw("resnet50_v2")
    data["learner"]["stride_on"] = "1x1"
    err = spec_error(data)
    assert err.path == "learner"
    assert "stride_on" in err.reason


def test_stride_on_on_a_bottleneck_learner_is_fine():
    data = raw("resnet50")
    data["learner"]["stride_on"] = "3x3"
    assert validate(data, "x").learner.stride_on == "3x3"
    data["learner"]["stride_on"] = "5x5"
    assert spec_error(data).path == "learner.stride_on"


@pytest.mark.parametrize(("field", "value"), [("dense_units", [4096]), ("dropout", 0.5)])
def test_flatten_only_fields_on_an_avg_pool_classifier_are_rejected(field, value):
    data = raw("resnet50")
    data["classifier"][field] = value
    err = spec_error(data)
    assert err.path == "classifier"
    assert "flatten" in err.reason and field in err.reason


def test_dropout_must_be_below_one():
    data = raw("vgg16")
    data["classifier"]["dropout"] = 1.0
    err = spec_error(data)
    assert err.path == "classifier.dropout"
    assert err.reason == "must be < 1.0, got 1.0"


@pytest.mark.parametrize("field", ["name", "class_name"])
@pytest.mark.parametrize("value", ["1abc", "my-net", "my net", "class", "None", "ünïcode"])
def test_name_must_be_a_python_identifier(field, value):
    data = raw("resnet18")
    data[field] = value
    err = spec_error(data)
    assert err.path == field
    assert "identifier" in err.reason


def test_name_can_be_any_plain_identifier():
    data = raw("resnet18")
    data["name"] = "_my_net2"
    data["class_name"] = "MyNet2"
    spec = validate(data, "x")
    assert (spec.name, spec.class_name) == ("_my_net2", "MyNet2")


@pytest.mark.parametrize(
    "title",
    [
        "two\nlines",
        "carriage\rreturn",
        'ends the docstring """ here',
        "back\\slash",
        "template {{ injection }}",
        "nul\x00byte",
    ],
)
def test_title_that_could_escape_the_docstring_is_rejected(title):
    data = raw("resnet18")
    data["title"] = title
    err = spec_error(data)
    assert err.path == "title"


def test_description_may_span_lines_but_not_close_the_docstring():
    data = raw("resnet18")
    data["description"] = "line one\nline two\n"
    assert validate(data, "x").description == "line one\nline two\n"
    data["description"] = 'oops """ closing'
    assert spec_error(data).path == "description"


@pytest.mark.parametrize(
    ("shape", "path"),
    [
        ([224, 224], "input_shape[2]"),  # the missing third item
        ([224, 224, 3, 1], "input_shape"),
        ([0, 224, 3], "input_shape[0]"),
        ([224, 224, 0], "input_shape[2]"),
    ],
)
def test_input_shape_is_three_positive_ints(shape, path):
    data = raw("resnet18")
    data["input_shape"] = shape
    assert spec_error(data).path == path


def test_spec_must_be_a_mapping():
    for value in (None, [1, 2], "text", 3):
        err = spec_error(value)  # type: ignore[arg-type]
        assert "mapping" in err.reason


# ------------------------------------------------------------------------- load / overrides


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(SpecError) as info:
        load_raw("resnet5")
    assert str(info.value) == "resnet5: unknown preset; did you mean 'resnet50'?"


def test_apply_overrides_walks_dicts_and_lists_and_parses_yaml():
    data = raw("resnet50")
    out = apply_overrides(
        data,
        ["learner.groups.0.n_blocks=2", "input_shape=[64, 64, 3]", "title=a b"],
        "src",
    )
    assert out["learner"]["groups"][0]["n_blocks"] == 2
    assert out["input_shape"] == [64, 64, 3]
    assert out["title"] == "a b"
    assert data["learner"]["groups"][0]["n_blocks"] == 3  # the input is not mutated


def test_apply_overrides_takes_an_index_in_brackets():
    dotted = apply_overrides(raw("resnet50"), ["learner.groups.1.n_blocks=7"], "src")
    brackets = apply_overrides(raw("resnet50"), ["learner.groups[1].n_blocks=7"], "src")
    assert brackets == dotted and brackets["learner"]["groups"][1]["n_blocks"] == 7


def test_a_misspelt_section_is_named_with_a_suggestion(tmp_path):
    data = raw("resnet50")
    for wrong, right in (("lerner", "learner"), ("clasifier", "classifier")):
        spec = dict(data)
        spec[wrong] = spec.pop(right)
        path = tmp_path / f"{wrong}.yaml"
        path.write_text(yaml.safe_dump(spec), encoding="utf-8")
        with pytest.raises(SpecError) as info:
            load_spec(str(path))
        assert f"{wrong}: unknown section; did you mean '{right}'?" in str(info.value)
    spec = dict(data)
    spec["zzzz"] = spec.pop("learner")  # nothing close: the missing section, and the stray key
    path = tmp_path / "far.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    assert "learner: required for architecture 'classifier'" in str(info.value)
    assert "unknown: 'zzzz'" in str(info.value)


@pytest.mark.parametrize(
    ("item", "path", "reason_part"),
    [
        ("learner.groups.9.n_blocks=2", "learner.groups.9", "no list item 9 (the list has 4)"),
        ("learner.groups.x.n_blocks=2", "learner.groups.x", "no list item x"),
        ("learner.nope.x=1", "learner.nope", "no such field"),
        ("n_classes.x=1", "n_classes.x", "plain value"),
        ("n_classes", "n_classes", "dotted.path=value"),
        # the index as the errors print it
        ("learner.groups[9].n_blocks=2", "learner.groups[9]", "no list item 9 (the list has 4)"),
        ("learner.groups[x]=1", "learner.groups[x]", "no list item x"),
        ("learner.groups[0=1", "learner.groups[0=1", "each with optional [index]"),
        # a near name, where the path goes on inside it
        ("learner.group[0].n_blocks=2", "learner.group", "did you mean 'groups'?"),
        ("lerner.groups.0.n_blocks=2", "lerner", "did you mean 'learner'?"),
    ],
)
def test_apply_overrides_errors_name_the_path(item, path, reason_part):
    with pytest.raises(SpecError) as info:
        apply_overrides(raw("resnet50"), [item], "src")
    assert info.value.source == "src"
    assert info.value.path == path
    assert reason_part in info.value.reason


# ------------------------------------------------------------------------- duplicate keys


def _load_error(path) -> str:
    with pytest.raises(SpecError) as info:
        load_raw(str(path))
    return str(info.value)


def test_a_key_written_twice_is_refused_naming_it_and_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys silently: a typo'd override was lost."""
    text = (PRESETS_DIR / "resnet50.yaml").read_text(encoding="utf-8")
    first = 1 + next(i for i, line in enumerate(text.splitlines()) if line.startswith("n_classes:"))
    path = tmp_path / "dup.yaml"
    path.write_text(text.rstrip("\n") + "\nn_classes: 10\n", encoding="utf-8")
    last = len(path.read_text(encoding="utf-8").splitlines())
    line = _load_error(path)
    assert f"duplicate key 'n_classes' on lines {first} and {last}" in line, line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", "duplicate key 'b' on lines 2 and 4"),
        ("a:\n  - {k: 1}\n  - {k: 1, k: 2}\n", "duplicate key 'k' twice on line 3"),
        ("1: a\n1.0: b\n", "duplicate key 1.0 on lines 1 and 2"),  # equal keys
        ("yes: a\ntrue: b\n", "duplicate key True on lines 1 and 2"),
        ("s: !!set {a, a}\n", "duplicate key 'a' twice on line 1"),
    ],
)
def test_duplicate_keys_are_refused_in_nested_mappings_too(tmp_path, text, needle):
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    assert needle in _load_error(path)


def test_a_merge_key_may_be_overridden(tmp_path):
    """`<<: *base` then a key of base is what merges are for, not a duplicate."""
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n", encoding="utf-8")
    data, _ = load_raw(str(path))
    assert data["other"] == {"x": 3, "y": 2}


def test_a_set_value_with_a_duplicate_key_is_refused():
    with pytest.raises(SpecError) as info:
        apply_overrides(raw("resnet50"), ["stem={filters: 1, filters: 2}"], "src")
    assert info.value.path == "stem"
    assert "duplicate key 'filters' twice on line 1" in info.value.reason


def test_no_preset_has_a_duplicate_key():
    for name in PRESETS:
        load_raw(name)  # raises on a duplicate


@settings(max_examples=40, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=3),
    value=st.integers(min_value=-(2**40), max_value=2**40),
)
def test_n_filters_range_is_enforced_at_every_group(index, value):
    data = raw("resnet50")
    data["learner"]["groups"][index]["n_filters"] = value
    if 1 <= value <= MAX_FILTERS:
        assert validate(data, "x").learner.groups[index].n_filters == value
    else:
        err = spec_error(data)
        assert err.path == f"learner.groups[{index}].n_filters"
        bound = f"must be >= 1, got {value}" if value < 1 else f"must be <= {MAX_FILTERS}"
        assert err.reason.startswith(bound)


# ------------------------------------------------------------------------- plan


def test_plan_rejects_resnet50_whose_feature_maps_collapse():
    """16x16 through ResNet50's stem and three stride-2 groups: 16 -> 4 -> 2 -> 1 -> (1/2)."""
    data = raw("resnet50")
    data["input_shape"] = [16, 16, 3]
    err = plan_error(data, "resnet50")
    assert err.path.startswith("learner.groups[") or err.path == "stem", err.path
    assert "shrink" in err.reason


def test_plan_rejects_a_tiny_vgg_input():
    data = raw("vgg16")
    data["input_shape"] = [16, 16, 3]  # five 2x2 pools: 16 -> 8 -> 4 -> 2 -> 1 -> (0)
    err = plan_error(data, "vgg16")
    assert err.path == "learner.groups[4]"
    assert err.source == "vgg16"
    assert "\n" not in str(err)

    data["input_shape"] = [1, 1, 3]
    assert plan_error(data).path == "learner.groups[0]"


def test_plan_accepts_the_smallest_vgg_input():
    data = raw("vgg16")
    data["input_shape"] = [32, 32, 3]
    plan = make_plan(validate(data, "x"), "x")
    assert plan.stages[4].output_shape == (1, 1, 512)


def test_plan_totals_resnet50():
    plan = make_plan(*load_spec("resnet50"))
    assert plan.total_params == 25_636_712
    assert plan.trainable_params == 25_583_592


def test_plan_totals_resnet18():
    plan = make_plan(*load_spec("resnet18"))
    assert plan.trainable_params == 11_689_512
    assert plan.total_params == 11_699_112


def test_plan_totals_vgg16():
    plan = make_plan(*load_spec("vgg16"))
    assert plan.total_params == plan.trainable_params == 138_357_544


def test_resnet50_stage_shapes():
    plan = make_plan(*load_spec("resnet50"))
    shapes = {stage.name: stage.output_shape for stage in plan.stages}
    assert shapes == {
        "stem": (56, 56, 64),
        "conv2": (56, 56, 256),
        "conv3": (28, 28, 512),
        "conv4": (14, 14, 1024),
        "conv5": (7, 7, 2048),
        "classifier": (1000,),
    }
    assert [stage.kind for stage in plan.stages] == [
        "stem",
        "group",
        "group",
        "group",
        "group",
        "classifier",
    ]


def test_vgg16_stage_shapes():
    plan = make_plan(*load_spec("vgg16"))
    assert [(s.name, s.output_shape) for s in plan.stages] == [
        ("block1", (112, 112, 64)),
        ("block2", (56, 56, 128)),
        ("block3", (28, 28, 256)),
        ("block4", (14, 14, 512)),
        ("block5", (7, 7, 512)),
        ("classifier", (1000,)),
    ]


def test_plan_follows_overrides():
    base = make_plan(*load_spec("resnet50"))
    fewer = make_plan(*load_spec("resnet50", ["learner.groups.0.n_blocks=2"]))
    assert fewer.total_params < base.total_params
    ten = make_plan(*load_spec("resnet50", ["n_classes=10"]))
    # the classifier's dense layer: 2048 * n + n parameters
    assert base.total_params - ten.total_params == 2049 * (1000 - 10)
    small = make_plan(*load_spec("resnet50", ["input_shape=[112, 112, 3]"]))
    assert small.total_params == base.total_params  # convolutions do not depend on H, W
    assert small.stages[-2].output_shape == (4, 4, 2048)
