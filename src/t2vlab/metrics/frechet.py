"""Fréchet distance between two Gaussians fitted to feature sets, in float64.

d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)). The last trace is the sum of the square
roots of the eigenvalues of S_a S_b, which are real and non-negative for covariance matrices (tiny negative
or imaginary parts are rounding and are dropped). This avoids a full matrix square root and is stable when
N is smaller than the feature size, where the covariances are singular.
"""

from __future__ import annotations

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
    return frechet_distance_from_stats(*gaussian_stats(features_a), *gaussian_stats(features_b))
