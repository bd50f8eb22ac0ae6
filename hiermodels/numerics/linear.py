"""Exact posterior of the normal linear model under the reference prior (numpy/scipy only).

With ``p(beta, log sigma) ∝ 1`` (BDA3 §14.2, eqs. 14.4-14.8)::

    beta | sigma, y ~ Normal(beta_hat, sigma^2 (X'X)^-1)
    sigma^2 | y     ~ Scaled-Inv-chi^2(n - r, s^2),   s^2 = |y - X beta_hat|^2 / (n - r)
    beta_i | y      ~ t_{n-r}(beta_hat_i, s^2 [(X'X)^-1]_ii)

which is how the no-pooling (one coefficient per group, tau -> infinity) and the
complete-pooling (tau = 0) regressions of Gelman & Hill (2007, §12.2) are fitted without MCMC.
A rank-deficient design (a group whose rows cannot identify its slope) is handled through the
pseudo-inverse: coefficients that the data cannot identify are NaN in the summary, and draws
use the minimum-norm solution, which gives the right fitted values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FlatRegression", "flat_prior_regression"]


@dataclass(frozen=True, eq=False)
class FlatRegression:
    """Posterior of a linear regression under ``p(beta, log sigma) ∝ 1``; see module doc.

    Attributes
    ----------
    coef : (p,) least-squares estimate (minimum-norm where not identified).
    estimable : (p,) bool, whether the data identify each coefficient.
    s2 : residual variance estimate; ``dof = n - rank``.
    """

    coef: np.ndarray
    estimable: np.ndarray
    s2: float
    dof: int
    _root: np.ndarray  # (p, r) with root @ root.T = (X'X)^+
    _scale: np.ndarray  # (r,) singular values: root * scale = V

    def cov_unscaled(self) -> np.ndarray:
        """(X'X)^+, the posterior covariance of beta given sigma, divided by sigma^2."""
        return self._root @ self._root.T

    def summary(self, prob: float = 0.95, contrasts=None) -> dict[str, np.ndarray]:
        """Marginal posterior mean, sd and equal-tailed interval of each coefficient.

        Each is ``t_{dof}(c' beta_hat, s^2 c'(X'X)^-1 c)`` (BDA3 eq. 14.6). With ``contrasts``
        (an (m, p) array), of each linear combination ``c' beta`` instead. NaN where the
        data do not identify the quantity; the sd is infinite for dof <= 2.
        """
        C = np.eye(len(self.coef)) if contrasts is None else np.atleast_2d(contrasts)
        mean = C @ self.coef
        root = C @ self._root
        scale = np.sqrt(self.s2 * np.einsum("ij,ij->i", root, root))
        sd = scale * np.sqrt(self.dof / (self.dof - 2)) if self.dof > 2 else np.inf * scale
        from scipy import stats  # imported when used: scipy.stats costs ~0.9 s to import

        half = stats.t.ppf((1 + prob) / 2, self.dof) * scale
        # c' beta is identified iff c lies in the row space of X
        identified = np.abs(C @ self._projector() - C).max(axis=1, initial=0.0) < 1e-8
        nan = np.where(identified, 1.0, np.nan)
        return {
            "mean": mean * nan,
            "sd": sd * nan,
            "lower": (mean - half) * nan,
            "upper": (mean + half) * nan,
        }

    def _projector(self) -> np.ndarray:
        """Projector onto the row space of X (V V' from the SVD)."""
        V = self._root * self._scale
        return V @ V.T

    def draw(self, n: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """Independent draws: ``beta`` (n, p) and ``sigma`` (n,), BDA3 §14.2 steps 1-2."""
        if self.dof < 1:
            raise ValueError("no residual degrees of freedom: sigma is not identified")
        rng = np.random.default_rng(rng)
        sigma = np.sqrt(self.dof * self.s2 / rng.chisquare(self.dof, size=n))
        z = rng.standard_normal((n, self._root.shape[1]))
        return self.coef + sigma[:, None] * (z @ self._root.T), sigma


def flat_prior_regression(y, X) -> FlatRegression:
    """Fit ``y ~ Normal(X beta, sigma)`` under the reference prior, exactly.

    Parameters
    ----------
    y : (n,) outcomes.
    X : (n, p) design; may be rank deficient.

    Examples
    --------
    >>> import numpy as np
    >>> fit = flat_prior_regression([1.0, 2.0, 4.0], np.ones((3, 1)))
    >>> round(float(fit.coef[0]), 4), fit.dof
    (2.3333, 2)
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    U, d, Vt = np.linalg.svd(X, full_matrices=False)
    tol = d.max(initial=0.0) * max(n, p) * np.finfo(float).eps
    r = int((d > tol).sum())
    U, d, V = U[:, :r], d[:r], Vt[:r].T
    coef = V @ ((U.T @ y) / d)
    resid = y - X @ coef
    # beta_i is identified iff e_i lies in the row space of X: |V[i]| = 1 (projector diag)
    estimable = np.abs((V * V).sum(axis=1) - 1.0) < 1e-8
    return FlatRegression(
        coef=coef,
        estimable=estimable,
        s2=float(resid @ resid / (n - r)) if n > r else math.nan,
        dof=n - r,
        _root=V / d,
        _scale=d,
    )
