"""Plain-text spellings of values shared by the terminal tables, the report and the CLI."""

from __future__ import annotations

import math

NA = "n/a"  # an undefined statistic


def fmt(value: float | None, spec: str) -> str:
    """Format `value` with `spec`, or n/a when it is undefined."""
    return NA if value is None else format(value, spec)


def shape_text(shape: list[int]) -> str:
    """A tensor shape as the lecture prints it: `(100, 27)`."""
    return "(" + ", ".join(str(n) for n in shape) + ")"


def show_value(value) -> str:
    """A config value as a user writes it: on/off, 4 significant digits, lists.

    A float that 4 digits do not spell exactly but a small fraction does (the
    lecture's gain 5/3) is shown as that fraction.
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return _fraction(value) or f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return "null" if value is None else str(value)


def change_text(change: float | None, how: str) -> str:
    """A change against the first run: `×1.70` for a ratio, `+0.25` for a difference."""
    if change is None:
        return ""
    if how == "ratio":
        return f"×{change:.2f}" if 0.01 <= abs(change) < 100 else f"×{change:.1e}"
    return f"{change:+.2f}" if abs(change) >= 0.01 or change == 0 else f"{change:+.1e}"


def _fraction(value: float, largest: int = 12) -> str | None:
    """`p/q` when value is exactly the float p/q for some q <= largest, else None."""
    if not math.isfinite(value) or float(f"{value:.4g}") == value:
        return None
    for q in range(2, largest + 1):
        p = round(value * q)
        if p / q == value:
            return f"{p}/{q}"
    return None
