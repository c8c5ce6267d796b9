"""Shared fixtures: small words files, the lecture's names file, a pinned console."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

LECTURE_ENV = "ACTDIAG_LECTURE_NAMES"
WORDS = [
    "emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia",
    "harper", "evelyn", "abigail", "emily", "liam", "noah", "william", "james",
    "oliver", "benjamin", "elijah", "lucas", "mason", "logan", "alexander", "ethan",
    "jacob", "michael", "daniel", "henry", "jackson", "sebastian", "aiden", "matthew",
    "samuel", "david", "joseph", "carter", "owen", "wyatt", "john", "jack",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _pinned_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TERM", "dumb")


@pytest.fixture
def words_file(tmp_path: Path) -> Path:
    """A small names file (40 words, 26 letters absent in part)."""
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return path


@pytest.fixture
def lecture_names() -> Path:
    """The lecture's names.txt, from $ACTDIAG_LECTURE_NAMES; skip when unset."""
    value = os.environ.get(LECTURE_ENV)
    if not value:
        pytest.skip(
            f"set {LECTURE_ENV} to the lecture's names.txt to check its numbers"
        )
    path = Path(value)
    if not path.is_file():
        pytest.skip(f"{LECTURE_ENV}={value} is not a file")
    return path
