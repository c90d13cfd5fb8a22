"""The rotation that turns one embedding's direction into another's, applied in O(D) per vector.

For v1 -> v2: n1 = v1/|v1|, n2 = the unit part of v2 orthogonal to n1, a = the angle between them;
R = I + (n2 n1^T - n1 n2^T) sin a + (n1 n1^T + n2 n2^T)(cos a - 1) rotates in the v1-v2 plane and fixes
everything orthogonal to it. R x is computed from the two dot products n1.x and n2.x, never from a DxD
matrix. All functions are batched over leading dimensions: v1, v2 (B,D); x (B,D) or (B,L,D).
(The reference code applied x @ R to row vectors, i.e. R^T, turning vectors away from the target.)
"""

from __future__ import annotations

import torch

EPS = 1e-8


def rotation_plane(v1: torch.Tensor, v2: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """-> n1, n2 (B,D) and cos a, sin a (B,1). Parallel or zero vectors give n2 = 0 (R = I)."""
    v1, v2 = v1.float(), v2.float()
    n1 = v1 / v1.norm(dim=-1, keepdim=True).clamp_min(EPS)
    along = (n1 * v2).sum(-1, keepdim=True)
    ortho = v2 - along * n1
    ortho_norm = ortho.norm(dim=-1, keepdim=True)
    v2_norm = v2.norm(dim=-1, keepdim=True).clamp_min(EPS)
    # an orthogonal part that is numerically zero means parallel (or antiparallel) vectors: no unique plane
    planar = ortho_norm > 1e-6 * v2_norm
    n2 = torch.where(planar, ortho / ortho_norm.clamp_min(EPS), torch.zeros_like(ortho))
    cos = torch.where(planar, (along / v2_norm).clamp(-1, 1), torch.ones_like(along))
    sin = torch.where(planar, ortho_norm / v2_norm, torch.zeros_like(along))
    return n1, n2, cos, sin


def rotate(x: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """R(v1 -> v2) x, for x (B,D) or (B,L,D)."""
    n1, n2, cos, sin = rotation_plane(v1, v2)
    tokens = x.ndim == 3
    if tokens:  # broadcast the plane over the token axis
        n1, n2, cos, sin = n1[:, None], n2[:, None], cos[:, None], sin[:, None]
    xf = x.float()
    p1, p2 = (xf * n1).sum(-1, keepdim=True), (xf * n2).sum(-1, keepdim=True)
    out = xf + sin * (n2 * p1 - n1 * p2) + (cos - 1) * (n1 * p1 + n2 * p2)
    return out.to(x.dtype)


def soft_rotate(x: torch.Tensor, v1: torch.Tensor, v2: torch.Tensor, c: torch.Tensor | float,
                power: float = 1.0) -> torch.Tensor:
    """X' = (1 - c^p) X + c^p (R X), with the blend c clipped to [0, 1] (the reference let it go negative)."""
    c = torch.as_tensor(c, dtype=torch.float32, device=x.device).clamp(0, 1)
    if c.ndim == 1:  # one blend per item
        c = c.view(-1, *([1] * (x.ndim - 1)))
    w = c**power
    return ((1 - w) * x.float() + w * rotate(x, v1, v2).float()).to(x.dtype)


def rotation_matrix(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """The dense R (B,D,D): a reference for tests and small analyses, never for a training step."""
    n1, n2, cos, sin = rotation_plane(v1, v2)
    eye = torch.eye(v1.shape[-1], device=v1.device).expand(len(v1), -1, -1)
    outer = lambda a, b: a[:, :, None] * b[:, None, :]  # noqa: E731
    return eye + (outer(n2, n1) - outer(n1, n2)) * sin[..., None] + (outer(n1, n1) + outer(n2, n2)) * (
        cos[..., None] - 1)
