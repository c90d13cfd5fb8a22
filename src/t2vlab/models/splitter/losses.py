"""Splitter losses, per sample, on the predicted change (pred - start) against the true change
(img_t - img_s); target = start + true change.

base:      MSE(pred, target) + w_cos * (1 - cos(predicted change, true change))
transform: base + the rotation-generator term. The rotation R taking the true change's direction to the
           predicted change's is I + S sin a + C (cos a - 1), S = n2 n1^T - n1 n2^T, C = n1 n1^T + n2 n2^T.
           Its two parts have squared Frobenius norms |S sin a|^2 = 2 sin^2 a and |C (cos a - 1)|^2 =
           2 (1 - cos a)^2, computed from cos a alone (O(D), no matrix); both vanish when the changes are
           parallel. Together they equal |R - I|^2 = 4 (1 - cos a).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SplitterBaseLoss:
    family = "splitter"

    def __init__(self, mse_weight: float = 1.0, cos_weight: float = 1.0) -> None:
        for key, value in (("mse_weight", mse_weight), ("cos_weight", cos_weight)):
            if value < 0:
                raise ValueError(f"loss.{key}={value} is invalid; allowed: >= 0")
        self.mse_weight, self.cos_weight = mse_weight, cos_weight

    def __call__(self, pred: torch.Tensor, start: torch.Tensor, change: torch.Tensor) -> dict[str, torch.Tensor]:
        """pred, start, change (N,D) -> per-sample terms (N,) under names; "loss" is their weighted sum."""
        pred, start, change = pred.float(), start.float(), change.float()
        mse = (pred - (start + change)).square().mean(-1)
        cos = F.cosine_similarity(pred - start, change, dim=-1, eps=1e-8)
        terms = {"mse": mse, "cos": 1 - cos}
        terms["loss"] = self.mse_weight * mse + self.cos_weight * (1 - cos)
        return terms


class SplitterTransformLoss(SplitterBaseLoss):
    def __init__(self, mse_weight: float = 1.0, cos_weight: float = 1.0, sin_term_weight: float = 0.5,
                 cos_term_weight: float = 0.5) -> None:
        super().__init__(mse_weight, cos_weight)
        for key, value in (("sin_term_weight", sin_term_weight), ("cos_term_weight", cos_term_weight)):
            if value < 0:
                raise ValueError(f"loss.{key}={value} is invalid; allowed: >= 0")
        self.sin_term_weight, self.cos_term_weight = sin_term_weight, cos_term_weight

    def __call__(self, pred, start, change):
        terms = super().__call__(pred, start, change)
        c = 1 - terms["cos"]
        sin_term, cos_term = 2 * (1 - c.square()), 2 * (1 - c).square()
        terms |= {"rot_sin": sin_term, "rot_cos": cos_term}
        terms["loss"] = terms["loss"] + self.sin_term_weight * sin_term + self.cos_term_weight * cos_term
        return terms
