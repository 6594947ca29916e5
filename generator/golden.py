"""Golden files: every preset in both styles, checked in under golden/<style>/<preset>.py."""

from __future__ import annotations

import difflib
from pathlib import Path

from .errors import SpecError
from .pipeline import generate
from .render import STYLES
from .spec import preset_names
from .write import write_atomic


def default_golden_dir() -> Path:
    """golden/ of the checkout this package runs from, else ./golden."""
    beside = Path(__file__).resolve().parent.parent / "golden"
    return beside if beside.is_dir() else Path.cwd() / "golden"


def expected() -> dict[str, str]:
    """Relative golden path -> the text the templates render today."""
    return {
        f"{style}/{name}.py": generate(name, style) for style in STYLES for name in preset_names()
    }


def check(golden_dir: Path) -> list[str]:
    """Unified diffs for every file that drifts, is missing, or is not a preset's."""
    diffs = []
    wanted = expected()
    for rel, text in wanted.items():
        path = golden_dir / rel
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=str(path),
                        tofile=f"{path} (generated)",
                    )
                )
                or f"--- {path}\n+++ {path} (generated)\n(missing)\n"
            )
    for style in STYLES:
        for path in sorted((golden_dir / style).glob("*.py")):
            if f"{style}/{path.name}" not in wanted:
                diffs.append(f"--- {path}\n+++ (no such preset: stale golden file)\n")
    return diffs


def _inside(golden_dir: Path) -> None:
    """Refuse to write through a style folder that is a link out of golden_dir."""
    root = golden_dir.resolve()
    for style in STYLES:
        folder = golden_dir / style
        if folder.exists() and not folder.resolve().is_relative_to(root):
            raise SpecError(str(folder), "", f"leads out of {golden_dir}; refusing to write there")


def update(golden_dir: Path) -> list[Path]:
    """Rewrite golden/ from the templates; remove golden files of presets that are gone.

    Only <golden_dir>/<style>/<preset>.py files are written or removed, nothing else.
    """
    _inside(golden_dir)
    changed = []
    wanted = expected()
    for rel, text in wanted.items():
        path = golden_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text, force=True)
            changed.append(path)
    for style in STYLES:
        for path in sorted((golden_dir / style).glob("*.py")):
            if f"{style}/{path.name}" not in wanted:
                path.unlink()
                changed.append(path)
    return changed
