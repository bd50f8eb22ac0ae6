"""Checks of the sampling arguments every entry point passes on (no PyMC here)."""

from __future__ import annotations

import numbers

from hiermodels.errors import SpecError

__all__ = ["check_sampling_args"]


def check_sampling_args(*, draws, tune=0, chains=1) -> None:
    """Raise :class:`SpecError` naming the argument unless ``draws >= 1``, ``chains >= 1``
    and ``tune >= 0`` (or None) are whole numbers.

    Examples
    --------
    >>> check_sampling_args(draws=1000, tune=None, chains=4)
    >>> check_sampling_args(draws=0)
    Traceback (most recent call last):
    ...
    hiermodels.errors.SpecError: draws must be a whole number >= 1, got 0; e.g. draws=1000
    """
    for name, value, low, example in (
        ("draws", draws, 1, 1000),
        ("chains", chains, 1, 4),
        ("tune", tune, 0, 1000),
    ):
        if name == "tune" and value is None:
            continue
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not whole or value < low:
            raise SpecError(
                f"{name} must be a whole number >= {low}, got {value!r}; e.g. {name}={example}"
            )
