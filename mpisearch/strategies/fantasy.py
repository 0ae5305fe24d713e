"""Expected improvement averaged over the outcomes of the points in flight (the "fantasies" of
Snoek et al. 2012, "Practical Bayesian optimization of machine learning algorithms").

The pending points' scores are drawn N_FANTASIES times from the GP's posterior (fixed standard
normal draws from the proposal's seeded generator, so the acquisition is deterministic and smooth
in ``x``). Given a draw ``s`` of the pending scores, the value at ``x`` is Gaussian with mean
``mu(x) + c(x) S^-1 (s - mu_P)`` and variance ``var(x) - c(x) S^-1 c(x)'`` (``c``: the posterior
covariance of ``x`` with the pending points, ``S``: the pending points' covariance with noise;
the variance is the same for every draw), and the incumbent is ``max(best, max(s))``. The
acquisition is the log of the mean of those closed-form EIs, with its gradient. Near a pending
point the conditioned variance is small and the incumbent already holds that point's outcome, so
a proposal keeps away from the points in flight by as much as the GP's correlation says.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve, cholesky
from scipy.special import log_ndtr, logsumexp

from .gp import GP, JITTER, log_h, matern, matern_grad

# Draws of the pending scores. bench_bayes.py (4 in flight, 20 seeds) was measured with 128 only;
# an ask at 500 observations stays ~0.03 s of CPU with them (the local candidates are few).
N_FANTASIES = 128


class Fantasised:
    """``gp``'s log EI averaged over draws of the scores of the pending points ``P`` (feature
    rows); ``rng`` draws them. The same interface as :class:`GP` for the acquisition."""

    def __init__(self, gp: GP, P: np.ndarray, best: float, rng: np.random.Generator) -> None:
        self.gp, self.P, self.X = gp, P, gp.X
        h = gp.hyper
        self.KinvXP = gp.K_inv @ matern(gp.X, P, h)  # n x k
        mu_P, _ = gp.predict(P)
        S = matern(P, P, h) - matern(P, gp.X, h) @ self.KinvXP + h.noise * np.eye(len(P))
        self.L = _cholesky(S)
        self.draws = mu_P[:, None] + self.L @ rng.standard_normal((len(P), N_FANTASIES))  # k x draws
        self.b = cho_solve((self.L, True), self.draws - mu_P[:, None])  # S^-1 (s - mu_P)
        self.incumbent = np.maximum(best, self.draws.max(0))

    def log_ei(self, F: np.ndarray, best: float) -> np.ndarray:
        """``best`` is the GP's (kept for the interface); each draw has its own incumbent."""
        m = self.gp.moments(F)
        c = matern(F, self.P, self.gp.hyper) - m.k @ self.KinvXP
        a = cho_solve((self.L, True), c.T).T
        sd_c = np.sqrt(np.maximum(m.var - (a * c).sum(1), 1e-12))
        z = (m.mean[:, None] + c @ self.b - self.incumbent[None, :]) / sd_c[:, None]
        return logsumexp(log_h(z), axis=1) - np.log(N_FANTASIES) + np.log(sd_c)

    def log_ei_grad(self, F: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`log_ei` and its gradient with respect to the rows of F."""
        m = self.gp.moments_grad(F)
        kP, dkP = matern_grad(F, self.P, self.gp.hyper)
        c = kP - m.k @ self.KinvXP  # m x k
        dc = dkP - np.einsum("mnd,nk->mkd", m.dk, self.KinvXP)
        a = cho_solve((self.L, True), c.T).T
        sd_c = np.sqrt(np.maximum(m.var - (a * c).sum(1), 1e-12))
        dsd = (m.dvar - 2 * np.einsum("mk,mkd->md", a, dc)) / (2 * sd_c[:, None])
        z = (m.mean[:, None] + c @ self.b - self.incumbent[None, :]) / sd_c[:, None]  # m x draws
        dmean = m.dmean[:, None, :] + np.einsum("mkd,kj->mjd", dc, self.b)
        lh = log_h(z)
        total = logsumexp(lh, axis=1, keepdims=True)
        share = np.exp(lh - total)  # each draw's part of the mean EI
        ratio = np.exp(log_ndtr(z) - lh)  # d log h / dz
        dz = (dmean - z[:, :, None] * dsd[:, None, :]) / sd_c[:, None, None]
        grad = np.einsum("mj,mjd->md", share * ratio, dz) + dsd / sd_c[:, None]
        return total[:, 0] - np.log(N_FANTASIES) + np.log(sd_c), grad


def _cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, with jitter grown tenfold until it succeeds (points in flight can
    nearly coincide when the GP's noise is tiny)."""
    jitter = JITTER
    while True:
        try:
            return cholesky(S + jitter * np.eye(len(S)), lower=True)
        except np.linalg.LinAlgError:
            jitter *= 10


__all__ = ["N_FANTASIES", "Fantasised"]
