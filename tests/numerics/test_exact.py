"""Exact posterior of the normal-normal model against published numbers and brute force.

The reference for most tests is :class:`BruteForce`: the joint posterior p(beta, tau | y)
evaluated directly from the likelihood prod_i Normal(y_i | x_i'beta, se_i^2 + tau^2) and
integrated numerically (adaptive quadrature over tau, Gauss-Legendre over beta). It shares no
code or algebra with the engine, which integrates beta out analytically.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from hiermodels.numerics.effect_sizes import log_risk_ratio
from hiermodels.numerics.exact import ExactPosterior, ImproperPosteriorError, exact_posterior

# Rubin (1981) eight schools, as in bayesmeta's Rubin1981 and BDA3 Table 5.2
SCHOOLS_Y = np.array([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
SCHOOLS_SE = np.array([14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])
BCG = Path(__file__).resolve().parents[2] / "hiermodels" / "data" / "bcg.csv"


def flat(t):
    return np.zeros_like(t)


def half_cauchy(scale):
    return lambda t: np.log(2 / (np.pi * scale)) - np.log1p((t / scale) ** 2)


def half_normal(scale):
    return lambda t: 0.5 * np.log(2 / np.pi) - np.log(scale) - 0.5 * (t / scale) ** 2


def uniform(upper):
    return lambda t: np.where(t <= upper, -np.log(upper), -np.inf)


def bcg_log_rr():
    data = np.genfromtxt(BCG, delimiter=",", names=True, dtype=None, encoding="utf-8")
    yi, sei = log_risk_ratio(data["tpos"], data["tneg"], data["cpos"], data["cneg"])
    return yi, sei, data["ablat"].astype(float)


class BruteForce:
    """Direct numerical integration of p(beta, tau | y) (see the module docstring)."""

    def __init__(
        self, y, se, tau_logprior, X=None, beta_mean=None, beta_sd=None, breaks=(), tau_max=np.inf
    ):
        self.y, self.v = np.asarray(y, float), np.asarray(se, float) ** 2
        self.X = np.ones((self.y.size, 1)) if X is None else np.asarray(X, float)
        self.p = self.X.shape[1]
        self.m = np.zeros(self.p) if beta_mean is None else np.broadcast_to(beta_mean, (self.p,))
        self.s = None if beta_sd is None else np.broadcast_to(beta_sd, (self.p,))
        self.logprior = tau_logprior
        self.pieces = list(zip([0.0, *breaks], [*breaks, tau_max], strict=True))
        self.gx, self.gw = np.polynomial.legendre.leggauss(64 if self.p == 1 else 40)
        self.ref = 0.0
        taus = np.geomspace(1e-12, 1e4, 161) * np.sqrt(self.v.mean())  # reference: max density
        self.ref = max(self._logjoint(self._box(t)[0][None, :], t)[0] for t in taus)

    def _logjoint(self, beta, tau):
        var = self.v + tau**2
        r = self.y[None, :] - beta @ self.X.T
        out = -0.5 * np.sum(np.log(2 * np.pi * var) + r**2 / var, axis=1)
        out = out + self.logprior(np.array([tau]))[0] - self.ref
        if self.s is not None:
            out = out + np.sum(stats.norm.logpdf(beta, self.m, self.s), axis=1)
        return out

    def _box(self, tau):
        # where beta | tau lives, from a weighted least-squares fit (only to place the nodes)
        sw = 1 / np.sqrt(self.v + tau**2)
        A, b = self.X * sw[:, None], self.y * sw
        if self.s is not None:
            A, b = np.vstack([A, np.diag(1 / self.s)]), np.concatenate([b, self.m / self.s])
        return np.linalg.lstsq(A, b, rcond=None)[0], np.linalg.inv(A.T @ A)

    def _nodes(self, tau, upper=None, index=0):
        """Gauss-Legendre nodes beta and weights * joint density, on a +-12 sd box.

        The box is in whitened coordinates beta = centre + L z (L a Cholesky factor with
        coefficient ``index`` first), so correlated coefficients are covered evenly and
        beta_index <= upper is the axis-aligned cut z_0 <= (upper - centre_index) / L_00.
        """
        centre, cov = self._box(tau)
        order = [index, *(j for j in range(self.p) if j != index)]
        L = np.linalg.cholesky(cov[np.ix_(order, order)])
        lo, hi = np.full(self.p, -12.0), np.full(self.p, 12.0)
        if upper is not None:
            hi[0] = np.clip((upper - centre[index]) / L[0, 0], lo[0], hi[0])
        axes = [(lo[j] + hi[j]) / 2 + (hi[j] - lo[j]) / 2 * self.gx for j in range(self.p)]
        wts = [(hi[j] - lo[j]) / 2 * self.gw for j in range(self.p)]
        z = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.p)
        w = np.prod(np.stack(np.meshgrid(*wts, indexing="ij"), -1).reshape(-1, self.p), axis=1)
        beta = np.empty_like(z)
        beta[:, order] = centre[order] + z @ L.T
        with np.errstate(under="ignore"):
            return beta, w * np.prod(np.diag(L)) * np.exp(self._logjoint(beta, tau))

    def _integrate(self, fun, tau_max=np.inf):
        return sum(
            integrate.quad(fun, a, min(b, tau_max), epsabs=1e-14, epsrel=1e-10, limit=400)[0]
            for a, b in self.pieces
            if a < tau_max
        )

    def moments(self, x_new=None, studies=True):
        """Posterior means and sds of tau, beta, theta and theta_new, and log p(y)."""
        k, p = self.y.size if studies else 0, self.p
        x_new = self.X.mean(axis=0) if x_new is None else np.asarray(x_new, float)

        def fun(t):
            beta, d = self._nodes(t)
            B = (self.v / (self.v + t**2))[:k]
            theta = (1 - B) * self.y[:k] + B * (beta @ self.X[:k].T)  # E[theta | beta, tau, y]
            new = beta @ x_new
            mass = d.sum()
            return np.concatenate(
                [
                    [mass, t * mass, t * t * mass],
                    beta.T @ d,
                    (beta**2).T @ d,
                    theta.T @ d,
                    (theta**2).T @ d + self.v[:k] * (1 - B) * mass,
                    B * mass,
                    [new @ d, new**2 @ d + t * t * mass],
                ]
            )

        total = sum(
            integrate.quad_vec(fun, a, b, epsabs=1e-14, epsrel=1e-10, limit=400)[0]
            for a, b in self.pieces
        )
        e = np.split(total / total[0], np.cumsum([1, 1, 1, p, p, k, k, k, 1]))
        return {
            "log_z": np.log(total[0]) + self.ref,
            "tau_mean": e[1][0],
            "tau_sd": np.sqrt(e[2][0] - e[1][0] ** 2),
            "beta_mean": e[3],
            "beta_sd": np.sqrt(e[4] - e[3] ** 2),
            "theta_mean": e[5],
            "theta_sd": np.sqrt(e[6] - e[5] ** 2),
            "shrinkage": e[7],
            "new_mean": e[8][0],
            "new_sd": np.sqrt(e[9][0] - e[8][0] ** 2),
        }

    def tau_quantile(self, q, bracket):
        def mass(t):
            return self._nodes(t)[1].sum()

        z = self._integrate(mass)
        return optimize.brentq(lambda x: self._integrate(mass, x) / z - q, *bracket, xtol=1e-13)

    def beta_quantile(self, q, index, bracket):
        z = self._integrate(lambda t: self._nodes(t)[1].sum())

        def cdf(b):
            return self._integrate(lambda t: self._nodes(t, upper=b, index=index)[1].sum()) / z

        return optimize.brentq(lambda b: cdf(b) - q, *bracket, xtol=1e-13)


# -- published numbers --------------------------------------------------------------------


def test_eight_schools_matches_bayesmeta_vignette():
    # bayesmeta vignette, schools.example.1: tau ~ half-Cauchy(25), mu ~ Normal(0, 50)
    post = exact_posterior(
        SCHOOLS_Y, SCHOOLS_SE, tau_logprior=half_cauchy(25), beta_mean=0.0, beta_sd=50.0
    )
    tau, mu = post.tau_summary(), post.beta_summary()
    # bayesmeta integrates p(tau | y) with integrate() and prints 7 digits: match them all
    assert tau["mean"] == pytest.approx(5.884511, rel=2e-7)
    assert tau["sd"] == pytest.approx(4.869904, rel=2e-7)
    assert tau["median"] == pytest.approx(4.758539, rel=2e-7)
    # bayesmeta's mu summaries come from its DIRECT mixture approximation (accuracy set by
    # delta = 0.01, epsilon = 1e-4), so they are 4e-5 off the exact values; brute-force
    # integration below confirms ours (7.986042, 4.995598) to 1e-9
    assert mu["mean"][0] == pytest.approx(7.9857, rel=1e-4)
    assert mu["sd"][0] == pytest.approx(4.9958, rel=1e-4)


# -- brute-force integration ----------------------------------------------------------------


def _cases():
    yi, sei, ablat = bcg_log_rr()
    schools = {"y": SCHOOLS_Y, "se": SCHOOLS_SE}
    return {
        "schools, half-Cauchy tau, normal mu": (
            {**schools, "tau_logprior": half_cauchy(25), "beta_mean": 0, "beta_sd": 50},
            {"breaks": (5, 20, 100, 1000)},
        ),
        "schools, flat tau and mu": (
            {**schools, "tau_logprior": flat},
            {"breaks": (5, 20, 100, 1000)},
        ),
        "BCG regression on latitude, flat tau and beta": (
            {"y": yi, "se": sei, "tau_logprior": flat, "X": np.column_stack([np.ones(13), ablat])},
            {"breaks": (0.1, 0.3, 1, 10)},
        ),
        "homogeneous studies, mass at tau = 0": (
            {
                "y": [0.1, -0.2, 0.05, 0.3, 0.0],
                "se": [0.3, 0.4, 0.25, 0.5, 0.35],
                "tau_logprior": half_normal(0.5),
            },
            {"breaks": (0.05, 0.2, 1, 5)},
        ),
        "schools, uniform(0, 10) tau (bounded support)": (
            {**schools, "tau_logprior": uniform(10)},
            {"breaks": (2, 5), "tau_max": 10},
        ),
    }


CASES = _cases()


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    kwargs, bf_kwargs = CASES[request.param]
    brute = BruteForce(
        kwargs["y"],
        kwargs["se"],
        kwargs["tau_logprior"],
        X=kwargs.get("X"),
        beta_mean=kwargs.get("beta_mean"),
        beta_sd=kwargs.get("beta_sd"),
        **bf_kwargs,
    )
    return exact_posterior(**kwargs), brute


def test_moments_match_brute_force(case):
    post, brute = case
    ref = brute.moments()
    tau, beta = post.tau_summary(), post.beta_summary()
    theta, new = post.theta_moments(), post.predictive_moments()
    rel = 1e-7
    assert tau["mean"] == pytest.approx(ref["tau_mean"], rel=rel)
    assert tau["sd"] == pytest.approx(ref["tau_sd"], rel=rel)
    np.testing.assert_allclose(beta["mean"], ref["beta_mean"], rtol=rel)
    np.testing.assert_allclose(beta["sd"], ref["beta_sd"], rtol=rel)
    np.testing.assert_allclose(theta["mean"], ref["theta_mean"], rtol=rel)
    np.testing.assert_allclose(theta["sd"], ref["theta_sd"], rtol=rel)
    np.testing.assert_allclose(theta["shrinkage"], ref["shrinkage"], rtol=rel)
    assert new["mean"] == pytest.approx(ref["new_mean"], rel=rel)
    assert new["sd"] == pytest.approx(ref["new_sd"], rel=rel)


def test_quantiles_match_brute_force(case):
    post, brute = case
    tau = post.tau_summary()
    for q, key in [(0.025, "lower"), (0.5, "median"), (0.975, "upper")]:
        ref = brute.tau_quantile(q, (0.0, 50 * tau["upper"]))
        assert tau[key] == pytest.approx(ref, rel=1e-7)
        assert post.cdf_tau(ref) == pytest.approx(q, rel=1e-7)
    beta = post.beta_summary()
    j = post.p - 1
    bracket = (beta["mean"][j] - 30 * beta["sd"][j], beta["mean"][j] + 30 * beta["sd"][j])
    assert beta["upper"][j] == pytest.approx(brute.beta_quantile(0.975, j, bracket), rel=1e-7)


def test_log_marginal_likelihood_matches_brute_force():
    # with normalised priors on tau and mu, log p(y) is a number both methods must agree on
    post = exact_posterior(
        SCHOOLS_Y, SCHOOLS_SE, tau_logprior=half_cauchy(25), beta_mean=0.0, beta_sd=50.0
    )
    brute = BruteForce(
        SCHOOLS_Y, SCHOOLS_SE, half_cauchy(25), beta_mean=0, beta_sd=50, breaks=(5, 20, 100)
    )
    assert post.log_marginal_likelihood == pytest.approx(brute.moments()["log_z"], abs=1e-8)
    assert np.isnan(
        exact_posterior(SCHOOLS_Y, SCHOOLS_SE, tau_logprior=flat).log_marginal_likelihood
    )


def test_thousand_studies_match_brute_force():
    # many studies make p(tau | y) narrow (sd ~ 5% of tau): the grid must adapt to it
    rng = np.random.default_rng(2024)
    se = rng.uniform(0.05, 0.5, 1000)
    y = rng.normal(0.3, 0.2, 1000) + se * rng.standard_normal(1000)
    post = exact_posterior(y, se, tau_logprior=half_normal(1.0))
    brute = BruteForce(y, se, half_normal(1.0), breaks=(0.15, 0.2, 0.25, 1))
    ref = brute.moments(studies=False)
    tau, beta = post.tau_summary(), post.beta_summary()
    assert tau["mean"] == pytest.approx(ref["tau_mean"], rel=1e-7)
    assert tau["sd"] == pytest.approx(ref["tau_sd"], rel=1e-7)
    assert beta["mean"][0] == pytest.approx(ref["beta_mean"][0], rel=1e-7)
    assert beta["sd"][0] == pytest.approx(ref["beta_sd"][0], rel=1e-7)
    assert tau["median"] == pytest.approx(brute.tau_quantile(0.5, (0.1, 0.3)), rel=1e-6)


# -- limits with closed forms ---------------------------------------------------------------


def test_tau_known_gives_bda3_conditional_formulas():
    # a log-normal prior with sdlog 1e-6 pins tau at 10: then mu | y is BDA3 eq. 5.20 and
    # theta_j | y is eq. 5.17 averaged over mu
    tau0 = 10.0
    post = exact_posterior(
        SCHOOLS_Y,
        SCHOOLS_SE,
        tau_logprior=lambda t: -np.log(t) - 0.5 * (np.log(t / tau0) / 1e-6) ** 2,
    )
    w = 1 / (SCHOOLS_SE**2 + tau0**2)
    mu_hat, v_mu = np.sum(w * SCHOOLS_Y) / np.sum(w), 1 / np.sum(w)
    beta = post.beta_summary()
    assert beta["mean"][0] == pytest.approx(mu_hat, rel=1e-6)
    assert beta["sd"][0] == pytest.approx(np.sqrt(v_mu), rel=1e-6)
    B = SCHOOLS_SE**2 / (SCHOOLS_SE**2 + tau0**2)
    theta = post.theta_moments()
    np.testing.assert_allclose(theta["mean"], (1 - B) * SCHOOLS_Y + B * mu_hat, rtol=1e-6)
    np.testing.assert_allclose(
        theta["sd"], np.sqrt(SCHOOLS_SE**2 * (1 - B) + B**2 * v_mu), rtol=1e-6
    )
    np.testing.assert_allclose(theta["shrinkage"], B, rtol=1e-6)
    new = post.predictive_moments()
    assert new["sd"] == pytest.approx(np.sqrt(tau0**2 + v_mu), rel=1e-6)
    # and mu | y is exactly normal, so its quantiles are too
    assert post.quantile_beta(0.975) == pytest.approx(
        mu_hat + 1.959963985 * np.sqrt(v_mu), rel=1e-6
    )


def test_tau_prior_concentrated_at_zero_gives_fixed_effect_estimate():
    post = exact_posterior(SCHOOLS_Y, SCHOOLS_SE, tau_logprior=half_normal(1e-3))
    w = 1 / SCHOOLS_SE**2
    fixed = np.sum(w * SCHOOLS_Y) / np.sum(w)  # 7.8705..., complete pooling (BDA3 §5.5)
    beta = post.beta_summary()
    assert beta["mean"][0] == pytest.approx(fixed, rel=1e-6)
    assert beta["sd"][0] == pytest.approx(np.sqrt(1 / np.sum(w)), rel=1e-6)
    theta = post.theta_moments()
    np.testing.assert_allclose(theta["mean"], fixed, rtol=1e-5)
    assert theta["shrinkage"].min() > 1 - 1e-7
    # the posterior of tau is then the half-normal prior itself: median 1e-3 * 0.6745
    assert post.tau_summary()["median"] == pytest.approx(1e-3 * stats.halfnorm.ppf(0.5), rel=1e-5)


# -- draws ----------------------------------------------------------------------------------


def test_draws_agree_with_exact_summaries():
    post = exact_posterior(
        SCHOOLS_Y, SCHOOLS_SE, tau_logprior=half_cauchy(25), beta_mean=0.0, beta_sd=50.0
    )
    n = 20_000
    d = post.draw(n, np.random.default_rng(7))
    assert d["tau"].shape == (n,) and d["beta"].shape == (n, 1) and d["theta"].shape == (n, 8)
    tau, beta = post.tau_summary(), post.beta_summary()
    # means within 4 Monte Carlo standard errors; sds within 4 (approximate) standard errors
    assert abs(d["tau"].mean() - tau["mean"]) < 4 * tau["sd"] / np.sqrt(n)
    assert abs(d["beta"][:, 0].mean() - beta["mean"][0]) < 4 * beta["sd"][0] / np.sqrt(n)
    assert d["beta"][:, 0].std() == pytest.approx(beta["sd"][0], rel=4 / np.sqrt(2 * n))
    # the draws of tau follow the exact CDF, and hit its quantiles at the right rates
    assert stats.kstest(d["tau"], post.cdf_tau).pvalue > 1e-3
    for q, key in [(0.025, "lower"), (0.5, "median"), (0.975, "upper")]:
        assert np.mean(d["tau"] <= tau[key]) == pytest.approx(q, abs=4 * np.sqrt(q * (1 - q) / n))
        frac = np.mean(d["beta"][:, 0] <= beta[key][0])
        assert frac == pytest.approx(q, abs=4 * np.sqrt(q * (1 - q) / n))
    theta = post.theta_moments()
    z = (d["theta"].mean(axis=0) - theta["mean"]) / (theta["sd"] / np.sqrt(n))
    assert np.abs(z).max() < 4
    np.testing.assert_allclose(d["theta"].std(axis=0), theta["sd"], rtol=4 / np.sqrt(2 * n))
    new = post.predictive_moments()
    assert abs(d["theta_new"].mean() - new["mean"]) < 4 * new["sd"] / np.sqrt(n)


def test_draws_for_a_meta_regression_and_new_covariates():
    yi, sei, ablat = bcg_log_rr()
    X = np.column_stack([np.ones(13), ablat])
    post = exact_posterior(yi, sei, tau_logprior=half_normal(1.0), X=X)
    n = 20_000
    d = post.draw(n, 11, x_new=[1.0, 50.0])
    beta = post.beta_summary()
    z = (d["beta"].mean(axis=0) - beta["mean"]) / (beta["sd"] / np.sqrt(n))
    assert np.abs(z).max() < 4
    new = post.predictive_moments([1.0, 50.0])
    assert abs(d["theta_new"].mean() - new["mean"]) < 4 * new["sd"] / np.sqrt(n)
    assert d["theta_new"].std() == pytest.approx(new["sd"], rel=4 / np.sqrt(2 * n))


# -- improper posteriors and heavy tails ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": [1.0, 2.0], "se": [1.0, 1.0], "tau_logprior": flat}, "tau -> infinity"),
        (
            {"y": [1.0], "se": [1.0], "tau_logprior": flat, "beta_mean": 0, "beta_sd": 10},
            "tau -> infinity",
        ),
        ({"y": SCHOOLS_Y, "se": SCHOOLS_SE, "tau_logprior": lambda t: -np.log(t)}, "tau -> 0"),
        (
            {
                "y": SCHOOLS_Y,
                "se": SCHOOLS_SE,
                "tau_logprior": half_normal(5.0),
                "X": np.column_stack([np.ones(8), np.ones(8)]),
            },
            "rank deficient",
        ),
    ],
    ids=["flat tau, k=2", "flat tau, k=1, normal mu", "1/tau prior", "collinear X"],
)
def test_improper_posteriors_raise(kwargs, match):
    with pytest.raises(ImproperPosteriorError, match=match):
        exact_posterior(**kwargs)
    assert issubclass(ImproperPosteriorError, ValueError)


def test_heavy_tail_moments_are_infinite_but_quantiles_exact():
    # flat prior and k = 3: p(tau | y) ~ tau^-2 in the tail, so E[tau] and Var[mu] diverge
    y, se = SCHOOLS_Y[:3], SCHOOLS_SE[:3]
    post = exact_posterior(y, se, tau_logprior=flat)
    assert post.tau_summary()["mean"] == np.inf
    assert post.beta_summary()["sd"][0] == np.inf
    brute = BruteForce(y, se, flat, breaks=(10, 100, 1000))
    assert post.quantile_tau(0.5) == pytest.approx(brute.tau_quantile(0.5, (1, 1000)), rel=1e-6)


def test_density_grid_is_normalised():
    post = exact_posterior(SCHOOLS_Y, SCHOOLS_SE, tau_logprior=half_cauchy(25))
    assert isinstance(post, ExactPosterior)
    # the grid is uniform in log tau: integrate tau * density over log tau
    area = integrate.trapezoid(post.tau_density * post.tau_grid, np.log(post.tau_grid))
    assert area == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": [1.0, 2.0], "se": [1.0, 0.0]}, "se finite and > 0"),
        ({"y": [1.0, 2.0], "se": [1.0]}, "2 values but se has 1"),
        ({"y": [1.0, 2.0, 3.0], "se": [1.0] * 3, "beta_sd": -1.0}, "beta_sd must be > 0"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        exact_posterior(tau_logprior=half_normal(1.0), **kwargs)


def test_bad_prior_raises():
    with pytest.raises(ValueError, match="returned nan"):
        exact_posterior(SCHOOLS_Y, SCHOOLS_SE, tau_logprior=lambda t: np.log(t - 5.0))
