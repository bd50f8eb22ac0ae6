"""The sampling arguments every entry point passes on, and their checks (no PyMC here)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hiermodels.errors import SpecError
from hiermodels.progress import resolve

__all__ = ["ENGINES", "SamplingOptions", "check_sampling_args", "sampling_options"]

# the engines of HierarchicalModel.fit(engine=): "auto" (the default), "full", "marginal"
ENGINES = ("full", "marginal", "auto")

# keywords pm.sample gets from SamplingOptions' own fields; sample_kwargs may not repeat them
OWN_KEYWORDS = ("draws", "tune", "chains", "random_seed", "nuts_sampler", "progressbar")


@dataclass(frozen=True, eq=False)
class SamplingOptions:
    """How to run NUTS: the keywords every entry point passes on to ``pm.sample``.

    Checked when made (:func:`check_sampling_args`), so a bad value fails before any data
    is read or model compiled.

    Parameters
    ----------
    draws, tune, chains : int
        Draws kept per chain, tuning steps per chain (None: PyMC's default) and chains.
    random_seed : int, sequence of int, numpy Generator or SeedSequence, optional
        Seeds the sampler (and the draws an engine makes itself, e.g. ``theta_new``).
    sampler : str, optional
        The NUTS implementation (``"nutpie"``, ``"pymc"``, ``"numpyro"``, ``"blackjax"``);
        None takes nutpie when it is installed.
    progressbar : bool or None
        None (default): on when a person is watching (a terminal or a notebook), off under CI
        and in tests (:func:`hiermodels.progress.watching`).
    sample_kwargs : mapping, optional
        Passed on to ``pm.sample`` as is (e.g. ``{"target_accept": 0.95}``).

    Examples
    --------
    >>> SamplingOptions(draws=500, chains=2, random_seed=1).chains
    2
    >>> SamplingOptions(chains=0)
    Traceback (most recent call last):
    ...
    hiermodels.errors.SpecError: chains must be a whole number >= 1, got 0; e.g. chains=4
    """

    draws: int = 1000
    tune: int | None = 1000
    chains: int = 4
    random_seed: object = None
    sampler: str | None = None
    progressbar: bool | None = None
    sample_kwargs: Mapping | None = None

    def __post_init__(self):
        check_sampling_args(
            draws=self.draws, tune=self.tune, chains=self.chains, random_seed=self.random_seed
        )
        if self.sampler is not None and not isinstance(self.sampler, str):
            raise SpecError(
                f"sampler must be a name such as 'nutpie' or 'pymc' (or None), got {self.sampler!r}"
            )
        if self.sample_kwargs is None:
            return
        if not isinstance(self.sample_kwargs, Mapping):
            raise SpecError(
                f"sample_kwargs must be a dict of keywords for pm.sample, got "
                f"{self.sample_kwargs!r}; e.g. sample_kwargs={{'target_accept': 0.95}}"
            )
        repeated = sorted(set(self.sample_kwargs) & set(OWN_KEYWORDS))
        if repeated:
            raise SpecError(
                f"sample_kwargs repeats {repeated}, which have their own arguments; pass "
                "them as draws=, tune=, chains=, random_seed=, sampler=, progressbar="
            )

    def pymc_kwargs(self) -> dict:
        """The keywords of ``pm.sample`` but ``nuts_sampler`` (which the engine resolves)."""
        return {
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "random_seed": self.random_seed,
            "progressbar": resolve(self.progressbar),
            **dict(self.sample_kwargs or {}),
        }


def sampling_options(options: SamplingOptions | None = None, **keywords) -> SamplingOptions:
    """``options`` as given, or made from the keyword form (``draws=``, ``tune=``, ...).

    For functions that take either (:func:`hiermodels.engines.mcmc.sample`); giving both
    is an error, so that no keyword is silently dropped.

    Examples
    --------
    >>> sampling_options(draws=200, chains=2).draws
    200
    >>> options = SamplingOptions(draws=200)
    >>> sampling_options(options) is options
    True
    """
    if options is None:
        return SamplingOptions(**keywords)
    if not isinstance(options, SamplingOptions):
        raise TypeError(f"options must be a SamplingOptions, got {options!r}")
    if keywords:
        raise TypeError(
            f"give the sampling arguments as options or as keywords, not both (got options "
            f"and {sorted(keywords)})"
        )
    return options


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
