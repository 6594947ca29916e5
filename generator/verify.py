"""`modelgen verify`: render each target, then build and train them all in ONE child process.

Keras is imported only in the child (`python -m generator.harness`, see harness.py), with
KERAS_BACKEND set for it, so the CLI process stays framework-free and one interpreter
start and one keras import serve every model.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import SpecError, printable
from .harness import task_for_plan
from .pipeline import generate, plan_for


def emitted_file_job(target: str, input_size: int | None) -> dict:
    """A job for a file someone already generated: its kind is read from the built model
    (an input of any size gets --input-size images, else harness.ANY_SIDE)."""
    path = Path(target)
    if not path.is_file():
        raise SpecError(target, "", "no such emitted file")
    build = {"input_shape": [input_size, input_size, 3]} if input_size else {}
    task = {"kind": "auto", **build}
    return {"label": path.name, "path": str(path.resolve()), "task": task, "build": build}


def preset_jobs(
    target: str, styles: list[str], overrides: list[str], input_size: int | None, folder: Path
) -> list[dict]:
    """Render the target in each style into folder (the render stage) and describe the jobs.
    The file is the one `modelgen generate` writes; a smaller input is a build argument."""
    plan = plan_for(target, overrides)
    channels = plan.spec.input_shape[2]
    build = {}
    if input_size is not None:
        shape = [input_size, input_size, channels]
        plan = plan_for(target, [*overrides, f"input_shape={shape}"])  # refuses a too-small side
        build["input_shape"] = shape
    jobs = []
    for style in styles:
        try:
            text = generate(target, style, overrides)
        except SpecError:
            raise  # bad input: its own one-line message
        except Exception as exc:  # a bug in a template: name the stage
            raise SpecError(target, "", f"verify failed at render ({style}): {exc}") from exc
        name = f"{plan.spec.name}_{style}_{len(list(folder.iterdir()))}.py"
        path = folder / name
        path.write_text(text, encoding="utf-8")
        label, task = f"{target} ({style})", task_for_plan(plan)
        jobs.append({"label": label, "path": str(path), "task": task, "build": build})
    return jobs


# The child's first lines: this package's folder, not the current one, first on sys.path.
# `python -m generator.harness` would put the current folder first, so a `generator/` or
# `keras.py` there (another project, a download) would be imported in modelgen's place.
def entry_command(root: Path, module: str, args: list[str]) -> list[str]:
    """A command line running `module`.main(args) of the modelgen whose folder is root,
    that folder first on sys.path: `python -m` would put the current folder first."""
    code = (
        "import sys; sys.path[0] = sys.argv[1]; "
        f"from {module} import main; sys.exit(main(sys.argv[2:]))"
    )
    return [sys.executable, "-c", code, str(root), *args]


def child_command(config: Path) -> list[str]:
    """The child's command line: the harness of this modelgen, on the jobs in config."""
    package_root = Path(__file__).resolve().parent.parent
    return entry_command(package_root, "generator.harness", [str(config)])


def child_env(backend: str | None) -> dict:
    """The child's environment: the backend, quiet TensorFlow, and this package importable."""
    env = dict(os.environ)
    if backend:
        env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def run_verify(
    targets: list[str],
    styles: list[str],
    overrides: list[str],
    steps: int,
    input_size: int | None,
    batch: int,
    backend: str | None,
    devices: int = 1,
) -> int:
    if devices > 1:
        chosen = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
        if chosen != "jax":
            raise SpecError(
                "--devices", "", f"needs the jax backend (keras.distribution), not {chosen}"
            )
        if batch % devices:
            raise SpecError(
                "--batch", "", f"{batch} does not split over {devices} devices: use a multiple"
            )
    with tempfile.TemporaryDirectory(prefix="modelgen-verify-") as tmp:
        folder = Path(tmp)
        jobs = []
        for target in targets:
            if target.endswith(".py"):
                jobs.append(emitted_file_job(target, input_size))
            else:
                jobs += preset_jobs(target, styles, overrides, input_size, folder)
        config = folder / "jobs.json"
        # A progress bar only on a terminal: piped, its carriage returns and ANSI codes
        # are noise in a log.
        progress = sys.stdout.isatty()
        config.write_text(
            json.dumps(
                {
                    "steps": steps,
                    "batch": batch,
                    "devices": devices,
                    "progress": progress,
                    "jobs": jobs,
                }
            ),
            encoding="utf-8",
        )
        sys.stdout.flush()
        returncode = _run_child(child_command(config), child_env(backend))
    if returncode == 0:
        print(f"verify: {len(jobs)} model(s) built, trained and passed")
        return 0
    if returncode != 1:  # the child died (killed, out of memory, crashed on import)
        labels = ", ".join(job["label"] for job in jobs)
        sys.stderr.write(f"error: {printable(labels)}: verify failed: {_died(returncode)}\n")
    return 1


# A backend's own log lines at info and warning level: TensorFlow's C++ logging (through
# absl: "I0000 00:00:1796188133.99 23660 port.cc:153] oneDNN custom operations are on...",
# at every start), which TF_CPP_MIN_LOG_LEVEL no longer silences. Error lines (E, F) pass.
_BACKEND_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
)


def _run_child(command: list[str], env: dict) -> int:
    """Run the child with its standard output as ours (the report, streamed) and its
    standard error through, less the backend's log noise; its exit status."""
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
    for line in proc.stderr:
        if not _BACKEND_NOISE.fullmatch(line.rstrip("\n")):
            sys.stderr.write(line)
            sys.stderr.flush()
    return proc.wait()


def _died(returncode: int) -> str:
    """How the child ended: an exit status, or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the child process was killed by {name}{hint}"
    return f"the child process exited with {returncode}"
