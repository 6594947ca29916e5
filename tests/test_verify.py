"""`modelgen verify`: every preset builds and trains in both styles, broken files fail
naming the stage, and the task table covers every kind of model the presets hold."""

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import (
    DETECTORS,
    PRESETS,
    ROOT,
    STYLES,
    architecture,
    deep_siblings,
    plan,
    reduced_depth_sets,
    small_input,
)

from generator import harness
from generator import verify as verify_module
from generator.cli import main
from generator.harness import STAGES, TASKS, task_for_plan
from generator.pipeline import plan_for
from generator.registry import BLOCKS, DEFAULT_RECIPE, recipe_for
from generator.spec import load_spec, spec_to_yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_verify(
    *args: str, backend: str = "tensorflow", env: dict | None = None
) -> subprocess.CompletedProcess:
    # One thread per process: CI runs two test workers on two cores.
    env = {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "generator", "verify", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_every_preset_has_a_task():
    """Each preset's plan names a kind TASKS knows, with one loss weight per output and
    the plan's input shape (the images for an input of any size)."""
    for preset in PRESETS:
        task = task_for_plan(plan(preset))
        assert task["kind"] in TASKS, preset
        assert task["input_shape"] == list(plan(preset).spec.input_shape), preset
        classifier = getattr(plan(preset).spec, "classifier", None)
        aux = classifier.aux if classifier is not None else None  # built when aux.include
        n_outputs = 1 + plan(preset).n_taps if aux and aux.include else 1
        n_outputs = len(plan(preset).heads) or n_outputs  # classifier.heads: one per head
        if architecture(preset) == "faster_rcnn":  # its four losses
            n_outputs = 4
            assert task["kind"] == "faster_rcnn", preset
        elif architecture(preset) in DETECTORS:  # class scores (softmax or SVMs), box deltas
            n_outputs = 2
            assert task["kind"] == "detector", preset
        assert len(task.get("loss_weights", [1.0])) == n_outputs, preset
        assert task["recipe"] == recipe_for(plan(preset).spec).as_task(), preset
    aux = task_for_plan(plan("inception_v1"))
    assert aux["loss_weights"] == [1.0, 0.3, 0.3]
    heads = task_for_plan(plan("multitask_resnet"))
    assert heads["kind"] == "heads" and heads["loss_weights"] == [1.0, 0.5]
    assert [(h["name"], h["n_classes"], h["activation"]) for h in heads["heads"]] == [
        ("category", 10, "softmax"),
        ("colour", 6, "softmax"),
    ]
    assert task_for_plan(plan("augmented_resnet"))["pixels"]  # it rescales raw pixels


# The detectors verified small: few regions (still 2 foreground at a quarter), a small
# region input (R-CNN's warp, Fast R-CNN's pool) and small fc layers; the VGG16 backbone
# and the training helpers are the preset's.
DETECTOR_SETS = {
    "rcnn": ["detector.n_regions=8", "detector.crop_size=32", "classifier.dense_units=[64,64]"],
    "fast_rcnn": [
        "detector.n_regions=8",
        "detector.pool_size=2",
        "classifier.dense_units=[64,64]",
    ],
    "faster_rcnn": [
        "detector.pool_size=2",
        "detector.rpn.anchor_scales=[16,32]",
        "detector.rpn.train_pre_nms=200",
        "detector.rpn.train_post_nms=50",
        "detector.n_regions=16",
        "classifier.dense_units=[64,64]",
    ],
}


def test_reduced_depth_sets_cut_only_the_depth():
    assert reduced_depth_sets("resnet18") == []
    assert reduced_depth_sets("resnet152") == [
        f"learner.groups.{index}.n_blocks=2" for index in range(4)
    ]
    assert reduced_depth_sets("vgg19") == [
        f"learner.groups.{index}.n_layers=2" for index in (2, 3, 4)
    ]
    for preset in deep_siblings():
        reduced = plan_for(preset, reduced_depth_sets(preset))
        assert reduced.total_params < plan(preset).total_params, preset
        assert reduced.spec.model_dump(exclude={"learner"}) == plan(preset).spec.model_dump(
            exclude={"learner"}
        ), preset


# On jax (a build compiles every random initializer, so fewer): one preset of each task
# kind but faster_rcnn's, which test_faster_rcnn trains under jit on jax with the file's
# own helpers.
JAX_SET = ["squeezenet1_1", "multitask_resnet", "siamese_omniglot", "conv_autoencoder", "fast_rcnn"]
# On torch, through `modelgen verify`: one preset of each task kind, a deep sibling (its
# reduced_depth_sets), a pre-stem that rescales raw pixels and VGG16 (its own recipe: a
# lower rate), three steps: the loss must fall. Procedural, and in both styles the deep
# sibling and Faster R-CNN (the most machinery: its own layers, four losses), in one
# child of their own (verify_spec_files). Every golden model in both styles trains on
# torch with the same harness code in
# test_backends.test_every_golden_model_matches_on_torch_and_jax (its torch child).
# The one-device jax run, whose first-step losses the two-device run must give: the same
# distribution code serves every task kind (it splits the batch), so two presets of two
# kinds, at one input size (one child), hold it; the two-device run trains all of JAX_SET.
ONE_DEVICE = ["squeezenet1_1", "multitask_resnet"]
TORCH_SET = [*JAX_SET, "faster_rcnn", "resnet152", "augmented_resnet", "vgg16"]
BOTH_STYLES_ON_TORCH = ("faster_rcnn", "resnet152")


def verify_runs(presets, styles) -> dict[tuple, list[str]]:
    """One `modelgen verify` child per input size, set of --set items (a detector's own, a
    deep sibling's reduced_depth_sets) and styles: {(side, items, styles): presets}."""
    runs = defaultdict(list)
    for preset in sorted(presets):
        items = tuple(DETECTOR_SETS.get(preset, reduced_depth_sets(preset)))
        runs[(small_input(preset)[0], items, tuple(styles(preset)))].append(preset)
    return dict(runs)


def test_verify_covers_every_kind():
    kinds = {task_for_plan(plan(preset))["kind"] for preset in PRESETS}
    assert kinds == set(TASKS) - {"auto"}  # auto: an emitted file (the broken fixtures)
    assert {task_for_plan(plan(preset))["kind"] for preset in JAX_SET} == kinds - {"faster_rcnn"}
    assert {task_for_plan(plan(preset))["kind"] for preset in TORCH_SET} == kinds
    assert set(TORCH_SET) & deep_siblings() & set(BOTH_STYLES_ON_TORCH)
    assert "faster_rcnn" in BOTH_STYLES_ON_TORCH and set(BOTH_STYLES_ON_TORCH) <= set(TORCH_SET)
    assert any(task_for_plan(plan(preset)).get("pixels") for preset in TORCH_SET)
    assert set(ONE_DEVICE) <= set(JAX_SET)
    assert len(verify_runs(ONE_DEVICE, lambda preset: ("procedural",))) == 1  # one child


def check_reports(stdout: str, backend: str, runs: list[tuple]) -> dict:
    """Each model's report: the count Keras built is the static plan's at that size (the
    run's overrides and the small input), the losses are finite. runs: (label of the
    target, preset, overrides, styles) per target. Returns {"preset (style)": (first loss,
    last)}."""
    losses = {}
    for target, preset, overrides, styles_run in runs:
        small = plan_for(preset, [*overrides, f"input_shape={list(small_input(preset))}"])
        for style in styles_run:
            label = re.escape(f"{target} ({style}):")
            report = re.search(label + r"\n(.*?)  ok: ", stdout, re.S)
            assert report, f"no report for {preset} ({style}) on {backend}"
            text = report.group(1)
            # The count Keras built equals the static plan's at that size.
            assert f"built: {small.total_params:,} parameters" in text, text
            loss = re.search(r"loss (\S+) -> ([^,\s]+), first step (\S+) ms", text)
            assert loss, text
            assert all(float(value) < float("inf") for value in loss.groups())
            losses[f"{preset} ({style})"] = (float(loss.group(1)), float(loss.group(2)))
    return losses


def verify_presets(presets, styles, backend: str, steps: int = 1, devices: int = 1) -> dict:
    """Run `modelgen verify` on the presets by name at their small test inputs
    (--input-size), the deep siblings at reduced depth and the detectors small (--set),
    in styles(preset), one child per input size, set of --set items and styles, and check
    each report (check_reports). On devices > 1, two simulated CPU devices (XLA_FLAGS) and
    `--devices`. Returns {label: (first loss, last)}."""
    assert sorted(DETECTOR_SETS) == sorted(p for p in PRESETS if architecture(p) in DETECTORS)
    losses = {}
    for (side, items, styles_run), group in sorted(verify_runs(presets, styles).items()):
        overrides = list(items)
        style_args = [arg for style in styles_run for arg in ("--style", style)]
        sets = [arg for value in overrides for arg in ("--set", value)]
        args = [*group, *style_args, *sets, "--input-size", str(side), "--steps", str(steps)]
        env = {}
        if devices > 1:
            args += ["--devices", str(devices)]
            count = f"--xla_force_host_platform_device_count={devices}"
            env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {count}".strip()
        proc = run_verify(*args, "--batch", "2", backend=backend, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if devices > 1:
            assert "verify: keras.distribution.DataParallel over cpu:0, cpu:1" in proc.stdout
        assert f"verify: {len(styles_run) * len(group)} model(s) built, trained and passed" in (
            proc.stdout
        )
        runs = [(preset, preset, overrides, styles_run) for preset in group]
        losses.update(check_reports(proc.stdout, backend, runs))
    return losses


def verify_spec_files(presets, styles, backend: str, folder: Path, steps: int) -> dict:
    """`modelgen verify` on spec files: each preset's spec with its small input, a deep
    sibling's reduced_depth_sets and a detector's DETECTOR_SETS written in (spec_to_yaml),
    so that one child per set of styles trains them all (each child start imports the
    backend: 3-5 s on torch), and check each report (check_reports)."""
    by_styles = defaultdict(list)
    for preset in sorted(presets):
        by_styles[tuple(styles(preset))].append(preset)
    losses = {}
    for styles_run, group in sorted(by_styles.items()):
        runs, targets = [], []
        for preset in group:
            overrides = list(DETECTOR_SETS.get(preset, reduced_depth_sets(preset)))
            sized = [*overrides, f"input_shape={list(small_input(preset))}"]
            target = folder / f"{preset}.yaml"
            target.write_text(spec_to_yaml(load_spec(preset, sized)[0]), encoding="utf-8")
            targets.append(str(target))
            runs.append((str(target), preset, overrides, styles_run))
        style_args = [arg for style in styles_run for arg in ("--style", style)]
        proc = run_verify(
            *targets, *style_args, "--steps", str(steps), "--batch", "2", backend=backend
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"verify: {len(styles_run) * len(group)} model(s) built, trained and passed" in (
            proc.stdout
        )
        losses.update(check_reports(proc.stdout, backend, runs))
    return losses


@pytest.mark.slow
def test_verify_each_task_kind_on_torch(tmp_path):
    """TORCH_SET (BOTH_STYLES_ON_TORCH in both styles), three steps at the small test input
    (a deep sibling at reduced depth), on the torch backend (eager: no graph to compile per
    model): every loss falls under its family's recipe (verify fails a model whose loss
    does not). Given as spec files (verify_spec_files: two children, one per set of styles,
    where preset names and --set items took five); preset names, --set and --input-size go
    through verify on jax (the test below), names and --input-size on tensorflow too."""
    losses = verify_spec_files(
        TORCH_SET,
        lambda preset: STYLES if preset in BOTH_STYLES_ON_TORCH else ("procedural",),
        "torch",
        tmp_path,
        steps=3,
    )
    expected = [f"{p} ({s})" for p in TORCH_SET for s in STYLES if p in BOTH_STYLES_ON_TORCH]
    expected += [f"{p} (procedural)" for p in TORCH_SET if p not in BOTH_STYLES_ON_TORCH]
    assert sorted(losses) == sorted(expected)


@pytest.mark.slow
def test_verify_each_task_kind_on_jax_on_one_device_and_on_two():
    """JAX_SET, procedural, on the jax backend (jax[cpu]): two steps under
    keras.distribution.DataParallel on two simulated CPU devices (`--devices 2`,
    XLA_FLAGS=--xla_force_host_platform_device_count=2): the loss falls (verify fails a
    model whose loss does not); and for ONE_DEVICE the first step's loss is a one-device
    run's (the harness's jax gradient check and jit-compiled step without distribution)."""
    procedural = lambda preset: ("procedural",)  # noqa: E731
    one = verify_presets(ONE_DEVICE, procedural, "jax")
    two = verify_presets(JAX_SET, procedural, "jax", steps=2, devices=2)
    assert sorted(two) == sorted(f"{preset} (procedural)" for preset in JAX_SET)
    assert sorted(one) == sorted(f"{preset} (procedural)" for preset in ONE_DEVICE)
    for label, (first, _) in one.items():
        assert two[label][0] == pytest.approx(first, rel=1e-4), (label, first, two[label])
    for label, (first, last) in two.items():
        # verify itself fails a loss that does not fall; the report rounds to 4 places
        assert last <= first, label


def test_devices_need_jax_and_a_batch_they_split(capsys, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert main(["verify", "resnet18", "--devices", "2"]) == 2
    assert capsys.readouterr().err == (
        "error: --devices: needs the jax backend (keras.distribution), not tensorflow\n"
    )
    assert main(["verify", "resnet18", "--backend", "jax", "--devices", "2", "--batch", "3"]) == 2
    assert capsys.readouterr().err == (
        "error: --batch: 3 does not split over 2 devices: use a multiple\n"
    )


@pytest.mark.slow
def test_verify_on_tensorflow_prints_the_report():
    """The report, as a log gets it (stdout and stderr are pipes here)."""
    proc = run_verify("resnet18", "inception_v1", "--input-size", "96", "--steps", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "built: 11,699,112 parameters (11,689,512 trainable)" in out  # resnet18, 1000 classes
    assert "output predictions: (None, 1000)" in out
    # Inception v1 trains its main output and both auxiliary classifiers.
    inception = out.split("inception_v1 (procedural):")[1]
    assert len(re.findall(r"output \S+: \(None, 1000\)", inception)) == 3
    losses = re.findall(r"trained 3 steps \(batch 2\): loss (\S+) -> ([^,\s]+)", out)
    assert len(losses) == 2
    for first, last in losses:
        assert float(last) < float(first), "three steps on one batch should lower the loss"
    # The first step (tracing, compiling) apart from the median of the others.
    times = re.findall(
        r"first step (\S+) ms \(compiling included\), median of the others (\S+) ms", out
    )
    assert len(times) == 2, out
    assert "Traceback" not in proc.stderr
    # Piped (not a terminal): plain lines, no progress bar, and none of TensorFlow's start-up
    # log lines ("I0000 00:00:... port.cc:153] oneDNN custom operations are on ...").
    assert "\x1b" not in out and "\r" not in out and "\b" not in out
    assert proc.stderr == "", proc.stderr[-2000:]


@pytest.mark.slow
def test_broken_files_fail_naming_the_stage():
    files = ["broken_import.py", "broken_build.py", "broken_train.py", "working.py"]
    proc = run_verify(*(str(FIXTURES / name) for name in files), "--steps", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: broken_import.py: verify failed at import: RuntimeError: this emitted file is "
        "broken on purpose",
        errors[1],
        errors[2],
    ], proc.stderr
    assert errors[1].startswith("error: broken_build.py: verify failed at build: ValueError:")
    assert errors[2].startswith(
        "error: broken_train.py: verify failed at train: no useful gradient for "
        "dead_conv/kernel (an all-zero gradient), dead_conv/bias (an all-zero gradient)"
    )
    assert "ok: working.py" in proc.stdout  # the control file passes in the same run
    assert "verify: 3 of 4 model(s) failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_render_failure_names_the_stage(monkeypatch, capsys):
    def broken_render(*args, **kwargs):
        raise KeyError("a template bug")

    monkeypatch.setattr(verify_module, "generate", broken_render)
    assert main(["verify", "resnet18", "--input-size", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resnet18: verify failed at render (procedural): ")
    assert "a template bug" in err and len(err.splitlines()) == 1
    assert "render" in STAGES


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet5"], "unknown preset"),
        (["resnet18", "--input-size", "8"], "shrink"),
        (["no/such/file.py"], "no such emitted file"),
        (["resnet18", "--steps", "0"], "steps"),
    ],
)
def test_bad_verify_input_is_one_line(args, message, capsys):
    assert main(["verify", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err


@pytest.mark.slow
def test_seeding_on_torch_does_not_import_tensorflow():
    """harness.set_random_seed seeds Python, NumPy and Keras like keras.utils.set_random_seed
    but leaves TensorFlow unimported on another backend (it cost every torch or jax verify
    about 2.5 s of start-up)."""
    script = (
        "import sys, random, numpy as np, keras\n"
        "from generator.harness import set_random_seed\n"
        "set_random_seed(keras, 7)\n"
        "def draw():\n"
        "    k = float(keras.ops.convert_to_numpy(keras.random.uniform(())))\n"
        "    return random.random(), float(np.random.rand()), k\n"
        "a = draw()\n"
        "set_random_seed(keras, 7)\n"
        "assert draw() == a, 'the same seed gave other numbers'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr[-2000:]


def test_the_backend_log_noise_is_dropped_and_errors_pass():
    noise = verify_module._BACKEND_NOISE
    dropped = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796188177.807593   23807 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1796188180.221316   23807 cudart_stub.cc:31] Could not find cuda drivers",
    ]
    kept = [
        "error: resnet18 (procedural): verify failed at train: the loss is not finite: [nan]",
        "E0000 00:00:1796188180.221316   23807 cuda_executor.cc:1] failed call to cuInit",
        "verify: 1 of 2 model(s) failed",
        "I0000 is not a log line without its time, thread and source",
    ]
    assert all(noise.fullmatch(line) for line in dropped)
    assert not any(noise.fullmatch(line) for line in kept)


def test_the_training_line_reports_the_first_step_apart():
    result = harness.Result(losses=[2.5, 1.25, 0.5], step_seconds=[3.0, 0.02, 0.04])
    assert harness.training_line(result, 4) == (
        "trained 3 steps (batch 4): loss 2.5000 -> 0.5000, first step 3000.0 ms "
        "(compiling included), median of the others 30.0 ms"
    )
    one = harness.Result(losses=[2.5], step_seconds=[3.0])
    assert harness.training_line(one, 2) == (
        "trained 1 step (batch 2): loss 2.5000 -> 2.5000, first step 3000.0 ms "
        "(compiling included); one step: whether the loss falls needs two"
    )


@pytest.mark.slow
def test_a_model_whose_loss_does_not_fall_fails_at_train():
    """Gradients everywhere, yet the loss rises (a gradient reversal on the class scores):
    "trains" means the loss falls over the steps, so verify fails it, naming the recipe."""
    proc = run_verify(str(FIXTURES / "rising_loss.py"), "--steps", "3", backend="torch")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert re.fullmatch(
        r"error: rising_loss.py: verify failed at train: the loss did not fall in 3 steps on "
        r"one batch \(adam, learning rate 0.001\): (\S+) -> (\S+)",
        error,
    ), error
    first, last = map(float, re.findall(r"(\d+\.\d+) -> (\d+\.\d+)", error)[0])
    assert last > first


def test_each_family_has_a_recipe_and_vgg_a_lower_rate():
    """A plain VGG stack (no batch normalisation) overshoots at Adam's 1e-3: its loss rose
    (6.91 -> 8.06 in 5 steps at 64x64, batch 2, torch); its recipe lowers the rate, and the
    detectors on a VGG16 backbone take it too. The others train at the default."""
    assert all(block.recipe.why and block.recipe.learning_rate > 0 for block in BLOCKS.values())
    assert recipe_for(plan("vgg16").spec).learning_rate == 1e-4
    assert recipe_for(plan("fast_rcnn").spec) == recipe_for(plan("vgg16").spec)
    assert recipe_for(plan("resnet50").spec) == DEFAULT_RECIPE
    assert recipe_for(plan("conv_autoencoder").spec) == DEFAULT_RECIPE  # no learner


def test_the_recipe_makes_the_optimizer():
    pytest.importorskip("keras")
    optimizer = harness.optimizer_for({"optimizer": "sgd", "learning_rate": 0.01})
    assert type(optimizer).__name__ == "SGD"
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    default = harness.optimizer_for(None)
    assert type(default).__name__ == "Adam" and float(default.learning_rate) == pytest.approx(1e-3)


def test_data_parallel_refuses_more_devices_than_there_are():
    """harness.data_parallel: one line naming the devices there are and the XLA flag that
    makes more on a CPU; with enough, DataParallel over the first n."""
    chosen = []

    class Distribution:
        @staticmethod
        def list_devices():
            return ["cpu:0", "cpu:1", "cpu:2"]

        @staticmethod
        def DataParallel(devices):  # noqa: N802 - keras.distribution's name
            return ("data parallel", devices)

        set_distribution = staticmethod(chosen.append)

    class Keras:
        distribution = Distribution

    with pytest.raises(harness.StageError, match=r"--devices 4: 3 device\(s\) here"):
        harness.data_parallel(Keras, 4)
    assert harness.data_parallel(Keras, 2) == ["cpu:0", "cpu:1"]
    assert chosen == [("data parallel", ["cpu:0", "cpu:1"])]
