"""Splitter losses, per sample, on the predicted change u = pred - start against the true change
v = img_t - img_s (target = start + v). The reference computes them on the negated differences
(img_s - img_t, start - pred); every term below is unchanged by negating both.

base (the reference's CombinedLoss_base, weights 0.5 and 0.5):
    mse_weight * mean_d (pred - target)_d^2 + cos_weight * (1 - cos(u, v))
transform (the reference's CombinedLoss_cos_trans with TransformationBasedRotationLoss, alpha 0.7, beta 0.3):
    base + transform_weight * T(v, u), the write-up's 0.5 (cosine + T) + 0.5 MSE by default, where
    for the rotation taking v's direction to u's, n1 = v/|v|, n2 = the unit part of u orthogonal to n1,
    a = angle(v, u), A = (n2 n1^T - n1 n2^T) sin a and B = (n1 n1^T + n2 n2^T)(cos a - 1) (R = I + A + B):
      term="generator" (the reference): T = alpha mean_d (A 1)_d^2 + beta mean_d (B 1)_d^2, 1 the all-ones vector,
        in O(D): A 1 = sin a (n2 (n1.1) - n1 (n2.1)), B 1 = (cos a - 1)(n1 (n1.1) + n2 (n2.1)). It equals
        (alpha sin^2 a + beta (1 - cos a)^2) (s1^2 + s2^2) / D with s_i = n_i.1: it depends on how the rotation
        plane lies against the all-ones direction, not on the cosine alone. Pairs with |v| < 1e-8 are masked
        (T = 0), and exactly parallel or antiparallel pairs have a = 0, as in the reference.
      term="frobenius" (this project's earlier term): T = alpha |A|_F^2 + beta |B|_F^2 = 2 alpha sin^2 a
        + 2 beta (1 - cos a)^2, a function of cos a alone: a reweighting of the cosine term (with alpha = beta
        it is 4 alpha (1 - cos a)), not the reference's loss.
Means over d (not the reference's sums) keep the same ratio between terms: the reference sums every term
over d alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TERMS = ("generator", "frobenius")
_EPS = 1e-8


def _check_weights(**weights: float) -> None:
    for key, value in weights.items():
        if value < 0:
            raise ValueError(f"loss.{key}={value} is invalid; allowed: >= 0")


class SplitterBaseLoss:
    family = "splitter"

    def __init__(self, mse_weight: float = 0.5, cos_weight: float = 0.5) -> None:
        _check_weights(mse_weight=mse_weight, cos_weight=cos_weight)
        self.mse_weight, self.cos_weight = mse_weight, cos_weight

    def __call__(self, pred: torch.Tensor, start: torch.Tensor, change: torch.Tensor) -> dict[str, torch.Tensor]:
        """pred, start, change (N,D) -> per-sample terms (N,) under names; "loss" is their weighted sum."""
        pred, start, change = pred.float(), start.float(), change.float()
        mse = (pred - (start + change)).square().mean(-1)
        cos = F.cosine_similarity(pred - start, change, dim=-1, eps=_EPS)
        terms = {"mse": mse, "cos": 1 - cos}
        terms["loss"] = self.mse_weight * mse + self.cos_weight * (1 - cos)
        return terms


def rotation_generator_parts(v: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The reference's rotation from v's direction to u's, per row of v, u (N,D), as in its RotationVectors:
    n1 = v / (|v| + eps), n2 = w / (|w| + eps) with w = u - (n1.u) n1, a = arccos of the clamped cosine, set to 0
    where |cos| > 1 - eps. -> n1, n2 (N,D), sin a, cos a (N,1)."""
    v, u = v.float(), u.float()
    n1 = v / (v.norm(dim=-1, keepdim=True) + _EPS)
    w = u - (n1 * u).sum(-1, keepdim=True) * n1
    n2 = w / (w.norm(dim=-1, keepdim=True) + _EPS)
    cos = ((n1 * (u / (u.norm(dim=-1, keepdim=True) + _EPS))).sum(-1, keepdim=True)).clamp(-1, 1)
    angle = torch.where(cos.abs() > 1 - _EPS, torch.zeros_like(cos), torch.acos(cos))
    return n1, n2, angle.sin(), angle.cos()


def generator_term(v: torch.Tensor, u: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """alpha mean_d (A 1)^2 + beta mean_d (B 1)^2 per row, in O(D); 0 where |v| < 1e-8 (the reference's mask)."""
    n1, n2, sin, cos = rotation_generator_parts(v, u)
    s1, s2 = n1.sum(-1, keepdim=True), n2.sum(-1, keepdim=True)
    a_one = sin * (n2 * s1 - n1 * s2)  # A 1
    b_one = (cos - 1) * (n1 * s1 + n2 * s2)  # B 1
    term = alpha * a_one.square().mean(-1) + beta * b_one.square().mean(-1)
    return torch.where(v.float().norm(dim=-1) > _EPS, term, torch.zeros_like(term))


def frobenius_term(v: torch.Tensor, u: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """alpha |A|_F^2 + beta |B|_F^2 = 2 alpha sin^2 a + 2 beta (1 - cos a)^2 per row: a function of cos a alone."""
    cos = F.cosine_similarity(u.float(), v.float(), dim=-1, eps=_EPS)
    return 2 * alpha * (1 - cos.square()) + 2 * beta * (1 - cos).square()


class SplitterTransformLoss(SplitterBaseLoss):
    def __init__(self, mse_weight: float = 0.5, cos_weight: float = 0.5, transform_weight: float = 0.5,
                 alpha: float = 0.7, beta: float = 0.3, term: str = "generator") -> None:
        super().__init__(mse_weight, cos_weight)
        _check_weights(transform_weight=transform_weight, alpha=alpha, beta=beta)
        if term not in TERMS:
            raise ValueError(f"loss.term={term} is invalid; allowed: {', '.join(TERMS)}")
        self.transform_weight, self.alpha, self.beta, self.term = transform_weight, alpha, beta, term

    def __call__(self, pred, start, change):
        terms = super().__call__(pred, start, change)
        u = pred.float() - start.float()
        term = generator_term if self.term == "generator" else frobenius_term
        terms["transform"] = term(change, u, self.alpha, self.beta)
        terms["loss"] = terms["loss"] + self.transform_weight * terms["transform"]
        return terms
