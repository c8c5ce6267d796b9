"""Strict config loading: defaults < file < --set, with errors naming key and source."""

import pytest

from actdiag.config import Config, load_config, parse_number
from actdiag.errors import ActdiagError


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_lectures():
    cfg = load_config()
    assert cfg.gain == 5 / 3 and cfg.depth == 5 and cfg.width == 100
    assert cfg.lr == 0.1 and cfg.decay_after == 150_000 and cfg.decay_lr == 0.01
    assert cfg.steps == 200_000 and cfg.batch_size == 32 and cfg.seed == 2147483647
    assert cfg.lr_at(150_000) == 0.1 and cfg.lr_at(150_001) == 0.01


def test_fraction_and_switch_words(tmp_path):
    path = write(
        tmp_path, "gain: 5/3\ntanh: off\nbatchnorm: on\nsnapshots: [1, 3]\nsteps: 5\n"
    )
    cfg = load_config(path)
    assert cfg.gain == 5 / 3 and cfg.tanh is False and cfg.batchnorm is True
    assert cfg.snapshots == (1, 3) and cfg.snapshot_steps() == [1, 3, 5]
    assert parse_number("1e-3") == 0.001


def test_overrides_beat_the_file(tmp_path):
    path = write(tmp_path, "lr: 0.5\nsteps: 10\n")
    cfg = load_config(path, ["lr=0.01", "gain=1", "tanh=false", "snapshots=2,4"])
    assert cfg.lr == 0.01 and cfg.gain == 1.0 and cfg.steps == 10 and not cfg.tanh
    assert cfg.snapshots == (2, 4)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gian: 2\n", "unknown key 'gian'; did you mean 'gain'?"),
        ("gain: fast\n", "key 'gain': 'fast' is not a number"),
        ("gain: 5//3\n", "key 'gain'"),
        ("steps: 2.5\n", "key 'steps': 2.5 is not a whole number"),
        ("tanh: maybe\n", "key 'tanh': 'maybe' is not on/off"),
        ("gain: -1\n", "key 'gain' is -1.0; it must be a number > 0"),
        ("lr: 0\n", "key 'lr' is 0.0; it must be a number > 0"),
        ("depth: 0\n", "key 'depth' is 0; it must be >= 1"),
        ("steps: 0\n", "key 'steps' is 0; it must be >= 1"),
        ("batchnorm: on\nbatch_size: 1\n", "key 'batch_size' is 1 with batchnorm on"),
        ("steps: 5\nsnapshots: [7]\n", "key 'snapshots' holds 7; each must be in 1..5"),
        ("device: tpu\n", "key 'device' is 'tpu'; valid: cpu, cuda, auto"),
        ("- gain\n", "a config must be a mapping"),
        ("gain: [1\n", "line"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ActdiagError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_override_errors_name_the_flag():
    with pytest.raises(ActdiagError, match=r"--set: key 'lr' is -1.0"):
        load_config(None, ["lr=-1"])
    with pytest.raises(ActdiagError, match=r"write key=value"):
        load_config(None, ["lr"])
    with pytest.raises(ActdiagError, match=r"did you mean 'steps'"):
        load_config(None, ["stpes=3"])


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, "gain: 3\nlr: 0.1\ngain: 4\n")
    with pytest.raises(ActdiagError, match=r"line 3: key 'gain' is given twice"):
        load_config(path)


def test_relative_data_path_is_read_from_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    path = write(tmp_path / "proj", "data: words.txt\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(path).data == str(tmp_path / "proj" / "words.txt")
    assert load_config(None, ["data=w.txt"]).data == str(tmp_path / "w.txt")


def test_missing_config_file(tmp_path):
    with pytest.raises(ActdiagError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(write(tmp_path, "# only a comment\n")) == Config()


def test_every_preset_loads():
    from pathlib import Path

    presets = sorted(Path(__file__).parent.parent.glob("configs/*.yaml"))
    assert presets, "no presets found in configs/"
    for path in presets:
        first = path.read_text().splitlines()[0]
        assert first.startswith("#"), f"{path} lacks its comment line"
        load_config(path)
