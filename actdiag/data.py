"""Words file -> vocabulary -> (context, next character) examples; no model here."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from actdiag.errors import ActdiagError

if TYPE_CHECKING:
    import torch

PAD = "."  # index 0: pads the start of a word and marks its end
DEFAULT_DATA = Path(__file__).resolve().parent.parent / "data" / "names.txt"


@dataclass
class Dataset:
    """Vocabulary and the train/val/test examples of one words file."""

    chars: list[str]  # index i + 1 -> chars[i]; index 0 is PAD
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # name -> (X, Y)

    @property
    def vocab_size(self) -> int:
        """Characters in the file plus the PAD token."""
        return len(self.chars) + 1


def read_words(path: Path) -> list[str]:
    """Read one word per line, tolerating a BOM, CRLF endings and blank lines."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ActdiagError(f"{path}: data file not found (key 'data')") from None
    except IsADirectoryError:
        raise ActdiagError(
            f"{path}: is a folder; key 'data' needs a words file"
        ) from None
    except OSError as err:
        raise ActdiagError(f"{path}: cannot read data file ({err.strerror})") from None
    if b"\x00" in raw:
        raise ActdiagError(
            f"{path}: not a text file (holds NUL bytes); give one word per line"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ActdiagError(f"{path}: line {line} is not UTF-8 text") from None
    words = []
    for number, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if not word:
            continue
        if PAD in word or any(ch.isspace() for ch in word):
            bad = (
                "the '.' token character"
                if PAD in word
                else "whitespace inside the word"
            )
            raise ActdiagError(
                f"{path}: line {number} holds {bad}; write one word per line"
            )
        words.append(word)
    if len(words) < 2:
        raise ActdiagError(f"{path}: holds {len(words)} word(s); at least 2 are needed")
    return words


def build_examples(
    words: list[str], stoi: dict[str, int], context: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One example per character and one for the end token of every word.

    Returns:
        X: (n, context) int64 indices of the previous characters (0 before the start).
        Y: (n,) int64 index of the next character.
    """
    # NOTE: imported here so that checking a words file does not load torch
    import torch

    xs, ys = [], []
    for word in words:
        window = [0] * context
        for ch in word + PAD:
            ix = stoi[ch]
            xs.append(window)
            ys.append(ix)
            window = window[1:] + [ix]
    X = torch.tensor(xs, dtype=torch.long).reshape(len(xs), context)
    return X, torch.tensor(ys, dtype=torch.long)


def load_dataset(path: Path, context: int, split_seed: int = 42) -> Dataset:
    """Shuffle the words with `random.seed(split_seed)` and split them 80/10/10."""
    words = read_words(path)
    chars = sorted(set("".join(words)))
    stoi = {ch: i + 1 for i, ch in enumerate(chars)}
    stoi[PAD] = 0

    # shuffle exactly as the lecture does, then cut at 80% and 90%
    # NOTE: a private Random(seed) draws exactly what random.seed(seed) would
    random.Random(split_seed).shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    parts = {"train": words[:n1], "val": words[n1:n2], "test": words[n2:]}
    if not parts["train"]:
        raise ActdiagError(f"{path}: too few words to leave any for training")
    splits = {name: build_examples(ws, stoi, context) for name, ws in parts.items()}
    return Dataset(chars=chars, splits=splits)
