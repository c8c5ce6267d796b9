"""The lecture's published numbers, reproduced to the printed digit.

Needs the lecture's names.txt: set ACTDIAG_LECTURE_NAMES to its path.
"""

from pathlib import Path

from typer.testing import CliRunner

from actdiag.cli import app
from actdiag.config import load_config
from actdiag.data import load_dataset
from actdiag.train import train

ROOT = Path(__file__).parent.parent

# REFERENCE.md: gain 5/3, tanh on, batchnorm off, lr 0.1, one step executed
ACTIVATIONS = """\
layer 1 (tanh): mean -0.02, std 0.75, saturated: 20.25%
layer 3 (tanh): mean -0.00, std 0.69, saturated: 8.38%
layer 5 (tanh): mean +0.00, std 0.67, saturated: 6.62%
layer 7 (tanh): mean -0.01, std 0.66, saturated: 5.47%
layer 9 (tanh): mean -0.02, std 0.66, saturated: 6.12%"""
GRADIENTS = """\
gradient of layer 1 (tanh): mean +0.000010, std 4.205588e-04
gradient of layer 3 (tanh): mean -0.000003, std 3.991179e-04
gradient of layer 5 (tanh): mean +0.000003, std 3.743020e-04
gradient of layer 7 (tanh): mean +0.000015, std 3.290473e-04
gradient of layer 9 (tanh): mean -0.000014, std 3.054035e-04"""
WEIGHTS = """\
weight   (27, 10) | mean -0.000031 | std 1.365078e-03 | grad:data 1.364090e-03
weight  (30, 100) | mean -0.000049 | std 1.207430e-03 | grad:data 3.871660e-03
weight (100, 100) | mean +0.000016 | std 1.096730e-03 | grad:data 6.601988e-03
weight (100, 100) | mean -0.000010 | std 9.893572e-04 | grad:data 5.893091e-03
weight (100, 100) | mean -0.000011 | std 8.623432e-04 | grad:data 5.158124e-03
weight (100, 100) | mean -0.000004 | std 7.388576e-04 | grad:data 4.415211e-03
weight  (100, 27) | mean -0.000000 | std 2.364824e-02 | grad:data 2.328203e+00"""


def lecture_lines(snapshot):
    """The snapshot printed with the lecture notebook's format strings."""
    acts = [
        "layer %d (%s): mean %+.2f, std %.2f, saturated: %.2f%%"
        % (a["layer"], a["kind"], a["mean"], a["std"], a["saturated"])
        for a in snapshot["activations"]
    ]
    grads = [
        "gradient of layer %d (%s): mean %+f, std %e"
        % (g["layer"], g["kind"], g["mean"], g["std"])
        for g in snapshot["gradients"]
    ]
    weights = [
        "weight %10s | mean %+f | std %e | grad:data %e"
        % (tuple(w["shape"]), w["mean"], w["std"], w["grad_to_data"])
        for w in snapshot["weights"]
    ]
    return "\n".join(acts), "\n".join(grads), "\n".join(weights)


def test_first_step_matches_the_published_table(lecture_names):
    cfg = load_config(
        ROOT / "configs/gain_5_3.yaml", [f"data={lecture_names}", "steps=1"]
    )
    result = train(cfg, load_dataset(lecture_names, cfg.context))
    assert f"{result.loss[0]:.4f}" == "3.2962"
    acts, grads, weights = lecture_lines(result.snapshots[0])
    assert acts == ACTIVATIONS
    assert grads == GRADIENTS
    assert weights == WEIGHTS


def test_cli_prints_the_published_table(lecture_names, tmp_path):
    args = [
        "run",
        str(ROOT / "configs/gain_5_3.yaml"),
        "--set",
        f"data={lecture_names}",
        "--set",
        "steps=1",
        "--out",
        str(tmp_path / "run"),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    step1 = result.stdout.split("update:data")[0]
    for line in ACTIVATIONS.splitlines():
        layer, rest = line.split(" (tanh): ")
        mean, std, sat = (part.split()[-1] for part in rest.split(", "))
        row = f"│ {layer.split()[1]:>5} │ tanh │ {mean:>5} │ {std:>4} │ {sat:>9} │"
        assert row in step1, row
    for line in GRADIENTS.splitlines():
        std = line.split("std ")[1]
        mean = line.split("mean ")[1].split(",")[0]
        assert f"│ {mean} │ {std} │" in step1
    for line in WEIGHTS.splitlines():
        cells = [c.strip() for c in line.split("|")]
        shape = cells[0].removeprefix("weight").strip()
        values = [c.split()[-1] for c in cells[1:]]
        assert f"{shape} │ {values[0]} │ {values[1]} │ {values[2]} │" in step1
