"""Words file reading, vocabulary and examples, against hand-worked values."""

import pytest
import torch

from actdiag.data import build_examples, load_dataset, read_words
from actdiag.errors import ActdiagError


def test_examples_of_one_word_by_hand():
    stoi = {".": 0, "a": 1, "b": 2}
    X, Y = build_examples(["ab"], stoi, context=3)
    assert X.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2]]
    assert Y.tolist() == [1, 2, 0]


def test_split_follows_the_seeded_shuffle(words_file):
    import random

    words = read_words(words_file)
    data = load_dataset(words_file, context=3)
    shuffled = list(words)
    random.seed(42)
    random.shuffle(shuffled)
    n1 = int(0.8 * len(words))
    expected = sum(len(w) + 1 for w in shuffled[:n1])
    assert data.splits["train"][0].shape == (expected, 3)
    assert data.vocab_size == len(set("".join(words))) + 1
    assert data.chars == sorted(set("".join(words)))
    assert data.splits["train"][0].dtype == torch.long


def test_crlf_bom_and_blank_lines_read_alike(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes("\ufeffanna\r\n\r\nbob\r\n  \r\ncarl\r\n".encode())
    assert read_words(path) == ["anna", "bob", "carl"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "holds 0 word(s)"),
        (b"\n\n", "holds 0 word(s)"),
        (b"solo\n", "holds 1 word(s)"),
        (b"anna\nmr.x\n", "line 2 holds the '.' token character"),
        (b"anna\nmary ann\n", "line 2 holds whitespace"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        (b"anna\n\xff\xfe\xfa\n", "line 2 is not UTF-8 text"),
    ],
)
def test_bad_data_names_file_and_line(tmp_path, content, expected):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ActdiagError) as info:
        read_words(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_missing_data_file(tmp_path):
    with pytest.raises(ActdiagError, match="data file not found"):
        read_words(tmp_path / "none.txt")


def test_shipped_names_file_is_valid():
    from actdiag.data import DEFAULT_DATA

    words = read_words(DEFAULT_DATA)
    assert len(words) == 30_000
    assert all(w.isalpha() and w.islower() for w in words)
