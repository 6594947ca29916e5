"""Generated files kept in sync with the user's own specs: `generate --check / --diff` and
`modelgen check`, which re-runs each file's own regenerate line (spec paths from the
file's folder), and the pre-commit hook that runs it."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator import render, sync
from generator.cli import main
from generator.spec import PRESETS_DIR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A user's repository: two specs under specs/, their files under models/ (one in each
    style, one with a --set), generated from the repository's root."""
    specs, models = tmp_path / "specs", tmp_path / "models"
    specs.mkdir()
    models.mkdir()
    net = yaml.safe_load((PRESETS_DIR / "resnet18.yaml").read_text(encoding="utf-8"))
    net["name"] = "my_net"
    (specs / "net.yaml").write_text(yaml.safe_dump(net), encoding="utf-8")
    shutil.copy(PRESETS_DIR / "squeezenet1_1.yaml", specs / "squeeze.yml")
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "specs/net.yaml", "-o", "models/net.py"]) == 0
    assert (
        main(
            [
                *("generate", "specs/squeeze.yml", "--style", "oop"),
                *("--set", "n_classes=10", "-o", "models/squeeze_oop.py"),
            ]
        )
        == 0
    )
    (models / "notes.py").write_text("print('not generated')\n", encoding="utf-8")
    return tmp_path


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_header_names_the_spec_from_the_files_folder(repo):
    lines = (repo / "models" / "net.py").read_text(encoding="utf-8").splitlines()
    assert lines[1] == "# Regenerate: modelgen generate ../specs/net.yaml --style procedural"
    oop = (repo / "models" / "squeeze_oop.py").read_text(encoding="utf-8").splitlines()
    assert oop[1] == (
        "# Regenerate: modelgen generate ../specs/squeeze.yml --style oop --set n_classes=10"
    )


def test_the_header_constants_are_the_templates():
    """sync finds generated files by the header template's first two lines."""
    header = (render.templates_dir() / "header.py.j2").read_text(encoding="utf-8")
    assert f"\n{sync.GENERATED_BY}{{{{ version }}}} from" in header
    assert f"\n{sync.REGENERATE}{{{{ command }}}}\n" in header


def test_the_same_bytes_from_any_folder_and_an_absolute_path(repo, capsys, monkeypatch):
    before = (repo / "models" / "net.py").read_bytes()
    monkeypatch.chdir(repo / "models")
    assert main(["generate", "../specs/net.yaml", "-o", "again.py"]) == 0
    assert (repo / "models" / "again.py").read_bytes() == before
    monkeypatch.chdir("/")
    target = str(repo / "specs" / "net.yaml")
    assert main(["generate", target, "-o", str(repo / "models" / "abs.py")]) == 0
    assert (repo / "models" / "abs.py").read_bytes() == before


def test_check_passes_from_any_folder(repo, capsys, monkeypatch):
    for folder in (repo, repo / "models", Path("/")):
        monkeypatch.chdir(folder)
        assert main(["check", str(repo / "models")]) == 0, capsys.readouterr().err
        assert (
            capsys.readouterr().out
            == "check: 2 generated file(s) match what their specs generate\n"
        )
    monkeypatch.chdir(repo)
    assert main(["check", "models/net.py", "models/squeeze_oop.py", "models"]) == 0


def test_an_edited_spec_fails_with_its_diff_and_the_command(repo, capsys):
    spec = repo / "specs" / "net.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("my_net", "their_net"), "utf-8")
    before = snapshot(repo)
    assert main(["check", "models"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("--- models/net.py\n+++ models/net.py (generated)\n")
    assert '-    name="my_net",\n+    name="their_net",\n' in out
    assert "squeeze_oop" not in out
    assert (
        "check: regenerate with: cd models && modelgen generate ../specs/net.yaml "
        "--style procedural -o net.py\n"
    ) in err
    assert err.endswith("check: 1 of 2 generated file(s) drift, 0 cannot be regenerated\n")
    assert snapshot(repo) == before  # nothing written


def test_an_edited_generated_file_fails(repo, capsys):
    path = repo / "models" / "squeeze_oop.py"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("        n_classes=10,", "        n_classes=11,"), "utf-8")
    assert main(["check", "models/squeeze_oop.py"]) == 1
    out = capsys.readouterr().out
    assert "-        n_classes=11,\n+        n_classes=10,\n" in out


def test_edited_templates_fail(repo, capsys, monkeypatch, tmp_path_factory):
    templates = tmp_path_factory.mktemp("edited") / "templates"
    shutil.copytree(render.templates_dir(), templates)
    header = templates / "header.py.j2"
    header.write_text(
        header.read_text(encoding="utf-8").replace("DO NOT EDIT.", "DO NOT EDIT THIS FILE."),
        encoding="utf-8",
    )
    monkeypatch.setattr(render, "templates_dir", lambda: templates)
    render.environment.cache_clear()
    try:
        assert main(["check", "models"]) == 1
    finally:
        render.environment.cache_clear()
    out = capsys.readouterr().out
    assert out.count("DO NOT EDIT THIS FILE.") == 2  # both files drift


def test_a_deleted_spec_and_an_edited_header_are_one_line_each(repo, capsys):
    (repo / "specs" / "squeeze.yml").unlink()
    net = repo / "models" / "net.py"
    net.write_text(net.read_text(encoding="utf-8").replace("# Regenerate:", "# Rebuild:", 1))
    assert main(["check", "models"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "check: models/net.py: line 2: the '# Regenerate:' line is missing or edited",
        "check: models/squeeze_oop.py: line 2: its spec file ../specs/squeeze.yml is gone "
        "(models/../specs/squeeze.yml)",
        "check: 0 of 2 generated file(s) drift, 2 cannot be regenerated",
    ]


def test_a_named_file_modelgen_did_not_write_and_a_missing_path(repo, capsys):
    assert main(["check", "models/notes.py"]) == 1
    assert "check: models/notes.py: not a file modelgen generated (no header line)" in (
        capsys.readouterr().err
    )
    assert main(["check", "nowhere"]) == 2
    assert capsys.readouterr().err == "error: nowhere: no such file or folder\n"


def test_generate_check_and_diff_write_nothing(repo, capsys):
    args = ["generate", "specs/net.yaml", "-o", "models/net.py"]
    before = snapshot(repo)
    assert main([*args, "--check"]) == 0
    assert capsys.readouterr().err == "models/net.py: up to date\n"
    # another style: the diff, exit 1 with --check, 0 with --diff
    assert main([*args, "--style", "oop", "--check"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("--- models/net.py\n+++ models/net.py (generated)\n")
    assert "+class ResNet18:\n" in out  # the spec's class_name
    assert "drifts from what its spec generates" in err
    assert main([*args, "--style", "oop", "--diff"]) == 0
    assert capsys.readouterr().out == out
    # bad input: one line, exit 2
    assert main([*args, "--set", "stem.kind=nope", "--check"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["generate", "specs/net.yaml", "--check"]) == 2
    assert (
        capsys.readouterr().err == "error: --check: needs -o FILE: the generated file to compare\n"
    )
    assert main(["generate", "specs/net.yaml", "-o", "models/new.py", "--check"]) == 1
    assert "models/new.py: missing" in capsys.readouterr().err
    assert snapshot(repo) == before


def _modelgen() -> Path:
    return Path(sys.executable).parent / "modelgen"


def test_the_pre_commit_hook_runs_the_check(repo):
    """The hook's entry command, as pre-commit runs it (no file names: pass_filenames is
    false), with the folder a user's config gives as args."""
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "modelgen-check" and hook["pass_filenames"] is False
    entry = shlex.split(hook["entry"])
    assert entry[0] == "modelgen"
    command = [str(_modelgen()), *entry[1:], "models"]
    ok = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    spec = repo / "specs" / "net.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("my_net", "other"), "utf-8")
    drift = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert drift.returncode == 1 and "+++ models/net.py (generated)" in drift.stdout


@pytest.mark.parametrize("seed", ["1", "12345"])
def test_the_check_is_independent_of_hash_seed_and_folder(repo, seed):
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "check", str(repo / "models")],
        cwd=ROOT if seed == "1" else repo / "specs",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
