"""Fréchet distance between two Gaussians fitted to feature sets, in float64.

d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)). The last trace is the sum of the square
roots of the eigenvalues of S_a S_b, which are real and non-negative for covariance matrices (tiny negative
or imaginary parts are rounding and are dropped). This avoids a full matrix square root and is stable when
N is smaller than the feature size, where the covariances are singular.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """features (N, d) -> mean (d,), unbiased covariance (d, d), both float64."""
    f = torch.as_tensor(features).to(torch.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features of shape {tuple(f.shape)} are invalid; allowed: (N, d) with N >= 2")
    return f.mean(0), torch.cov(f.T)


def frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b) -> float:
    mean_term = (mu_a - mu_b).square().sum()
    eig = torch.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = eig.real.clamp(min=0).sqrt().sum()
    return float(mean_term + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt)


def frechet_distance(features_a, features_b) -> float:
    """features (N_a, d) and (N_b, d) -> Fréchet distance of their Gaussian fits."""
    a, b = torch.as_tensor(features_a), torch.as_tensor(features_b)
    if a.ndim == b.ndim == 2 and 2 <= max(len(a), len(b)) < a.shape[1] and min(len(a), len(b)) >= 2:
        return frechet_distance_few(a, b)
    return frechet_distance_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def frechet_distance_few(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussian fits of two small feature sets (n, d) and (m, d), n, m >= 2, exactly.

    With X_a the centred features scaled by 1/sqrt(n-1), S_a = X_a^T X_a. The non-zero eigenvalues of
    S_a S_b equal those of M M^T with M = X_a X_b^T (n x m), i.e. the squared singular values of M, so
    tr((S_a S_b)^(1/2)) is the sum of M's singular values: no d x d matrix is ever formed.
    """
    a, b = a.double(), b.double()
    xa = (a - a.mean(0)) / math.sqrt(len(a) - 1)
    xb = (b - b.mean(0)) / math.sqrt(len(b) - 1)
    trace_sqrt = torch.linalg.svdvals(xa @ xb.T).sum()
    mean_term = (a.mean(0) - b.mean(0)).square().sum()
    return float(mean_term + xa.square().sum() + xb.square().sum() - 2 * trace_sqrt)

