"""`modelgen schema`: the spec's JSON Schema, from the pydantic models that validate specs.

Every preset file validates against it (with the jsonschema package, as an editor's YAML
language server would), a misspelt field or a kind that does not exist does not, and the
command prints the same text every time."""

import json

import jsonschema
import pytest
import yaml
from conftest import PRESETS

from generator.cli import main
from generator.spec import PRESETS_DIR, SCHEMA_DIALECT, json_schema


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(json_schema())
    assert schema["$schema"] == SCHEMA_DIALECT
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_file_validates_against_the_schema(validator, preset):
    data = yaml.safe_load((PRESETS_DIR / f"{preset}.yaml").read_text(encoding="utf-8"))
    errors = [error.message for error in validator.iter_errors(data)]
    assert not errors, f"{preset}: {errors[:3]}"


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d.update(lerner=d.pop("learner")), "lerner"),
        (lambda d: d["stem"].update(stride=2), "stride"),
        (lambda d: d["classifier"].update(kind="no_such_kind"), "no_such_kind"),
        (lambda d: d["learner"]["groups"][0].update(n_blocks=0), "0"),
    ],
    ids=["misspelt-section", "unknown-stem-field", "unknown-kind", "zero-blocks"],
)
def test_the_schema_refuses_what_validation_refuses(validator, edit, where):
    data = yaml.safe_load((PRESETS_DIR / "resnet50.yaml").read_text(encoding="utf-8"))
    edit(data)
    errors = [error.message for error in validator.iter_errors(data)]
    assert errors and any(where in message for message in errors), errors


def test_the_command_prints_the_schema(capsys, tmp_path):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == json_schema()
    assert json.loads(out)["properties"]["learner"]
    target = tmp_path / "modelgen.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == out
    assert main(["schema", "-o", str(target)]) == 2  # exists: --force to overwrite
    assert "exists; use --force" in capsys.readouterr().err
    assert main(["schema", "-o", str(target), "--force"]) == 0
