"""benchmarks/gpu_smoke.py runs on a CPU at tiny sizes: the same code the GPU run uses."""

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_smoke.py"


@pytest.mark.slow
def test_gpu_smoke_runs_on_cpu_at_tiny_sizes(tmp_path):
    out = tmp_path / "smoke.md"
    # resnet50 has a keras.applications twin, resnext50 a split variant, inception_v1
    # auxiliary outputs (and needs a bigger input than asked for); multitask_resnet returns
    # a dict of heads (no n_classes), augmented_resnet takes any size (its pre-stem
    # resizes), conv_autoencoder has no classes at all, fast_rcnn takes [images, boxes] and
    # trains through its own helpers (8 regions at a tiny run), faster_rcnn takes images
    # and padded ground truth and returns its four losses, siamese_omniglot takes pairs.
    presets = "resnet50,resnext50_32x4d,inception_v1,multitask_resnet,augmented_resnet"
    presets += ",conv_autoencoder,fast_rcnn,faster_rcnn,siamese_omniglot"
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--presets", presets, "--input-size", "32"]
        + ["--steps", "2", "--batch", "2", "--n-classes", "10", "--output", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "backend torch, dtype policy float32, batch 2" in text
    assert "(no GPU: CPU figures" in text  # a CPU run says so
    rows = {
        cells[0]: cells
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| model")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert sorted(rows) == [
        "augmented_resnet",
        "conv_autoencoder",
        "fast_rcnn",
        "faster_rcnn",
        "inception_v1",
        "multitask_resnet",
        "resnet50",
        "resnext50_32x4d",
        "resnext50_32x4d (split)",
        "siamese_omniglot",
    ]
    assert rows["multitask_resnet"][2] == "703,472"  # its own heads (10 + 6), not 10 classes
    assert rows["augmented_resnet"][1] == "32x32x3"
    assert rows["fast_rcnn"][1] == "32x32x3" and rows["fast_rcnn"][2] == "40,097,651"
    # The tiny run's own sizes (TINY_DETECTOR: pool_size 2, anchor scales 16 and 32, which
    # it skipped before the detector set came from the registry): VGG16's convolutions
    # 14,714,688 + the RPN (3x3 conv 512: 2,359,808; 6 anchors: 3,078 + 12,312) + the
    # 2x2x512 -> 4096 -> 4096 head (8,392,704 + 16,781,312) + 11 scores and 40 deltas
    # (45,067 + 163,880), 10 classes
    assert rows["faster_rcnn"][2] == "42,472,849"
    assert rows["siamese_omniglot"][1] == "75x75x1"  # its four convolutions need 75
    assert rows["resnet50"][1] == "32x32x3"
    assert rows["inception_v1"][1] == "75x75x3"  # 32 and 64 collapse its auxiliary heads
    assert rows["resnet50"][4].startswith("ResNet50 (")
    assert float(rows["resnet50"][5]) > 0  # the ratio ours / theirs
    for cells in rows.values():
        assert float(cells[3]) > 0, cells  # images/s
        first, last = map(float, cells[7].split(" -> "))
        assert first == first and last == last, cells  # finite, not NaN
    assert re.search(r"resnext50_32x4d: `native` grouped convolution / `split`: \d+\.\d\dx", text)
