"""`actdiag run` end to end on a tiny model: exit codes, files, printed lines."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from actdiag.cli import app
from tests.conftest import WORDS

TINY = [
    "--set",
    "width=16",
    "--set",
    "depth=2",
    "--set",
    "steps=30",
    "--set",
    "snapshots=1,10",
    "--quiet",
]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_run_writes_the_run_directory(words_file, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--set", f"data={words_file}", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    for name in (
        "config.yaml",
        "stats.json",
        "series.npz",
        "loss.png",
        "update_to_data.png",
        "act_hist_step1.png",
        "grad_hist_step10.png",
        "weight_grad_hist_step30.png",
    ):
        assert (out / name).is_file(), name
    stats = json.loads((out / "stats.json").read_text())
    assert stats["schema"] == 1 and stats["steps"] == 30 and stats["diverged"] is None
    assert [s["step"] for s in stats["snapshots"]] == [1, 10, 30]
    snap = stats["snapshots"][0]
    assert [a["layer"] for a in snap["activations"]] == [1, 3]
    vocab = stats["data"]["vocab_size"]
    assert vocab == len(set("".join(WORDS))) + 1
    assert [w["shape"] for w in snap["weights"]] == [
        [vocab, 10],
        [30, 16],
        [16, 16],
        [16, vocab],
    ]
    assert len(snap["activations"][0]["hist"]["density"]) == 100
    series = np.load(out / "series.npz")
    assert series["loss"].shape == (30,) and series["update_to_data"].shape == (30, 7)
    assert math.isclose(stats["loss"], float(series["loss"][-1]), rel_tol=1e-6)
    for title in (
        "activations · step 1",
        "activation gradients · step 10",
        "weight gradients · step 30",
        "update:data",
    ):
        assert title in result.stdout


def test_run_json_is_strict_and_directory_goes_to_stderr(words_file, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--set", f"data={words_file}", *TINY, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(c))
    assert stats["steps"] == 30
    assert result.stderr.strip().splitlines()[-1] == str(out)


def test_existing_out_is_never_reused(words_file, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = invoke("run", "--set", f"data={words_file}", *TINY, "--out", out)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "Traceback" not in result.output
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_default_directories_are_unique(words_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = invoke("run", "--set", f"data={words_file}", *TINY)
    second = invoke("run", "--set", f"data={words_file}", *TINY)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    dirs = sorted((tmp_path / "runs").iterdir())
    assert len(dirs) == 2 and all(
        d.name.startswith("default_width_16_depth_2") for d in dirs
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "gian=2"], "unknown key 'gian'; did you mean 'gain'?"),
        (["--set", "lr=-1"], "key 'lr' is -1.0"),
        (["--set", "data=/no/such/file.txt"], "/no/such/file.txt: data file not found"),
        (["--set", "steps=3", "--set", "snapshots=9"], "key 'snapshots' holds 9"),
    ],
)
def test_bad_input_is_one_line_exit_2(words_file, tmp_path, args, expected):
    result = invoke(
        "run", "--set", f"data={words_file}", *args, "--out", tmp_path / "r"
    )
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_missing_config_file_is_named(tmp_path):
    result = invoke("run", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml: config file not found" in result.stderr


def test_divergence_is_a_result_not_a_crash(words_file, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "run",
        "--set",
        f"data={words_file}",
        *TINY,
        "--set",
        "lr=100",
        "--set",
        "tanh=off",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert isinstance(stats["diverged"], int) and stats["diverged"] <= 30
    assert stats["steps"] == stats["diverged"] - 1
    assert "diverged" in result.stderr
    json.loads(
        (out / "stats.json").read_text(), parse_constant=lambda c: pytest.fail(c)
    )


def test_ctrl_c_keeps_what_was_recorded_and_exits_130(
    words_file, tmp_path, monkeypatch
):
    from actdiag.fused import FusedSGD

    real = FusedSGD.step
    calls = []

    def interrupt_on_eleventh(self, lr):
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt
        return real(self, lr)

    monkeypatch.setattr(FusedSGD, "step", interrupt_on_eleventh)
    out = tmp_path / "run"
    result = invoke("run", "--set", f"data={words_file}", *TINY, "--out", out)
    assert result.exit_code == 130, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["interrupted"] == 11 and stats["steps"] == 10
    assert [s["step"] for s in stats["snapshots"]] == [1, 10]
    series = np.load(out / "series.npz")
    assert series["loss"].shape == (10,)
    assert series["update_to_data"].shape[0] == 10
    assert np.isfinite(series["update_to_data"]).all()
    assert "interrupted at step 11" in result.stderr


def test_written_files_get_ordinary_permissions(words_file, tmp_path):
    import os

    out = tmp_path / "run"
    result = invoke("run", "--set", f"data={words_file}", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    mask = os.umask(0)
    os.umask(mask)
    for name in ("stats.json", "series.npz", "loss.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_memory_failure_is_one_line_and_leaves_no_folder(
    words_file, tmp_path, monkeypatch
):
    import actdiag.runner as runner

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(runner, "train", no_memory)
    out = tmp_path / "run"
    result = invoke("run", "--set", f"data={words_file}", *TINY, "--out", out)
    assert result.exit_code == 2, result.output
    assert "ran out of memory; lower batch_size or width" in result.stderr
    assert not out.exists()


def test_missing_cuda_is_caught_before_any_folder(words_file, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "run"
    result = invoke(
        "run",
        "--set",
        f"data={words_file}",
        *TINY,
        "--set",
        "device=cuda",
        "--out",
        out,
    )
    assert result.exit_code == 2, result.output
    assert "torch sees no CUDA device" in result.stderr
    assert not out.exists()


def test_compile_on_a_short_run_says_it_will_not_pay_off(words_file, tmp_path):
    # one step is a snapshot step, which stays eager: nothing gets compiled here
    out = tmp_path / "run"
    args = ["--set", f"data={words_file}", *TINY, "--set", "steps=1"]
    args += ["--set", "snapshots=[]"]
    result = invoke("run", *args, "--set", "compile=on", "--out", out)
    assert result.exit_code == 0, result.output
    assert "note: compile is on for a short run" in result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["config"]["compile"] is True and stats["compile_seconds"] is None

    plain = invoke("run", *args, "--out", tmp_path / "plain")
    assert plain.exit_code == 0, plain.output
    assert "note: compile" not in plain.stderr


def test_the_config_line_shows_threads_and_compile():
    from actdiag.cli import config_line
    from actdiag.config import Config

    line = config_line(Config(compile=True, threads=2))
    assert "threads=2" in line and "compile=on" in line


def test_piped_findings_keep_one_finding_per_line(words_file, tmp_path, monkeypatch):
    from actdiag import cli

    # a narrow pipe: rich would break every finding longer than this
    monkeypatch.setattr(cli.out, "width", 60)
    args = ["--set", f"data={words_file}", *TINY, "--set", "gain=5"]
    result = invoke("run", *args, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    saturated = [
        line for line in result.stdout.splitlines() if "saturated (|t|" in line
    ]
    assert saturated, result.stdout
    for line in saturated:
        severity, _, message = line.strip().partition(" ")
        assert severity in ("WARN", "BAD"), line
        assert message.startswith("layer ") and message.endswith("above 5%."), line
