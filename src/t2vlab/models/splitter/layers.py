"""Building blocks of the Splitter variants. Shapes: B items, L text tokens, D embedding width."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RotaryEmbedding(nn.Module):
    """Rotary positional embedding: feature pairs (2i, 2i+1) of the token at position m turn by m * theta_i,
    theta_i = base^(-2i/D). Relative positions then show up in dot products between tokens. (The reference
    code's "RoPE" was a fixed cosine table times a fixed matrix.)"""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary embedding needs an even width; got D={dim}")
        self.register_buffer("inv_freq", base ** (-torch.arange(0, dim, 2).float() / dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., L, D) -> same shape, the token at position m turned by m * theta."""
        angles = torch.arange(x.shape[-2], device=x.device).float()[:, None] * self.inv_freq  # (L, D/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class CrossAttention(nn.Module):
    """Multi-head attention from per-prediction query tokens (step, start) to the text, with a residual.

    Rotary positions are applied to the keys (where RoPE belongs: the query tokens have no position), so the
    score of a text token depends on where it sits. The text may be shared by all of a prompt's predictions
    (keys and values computed once) or rotated per prediction (a RotatedText: keys and values by a rank-2
    update). (The reference's "cross-attention" attended to a single token, so it reduced to a projection.)
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.heads={heads} is invalid; allowed: a divisor of the embedding width {dim}")
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.rope = RotaryEmbedding(dim // heads) if (dim // heads) % 2 == 0 else None

    def forward(self, queries: torch.Tensor, text) -> torch.Tensor:
        """queries (B,J,Q,D); text (B,L,D) shared, or a RotatedText with J rotations -> (B,J,Q,D)."""
        B, J, Q, D = queries.shape
        H = self.heads
        if isinstance(text, torch.Tensor):
            k, v = self.k(text)[:, None], self.v(text)[:, None]  # (B,1,L,D): once per prompt
        else:
            k, v = text.linear(self.k), text.linear(self.v)  # (B,J,L,D)
        split = lambda t: t.unflatten(-1, (H, D // H)).transpose(-3, -2)  # (...,L,D) -> (...,H,L,D/H)  # noqa: E731
        q, k, v = split(self.q(self.norm_q(queries))), split(k), split(v)
        if self.rope is not None:
            k = self.rope(k)
        scores = torch.einsum("bjhqd,bjhld->bjhql", q, k.expand(B, J, *k.shape[2:])) * (D // H) ** -0.5
        out = torch.einsum("bjhql,bjhld->bjhqd", scores.softmax(-1), v.expand(B, J, *v.shape[2:]))
        return queries + self.o(out.transpose(-3, -2).flatten(-2))


class ConcreteDropout(nn.Module):
    """Dropout whose rate is learned (Gal et al., "Concrete Dropout"): the mask is a relaxed Bernoulli sample,
    so the loss has a gradient with respect to p. `regularizer()` is the entropy term that keeps p from
    collapsing to 0; the module adds it to the loss. (The reference read p with .item(), so it never learned.)"""

    def __init__(self, p: float = 0.1, temperature: float = 0.1) -> None:
        super().__init__()
        if not 0 < p < 1:
            raise ValueError(f"learnable dropout p={p} is invalid; allowed: (0, 1)")
        self.logit = nn.Parameter(torch.tensor(math.log(p / (1 - p))))
        self.temperature = temperature

    @property
    def p(self) -> torch.Tensor:
        return torch.sigmoid(self.logit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        # relaxed Bernoulli(p) mask: sigmoid((logit p + logit u) / t), u uniform; logit p is the parameter itself
        u = torch.rand_like(x)
        keep = torch.sigmoid(-(self.logit + torch.logit(u, eps=1e-6)) / self.temperature)
        return x * keep / (1 - self.p)

    def regularizer(self) -> torch.Tensor:
        """Negative Bernoulli entropy of the rate (minimised at p = 0.5)."""
        p = self.p
        return p * torch.log(p) + (1 - p) * torch.log(1 - p)


class ImprovedBlock(nn.Module):
    """Linear -> GELU -> LayerNorm -> dropout, plus a projected residual; dropout fixed or learnable."""

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.1, learnable_dropout: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
        self.norm = nn.LayerNorm(d_out)
        self.drop = ConcreteDropout(dropout) if learnable_dropout else nn.Dropout(dropout)
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.drop(self.norm(F.gelu(self.lin(x))))


class TokenReducer(nn.Module):
    """(B,N,D) tokens -> (B,D).

    "tokens": the reference's reduction, a stack of blocks along the token axis, per feature
    (N -> widths[0] -> ... -> 1): each output feature mixes the same feature of all tokens.
    "attention": a learned query attends over the tokens (features mix through the value projection).
    """

    def __init__(self, num_tokens: int, dim: int, mode: str = "tokens", widths: tuple[int, ...] = (64, 32, 16),
                 dropout: float = 0.1, learnable_dropout: bool = False, heads: int = 4) -> None:
        super().__init__()
        if mode not in ("tokens", "attention"):
            raise ValueError(f"model.reduction={mode} is invalid; allowed: tokens, attention")
        self.mode = mode
        if mode == "tokens":
            sizes = [num_tokens, *widths]
            self.blocks = nn.Sequential(*(ImprovedBlock(a, b, dropout, learnable_dropout)
                                          for a, b in zip(sizes[:-1], sizes[1:], strict=True)))
            self.last = nn.Linear(sizes[-1], 1)
        else:
            self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
            self.pool = CrossAttention(dim, heads)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., N, D) -> (..., D)."""
        lead = tokens.shape[:-2]
        tokens = tokens.reshape(-1, *tokens.shape[-2:])
        if self.mode == "tokens":
            out = self.last(self.blocks(tokens.transpose(1, 2))).squeeze(-1)  # (M,D,N) -> (M,D)
        else:
            out = self.pool(self.query[:, None].expand(len(tokens), 1, 1, -1), tokens)[:, 0, 0]
        return out.view(*lead, -1)
