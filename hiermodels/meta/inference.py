"""The tables a systematic review reports, beside the posterior: heterogeneity by any tau^2
estimator, coefficients, the moderator test, predictions, back-transforms and posterior
probabilities.

Frequentist rows come from :mod:`hiermodels.numerics.inference` (metafor's ``rma.uni``,
tested against metafor) and never depend on the engine; Bayesian rows come from the exact
posterior when the fit has one (no Monte Carlo error) and from the draws otherwise. Every
function takes a :class:`~hiermodels.meta.result.MetaAnalysisResult` (``result``), whose
methods are the public entry points.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from hiermodels.data import level_labels, numeric_column, require_columns
from hiermodels.errors import DataError, SpecError
from hiermodels.meta.data import StudyData
from hiermodels.numerics import heterogeneity as het
from hiermodels.numerics.effect_sizes import TRANSFORMS
from hiermodels.numerics.estimators import ESTIMATORS
from hiermodels.numerics.inference import (
    TESTS,
    RMAFit,
    confint_tau2,
    fit_random_effects,
    predict,
)

__all__ = [
    "BAYES",
    "coefficient_table",
    "design_for",
    "frequentist_fit",
    "heterogeneity_table",
    "moderator_test",
    "prediction_table",
    "prob_above",
    "probability",
    "resolve_transform",
]

BAYES = "bayes"
#: row order of :func:`heterogeneity_table` (metafor's method codes after the posterior)
METHOD_ORDER = (BAYES, "EE", "DL", "REML", "ML", "PM", "HE", "HS", "SJ", "EB")


# -- arguments ------------------------------------------------------------------------------


def check_method(method: str, *, bayes: bool = True) -> str:
    """``method`` if it is a tau^2 estimator (or "bayes"), else SpecError listing them."""
    choices = [*([BAYES] if bayes else []), *ESTIMATORS]
    if method not in choices:
        raise SpecError(f"unknown method {method!r}; use one of {', '.join(choices)}")
    return method


def check_test(test: str) -> str:
    if test not in TESTS:
        raise SpecError(
            f"unknown test {test!r}; use 'z' (Wald z) or 'knha' (Knapp & Hartung t and F)"
        )
    return test


def check_prob(prob: float) -> float:
    if isinstance(prob, bool) or not isinstance(prob, (int, float, np.number)):
        raise SpecError(f"prob must be a number in (0, 1), got {prob!r}; e.g. prob=0.95")
    if not 0 < prob < 1:
        raise SpecError(f"prob must lie strictly between 0 and 1, got {prob!r}; e.g. prob=0.95")
    return float(prob)


def resolve_transform(transform) -> Callable[[np.ndarray], np.ndarray] | None:
    """None, a key of :data:`~hiermodels.numerics.effect_sizes.TRANSFORMS` or a callable.

    The transform must be increasing (exp, tanh, expit are): intervals map to intervals and
    posterior quantiles to quantiles. metafor's ``transf=``.
    """
    if transform is None:
        return None
    if callable(transform):
        return lambda x: np.asarray(transform(np.asarray(x, dtype=float)), dtype=float)
    if isinstance(transform, str) and transform in TRANSFORMS:
        return TRANSFORMS[transform]
    raise SpecError(
        f"unknown transform {transform!r}; use one of {', '.join(map(repr, TRANSFORMS))} or a "
        "function such as np.exp (an increasing back-transform, metafor's transf=)"
    )


def transformed(table: pd.DataFrame, f, columns, drop=()) -> pd.DataFrame:
    """``table`` with ``f`` applied to ``columns`` and the scale columns ``drop`` removed."""
    if f is None:
        return table
    out = table.drop(columns=[c for c in drop if c in table.columns])
    for col in columns:
        if col in out.columns:
            out[col] = f(out[col].to_numpy(dtype=float))
    out.attrs["transformed"] = True
    return out


def _x_matrix(data: StudyData):
    return data.X if data.has_moderators else None


def frequentist_fit(data: StudyData, method="REML", test="z", prob=0.95) -> RMAFit:
    """metafor's ``rma(yi, vi, mods, method=, test=, level=)`` on the study data."""
    check_method(method, bayes=False)
    check_test(test)
    return fit_random_effects(
        data.y, data.se, _x_matrix(data), method=method, test=test, level=check_prob(prob)
    )


# -- heterogeneity --------------------------------------------------------------------------


def _frequentist_row(data: StudyData, method, test, prob, moderators):
    fit = frequentist_fit(data, method, test, prob)
    if method == "EE" or data.k <= data.X.shape[1]:
        ci = None
    else:
        ci = confint_tau2(fit, level=prob)
    nan3 = (math.nan, math.nan, math.nan)
    tau2_ci, i2_ci, h2_ci = (ci.tau2, ci.I2, ci.H2) if ci else (nan3, nan3, nan3)
    row = {
        "mu": fit.beta[0],
        "mu_se": fit.se[0],
        "ci_low": fit.ci_low[0],
        "ci_high": fit.ci_high[0],
        "tau2": fit.tau2,
        "tau": fit.tau,
        "I2": fit.I2,
        "H2": fit.H2,
        "Q": fit.QE,
        "Q_df": fit.QE_df,
        "Q_pvalue": fit.QE_p,
        "pi_low": math.nan,
        "pi_high": math.nan,
        "tau2_ci_low": tau2_ci[1],
        "tau2_ci_high": tau2_ci[2],
        "I2_ci_low": i2_ci[1],
        "I2_ci_high": i2_ci[2],
        "H2_ci_low": h2_ci[1],
        "H2_ci_high": h2_ci[2],
        "tau2_se": fit.tau2_se,
    }
    if not moderators:
        pr = predict(fit)
        row["pi_low"], row["pi_high"] = pr.pi_low[0], pr.pi_high[0]
    for k, name in enumerate(moderators, start=1):
        row[name], row[f"{name}_se"] = fit.beta[k], fit.se[k]
    if moderators:
        if method == "EE":
            row["R2"] = math.nan
        else:
            plain = fit_random_effects(data.y, data.se, method=method, test=test, level=prob)
            # tau ratios, not tau2: exact for data on any scale (tau2 may under- or overflow)
            row["R2"] = 100 * max(0.0, 1 - (fit.tau / plain.tau) ** 2) if plain.tau > 0 else 0.0
    return row


def _bayes_row(result, prob, reference, moderators):
    """Posterior mean, sd and equal-tailed intervals (``tau2_se`` the posterior sd of
    tau^2); tau2 = E[tau^2 | y] and I2, H2 at it
    (so that I2 = 100 tau2 / (tau2 + s^2) holds in every row); the I2 and H2 intervals are
    the posterior quantiles of I2 and H2 computed per draw (monotone in tau)."""
    data = result.data
    summary = result.summary(prob)
    mu = summary.loc[result.coefficient_names[0]]
    tails = [(1 - prob) / 2, (1 + prob) / 2]
    if result.exact is not None:
        # E[tau^2 | y] = mean^2 + sd^2 of tau: the same number, computed once (inf when the
        # posterior tail is too heavy for a variance); in the posterior's unit, so that its
        # root (and I2, H2) stay exact where tau^2 itself under- or overflows
        # relative to the posterior mean c of tau, so that its root (and I2, H2) and the
        # moments stay exact where tau^2 and tau^4 themselves under- or overflow
        tau_row = summary.loc["tau"]
        c = float(tau_row["mean"])
        tau_lo, tau_hi = result.exact.quantile_tau(tails)
        if math.isfinite(c):
            rms = math.hypot(1.0, tau_row["sd"] / c)
            with np.errstate(over="ignore", invalid="ignore"):
                tau4 = result.exact.expect_tau(lambda t: (t / c) ** 4, growth=4)
            ok = math.isfinite(tau4)
            tau2_sd = math.sqrt(max(tau4 - rms**4, 0.0)) * c * c if ok else math.inf
            tau_rms = rms * c
        else:
            tau_rms = tau2_sd = math.inf
    else:
        tau_draws = result.draws("tau").ravel()
        tau_rms = math.sqrt(float(np.mean(tau_draws**2)))
        tau2_sd = float(np.std(tau_draws**2, ddof=1))
        tau_lo, tau_hi = np.quantile(tau_draws, tails)
    tau2 = het.in_squared_units(1.0, tau_rms)  # 0 or inf beyond double precision
    X = _x_matrix(data)
    I2, H2 = het.i2_h2_tau(tau_rms, data.se, X)
    (I2_lo, H2_lo), (I2_hi, H2_hi) = (het.i2_h2_tau(t, data.se, X) for t in (tau_lo, tau_hi))
    row = {
        **reference,
        "mu": mu["mean"],
        "mu_se": mu["sd"],
        "ci_low": mu["ci_low"],
        "ci_high": mu["ci_high"],
        "tau2": tau2,
        "tau": summary.loc["tau", "mean"],
        "I2": I2,
        "H2": H2,
        "pi_low": summary.loc["theta_new", "ci_low"],
        "pi_high": summary.loc["theta_new", "ci_high"],
        "tau2_ci_low": het.in_squared_units(1.0, tau_lo),  # 0 or inf beyond a double
        "tau2_ci_high": het.in_squared_units(1.0, tau_hi),
        "I2_ci_low": I2_lo,
        "I2_ci_high": I2_hi,
        "H2_ci_low": H2_lo,
        "H2_ci_high": H2_hi,
        "tau2_se": tau2_sd,
    }
    for name in moderators:
        row[name], row[f"{name}_se"] = summary.loc[name, "mean"], summary.loc[name, "sd"]
    if moderators:
        row["R2"] = math.nan
    return row


def heterogeneity_table(result, methods, test, prob, transform=None) -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.heterogeneity`."""
    if isinstance(methods, (int, float)) and not isinstance(methods, bool):
        raise SpecError(
            f"heterogeneity's first argument is methods; for the interval level write "
            f"prob={methods!r}"
        )
    if isinstance(methods, str):
        methods = (methods,)
    methods = [check_method(m) for m in methods]
    if not methods:
        raise SpecError(f"methods is empty; name at least one of {', '.join(METHOD_ORDER)}")
    check_test(test)
    prob = check_prob(prob)
    f = resolve_transform(transform)
    data = result.data
    moderators = result.coefficient_names[1:]
    rows = {m: _frequentist_row(data, m, test, prob, moderators) for m in methods if m != BAYES}
    if BAYES in methods:
        # Q and its test are the data's, not the method's: take them from any classical fit
        reference = (
            rows[next(iter(rows))]
            if rows
            else _frequentist_row(data, "REML", test, prob, moderators)
        )
        rows[BAYES] = _bayes_row(result, prob, reference, moderators)
    table = pd.DataFrame({m: rows[m] for m in methods}).T
    table.index.name = "method"
    table = table.astype(float).astype({"Q_df": int})
    table.attrs.update(prob=prob, test=test)
    if f is not None and BAYES in methods:
        # the posterior median commutes with an increasing transform, the mean does not
        table.loc[BAYES, "mu"] = float(result.summary(prob).iloc[0]["median"])
    return transformed(table, f, ("mu", "ci_low", "ci_high", "pi_low", "pi_high"), drop=("mu_se",))


# -- coefficients, moderator test, predictions ----------------------------------------------


def coefficient_table(result, method="REML", test="z", prob=0.95) -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.coefficients`."""
    check_method(method)
    prob = check_prob(prob)
    names = result.coefficient_names
    if method == BAYES:
        summary = result.summary(prob)
        rows = {}
        for k, name in enumerate(names):
            if result.exact is not None:
                below = result.exact.cdf_beta(0.0, index=k)
            else:
                below = float(np.mean(result.draws(name) <= 0))
            rows[name] = {
                "estimate": summary.loc[name, "mean"],
                "se": summary.loc[name, "sd"],
                "ci_low": summary.loc[name, "ci_low"],
                "ci_high": summary.loc[name, "ci_high"],
                "prob_positive": 1 - below,
                "prob_negative": below,
            }
        table = pd.DataFrame(rows).T.astype(float)
    else:
        fit = frequentist_fit(result.data, method, test, prob)
        table = pd.DataFrame(
            {
                "estimate": fit.beta,
                "se": fit.se,
                "stat": fit.stat,
                "pvalue": fit.pval,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
            },
            index=names,
        )
        table.attrs.update(test=test, df=fit.ddf)
    table.index.name = "coefficient"
    table.attrs.update(method=method, prob=prob)
    return table


def moderator_test(result, method="REML", test="z") -> pd.Series:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.moderator_test`."""
    check_method(method, bayes=False)
    check_test(test)
    if not result.data.has_moderators:
        raise SpecError(
            "the model has no moderators, so there is nothing to test; refit with "
            "moderators=[...] (for subgroups see subgroup_analysis)"
        )
    fit = frequentist_fit(result.data, method, test)
    out = {"QM": fit.QM}
    if test == "knha":
        out.update(df1=fit.QM_df[0], df2=fit.QM_df[1])
    else:
        out["df"] = fit.QM_df[0]
    out.update(pvalue=fit.QM_p, QE=fit.QE, QE_df=fit.QE_df, QE_pvalue=fit.QE_p)
    series = pd.Series(out, name=f"{method}, test={test}", dtype=float)
    series.attrs.update(method=method, test=test)
    return series


def design_for(result, new) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows of X (intercept first) for the moderator values in ``new``, encoded as the
    fitted data were (categorical moderators as treatment dummies of the same levels)."""
    data, spec = result.data, result.spec
    if isinstance(new, dict):
        new = pd.DataFrame(new)
    if not isinstance(new, pd.DataFrame):
        raise SpecError(
            "new_moderators must be a DataFrame (or a dict of lists) with one column per "
            f"moderator {list(spec.moderators)}, got {type(new).__name__}"
        )
    require_columns(new, list(spec.moderators))
    columns = [np.ones(len(new))]
    for col in spec.moderators:
        if col in data.terms:
            columns.append(numeric_column(new, col, "moderator"))
            continue
        dummies = [t for t in data.terms if t.startswith(f"{col}[")]
        levels = [t[len(col) + 1 : -1] for t in dummies]
        known = set(level_labels(result.frame[col])) if result.frame is not None else None
        labels = level_labels(new[col])
        if known is not None:
            unknown = sorted(set(labels) - known)
            if unknown:
                raise DataError(
                    f"moderator column {col!r} has levels {unknown} the model was not fitted "
                    f"with; use one of {sorted(known)}"
                )
        columns.extend((labels == level).to_numpy(dtype=float) for level in levels)
    return np.column_stack(columns), new


def prediction_table(result, new, method="REML", test="z", prob=0.95, transform=None):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.predict`."""
    check_method(method)
    prob = check_prob(prob)
    f = resolve_transform(transform)
    data = result.data
    if new is None:
        X = data.X[:1] if not data.has_moderators else data.X
        front = pd.DataFrame(
            {data.study: ["pooled"] if not data.has_moderators else list(data.labels)}
        )
    elif not data.has_moderators:
        raise SpecError(
            "the model has no moderators; call predict() without new_moderators for the "
            "pooled effect and the prediction interval of a new study"
        )
    else:
        X, front = design_for(result, new)
        front = front[list(result.spec.moderators)].reset_index(drop=True)
    if method == BAYES:
        cols = _bayes_predictions(result, X, prob)
        scale, location = "sd", "median" if f is not None else "mean"
    else:
        fit = frequentist_fit(data, method, test, prob)
        pr = predict(fit, X[:, 1:] if data.has_moderators else None, level=prob)
        cols = {
            "mean": pr.pred,
            "se": pr.se,
            "ci_low": pr.ci_low,
            "ci_high": pr.ci_high,
            "pi_low": pr.pi_low,
            "pi_high": pr.pi_high,
        }
        scale, location = "se", "mean"
    table = pd.concat([front, pd.DataFrame(cols)], axis=1)
    table.attrs.update(method=method, prob=prob)
    drop = (scale, "mean") if location == "median" else (scale,)
    return transformed(table, f, (location, "ci_low", "ci_high", "pi_low", "pi_high"), drop)


def _bayes_predictions(result, X, prob):
    tails = [(1 - prob) / 2, 0.5, (1 + prob) / 2]
    keys = ("mean", "sd", "median", "ci_low", "ci_high", "pi_low", "pi_high")
    out = {key: np.empty(len(X)) for key in keys}
    if result.exact is not None:
        for i, x in enumerate(X):
            lin = result.exact.linear_summary(x, prob)
            new = result.exact.predictive_summary(x, prob)
            values = (lin["mean"], lin["sd"], lin["median"], lin["lower"], lin["upper"])
            values += (new["lower"], new["upper"])
            for key, value in zip(keys, values, strict=True):
                out[key][i] = value
        return out
    beta = np.column_stack([result.draws(n).ravel() for n in result.coefficient_names])
    tau = result.draws("tau").ravel()
    rng = np.random.default_rng(result.spec.sampling.random_seed)
    lin = beta @ X.T  # (draws, rows)
    new = lin + tau[:, None] * rng.standard_normal(lin.shape)
    out["mean"], out["sd"] = lin.mean(axis=0), lin.std(axis=0, ddof=1)
    out["ci_low"], out["median"], out["ci_high"] = np.quantile(lin, tails, axis=0)
    out["pi_low"], out["pi_high"] = np.quantile(new, [tails[0], tails[2]], axis=0)
    return out


# -- posterior probabilities ----------------------------------------------------------------

_STATEMENT = re.compile(r"^\s*(?P<name>[^\s<>=]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>\S+)\s*$")


def probability(result, statement: str) -> float:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.probability`."""
    names = ["mu", "theta_new", "tau", *result.coefficient_names]
    choices = ", ".join(dict.fromkeys(names))
    grammar = (
        "write '<name> <op> <number>' with name one of "
        f"{choices} and op one of <, <=, >, >= (e.g. 'mu < 0')"
    )
    match = _STATEMENT.match(statement) if isinstance(statement, str) else None
    if match is None:
        raise SpecError(f"cannot read the probability statement {statement!r}; {grammar}")
    name, op, text = match["name"], match["op"], match["value"]
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{text!r} in {statement!r} is not a number; {grammar}") from None
    if not math.isfinite(value):
        raise SpecError(f"the threshold in {statement!r} must be finite; {grammar}")
    if name not in names:
        raise SpecError(f"unknown quantity {name!r} in {statement!r}; {grammar}")
    if name == "mu":
        name = result.coefficient_names[0]  # the intercept of a meta-regression
    below = _cdf(result, name, value)
    # continuous posteriors: P(X < x) = P(X <= x); from draws the strict/non-strict
    # difference is the (Monte Carlo) mass of ties
    if result.exact is None:
        draws = result.draws(name).ravel()
        below = float(np.mean(draws < value if op in ("<", ">=") else draws <= value))
    return below if op in ("<", "<=") else 1.0 - below


def prob_above(result, x, of="mu") -> float:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.prob_above`."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.number)):
        raise SpecError(f"x must be a number, got {x!r}")
    if not isinstance(of, str):
        raise SpecError(f"of must name a quantity (e.g. 'mu'), got {of!r}")
    return probability(result, f"{of} > {float(x)!r}")


def _cdf(result, name, value):
    exact = result.exact
    if exact is None:
        return math.nan
    if name == "tau":
        return float(exact.cdf_tau(value))
    if name == "theta_new":
        return float(exact.cdf_predictive(value))
    return float(exact.cdf_beta(value, index=result.coefficient_names.index(name)))
