"""Local penalisation of log expected improvement around points in flight (González et al.
2016, "Batch Bayesian optimization via local penalization").

The GP sees only scored points, so with nothing in flight nearby a proposal is the sequential
choice; each pending point ``p`` multiplies EI by ``Phi((L * r - (M - mu(p))) / sd(p))``, where
``r`` is the distance to ``p`` in length scales, ``M`` the best standardised score, ``mu`` and
``sd`` the GP's prediction and ``L`` an estimate of the largest slope of the GP's mean (per
length scale): a ball of radius about ``(M - mu(p)) / L`` around ``p`` where the optimum is
unlikely to be, softened by the GP's uncertainty at ``p``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr

from .gp import GP

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# The slope estimate never below MIN_LIPSCHITZ (standardised score per length scale): a flat mean
# (few points) would otherwise penalise nothing.
MIN_LIPSCHITZ = 1e-3


class Penalised:
    """``gp``'s log EI plus the log penalties of the pending points ``P`` (feature rows);
    ``slope_at``: feature rows where the mean's slope is measured."""

    def __init__(self, gp: GP, P: np.ndarray, best: float, slope_at: np.ndarray) -> None:
        self.gp, self.P, self.X = gp, P, gp.X
        mu, sd = gp.predict(P)
        self.gap = np.maximum(best - mu, 0.0)
        self.sd = sd
        self.lipschitz = max(float(np.max(np.linalg.norm(gp.mean_grad(slope_at) * gp.hyper.length_scales, axis=1))),
                             MIN_LIPSCHITZ)

    def log_ei(self, F: np.ndarray, best: float) -> np.ndarray:
        return self.gp.log_ei(F, best) + self._log_penalty(F)[0]

    def log_ei_grad(self, F: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        value, grad = self.gp.log_ei_grad(F, best)
        pv, pg = self._log_penalty(F, with_grad=True)
        return value + pv, grad + pg

    def _log_penalty(self, F: np.ndarray, with_grad: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        ls = self.gp.hyper.length_scales
        diff = (F[:, None, :] - self.P[None, :, :]) / ls  # m x p x d, in length scales
        r = np.sqrt((diff * diff).sum(-1))
        z = (self.lipschitz * r - self.gap[None, :]) / self.sd[None, :]
        log_phi = log_ndtr(z)
        if not with_grad:
            return log_phi.sum(1), None
        ratio = np.exp(-0.5 * z * z - LOG_SQRT_2PI - log_phi)  # d log Phi / dz
        dz_dr = self.lipschitz / self.sd[None, :]
        w = ratio * dz_dr / np.maximum(r, 1e-12)  # times diff / ls: d r / d F
        return log_phi.sum(1), np.einsum("mp,mpd->md", w, diff) / ls


__all__ = ["Penalised"]
