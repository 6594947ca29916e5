"""The `modelgen` command line. Never imports keras or tensorflow.

Every user error prints one line per problem (`error: <source>: <field path>: <reason>`)
on stderr and exits 2, with no traceback and nothing written.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import SpecError, WriteError, printable


def _argument_placeholders() -> None:
    """typer (pinned, 0.29) writes a required argument as `{name}` in the usage line and
    adds its Python type (`<list[str]>`) to its help row; a command line reads better with
    the argument's placeholder alone: TARGET, [PRESET]... Patched once, on typer's argument
    class, in this process only (tests/test_cli.py reads every command's help)."""
    from typer.core import TyperArgument

    def usage_name(self) -> str:
        name = self.metavar or self.name.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperArgument._usage_display_name = usage_name
    TyperArgument.display_type_rich = lambda self, ctx: None


_argument_placeholders()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
golden_app = typer.Typer(no_args_is_help=True, help="Compare or rewrite golden/ files.")
app.add_typer(golden_app, name="golden")


def _print_version(value: bool) -> None:
    if value:
        _write_stdout(f"modelgen {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _app_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print modelgen's version and exit.",
        ),
    ] = False,
) -> None:
    """Turn CNN design-pattern metaparameters into one standalone Keras 3 model file."""


class Style(str, Enum):
    procedural = "procedural"
    oop = "oop"


Target = Annotated[
    str,
    typer.Argument(metavar="TARGET", help="A preset name (see `modelgen list`) or a spec file."),
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override a spec field: dotted.path=value (repeatable).",
    ),
]
Output = Annotated[
    Path | None, typer.Option("-o", "--output", help="File to write; stdout when absent.")
]
AllowLarge = Annotated[
    bool,
    typer.Option(
        "--allow-large",
        help="Plan networks over the 2,000,000,000-parameter limit (refused by default).",
    ),
]


Patterns = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="PATTERN",
        help="Only presets matching one of these shell-style patterns ('resnet*', "
        "'*_v2'), any case.",
        show_default=False,
    ),
]


@app.command("list")
def list_presets(patterns: Patterns = None) -> None:
    """Presets: name, family, parameter counts (Keras total and trainable, from the static
    plan, no keras import), multiply-accumulates per image (see `modelgen summary`), and
    the reference network."""
    from .pipeline import plan_for
    from .spec import matching_presets
    from .summary import macs_text

    rows = []
    for name in matching_presets(patterns or []):
        plan = plan_for(name)
        rows.append(
            (
                name,
                plan.spec.family,
                f"{plan.total_params:,}",
                f"{plan.trainable_params:,}",
                macs_text(plan.total_macs).replace(" ", ""),
                plan.spec.reference,
            )
        )
    header = ("preset", "family", "params", "trainable", "MACs", "reference")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = []
    for row in [header, *rows]:
        left = f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}"
        counts = f"{row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}  {row[4]:>{widths[4]}}"
        lines.append(f"{left}  {counts}  {row[5]}\n")
    _write_stdout("".join(lines))


@app.command()
def show(target: Target, overrides: Sets = None, allow_large: AllowLarge = False) -> None:
    """Print the fully resolved spec (every default filled in) as YAML."""
    from .pipeline import plan_for
    from .spec import spec_to_yaml

    plan = plan_for(target, overrides or [], allow_large=allow_large)
    _write_stdout(spec_to_yaml(plan.spec))


@app.command()
def generate(
    target: Target,
    style: Annotated[Style, typer.Option(help="procedural (functions) or oop (a class).")] = (
        Style.procedural
    ),
    output: Output = None,
    overrides: Sets = None,
    force: Annotated[
        bool, typer.Option(help="Overwrite a file that modelgen did not write.")
    ] = False,
    allow_large: AllowLarge = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 with a diff when -o FILE is not what this generates.",
        ),
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Write nothing; print the diff against -o FILE.")
    ] = False,
) -> None:
    """Emit one standalone Keras 3 model file for a preset or spec."""
    from .pipeline import generate as run
    from .write import write_atomic

    if (check or diff) and output is None:
        flag = "--check" if check else "--diff"
        raise SpecError(flag, "", "needs -o FILE: the generated file to compare")
    text = run(target, style.value, overrides or [], allow_large=allow_large, output=output)
    if check or diff:
        _compare(output, text, check)
        return
    if output is None:
        _write_stdout(text)
    else:
        write_atomic(output, text, force=force)
        typer.echo(f"wrote {printable(str(output))}", err=True)


def _compare(output: Path, text: str, check: bool) -> None:
    """generate --check / --diff: FILE against what the command generates; nothing
    written. A drift prints the diff (stdout) and, with --check, exits 1."""
    from .sync import drift, read_generated

    shown = printable(str(output))
    if not output.exists():
        typer.echo(f"{shown}: missing (generate without --check writes it)", err=True)
        if check:
            raise typer.Exit(1)
        return
    found = drift(output, read_generated(output), text)
    if found is None:
        typer.echo(f"{shown}: up to date", err=True)
        return
    _write_stdout(found)
    if check:
        typer.echo(f"{shown}: drifts from what its spec generates; rerun without --check", err=True)
        raise typer.Exit(1)


class _StdoutGone(Exception):
    """The reader of stdout went away (`modelgen list | head -1`): stop quietly, exit 0."""


def _write_stdout(text: str) -> None:
    """The emitted file as UTF-8 bytes, whatever the terminal's locale: the same bytes as
    -o writes, and no UnicodeEncodeError for a non-ASCII title under LANG=C.

    A reader that went away (EPIPE) ends the command quietly; stdout that cannot take the
    text (`> /dev/full`, a closed stdout) is one error line and exit 1, like a file that
    cannot be written."""
    try:
        if sys.stdout is None:  # started with stdout closed (`modelgen list >&-`)
            raise OSError(errno.EBADF, "it was closed when modelgen started")
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        sys.stdout.flush()
        buffer.write(text.encode("utf-8"))
        buffer.flush()
    except BrokenPipeError:
        raise _StdoutGone from None
    except OSError as exc:
        raise WriteError("stdout", "", f"cannot write: {_os_reason(exc)}") from None


def _echo(text: str) -> None:
    _write_stdout(f"{text}\n")


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class DiagramFormat(str, Enum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


@app.command()
def diagram(
    target: Target,
    output: Output = None,
    fmt: Annotated[
        DiagramFormat | None,
        typer.Option(
            "--format",
            help="mermaid (default), dot, or svg (needs Graphviz); -o x.svg picks svg.",
        ),
    ] = None,
    overrides: Sets = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    allow_large: AllowLarge = False,
) -> None:
    """Draw the macro-architecture from the plan (no keras): stem, groups with block type,
    count and output shape, classifier and heads."""
    from .diagram import render_diagram
    from .pipeline import plan_for

    plan = plan_for(target, overrides or [], allow_large=allow_large)
    if fmt is None:
        suffix = output.suffix.lower() if output is not None else ""
        fmt = {".svg": DiagramFormat.svg, ".dot": DiagramFormat.dot, ".gv": DiagramFormat.dot}.get(
            suffix, DiagramFormat.mermaid
        )
    text = render_diagram(plan, target, fmt.value)
    _write_or_print(text, output, force)


def _write_or_print(text: str, output: Path | None, force: bool) -> None:
    """stdout without -o; else the file, refusing an existing one (a link too, even one to
    nothing) without --force."""
    from .errors import SpecError
    from .write import write_atomic

    if output is None:
        _write_stdout(text)
        return
    if os.path.lexists(output) and not force:
        raise SpecError(str(output), "", "exists; use --force to overwrite it")
    write_atomic(output, text, force=True)
    typer.echo(f"wrote {printable(str(output))}", err=True)


@app.command()
def schema(
    output: Output = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Print the spec's JSON Schema (generated from its pydantic models) for editors and
    validators: every section, field, kind and bound a spec file may use."""
    from .spec import json_schema

    text = json_schema()
    _write_or_print(text, output, force)


@app.command()
def fields(
    output: Output = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Print the spec's field reference (Markdown, docs/fields.md): every section and
    field, its type, default and values, from the models that validate a spec."""
    from .reference import field_reference

    _write_or_print(field_reference(), output, force)


class SummaryFormat(str, Enum):
    text = "text"
    json = "json"


@app.command()
def summary(
    target: Target,
    overrides: Sets = None,
    fmt: Annotated[
        SummaryFormat,
        typer.Option("--format", help="text (a table, default) or json (one object)."),
    ] = SummaryFormat.text,
    allow_large: AllowLarge = False,
) -> None:
    """The plan as a table, without keras: one row per stage output (stem, each group,
    the classifier, each head), its layer-name prefix in the built model, output shape
    (no batch axis), parameters and multiply-accumulates; then the total and trainable
    parameters, the figures model.summary() gives once built. MACs: a convolution counts
    H_out * W_out * kh * kw * C_in / groups * C_out, a dense layer inputs * units; BN,
    pooling, activations and adds count 0; per image (per pair for a Siamese twin).
    --format json prints one object: total_params, trainable_params, total_macs and
    stages [{name, output_shape, params, trainable_params, macs, layer}]."""
    import json

    from .pipeline import plan_for
    from .summary import summary_json, summary_text

    plan = plan_for(target, overrides or [], allow_large=allow_large)
    if fmt is SummaryFormat.json:
        _echo(json.dumps(summary_json(plan)))
    else:
        _write_stdout(summary_text(plan))


class Backend(str, Enum):
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


@app.command()
def verify(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET",
            help="Presets, spec files or emitted .py files (one child runs them all).",
        ),
    ],
    style: Annotated[
        list[Style] | None,
        typer.Option(
            metavar="procedural|oop",
            help="procedural or oop; repeat for both (default procedural).",
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option(metavar="N", min=1, max=100_000, help="Training steps.")
    ] = 5,
    input_size: Annotated[
        int | None,
        typer.Option(
            metavar="SIDE", min=1, max=100_000, help="Square input side (default: the spec's)."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(metavar="B", min=1, max=100_000, help="Batch size.")] = 2,
    backend: Annotated[
        Backend | None, typer.Option(help="Keras backend (default: $KERAS_BACKEND).")
    ] = None,
    overrides: Sets = None,
    devices: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=1,
            max=4096,
            help="Train on N devices: keras.distribution.DataParallel (jax backend; the "
            "batch splits between them).",
        ),
    ] = 1,
) -> None:
    """Build each emitted model in a child process, print its parameter count and output
    shapes, check every trainable variable gets a gradient and train it on synthetic data
    with its family's recipe: the loss must fall. Exit 0 only if every model passed; a
    failure names the model and the stage (render, import, build, train)."""
    from .verify import run_verify

    styles = [s.value for s in style] if style else ["procedural"]
    code = run_verify(
        targets,
        styles,
        overrides or [],
        steps=steps,
        input_size=input_size,
        batch=batch,
        backend=backend.value if backend else None,
        devices=devices,
    )
    if code:
        raise typer.Exit(code)


GoldenDir = Annotated[Path | None, typer.Option("--dir", help="golden/ folder to use.")]


GoldenPresets = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="PRESET",
        help="Check only these presets' files (both styles); all when absent.",
        show_default=False,
    ),
]


def _in_checkout(args: list[str], golden_dir: Path | None) -> None:
    """Inside a checkout, golden files are the checkout's templates' and presets': an
    installed copy of modelgen (`pip install .`) hands the command to the checkout's own
    code, saying so, and exits with its status."""
    import subprocess

    from .golden import other_checkout
    from .verify import entry_command

    root = other_checkout(golden_dir)
    if root is None:
        return
    here = Path(__file__).resolve().parent
    typer.echo(
        f"golden: modelgen runs from {printable(str(here))}; rendering with the checkout's "
        f"own generator, templates and presets in {printable(str(root))}",
        err=True,
    )
    sys.stdout.flush()
    command = entry_command(root, "generator.cli", ["golden", *args])  # the checkout's cli
    raise typer.Exit(subprocess.run(command).returncode)


def _templates_used() -> str:
    from .render import templates_dir

    return printable(str(templates_dir()))


CheckPaths = Annotated[
    list[Path],
    typer.Argument(
        metavar="FILE_OR_FOLDER",
        help="Generated model files, or folders to search for them (*.py files that start "
        "with modelgen's header; others are left alone).",
        show_default=False,
    ),
]


@app.command("check")
def check_generated(paths: CheckPaths) -> None:
    """Re-run each generated file's own '# Regenerate:' line and compare: a unified diff
    for each file that drifts, one line for each that cannot be regenerated (its header
    edited, its spec file gone); exit 1 on either. Spec paths resolve from the file's folder."""
    from .sync import check_files

    missing = [path for path in paths if not path.exists()]
    if missing:
        raise SpecError(str(missing[0]), "", "no such file or folder")
    diffs, problems, n_files = check_files(paths)
    for found, _ in diffs:
        _write_stdout(found)
    for line in problems:
        typer.echo(f"check: {line}", err=True)
    if diffs or problems:
        for _, hint in diffs:
            typer.echo(f"check: regenerate with: {hint}", err=True)
        typer.echo(
            f"check: {len(diffs)} of {n_files} generated file(s) drift, "
            f"{len(problems)} cannot be regenerated",
            err=True,
        )
        raise typer.Exit(1)
    _echo(f"check: {n_files} generated file(s) match what their specs generate")


@golden_app.command("check")
def golden_check(presets: GoldenPresets = None, golden_dir: GoldenDir = None) -> None:
    """Print a unified diff for each golden file that drifts; exit 1 on any drift."""
    from .golden import check, default_golden_dir
    from .spec import preset_name

    where = ["--dir", str(golden_dir)] if golden_dir is not None else []
    _in_checkout(["check", *(presets or []), *where], golden_dir)
    names = list(dict.fromkeys(map(preset_name, presets))) if presets else None
    folder = golden_dir or default_golden_dir()
    diffs = check(folder, names)
    for diff in diffs:
        _write_stdout(diff)
    if diffs:
        typer.echo(
            f"{len(diffs)} golden file(s) drift from the templates in {_templates_used()}; "
            "fix with: modelgen golden update",
            err=True,
        )
        raise typer.Exit(1)
    which = f"the files of {', '.join(names)}" if names else "all files"
    _echo(f"golden: {which} in {printable(str(folder))} match the templates in {_templates_used()}")


@golden_app.command("update")
def golden_update(golden_dir: GoldenDir = None) -> None:
    """Rewrite golden/ from the templates (only files under golden/ are touched)."""
    from .golden import GoldenError, default_golden_dir, update

    _in_checkout(["update", *(["--dir", str(golden_dir)] if golden_dir else [])], golden_dir)
    folder = golden_dir or default_golden_dir()
    try:
        changed = update(folder)
    except GoldenError as exc:  # what it could not repair; say what it did repair first
        for action, path in exc.changed:
            _echo(f"{action} {printable(str(path))}")
        raise
    for action, path in changed:
        _echo(f"{action} {printable(str(path))}")
    _echo(
        f"golden: {len(changed)} file(s) changed in {printable(str(folder))} "
        f"(templates in {_templates_used()})"
    )


@app.command()
def version() -> None:
    """Print the modelgen version."""
    _echo(__version__)


def _fail(message: str, code: int = 2) -> int:
    if sys.stderr is None:  # started with stderr closed: nowhere to say it
        return code
    for line in message.split("\n"):
        sys.stderr.write(f"error: {line}\n")
    return code


def _reader_gone() -> int:
    """stdout's reader went away (`modelgen list | head -1`): exit 0 quietly, as cat and
    grep do. What is still buffered for stdout goes to /dev/null, so the interpreter's
    last flush cannot report a BrokenPipeError either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stdout (a test's capture)
        pass
    return 0


def _epipe(exc: BaseException) -> bool:
    """Typer turns an EPIPE from its own writes (help text) into sys.exit(1)."""
    seen = exc.__context__
    return isinstance(seen, OSError) and seen.errno == errno.EPIPE


class _ClosedStdout(io.TextIOBase):
    """sys.stdout when the process started with it closed: click's own writes (help text)
    would vanish silently otherwise, and ours would crash on None."""

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        raise OSError(errno.EBADF, "it was closed when modelgen started")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning every user error into one line and exit 2."""
    closed = sys.stdout is None
    if closed:
        sys.stdout = _ClosedStdout()
    try:
        # Without standalone mode, typer.Exit(n) comes back as a return value.
        code = app(args=argv, prog_name="modelgen", standalone_mode=False)
        if not closed:
            sys.stdout.flush()  # inside the try: a full disk or a closed pipe is reported
    except SpecError as exc:
        return _fail(str(exc), exc.exit_code)
    except (typer.Exit, typer.Abort) as exc:
        return getattr(exc, "exit_code", 130)
    except (_StdoutGone, BrokenPipeError):
        return _reader_gone()
    except SystemExit as exc:
        if _epipe(exc):
            return _reader_gone()
        raise
    except OSError as exc:
        # What modelgen reads and writes itself is a SpecError already: an OSError here
        # came from click writing its help or usage text to stdout.
        where = exc.filename if exc.filename is not None else "stdout"
        return _fail(printable(f"{where}: cannot write: {exc.strerror or type(exc).__name__}"), 1)
    except Exception as exc:
        # Typer ships its own copy of click, so its usage errors are matched by shape:
        # a ClickException has format_message() and exit_code.
        if type(exc).__name__ == "NoArgsIsHelpError":
            # bare `modelgen` (or `modelgen golden`): the help, on stderr, exit 2 (click's way)
            sys.stderr.write(f"{exc.format_message()}\n")
            return exc.exit_code
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            return _fail(
                printable(f"{exc.format_message()}{hint}".replace("\n", " ")), exc.exit_code
            )
        if os.environ.get("MODELGEN_DEBUG"):  # a bug in modelgen: still one line
            raise
        detail = printable(f"{type(exc).__name__}: {exc}")
        return _fail(f"internal error ({detail}); set MODELGEN_DEBUG=1", 1)
    finally:
        if closed:
            sys.stdout = None
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
