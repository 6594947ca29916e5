"""An installed wheel works like the checkout: templates and presets ship as package data.

Builds the wheel with `pip wheel`, installs it (and nothing else) into a fresh virtualenv,
and runs that venv's `modelgen` from an unrelated folder. The venv borrows the runtime
dependencies (jinja2, black, typer, pydantic, PyYAML) from this interpreter through a .pth
line, which adds their folder to sys.path without running the .pth files in it, so the
editable install of this checkout stays invisible to the new venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from generator.pipeline import generate
from generator.render import STYLES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds a wheel and a virtualenv


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(modelgen executable, python of the venv, a folder unrelated to the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    wheels = base / "dist"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        cwd=base,
    )
    assert build.returncode == 0, build.stderr.decode()[-3000:]
    (wheel,) = wheels.glob("modelgen-*.whl")

    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    # The new venv's own site-packages, from its own interpreter.
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    assert site.returncode == 0, site.stderr
    site_packages = Path(site.stdout.decode().strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "zz_borrowed_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in sorted(ours)), encoding="utf-8"
    )
    install = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        cwd=base,
    )
    assert install.returncode == 0, install.stderr.decode()[-3000:]
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return bin_dir / "modelgen", python, elsewhere


def test_the_wheel_carries_templates_and_presets(installed):
    _, python, elsewhere = installed
    probe = _run(
        [
            str(python),
            "-c",
            "import generator, generator.render as r, generator.spec as s;"
            "print(generator.__file__); print(r.templates_dir()); print(len(s.preset_names()))",
        ],
        cwd=elsewhere,
    )
    assert probe.returncode == 0, probe.stderr.decode()
    module, templates, presets = probe.stdout.decode().splitlines()
    venv_dir = python.parent.parent
    assert Path(module).is_relative_to(venv_dir), f"imported {module}, not the wheel"
    assert Path(templates).is_relative_to(venv_dir) and Path(templates).name == "templates"
    assert int(presets) == len(list((ROOT / "generator" / "presets").glob("*.yaml")))


@pytest.mark.parametrize("style", STYLES)
def test_installed_generate_is_byte_identical_to_the_editable_install(installed, style):
    modelgen, _, elsewhere = installed
    proc = _run([str(modelgen), "generate", "resnet50", "--style", style], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == generate("resnet50", style).encode("utf-8")
    assert proc.stdout == (ROOT / "golden" / style / "resnet50.py").read_bytes()
    assert list(elsewhere.iterdir()) == []


def test_installed_list_matches_the_editable_install(installed):
    modelgen, _, elsewhere = installed
    wheel = _run([str(modelgen), "list"], cwd=elsewhere)
    here = _run([sys.executable, "-m", "generator", "list"], cwd=elsewhere)
    assert wheel.returncode == 0 and here.returncode == 0, wheel.stderr + here.stderr
    assert wheel.stdout == here.stdout
    assert b"resnet50" in wheel.stdout and b"vgg19" in wheel.stdout


def _checkout_copy(folder: Path) -> Path:
    """A copy of the files of this checkout that golden commands read."""
    import shutil

    for name in ("generator", "templates", "golden"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    return folder


def test_installed_golden_check_in_a_checkout_renders_the_checkouts_templates(installed, tmp_path):
    """`pip install .`, then a template edit in the checkout: the installed modelgen's
    `golden check` there renders with the checkout's templates (it said "all files match"
    from its own copy before), says so, and `golden update` writes what they render."""
    modelgen, _, _ = installed
    checkout = _checkout_copy(tmp_path / "checkout")
    clean = _run([str(modelgen), "golden", "check"], cwd=checkout / "golden")
    assert clean.returncode == 0, clean.stderr.decode()
    assert f"rendering with the checkout's own generator, templates and presets in {checkout}" in (
        clean.stderr.decode()
    )
    assert f"match the templates in {checkout / 'templates'}" in clean.stdout.decode()

    stem = checkout / "templates" / "stems" / "resnet.py.j2"
    text = stem.read_text(encoding="utf-8")
    edited = text.replace('"conv1_conv"', '"conv1_conv_edited"', 1)
    assert edited != text, "the resnet stem names conv1_conv"
    stem.write_text(edited, encoding="utf-8")
    drift = _run([str(modelgen), "golden", "check", "resnet18"], cwd=checkout)
    assert drift.returncode == 1, drift.stdout.decode() + drift.stderr.decode()
    assert "conv1_conv_edited" in drift.stdout.decode()
    assert f"drift from the templates in {checkout / 'templates'}" in drift.stderr.decode()

    update = _run([str(modelgen), "golden", "update"], cwd=checkout)
    assert update.returncode == 0, update.stderr.decode()
    assert "conv1_conv_edited" in (checkout / "golden" / "oop" / "resnet18.py").read_text()


def test_installed_check_passes_on_files_the_editable_install_generated(installed, tmp_path):
    """`modelgen check` gives the same answer from the wheel as from the editable install:
    files generated here (a spec beside, both styles) match for the installed copy too."""
    modelgen, _, elsewhere = installed
    (tmp_path / "specs").mkdir()
    (tmp_path / "models").mkdir()
    spec = tmp_path / "specs" / "net.yaml"
    spec.write_bytes((ROOT / "generator" / "presets" / "squeezenet1_1.yaml").read_bytes())
    for style in STYLES:
        out = tmp_path / "models" / f"net_{style}.py"
        made = _run(
            [sys.executable, "-m", "generator", "generate", str(spec), "--style", style]
            + ["-o", str(out)],
            cwd=elsewhere,
        )
        assert made.returncode == 0, made.stderr.decode()
    proc = _run([str(modelgen), "check", str(tmp_path / "models")], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"check: 2 generated file(s) match what their specs generate\n"
    spec.write_text(spec.read_text(encoding="utf-8").replace("dropout: 0.5", "dropout: 0.25"))
    drift = _run([str(modelgen), "check", str(tmp_path / "models")], cwd=elsewhere)
    assert drift.returncode == 1 and drift.stdout.count(b"(generated)") == 2
