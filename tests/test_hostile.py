"""Hostile specs: every string that reaches the emitted file is either refused (one
`error:` line, exit 2) or lands inert (the file parses, importing it only defines things,
and its docstring says exactly what the spec says).

The corpus is planted in each text field of a valid preset (through a spec file and
through --set), in the spec file's name, and in --set values. Each case goes through the
real CLI entry point, generator.cli.main, in both styles.
"""

from __future__ import annotations

import ast
import builtins
import copy
import shlex

import pytest
import yaml
from conftest import GOLDEN, PRESETS, STYLES
from emitted import NotInert, assert_inert, golden_names, intended_docstring, names_in

from generator.cli import main
from generator.errors import SpecError
from generator.render import emitted_names
from generator.spec import load_raw, load_spec, validate

BASE = "resnet18"

# id -> text. Some are fine as text (they must then be inert); some must be refused.
HOSTILE = {
    "double-quotes": 'a "quoted" word',
    "single-quotes": "it's 'quoted'",
    "triple-double-quotes": 'x """ y',
    "triple-single-quotes": "x ''' y",
    "ends-with-a-quote": 'ends with a quote"',
    "starts-with-a-quote": '"starts with a quote',
    "close-and-call": '""" + __import__("os").system("x") + """',
    "backslash": "back\\slash",
    "trailing-backslash": "ends with a backslash\\",
    "escaped-quote": '\\"""',
    "newline": "two\nlines",
    "identifier-then-newline": "Net\n",  # "$" in a regex matches before a final newline
    "newline-then-code": '\n"""\nimport os\nos.system("x")\n"""\n',
    "carriage-return": "a\rb",
    "crlf": "a\r\nb",
    "import-call": "__import__('os').system('x')",
    "comment-then-code": "# x\nimport os",
    "jinja-expression": "{{ 7*7 }}",
    "jinja-raw": "{% raw %}",
    "jinja-comment": "{# c #}",
    "u2028-line-separator": "a\u2028b",
    "u2029-paragraph-separator": "a\u2029b",
    "u0085-next-line": "a\u0085b",
    "nul": "a\x00b",
    "tab": "a\tb",
    "form-feed": "a\x0cb",
    "escape-sequence": "\x1b[31mred\x1b[0m",
    "bidi-override": "admin\u202e \u2066",
    "zero-width-space": "a\u200bb",
    "lone-surrogate": "a\ud800b",
    "leading-space": " lead",
    "trailing-space": "trail ",
    "very-long": "x" * 10_000,
    "very-long-line-of-code": "__import__('os').system('x');" * 400,
    "unicode-text": "Réseau résiduel, 残差网络, ∑",
    "emoji": "deep \U0001f600 net",
    "empty": "",
}
TEXT_FIELDS = ("family", "title", "description", "citation", "reference")
# Where each case must be accepted (and then be inert); everywhere else it must be refused.
# name and class_name accept none of them: they must be identifiers.
ACCEPTED_IN = {
    "double-quotes": TEXT_FIELDS,
    "single-quotes": TEXT_FIELDS,
    "triple-single-quotes": TEXT_FIELDS,
    "ends-with-a-quote": TEXT_FIELDS,
    "import-call": TEXT_FIELDS,
    "unicode-text": TEXT_FIELDS,
    "emoji": TEXT_FIELDS,
    "starts-with-a-quote": ("family", "description", "citation", "reference"),  # not title
    "empty": ("description", "citation", "reference"),
    "newline": ("description",),
    "identifier-then-newline": ("description",),
    "comment-then-code": ("description",),
    "leading-space": ("description",),
    "trailing-space": ("description",),
}

FIELDS = ("name", "class_name", *TEXT_FIELDS)


def base_raw() -> dict:
    data, _ = load_raw(BASE)
    return copy.deepcopy(data)


def yaml_quoted(text: str) -> str:
    """`text` as a YAML double-quoted scalar made of printable characters only:
    what a user can type after --set path= to plant any string, control characters too."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_refused(rc: int, out: str, err: str, *needles: str) -> None:
    assert rc == 2, (rc, err)
    assert out == ""
    lines = err.split("\n")
    assert lines[-1] == "" and len(lines) == 2, f"want one error line, got {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert lines[0].isprintable(), f"unescaped control text in {lines[0]!r}"
    assert "Traceback" not in err and "internal error" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def validated(raw: dict, source: str) -> dict:
    """The spec as the generator sees it (names and title derived when absent)."""
    return validate(raw, source).model_dump()


def check_outcome(raw: dict, argv: list[str], source: str, capsys, field: str, payload: str):
    """Either refused naming the field, or generated inert in both styles. Returns which."""
    outcomes = set()
    for style in STYLES:
        rc, out, err = run([*argv, "--style", style], capsys)
        if rc != 0:
            assert_refused(rc, out, err, f"{source}: {field}: ")
            outcomes.add("refused")
            continue
        assert err == ""
        assert_inert(out, raw, style, payload)
        outcomes.add("inert")
    assert len(outcomes) == 1, "the two styles disagree on accepting the spec"
    return outcomes.pop()


def expect(case: str, field: str, outcome: str) -> None:
    want = "inert" if field in ACCEPTED_IN.get(case, ()) else "refused"
    assert outcome == want, f"{case!r} in {field}: {outcome}, want {want}"


# ------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_text_in_a_spec_file(case, field, tmp_path, capsys):
    payload = HOSTILE[case]
    raw = base_raw()
    raw[field] = payload
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert yaml.safe_load(spec_file.read_text(encoding="utf-8"))[field] == payload
    outcome = check_outcome(
        raw, ["generate", str(spec_file)], str(spec_file), capsys, field, payload
    )
    expect(case, field, outcome)


@pytest.mark.parametrize("field", ["name", "class_name", "title", "description", "citation"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_text_through_set(case, field, capsys):
    payload = HOSTILE[case]
    raw = base_raw()
    raw[field] = payload
    item = f"{field}={yaml_quoted(payload)}"
    outcome = check_outcome(raw, ["generate", BASE, "--set", item], BASE, capsys, field, payload)
    expect(case, field, outcome)
    if outcome == "inert":  # the regenerate line hands the same --set back, quoted
        rc, out, _ = run(["generate", BASE, "--set", item], capsys)
        command = out.split("\n")[1].removeprefix("# Regenerate: ")
        assert shlex.split(command) == [
            "modelgen",
            "generate",
            BASE,
            "--style",
            "procedural",
            "--set",
            item,
        ]


@pytest.mark.parametrize("case", list(HOSTILE))
def test_unquoted_hostile_set_values(case, capsys):
    """`--set title=<text>` as typed, no quoting: parsed as YAML, then validated."""
    item = f"title={HOSTILE[case]}"
    rc, out, err = run(["generate", BASE, "--set", item], capsys)
    if rc != 0:
        assert_refused(rc, out, err, f"{BASE}: ")
        return
    raw = base_raw()
    raw["title"] = yaml.safe_load(HOSTILE[case])
    assert_inert(out, raw, "procedural", HOSTILE[case])


HOSTILE_FILE_NAMES = {
    "double-quote": 'my "net".yaml',
    "single-quote": "it's.yaml",
    "shell": "$(touch pwned); rm -rf x `id`.yaml",
    "jinja": "{{ 7*7 }}{% raw %}.yaml",
    "comment-breaker": '"""; import os #.yaml',
    "unicode": "réseau 残差.yaml",
    "leading-dash": "--set=x.yaml",
}
NON_PRINTABLE_FILE_NAMES = {
    "newline": "a\nimport os.yaml",
    "carriage-return": "a\rb.yaml",
    "u2028": "a\u2028b.yaml",
    "u0085": "a\u0085b.yaml",
    "escape": "\x1b[2J.yaml",
}


@pytest.mark.parametrize("case", list(HOSTILE_FILE_NAMES))
def test_hostile_spec_file_names_stay_in_the_header_comments(case, tmp_path, capsys, monkeypatch):
    name = HOSTILE_FILE_NAMES[case]
    raw = base_raw()
    (tmp_path / name).write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    target = f"./{name}"
    for style in STYLES:
        rc, out, err = run(["generate", target, "--style", style], capsys)
        assert rc == 0, err
        assert_inert(out, raw, style)
        first, second = out.split("\n")[:2]
        assert first == f'# Code generated by modelgen 0.1.0 from spec file "{name}". DO NOT EDIT.'
        assert shlex.split(second.removeprefix("# Regenerate: ")) == [
            "modelgen",
            "generate",
            target,
            "--style",
            style,
        ]


@pytest.mark.parametrize("case", list(NON_PRINTABLE_FILE_NAMES))
def test_non_printable_spec_file_names_are_refused(case, tmp_path, capsys):
    path = tmp_path / NON_PRINTABLE_FILE_NAMES[case]
    path.write_text(yaml.safe_dump(base_raw()), encoding="utf-8")
    rc, out, err = run(["generate", str(path)], capsys)
    assert_refused(rc, out, err, "printable")


def test_a_very_long_spec_file_name_is_one_short_line(capsys):
    rc, out, err = run(["generate", "x" * 10_000 + ".yaml"], capsys)
    assert_refused(rc, out, err, "cannot read")
    assert len(err) < 1000


@pytest.mark.parametrize(
    "item",
    [
        "title=" + "x" * 10_000,
        "n_classes=" + "9" * 10_000,  # past Python's 4300-digit int() limit
        "n_classes=0x" + "f" * 10_000,  # hex is not limited: a 12,000-digit int
        "n_classes=" + "[" * 10_000,  # deeper than the YAML parser can recurse
        "n_classes=!!python/object/apply:os.system ['x']",
        "n_classes=!!binary aGVsbG8=",
        "n_classes=2024-13-45",
        "learner.groups.\u00b2.n_blocks=1",  # "²".isdigit() is True, int("²") fails
        "learner.groups." + "9" * 5000 + ".n_blocks=1",
        "title=&a [*a]",
    ],
    ids=lambda item: item[:30],
)
def test_hostile_set_values_are_one_line(item, capsys):
    assert_refused(*run(["generate", BASE, "--set", item], capsys), f"{BASE}: ")


def test_yaml_tags_never_construct_objects(tmp_path, capsys):
    spec_file = tmp_path / "evil.yaml"
    spec_file.write_text(
        yaml.safe_dump(base_raw()) + "pwn: !!python/object/apply:os.system ['touch pwned']\n",
        encoding="utf-8",
    )
    assert_refused(*run(["generate", str(spec_file)], capsys), "invalid YAML")
    assert not (tmp_path / "pwned").exists()


def test_hostile_keys_are_escaped_in_the_error_line(tmp_path, capsys):
    raw = base_raw()
    raw["\x1b[2Jevil\nkey"] = 1
    spec_file = tmp_path / "keys.yaml"
    spec_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    rc, out, err = run(["generate", str(spec_file)], capsys)
    assert_refused(rc, out, err, "\\x1b[2Jevil\\nkey: unknown field")


# ------------------------------------------------------------------------- names


# Names resnet18's files use (the OOP file's: the class lives there), builtins, dunders.
SHADOWED = [
    "keras",
    "layers",
    "identity_block",
    "stem",
    "learner",
    "group",
    "classifier",
    "metaparameters",
    "sorted",
    "set",
    "list",
    "isinstance",
    "int",
    "range",
    "enumerate",
    "tuple",
    "ValueError",
    "super",
    "staticmethod",
    "x",
    "name",
    "self",
    "n_filters",
    "shortcut",
    "print",
    "__name__",
    "__builtins__",
]


@pytest.mark.parametrize("value", SHADOWED)
def test_class_name_that_shadows_a_name_the_file_uses_is_refused(value, capsys):
    rc, out, err = run(["generate", BASE, "--set", f"class_name={value}", "--style", "oop"], capsys)
    assert_refused(rc, out, err, f"{BASE}: class_name: ", "reserved", repr(value))


# (preset, extra --set items, class_name): names that the preset's files use, read from the
# rendered output, some used by one family only.
CLASHES = [
    ("resnet18", [], "layers"),
    ("resnet18", [], "keras"),
    ("resnet18", [], "x"),
    ("resnet18", [], "group"),
    ("resnet18", [], "self"),  # only the OOP file uses it: refused in both styles
    ("faster_rcnn", [], "box_iou"),  # a region helper of the detectors
    ("faster_rcnn", [], "Detections"),  # a layer class, nested in the OOP class
    ("siamese_omniglot", [], "L1Distance"),  # a layer class at the top of procedural files
    ("inception_v1", [], "inception_block"),  # only the inception files
    ("inception_v3", [], "block_35x35"),  # only inception_v3's files
    ("resnext50_32x4d", ["learner.grouped_conv=split"], "group_slice"),  # no golden file
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("preset", "items", "value"), CLASHES, ids=lambda v: str(v))
def test_a_class_name_the_output_uses_is_one_error_line_and_nothing_written(
    preset, items, value, style, tmp_path, capsys
):
    target = tmp_path / "model.py"
    overrides = [arg for item in [*items, f"class_name={value}"] for arg in ("--set", item)]
    rc, out, err = run(
        ["generate", preset, *overrides, "--style", style, "-o", str(target)], capsys
    )
    where = "the emitted file uses" if style == "oop" else "the oop file of this spec uses"
    assert_refused(
        rc, out, err, f"{preset}: class_name: {value!r} is reserved: {where} the name {value!r}"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("preset", "items", "value"),
    [
        ("resnet18", [], "box_iou"),  # the detectors' name: resnet18's files do not use it
        ("resnet18", [], "block_35x35"),
        ("resnet18", [], "Detections"),
        ("resnext50_32x4d", [], "group_slice"),  # the native grouped conv writes no slice
        ("resnet18", [], "build_model"),  # procedural-only names: the class never meets them
        ("resnet18", [], "METAPARAMETERS"),
        ("siamese_omniglot", [], "twin"),
    ],
    ids=lambda v: str(v),
)
def test_a_class_name_is_free_where_the_output_does_not_use_it(preset, items, value, capsys):
    """The reserved names are read from each spec's own output, not from a list: a name
    that one family writes is free for the others (and the split form's is live: refused
    above, free here)."""
    for style in STYLES:
        overrides = [arg for item in [*items, f"class_name={value}"] for arg in ("--set", item)]
        rc, out, err = run(["generate", preset, *overrides, "--style", style], capsys)
        assert rc == 0, err
        raw = load_raw(preset)[0]
        assert_inert(out, validated({**raw, "class_name": value}, preset), style)


@pytest.mark.parametrize(
    ("name", "derived"),
    [
        ("my_net", "MyNet"),
        ("ValueError", "ValueErrorModel"),  # the CamelCase name is a builtin
        ("value_error", "value_error"),  # ValueError is taken; the name itself is free
        ("_0", "_0"),  # "0" is no identifier (found by test_fuzz)
        ("__", "Model"),  # "" and the dunder "__" are unusable
        ("layers", "Layers"),  # the file uses layers, not Layers
        ("x", "X"),
    ],
)
def test_a_derived_class_name_is_usable(name, derived, tmp_path, capsys):
    raw = base_raw()
    del raw["class_name"]
    raw["name"] = name
    spec_file = tmp_path / "derived.yaml"
    spec_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert validate(raw, "x").class_name == derived
    rc, out, err = run(["generate", str(spec_file), "--style", "oop"], capsys)
    assert rc == 0, err
    assert_inert(out, {**raw, "class_name": derived}, "oop")


@pytest.mark.parametrize(
    ("preset", "name", "derived"),
    [
        ("faster_rcnn", "detections", "Detections"),
        ("siamese_omniglot", "l1_distance", "L1Distance"),
    ],
)
@pytest.mark.parametrize("style", STYLES)
def test_a_derived_class_name_that_the_output_uses_is_reported(
    preset, name, derived, style, tmp_path, capsys
):
    """Validation derives the class name before any output exists; a derived name that
    the output turns out to use is reported like a written one, saying how to fix it."""
    raw = copy.deepcopy(load_raw(preset)[0])
    del raw["class_name"]
    raw["name"] = name
    spec_file = tmp_path / "derived.yaml"
    spec_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert validate(raw, "x").class_name == derived
    target = tmp_path / "model.py"
    rc, out, err = run(["generate", str(spec_file), "--style", style, "-o", str(target)], capsys)
    assert_refused(
        rc,
        out,
        err,
        f"{spec_file}: class_name: {derived!r} is reserved: ",
        f"; name {name!r} derives it, so set class_name",
    )
    assert not target.exists()


@pytest.mark.parametrize("value", ["keras", "layers", "build_model", "x", "sorted", "ValueError"])
def test_name_is_only_a_string_so_it_may_be_any_identifier(value, capsys):
    """`name` only becomes the keras.Model's name string: it cannot shadow anything."""
    for style in STYLES:
        rc, out, err = run(["generate", BASE, "--set", f"name={value}", "--style", style], capsys)
        assert rc == 0, err
        raw = base_raw()
        raw["name"] = value
        assert_inert(out, validated(raw, BASE), style)
        assert f'name="{value}"' in out


def test_the_allowed_names_are_computed_from_the_golden_files():
    """emitted.golden_names, what an inert file may use, is read from golden/*/*.py: every
    bare name, def, argument and import there, and nothing else (no class of a preset, no
    attribute such as Conv2D or summary)."""
    allowed = golden_names()
    for name in ["keras", "layers", "ops", "x", "group", "self", "METAPARAMETERS", "build_model"]:
        assert name in allowed, name
    assert {"box_iou", "Detections", "L1Distance", "inception_block", "block_35x35"} <= allowed
    assert {"range", "staticmethod", "__name__", "__init__"} <= allowed  # builtins, dunders
    assert not {"Conv2D", "Model", "summary", "group_slice"} & allowed
    class_names = {validate(load_raw(p)[0], p).class_name for p in PRESETS}
    assert not class_names & allowed
    files = sorted(GOLDEN.glob("*/*.py"))
    assert len(files) == len(STYLES) * len(PRESETS)
    assert allowed == set().union(*(names_in(ast.parse(f.read_text("utf-8"))) for f in files)) - (
        class_names
    )


def test_the_generator_reads_the_names_the_golden_files_use():
    """render.emitted_names, the generator's own reading of a file, finds what the test's
    independent reading finds, less the OOP file's own class (its `class` line and its
    lookups): so the names refused for a preset are exactly those of its OOP golden file."""
    for preset in PRESETS:
        class_name = validate(load_raw(preset)[0], preset).class_name
        for style in STYLES:
            tree = ast.parse(_golden(preset, style))
            own = class_name if style == "oop" else None
            assert set(emitted_names(tree, own)) == names_in(tree) - {own}, (preset, style)


def test_a_clash_hides_nowhere_behind_the_class_itself():
    """The class's own line and lookups are left out, nothing more: a second binding of
    the name (a layer class, an argument, an import) still counts."""
    tree = ast.parse(
        "from keras import layers\n"
        "class x:\n    @staticmethod\n    def f(x):\n        return x.group(x)\n"
        "    class L(layers.Layer):\n        pass\n"
        "x.f(1)\n"
    )
    assert "x" in emitted_names(tree, "x")  # f's argument
    assert "L" in emitted_names(tree, "L")  # the nested class is not the model class
    assert "layers" in emitted_names(tree, "layers")
    assert "group" not in emitted_names(tree, "x")  # an attribute, not a name
    tree = ast.parse("class Net:\n    pass\nNet().model\n")
    assert "Net" not in emitted_names(tree, "Net") and "Net" in emitted_names(tree)


def test_every_name_the_oop_file_uses_is_refused_in_both_styles(monkeypatch):
    """End to end for two presets, every name of their golden files: refused as class_name
    in both styles if the OOP file uses it (builtins and dunders by validation already),
    free in both otherwise. Black is skipped (it changes no name) to keep this quick."""
    from generator import render as render_module
    from generator.pipeline import generate

    monkeypatch.setattr(render_module, "format_source", lambda source: source)
    for preset in ["resnet18", "siamese_omniglot"]:
        class_name = validate(load_raw(preset)[0], preset).class_name
        oop = names_in(ast.parse(_golden(preset, "oop"))) - {class_name}
        procedural = names_in(ast.parse(_golden(preset, "procedural")))
        assert procedural - oop  # names the class is free to take (build_model ...)
        for name in sorted(oop | procedural):
            outcomes = []
            for style in STYLES:
                try:
                    generate(preset, style, [f"class_name={name}"])
                    outcomes.append("free")
                except SpecError as exc:
                    assert exc.path == "class_name" and "reserved" in exc.reason, exc
                    outcomes.append("refused")
            builtin = name in dir(builtins) or name.startswith("__")
            want = "refused" if name in oop or builtin else "free"
            assert outcomes == [want] * 2, (preset, name)


@pytest.mark.parametrize("value", ["Model", "Input", "Conv2D", "ResNet", "_Private", "Net2"])
def test_look_alike_class_names_are_fine_and_build(value, capsys):
    """Attribute names (keras.Model, layers.Conv2D) cannot be shadowed by a global."""
    rc, out, err = run(["generate", BASE, "--set", f"class_name={value}", "--style", "oop"], capsys)
    assert rc == 0, err
    raw = base_raw()
    raw["class_name"] = value
    assert_inert(out, validated(raw, BASE), "oop")
    if value == "Model":  # one real build: the class named Model still builds a keras.Model
        import keras

        namespace: dict = {"__name__": "hostile_model"}
        exec(compile(out, "hostile_model.py", "exec"), namespace)
        model = namespace["Model"](input_shape=(32, 32, 3), n_classes=3).model
        assert isinstance(model, keras.Model)
        assert model.output_shape == (None, 3)


# ------------------------------------------------------------------------- the checker


def test_intended_docstring_matches_every_preset():
    for preset in PRESETS:
        raw, _ = load_raw(preset)
        for style in STYLES:
            tree = ast.parse((GOLDEN / style / f"{preset}.py").read_text("utf-8"))
            assert ast.get_docstring(tree, clean=False) == intended_docstring(raw)


def test_a_spec_with_only_a_title_has_a_one_line_docstring(capsys):
    rc, out, err = run(
        [
            "generate",
            BASE,
            "--set",
            'description=""',
            "--set",
            'citation=""',
            "--set",
            'reference=""',
        ],
        capsys,
    )
    assert rc == 0, err
    assert '"""ResNet18: basic residual blocks' in out
    raw = base_raw()
    raw.update(description="", citation="", reference="")
    assert_inert(out, validated(raw, BASE), "procedural")


def _golden(preset: str, style: str) -> str:
    return (GOLDEN / style / f"{preset}.py").read_text(encoding="utf-8")


INJECTED = {
    "top-level-call": ("procedural", "import keras\n", "import keras\nprint('x')\n"),
    "extra-import": ("procedural", "import keras\n", "import keras\nimport os\n"),
    "import-as": ("procedural", "import keras\n", "import keras as os\n"),
    "decorator": ("procedural", "\ndef stem(x):", "\n@print\ndef stem(x):"),
    "default-call": ("procedural", "include_top=True,", "include_top=print(),"),
    "annotation": ("procedural", "def stem(x):", "def stem(x: print()):"),
    "assign-call": ("procedural", "METAPARAMETERS = {", "METAPARAMETERS = dict() or {"),
    "class-base": ("oop", "class ResNet50:", "class ResNet50(print()):"),
    "class-statement": ("oop", "    metaparameters = {", "    print()\n    metaparameters = {"),
    "static-call": ("oop", "    @staticmethod\n", "    @print\n"),
    "unknown-name": (
        "procedural",
        "x = layers.ZeroPadding2D",
        "x = eval('1') or layers.ZeroPadding2D",
    ),
    "docstring": ("procedural", '"""ResNet50 v1: ', '"""ResNet50 v1 (edited): '),
    "main-else": (
        "oop",
        "    ResNet50().model.summary()\n",
        "    ResNet50().model.summary()\nelse:\n    pass\n",
    ),
}


@pytest.mark.parametrize("case", list(INJECTED))
def test_the_inert_checker_catches_code_that_runs_at_import(case):
    style, old, new = INJECTED[case]
    text = _golden("resnet50", style)
    raw = validated(load_raw("resnet50")[0], "resnet50")
    assert_inert(text, raw, style)
    assert old in text
    with pytest.raises(NotInert):
        assert_inert(text.replace(old, new, 1), raw, style)


def test_generator_self_check_refuses_what_the_templates_should_never_write():
    from generator.render import UnsafeOutput, check_emitted

    text = _golden("resnet50", "procedural")
    check_emitted(text, text)
    with pytest.raises(UnsafeOutput, match="top-level Expr"):
        check_emitted(text, text.replace("import keras\n", "import keras\nprint('x')\n"))
    with pytest.raises(UnsafeOutput, match="top-level Import"):
        check_emitted(text, text.replace("import keras\n", "import os\n"))
    with pytest.raises(UnsafeOutput, match="docstring"):
        check_emitted(text, text.replace('"""ResNet50 v1: ', '""" ResNet50 v1: '))


def test_every_field_of_the_corpus_reaches_the_file_when_accepted(capsys):
    """The corpus is not vacuous: accepted text shows up in the docstring verbatim."""
    for case, fields in ACCEPTED_IN.items():
        payload = HOSTILE[case]
        if "citation" not in fields or not payload:
            continue
        rc, out, err = run(["generate", BASE, "--set", f"citation={yaml_quoted(payload)}"], capsys)
        assert rc == 0, err
        assert payload in ast.get_docstring(ast.parse(out), clean=False)


def test_yaml_quoting_helper_round_trips():
    for payload in HOSTILE.values():
        assert yaml.safe_load(yaml_quoted(payload)) == payload
        assert yaml_quoted(payload).isprintable()


def test_a_huge_or_binary_spec_file_is_one_line(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * 200_000)
    assert_refused(*run(["generate", str(big)], capsys), "is over 1,000,000 bytes")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00n\x00a\x00m\x00e\x00")
    assert_refused(*run(["generate", str(binary)], capsys), "not UTF-8")


@pytest.mark.parametrize(
    "line",
    [
        "n_classes: " + "9" * 5000,  # PyYAML's int() refuses it
        "n_classes: 0x" + "f" * 5000,  # hex has no limit: a 6000-digit int to show
        "n_classes: 1:" + ":".join(["59"] * 3000),  # YAML 1.1 base 60, computed, no limit
        "title: a\x00b",  # raw NUL in the stream
        "title: a\u2028b",  # a raw line separator: YAML folds it; the text rules see it
        "title: a\u0085b",
        "title: \x1b[2J",
        "title: !!binary SGVsbG8K",  # bytes become text, then the text rules apply
        "title: !!python/name:os.system",
        "description: *nowhere",
        "learner: &loop {block: vgg, groups: [*loop]}",
    ],
    ids=lambda line: repr(line[:24]),
)
def test_raw_yaml_lines_are_refused_or_inert(line, tmp_path, capsys):
    field = line.split(":", 1)[0]
    kept = [row for row in yaml.safe_dump(base_raw()).splitlines() if not row.startswith(field)]
    spec_file = tmp_path / "raw.yaml"
    spec_file.write_text("\n".join([*kept, line]) + "\n", encoding="utf-8")
    rc, out, err = run(["generate", str(spec_file)], capsys)
    if rc != 0:
        assert_refused(rc, out, err, str(spec_file))
        return
    spec, _ = load_spec(str(spec_file))
    assert_inert(out, spec.model_dump(), "procedural")


@pytest.mark.parametrize("key", ["n_classes", "title", "\x1b[2J", "\u202e", "k" * 1000])
def test_a_duplicate_key_is_one_line_naming_it(key, tmp_path, capsys):
    """PyYAML kept the last of two equal keys silently; a hostile key is escaped, a long one
    cut short."""
    kept = yaml.safe_dump(base_raw()).rstrip("\n")
    spec_file = tmp_path / "dup.yaml"
    quoted = yaml_quoted(key)
    spec_file.write_text(f"{kept}\n{quoted}: 1\n{quoted}: 2\n", encoding="utf-8")
    rows = kept.splitlines()
    # a key base_raw has already (n_classes, title) is first on its own line
    first = next((i + 1 for i, row in enumerate(rows) if row.startswith(f"{key}:")), None)
    lines = (first, len(rows) + 1) if first else (len(rows) + 1, len(rows) + 2)
    rc, out, err = run(["generate", str(spec_file)], capsys)
    assert_refused(rc, out, err, str(spec_file), "duplicate key")
    assert f"on lines {lines[0]} and {lines[1]}" in err, err


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("import keras\n", "import keras\nimport os\n", "unexpected top-level Import"),
        ("from keras import layers\n", "from keras import layers\nprint()\n", "top-level Expr"),
        ('"""ResNet18: ', '"""ResNet18 (edited): ', "changed the module docstring"),
    ],
)
def test_the_self_check_runs_before_anything_is_written(
    old, new, problem, tmp_path, capsys, monkeypatch
):
    """If the formatted text ever ran code at import, generate would refuse it (exit 1)."""
    from generator import render as render_module

    real = render_module.format_source
    monkeypatch.setattr(render_module, "format_source", lambda s: real(s).replace(old, new, 1))
    target = tmp_path / "model.py"
    rc, out, err = run(["generate", BASE, "-o", str(target)], capsys)
    assert rc == 1 and out == ""
    assert err.startswith("error: internal error (UnsafeOutput: ") and problem in err, err
    assert len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ values of every TYPE

# What a YAML file or a --set value can hold, of every type safe_load builds: a value of
# the wrong type in any field (a list where a kind's name belongs, a mapping for a number,
# a date, bytes, a set, an integer too large for a float) is one error line, never a
# TypeError or OverflowError out of a validator (`[1] in STEMS` is unhashable).
TYPED_VALUES = {
    "bool": "true",
    "null": "null",
    "zero": "0",
    "negative": "-7",
    "float": "2.5",
    "nan": ".nan",
    "inf": "-.inf",
    "huge-int": str(10**400),
    "string": "'x'",
    "empty-string": "''",
    "list": "[1, [2]]",
    "empty-list": "[]",
    "mapping": "{a: {b: 1}}",
    "empty-mapping": "{}",
    "set": "!!set {a, b}",
    "pairs": "!!omap [a: 1]",
    "date": "2024-02-29",
    "timestamp": "2001-12-14t21:59:43.10-05:00",
    "bytes": "!!binary aGVsbG8=",
}
# One preset per architecture and per learner family: every section's fields.
TYPED_PRESETS = [
    "resnet50",
    "resnext50_32x4d",
    "se_resnet50",
    "resnet50_v2",
    "densenet121",
    "inception_v1",
    "inception_v3",
    "squeezenet1_0_complex_bypass",
    "vgg16",
    "multitask_resnet",
    "augmented_resnet",
    "siamese_omniglot",
    "conv_autoencoder",
    "rcnn",
    "fast_rcnn",
    "faster_rcnn",
]


def field_paths(data, prefix=()):
    """Every dotted path of a raw spec (sections too), a list's first entry only."""
    for key, value in data.items() if isinstance(data, dict) else enumerate(data[:1]):
        path = (*prefix, str(key))
        yield ".".join(path)
        if isinstance(value, dict | list):
            yield from field_paths(value, path)


@pytest.mark.parametrize("preset", TYPED_PRESETS)
def test_a_value_of_any_type_in_any_field_is_a_spec_error(preset):
    from generator.spec import apply_overrides

    raw, source = load_raw(preset)
    count = 0
    for path in [*field_paths(raw), "architecture", "stem.kind", "learner.groups.0.block"]:
        for value in TYPED_VALUES.values():
            try:
                data = apply_overrides(raw, [f"{path}={value}"], source)
                validate(data, source)
            except SpecError as exc:  # anything else fails the test
                assert str(exc).startswith(f"{preset}: "), str(exc)
            count += 1
    assert count > 100


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("stem.kind=[resnet]", "stem.kind: must be one of"),
        ("stem.kind={a: 1}", "stem.kind: must be one of"),
        ("architecture=[classifier]", "architecture: must be one of"),
        ("architecture=!!set {a}", "architecture: must be one of"),
        ("learner.groups.0.block=[bottleneck]", "learner.groups[0].block: must be one of"),
        ("learner.groups.0.block={a: 1}", "learner.groups[0].block: must be one of"),
        (f"pre_stem.rescaling.scale={10**400}", "pre_stem.rescaling.scale: is too large"),
        (f"pre_stem.rotation={10**400}", "pre_stem.rotation: is too large"),
    ],
)
def test_unhashable_and_huge_values_are_one_error_line(item, message, capsys):
    preset = "augmented_resnet" if item.startswith("pre_stem") else "resnet18"
    rc, out, err = run(["generate", preset, "--set", item], capsys)
    assert_refused(rc, out, err, f"{preset}: ")
    assert message in err, err


@pytest.mark.parametrize(
    "item",
    [
        f"detector.rpn.min_size={10**400}",
        f"detector.rpn.anchor_scales=[{10**400}]",
        f"detector.rpn.anchor_ratios=[1, {10**400}]",
    ],
)
def test_integers_too_large_for_a_float_are_one_error_line(item, capsys):
    rc, out, err = run(["generate", "faster_rcnn", "--set", item], capsys)
    assert_refused(rc, out, err, "faster_rcnn: detector.rpn.")
    assert "is too large for a number" in err, err


def test_normalization_with_a_huge_integer_is_one_error_line(capsys):
    item = f"pre_stem.normalization={{mean: [{10**400}], std: [1]}}"
    rc, out, err = run(["generate", "augmented_resnet", "--set", item], capsys)
    assert_refused(rc, out, err, "augmented_resnet: pre_stem.normalization.mean")


@pytest.mark.parametrize("text", ["1e-5", "1E-5", "+1e-05", "1.e-5", "10e-6"])
def test_exponent_floats_without_a_dot_are_numbers(text, tmp_path, capsys):
    """YAML 1.2 and JSON read 1e-5 as a number; PyYAML (YAML 1.1) would read a string and
    the number field would refuse it."""
    rc, out, err = run(["show", BASE, "--set", f"conventions.bn_epsilon={text}"], capsys)
    assert rc == 0, err
    assert (
        "bn_epsilon: " in out
        and float(text)
        == load_spec(BASE, [f"conventions.bn_epsilon={text}"])[0].conventions.bn_epsilon
    )
    spec_file = tmp_path / "eps.yaml"
    raw = yaml.safe_dump(base_raw()).replace("bn_epsilon: 1.0e-05", f"bn_epsilon: {text}")
    spec_file.write_text(raw, encoding="utf-8")
    assert load_spec(str(spec_file))[0].conventions.bn_epsilon == float(text)
