"""Fuzzing the generate path with hypothesis, through the real CLI entry point.

Three sources of specs: valid ones built from scratch (they must generate), presets with
random mutations written to a YAML file (nested fields, extreme numbers, wrong types,
missing and extra keys), and presets with random --set overrides. The property, for every
one of them: either exit 0 and the output parses, is black-stable, imports only keras and
is inert (tests/emitted.py), or exit 2 with one or more lines that each start `error:`;
never a traceback, never "internal error".

Derandomized (the same examples on every run, so CI is stable) and without an example
database. Crashes that fuzzing found are kept as @example regressions. For a longer, random
hunt: `MODELGEN_FUZZ_SCALE=20 python -m pytest tests/test_fuzz.py` (20x the examples, new
ones each run).
"""

from __future__ import annotations

import ast
import builtins
import copy
import keyword
import os
import re
from pathlib import Path

import black
import pytest
import yaml
from conftest import PRESETS, STYLES
from emitted import assert_inert, golden_names, imports_only_keras
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from generator.cli import main
from generator.spec import load_raw, load_spec

SCALE = int(os.environ.get("MODELGEN_FUZZ_SCALE", "1"))
FUZZ = settings(
    deadline=None,
    derandomize=SCALE == 1,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PRESET_RAW = {name: load_raw(name)[0] for name in PRESETS}
PRESETS_DIR = Path(__file__).resolve().parent.parent / "generator" / "presets"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def check_property(argv: list[str], capsys, must_succeed: bool = False) -> int:
    rc, out, err = run(argv, capsys)
    if currently_in_test_context():  # outcome shares: --hypothesis-show-statistics
        event(f"exit {rc}")
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    if rc == 0:
        tree = ast.parse(out)
        assert black.format_str(out, mode=black.Mode()) == out, "not black-stable"
        assert imports_only_keras(tree)
        target, style, overrides = argv[1], argv[argv.index("--style") + 1], []
        for index, word in enumerate(argv):
            if word == "--set":
                overrides.append(argv[index + 1])
        spec, _ = load_spec(target, overrides)
        assert_inert(out, spec.model_dump(), style)
        return rc
    assert not must_succeed, f"a valid spec was refused: {err}"
    assert rc == 2, (rc, err)
    assert out == ""
    lines = err.split("\n")
    assert lines[-1] == "" and len(lines) >= 2, err
    for line in lines[:-1]:
        assert line.startswith("error: "), err
    return rc


def write_yaml(tmp_path_factory, data) -> str:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------- strategies

HOSTILE_STRINGS = [
    '"""',
    "\\",
    "{{ 7*7 }}",
    "{% raw %}",
    "\u2028",
    "\x00",
    "\t",
    "__import__('os').system('x')",
    "x" * 5000,
    "",
    " ",
    "ValueError",
    "keras",
]
EXTREME_INTS = [0, 1, 2, 3, 8, 9, 64, 1024, 1025, 4096, 4097, 8192, 8193, 65536, 65537]
EXTREME_INTS += [10**6, 10**6 + 1, 2**31, 2**63, 2**64, -1, -(2**63), 10**300]

# Integers too large for a float (float(10**400) raises OverflowError, not ValueError).
EXTREME_INTS += [10**400, -(10**400)]
# Every type yaml.safe_load builds, not only numbers and text: a date, a timestamp, bytes
# (!!binary), a set (!!set) and keys that are no strings. A validator that looks a raw
# value up in a table (`value in STEMS`) raises TypeError on the unhashable ones.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-100, max_value=300),
    st.sampled_from(EXTREME_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1.0, 1e-300, 5e-324, 1e308]),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
    st.sets(st.integers(0, 3) | st.text(max_size=3), max_size=3),
)
keys = st.text(max_size=8) | st.integers(-2, 2) | st.booleans() | st.none() | st.dates()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


def other_type(value):
    """A strategy for values of any type but value's own (True is no int here): a list where
    a name belongs, a mapping for a number, a number for a list ..."""
    return values.filter(lambda new: type(new) is not type(value))


def node_paths(data, prefix=()):
    """Every (path, node) in a nested structure of dicts and lists, root included."""
    yield prefix, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from node_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from node_paths(value, (*prefix, index))


def get(data, path):
    for key in path:
        data = data[key]
    return data


@st.composite
def mutated_specs(draw):
    """A preset with 1-4 mutations: replace, delete, add a key, grow or empty a list."""
    data = copy.deepcopy(PRESET_RAW[draw(st.sampled_from(PRESETS))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [path for path, _ in node_paths(data)]
        path = draw(st.sampled_from(paths))
        node = get(data, path)
        parent = get(data, path[:-1]) if path else None
        ops = ["replace", "replace", "retype", "retype", "delete", "add", "list", "number"]
        op = draw(st.sampled_from(ops))
        if op == "replace" and path:
            parent[path[-1]] = draw(values)
        elif op == "retype" and path:  # the field's TYPE changes, not only its value
            parent[path[-1]] = draw(other_type(node))
        elif op == "delete" and path:
            del parent[path[-1]]
        elif op == "add" and isinstance(node, dict):
            key = draw(st.sampled_from(["n_filters", "strides", "kind", "block", "x", "groups"]))
            node[key] = draw(values)
        elif op == "list" and isinstance(node, list):
            if node and draw(st.booleans()):
                node.extend(copy.deepcopy(node[-1:]) * draw(st.integers(0, 70)))
            else:
                node.clear()
        elif op == "number" and path and isinstance(node, (int, float)):
            parent[path[-1]] = draw(st.sampled_from(EXTREME_INTS) | st.floats())
    return data


@st.composite
def set_overrides(draw):
    """A preset name and 1-3 `--set path=value` items: real paths, made-up ones, odd text."""
    preset = draw(st.sampled_from(PRESETS))
    paths = [
        ".".join(str(part) for part in path) for path, _ in node_paths(PRESET_RAW[preset]) if path
    ]
    items = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths) | st.text(max_size=12))
        leaf = PRESET_RAW[preset]
        for key in path.split("."):
            leaf = (
                leaf[int(key)]
                if isinstance(leaf, list) and key.isdigit()
                else (leaf.get(key) if isinstance(leaf, dict) else None)
            )
        if isinstance(leaf, int) and not isinstance(leaf, bool) and draw(st.booleans()):
            value = draw(st.integers(min_value=max(leaf // 4, 1), max_value=leaf * 2 + 1))
        elif leaf is not None and draw(st.booleans()):
            value = draw(other_type(leaf))
        else:
            value = draw(values)
        if draw(st.booleans()):
            text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
            text = text.removesuffix("...").strip()
        else:
            text = draw(st.text(max_size=20) | st.sampled_from(HOSTILE_STRINGS))
        items.append(f"{path}={text}")
    return preset, items


def _camel(name: str) -> str:
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return camel or name


def _free_class_name(name: str) -> bool:
    return (
        not keyword.iskeyword(name)
        and name not in dir(builtins)
        and name not in golden_names()  # what the templates write (read from golden/)
        and not (name.startswith("__") and name.endswith("__"))
    )


identifiers = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z").filter(
    lambda s: not keyword.iskeyword(s)
)
# Text the spec documents as fine: printable, no `"""`, backslash or template delimiter.
printable = st.characters(exclude_categories=("C", "Z"), include_characters=" ")


def fine_text(max_size: int, first_not: str = ""):
    forbidden = ('"""', "\\", "{{", "{%", "{#")
    return (
        st.text(printable, min_size=1, max_size=max_size)
        .map(lambda s: s.strip(" "))
        .filter(lambda s: s and not any(f in s for f in forbidden))
        .filter(lambda s: not (first_not and s.startswith(first_not)))
    )


@st.composite
def valid_specs(draw):
    """Specs that satisfy every documented rule, built from scratch: they must generate."""
    block = draw(st.sampled_from(["vgg", "basic", "bottleneck", "preact_bottleneck", "dense"]))
    n_groups = draw(st.integers(min_value=1, max_value=5))
    if block == "vgg":
        groups = [
            {"n_filters": draw(st.integers(1, 96)), "n_layers": draw(st.integers(1, 4))}
            for _ in range(n_groups)
        ]
        stem = draw(st.sampled_from([{"kind": "none"}, {"kind": "resnet", "n_filters": 16}]))
    else:
        groups = [
            {
                "n_filters": draw(st.integers(1, 96)),
                "n_blocks": draw(st.integers(1, 3)),
                "strides": draw(st.integers(1, 3)),
            }
            for _ in range(n_groups)
        ]
        kind = "resnet_preact" if block == "preact_bottleneck" else "resnet"
        stem = draw(
            st.sampled_from(
                [{"kind": "none"}, {"kind": kind, "n_filters": draw(st.integers(1, 64))}]
            )
        )
    if block == "dense":  # groups hold only n_blocks; DenseNet's transitions halve H, W
        groups = [{"n_blocks": group["n_blocks"]} for group in groups]
        stem = {**stem, "kind": "densenet"} if stem["kind"] != "none" else stem
    # Big enough that no map collapses: the stem divides by 4, VGG pools halve, strides divide.
    shrink = 4 if stem["kind"] != "none" else 1
    for group in groups:
        shrink *= 2 if block in ("vgg", "dense") else group["strides"]
    side = draw(st.integers(min_value=max(shrink, 1), max_value=max(shrink, 1) * 3))
    side = max(side, 8) if stem["kind"] != "none" else side
    classifier = draw(
        st.sampled_from(
            [
                {"kind": "avg_pool"},
                {"kind": "flatten"},
                {"kind": "flatten", "dense_units": [draw(st.integers(1, 64))], "dropout": 0.5},
            ]
        )
    )
    name = draw(identifiers.filter(lambda n: _free_class_name(_camel(n))))
    data = {
        "name": name,
        "input_shape": [side, side, draw(st.integers(1, 4))],
        "n_classes": draw(st.integers(1, 1000)),
        "conventions": {
            "bias_before_bn": draw(st.booleans()),
            "bn_epsilon": draw(st.floats(min_value=1e-9, max_value=0.5)),
        },
        "stem": stem,
        "learner": {"block": block, "groups": groups},
        "classifier": classifier,
    }
    if block == "bottleneck" and draw(st.booleans()):
        data["learner"]["stride_on"] = draw(st.sampled_from(["1x1", "3x3"]))
    if block == "dense":  # compression >= 0.5: no transition compresses 2+ maps to 0
        data["learner"]["growth_rate"] = draw(st.integers(1, 48))
        data["learner"]["compression"] = draw(st.floats(min_value=0.5, max_value=1.0))
    if draw(st.booleans()):
        data["class_name"] = draw(identifiers.filter(_free_class_name))
    if draw(st.booleans()):
        data["title"] = draw(fine_text(200, first_not='"'))
    if draw(st.booleans()):
        lines = draw(st.lists(fine_text(80) | st.just(""), min_size=1, max_size=5))
        data["description"] = "\n".join(lines)
    for field, limit in (("family", 64), ("citation", 400), ("reference", 200)):
        if draw(st.booleans()):
            data[field] = draw(fine_text(min(limit, 100)))
    return data


# ------------------------------------------------------------------------- properties


@settings(FUZZ, max_examples=120 * SCALE)
@given(data=valid_specs(), style=st.sampled_from(STYLES))
@example(  # name "_0" derived the class name "0", no identifier: refused a valid spec
    data={
        "name": "_0",
        "input_shape": [2, 2, 1],
        "stem": {"kind": "none"},
        "learner": {"block": "vgg", "groups": [{"n_filters": 1, "n_layers": 1}]},
        "classifier": {"kind": "avg_pool"},
    },
    style="procedural",
).via("discovered failure")
def test_fuzz_valid_specs_generate(data, style, tmp_path_factory, capsys):
    path = write_yaml(tmp_path_factory, data)
    check_property(["generate", path, "--style", style], capsys, must_succeed=True)


@settings(FUZZ, max_examples=220 * SCALE)
@given(data=mutated_specs(), style=st.sampled_from(STYLES))
def test_fuzz_mutated_spec_files(data, style, tmp_path_factory, capsys):
    try:
        path = write_yaml(tmp_path_factory, data)
    except (ValueError, yaml.YAMLError):  # the fuzzer's value cannot even be dumped
        return
    check_property(["generate", path, "--style", style], capsys)


@settings(FUZZ, max_examples=160 * SCALE)
@given(case=set_overrides(), style=st.sampled_from(STYLES))
@example(case=("resnet50", ["n_classes=" + "9" * 5000]), style="oop").via("discovered failure")
@example(case=("resnet18", ["stem.kind=[resnet]"]), style="procedural").via("discovered failure")
@example(case=("vgg16", ["architecture={a: 1}"]), style="oop").via("discovered failure")
@example(case=("resnet18", ["learner.groups.0.block=!!set {a}"]), style="oop").via(
    "discovered failure"
)
@example(case=("faster_rcnn", [f"detector.rpn.min_size={10**400}"]), style="oop").via(
    "discovered failure"
)
@example(case=("resnet50", ["n_classes=" + "[" * 5000]), style="oop").via("discovered failure")
@example(case=("resnet18", ["stem={kind: none, kind: resnet}"]), style="oop").via("a duplicate key")
@example(case=("resnet50", ["learner.groups.\u00b2.n_blocks=1"]), style="oop").via(
    "discovered failure"
)
@example(case=("vgg16", ["learner.groups.0.n_filters=65536"]), style="oop").via(
    "the parameter limit"
)
def test_fuzz_set_overrides(case, style, capsys):
    preset, items = case
    argv = ["generate", preset, "--style", style]
    for item in items:
        argv += ["--set", item]
    check_property(argv, capsys)


_KEY_LINE = re.compile(r"^( *)[A-Za-z_][A-Za-z0-9_]*:(?:\s|$)")
_BLOCK_SCALAR = re.compile(r":\s*[|>][-+]?\s*(?:#.*)?$")


def mapping_key_lines(text: str) -> list[int]:
    """Indices of the lines that start a mapping key (not a list item, not inside a block
    scalar such as a `description: |` text)."""
    found, block = [], None
    for index, line in enumerate(text.splitlines()):
        indent = len(line) - len(line.lstrip(" "))
        if block is not None and (not line.strip() or indent > block):
            continue
        block = None
        if _KEY_LINE.match(line):
            found.append(index)
            if _BLOCK_SCALAR.search(line):
                block = indent
    return found


@settings(FUZZ, max_examples=40 * SCALE)
@given(
    preset=st.sampled_from(PRESETS),
    pick=st.integers(min_value=0),
    value=st.sampled_from(["", " 1", " 0", " [1]", " {a: 1}", " x", " null"]),
    style=st.sampled_from(STYLES),
)
def test_fuzz_a_key_written_twice_is_refused(preset, pick, value, style, tmp_path_factory, capsys):
    """Any mapping key of a preset, at any depth, written a second time in its mapping: a
    user's override that PyYAML kept silently. Refused, naming the key and both lines."""
    text = (PRESETS_DIR / f"{preset}.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    candidates = mapping_key_lines(text)
    index = candidates[pick % len(candidates)]
    key_part = lines[index].split(":", 1)[0]
    lines.insert(index, f"{key_part}:{value}")  # before: the original may open a block
    path = tmp_path_factory.mktemp("dup") / "spec.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = check_property(["generate", str(path), "--style", style], capsys)
    assert rc == 2
    rc, _, err = run(["generate", str(path), "--style", style], capsys)
    key = key_part.strip()
    assert f"duplicate key '{key}' on lines {index + 1} and {index + 2}" in err, err


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_pass_the_fuzz_property(preset, capsys):
    for style in STYLES:
        assert check_property(["generate", preset, "--style", style], capsys, True) == 0
