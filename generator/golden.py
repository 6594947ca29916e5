"""Golden files: every preset in both styles, checked in under golden/<style>/<preset>.py."""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import black

from .errors import SpecError, WriteError
from .pipeline import generate, origin_label
from .plan import make_plan
from .render import BLACK_MODE, STYLES, check_emitted, render_source
from .spec import load_spec, preset_names
from .sync import drift
from .write import write_atomic

# black.format_str formats twice when the first pass changed anything (the templates' raw
# output always needs formatting): the second pass settles optional trailing commas. Golden
# files are black-stable (tests/test_models.py checks `black --check` on each), so when the
# first pass already gives the file on disk, the second would give it again: rendered()
# skips it. Black is pinned exactly (pyproject.toml); without this function, no skip.
_FIRST_PASS = getattr(black, "_format_str_once", None)

# Libraries that start threads of their own (not all visible to `threading`): a process
# that imported one, or runs other threads (a test runner's), renders in itself, unforked.
_THREADED = ("tensorflow", "torch", "jax", "keras")


def default_golden_dir() -> Path:
    """golden/ of the checkout this package runs from, else ./golden."""
    beside = Path(__file__).resolve().parent.parent / "golden"
    return beside if beside.is_dir() else Path.cwd() / "golden"


_PROJECT_NAME = re.compile(r'^name\s*=\s*"modelgen"\s*$', re.MULTILINE)


def checkout_of(start: Path) -> Path | None:
    """The modelgen checkout holding `start` (it or a folder above it): one with
    generator/, templates/ and a pyproject.toml for the project modelgen; else None."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        project = folder / "pyproject.toml"
        package, templates = folder / "generator" / "__init__.py", folder / "templates"
        if not (package.is_file() and templates.is_dir()):
            continue
        try:
            if _PROJECT_NAME.search(project.read_text(encoding="utf-8")):
                return folder
        except (OSError, UnicodeDecodeError):
            continue
    return None


def own_checkout() -> Path | None:
    """The checkout this package runs from (an editable install, `python -m generator` in
    it); None for an installed copy (site-packages), whose templates are its own."""
    root = Path(__file__).resolve().parent.parent
    return root if checkout_of(root) == root else None


def other_checkout(golden_dir: Path | None) -> Path | None:
    """The checkout a golden command works in (the golden folder's, else the current
    folder's) when this package is not that checkout's code: an installed copy run inside
    a checkout would render from its own templates and presets, not the checkout's."""
    found = checkout_of(golden_dir.parent if golden_dir is not None else Path.cwd())
    return None if found is None or found == own_checkout() else found


def rendered(name: str, style: str, on_disk: str | None = None) -> str:
    """generate(name, style): the text the templates render today for a preset.

    With on_disk (the golden file's text), black's second pass is skipped when the first
    one already gives exactly that text (a black-stable file: the second pass changes
    nothing); anything else takes generate()'s own path, byte for byte.
    """
    if on_disk is not None and _FIRST_PASS is not None:
        spec, source = load_spec(name, [])
        plan = make_plan(spec, source)
        raw = render_source(plan, style, origin_label(name, source), name)
        text = _FIRST_PASS(raw, mode=BLACK_MODE)
        if text == on_disk:
            check_emitted(raw, text)
            return text
    return generate(name, style)


def _read(path: Path) -> str | None:
    """The golden file's text, to speed up its rendering; None where there is none to use
    (missing, not a regular file, not UTF-8: check and update then see it drift)."""
    try:
        data = _golden_bytes(path)
        return data.decode("utf-8") if data is not None else None
    except (GoldenError, OSError, UnicodeDecodeError):  # an obstacle: check, update report it
        return None


def _render_job(job: tuple[str, str, str | None]) -> str:
    name, style, on_disk = job
    return rendered(name, style, on_disk)


def _workers(n_jobs: int) -> int:
    """Processes to render with: one per CPU this process may use (at most one per 8
    files), and 1 (this process) where forking is not safe or not worth it."""
    if os.name != "posix" or threading.active_count() > 1:
        return 1
    if any(module in sys.modules for module in _THREADED):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n_jobs // 8))


def expected(golden_dir: Path | None = None, names: list[str] | None = None) -> dict[str, str]:
    """Relative golden path -> the text the templates render today (of the presets named,
    else of every preset). With golden_dir, each file there speeds up its own rendering
    (rendered()); the files render in parallel where that is safe (_workers)."""
    jobs = [
        (name, style, _read(golden_dir / style / f"{name}.py") if golden_dir else None)
        for style in STYLES
        for name in (preset_names() if names is None else names)
    ]
    workers = _workers(len(jobs))
    if workers > 1:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            texts = list(pool.map(_render_job, jobs, chunksize=4))
    else:
        texts = [_render_job(job) for job in jobs]
    return {f"{style}/{name}.py": text for (name, style, _), text in zip(jobs, texts, strict=True)}


def check(golden_dir: Path, names: list[str] | None = None) -> list[str]:
    """Unified diffs for every file that drifts, one line for every file that is missing,
    and, when every preset is checked (names None), one for every file that is not a
    preset's."""
    _exists(golden_dir, "check")
    _refuse(_obstacles(golden_dir))  # before rendering: a FIFO would hang the reading
    diffs = []
    wanted = expected(golden_dir, names)
    for rel, text in wanted.items():
        path = golden_dir / rel
        data = _golden_bytes(path)
        if data is None:
            diffs.append(f"missing: {path} (golden update writes it)\n")
        elif (found := drift(path, data, text)) is not None:  # as `modelgen check` diffs
            diffs.append(found)
    for style in STYLES if names is None else ():
        for path in sorted((golden_dir / style).glob("*.py")):
            if f"{style}/{path.name}" not in wanted:
                diffs.append(f"--- {path}\n+++ (no such preset: stale golden file)\n")
    return diffs


class GoldenError(WriteError):
    """golden/ holds what modelgen cannot read or will not replace (a FIFO, a directory, a
    device where a golden file belongs): one line each, exit 1. `changed` lists what
    `update` still repaired."""

    def __init__(self, problems: list[tuple[Path, str]], changed=()):
        self.changed = list(changed)
        (path, reason), *others = problems
        super().__init__("", str(path), reason, [(str(p), r) for p, r in others])


def _kind(path: Path) -> str | None:
    """What stands at path if golden may not read or replace it ('a FIFO', 'a directory',
    ...); None for a regular file (or a link to one) and for nothing at all."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None  # absent, or a link to nothing: written anew
    except OSError as exc:  # a link loop, a folder that is a file, no permission
        return f"unreadable ({exc.strerror or type(exc).__name__})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _golden_bytes(path: Path) -> bytes | None:
    """A golden file's bytes, None when there is none. Opened non-blocking, then checked to
    be a regular file: a FIFO put there since _obstacles looked cannot hang the read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GoldenError([(path, f"cannot read: {exc.strerror or type(exc).__name__}")]) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GoldenError([(path, "is not a regular file, not a golden file; remove it")])
        return handle.read()


def _check_dir(golden_dir: Path) -> None:
    if golden_dir.exists() and not golden_dir.is_dir():
        raise SpecError(str(golden_dir), "", "is not a directory; --dir takes a golden/ folder")


def _exists(golden_dir: Path, command: str) -> None:
    """golden/ must be there: outside a checkout (or with a mistyped --dir) one line, not a
    diff of every file, nor every file written into the current folder."""
    _check_dir(golden_dir)
    if not golden_dir.is_dir():
        raise SpecError(
            str(golden_dir),
            "",
            f"no such folder; `golden {command}` works on a modelgen checkout's golden/ "
            "(run it there, or give --dir)",
        )


def _obstacles(golden_dir: Path) -> list[tuple[Path, str]]:
    """Every place where a golden file (or its style folder) belongs but something else
    stands: one (path, reason) each. Cheap: no rendering."""
    _check_dir(golden_dir)
    problems = []
    for style in STYLES:
        folder = golden_dir / style
        if folder.exists() and not folder.is_dir():
            problems.append((folder, "is not a directory, not a style folder; remove it"))
            continue
        for name in preset_names():
            kind = _kind(folder / f"{name}.py")
            if kind is not None:
                problems.append((folder / f"{name}.py", f"is {kind}, not a golden file; remove it"))
    return problems


def _refuse(problems: list[tuple[Path, str]], changed=()) -> None:
    if problems:
        raise GoldenError(problems, changed)


def _inside(golden_dir: Path) -> None:
    """Refuse to write through a style folder that is a link out of golden_dir."""
    root = golden_dir.resolve()
    for style in STYLES:
        folder = golden_dir / style
        if folder.exists() and not folder.resolve().is_relative_to(root):
            raise SpecError(str(folder), "", f"leads out of {golden_dir}; refusing to write there")


def update(golden_dir: Path) -> list[tuple[str, Path]]:
    """Rewrite golden/ from the templates; remove golden files of presets that are gone.
    Returns what it did: ("updated" or "removed", path) each.

    Only <golden_dir>/<style>/<preset>.py files are written or removed, nothing else.
    """
    _exists(golden_dir, "update")
    _inside(golden_dir)
    problems = _obstacles(golden_dir)  # left as they are; everything else is repaired
    blocked = {path for path, _ in problems}
    changed = []
    wanted = expected(golden_dir)
    for rel, text in wanted.items():
        path = golden_dir / rel
        if path in blocked or path.parent in blocked:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if _golden_bytes(path) != text.encode("utf-8"):  # missing, drifted, not UTF-8
            write_atomic(path, text, force=True)
            changed.append(("updated", path))
    for style in STYLES:
        if golden_dir / style in blocked:
            continue
        for path in sorted((golden_dir / style).glob("*.py")):
            if f"{style}/{path.name}" not in wanted:
                kind = _kind(path) if not path.is_symlink() else None
                if kind is not None:  # a stale folder or FIFO: not modelgen's to remove
                    problems.append((path, f"is {kind}, not a stale golden file; remove it"))
                    continue
                path.unlink()
                changed.append(("removed", path))
    _refuse(problems, changed)
    return changed
