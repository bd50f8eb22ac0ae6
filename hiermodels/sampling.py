"""Checks of the sampling arguments every entry point passes on (no PyMC here)."""

from __future__ import annotations

import numbers

import numpy as np

from hiermodels.errors import SpecError

__all__ = ["check_sampling_args"]


def check_sampling_args(*, draws, tune=0, chains=1, random_seed=None) -> None:
    """Raise :class:`SpecError` naming the argument unless ``draws >= 1``, ``chains >= 1``
    and ``tune >= 0`` (or None) are whole numbers and ``random_seed`` is None, a whole
    number >= 0, a numpy Generator or SeedSequence, or one such number per chain.

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
        if not _whole(value) or value < low:
            raise SpecError(
                f"{name} must be a whole number >= {low}, got {value!r}; e.g. {name}={example}"
            )
    if random_seed is None or isinstance(
        random_seed, (np.random.Generator, np.random.SeedSequence)
    ):
        return
    seeds = random_seed if isinstance(random_seed, (list, tuple)) else [random_seed]
    if not all(_whole(s) and s >= 0 for s in seeds) or not seeds:
        raise SpecError(
            f"random_seed must be a whole number >= 0 (or None), got {random_seed!r}; "
            "e.g. random_seed=1"
        )


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
