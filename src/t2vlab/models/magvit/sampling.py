"""MaskGIT / MAGVIT parallel decoding. Shapes: B clips, N latent positions, K codebook size.

Every position starts unknown. An unknown position holds its condition token inside the condition region
(COMMIT: the condition is refined, not kept) and [MASK] outside. Each step samples all unknown positions, then
puts the least confident ones back to unknown so that `cosine_schedule` of them remain; the others are decided
and stay as sampled. After the last step none remain.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t2vlab.models.magvit.masking import _rand


def cosine_schedule(step: int, steps: int, n: int) -> int:
    """How many of n positions are still unknown after 0-based step `step` of `steps`: floor(n cos(pi/2 (step+1)/steps))
    (0 after the last step)."""
    if step + 1 >= steps:
        return 0
    return math.floor(n * math.cos(0.5 * math.pi * (step + 1) / steps))


def _gumbel(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    u = _rand(shape, generator, device).clamp(1e-20, 1 - 1e-7)
    return -torch.log(-torch.log(u))


@torch.no_grad()
def decode_tokens(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    num_tokens: int | tuple[int, ...],
    batch: int,
    *,
    mask_id: int,
    steps: int = 12,
    temperature: float = 1.0,
    choice_temperature: float = 4.5,
    cond_tokens: torch.Tensor | None = None,
    region: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Decode (B,N) token ids with `steps` calls of logits_fn(tokens (B,N)) -> logits (B,N,K).

    num_tokens: N, or a latent shape whose product is N. cond_tokens (B,N) and region (B,N) or (N,) bool give
    the condition (both or neither). Tokens are sampled from softmax(logits / temperature) (temperature 0 =
    argmax); the confidence of a sample is its log-probability under softmax(logits) plus
    choice_temperature * (1 - (step+1)/steps) * Gumbel noise.
    """
    n = math.prod(num_tokens) if isinstance(num_tokens, tuple | list) else int(num_tokens)
    for name, value, low in (("num_tokens", n, 1), ("batch", batch, 1), ("steps", steps, 1)):
        if value < low:
            raise ValueError(f"{name}={value} is invalid; allowed: >= {low}")
    for name, value in (("temperature", temperature), ("choice_temperature", choice_temperature)):
        if value < 0:
            raise ValueError(f"{name}={value} is invalid; allowed: >= 0")
    if (cond_tokens is None) != (region is None):
        raise ValueError("cond_tokens and region go together: give both or neither")
    if device is None:
        device = cond_tokens.device if cond_tokens is not None else generator.device if generator else "cpu"
    masked = torch.full((batch, n), mask_id, dtype=torch.long, device=device)
    if cond_tokens is None:
        unknown_value = masked
    else:
        if cond_tokens.shape != (batch, n) or region.shape not in ((batch, n), (n,)):
            raise ValueError(
                f"cond_tokens {tuple(cond_tokens.shape)} and region {tuple(region.shape)}; allowed: "
                f"({batch}, {n}) and ({batch}, {n}) or ({n},)"
            )
        region = region.to(device).bool().expand(batch, n)
        unknown_value = torch.where(region, cond_tokens.to(device).long(), masked)  # what an unknown position holds

    tokens = unknown_value
    unknown = torch.ones(batch, n, dtype=torch.bool, device=device)
    for step in range(steps):
        logits = logits_fn(tokens).float()
        if logits.dim() != 3 or logits.shape[:2] != (batch, n):
            raise ValueError(f"logits_fn returned {tuple(logits.shape)}; allowed: ({batch}, {n}, K)")
        if mask_id < logits.shape[-1]:
            logits = logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), -math.inf)  # never [MASK]
        noise = _gumbel(tuple(logits.shape), generator, device)
        sampled = (logits + temperature * noise).argmax(-1)  # Gumbel-max = a draw from softmax(logits / T)
        sampled = torch.where(unknown, sampled, tokens)
        confidence = logits.log_softmax(-1).gather(-1, sampled[..., None])[..., 0]
        confidence = confidence + choice_temperature * (1 - (step + 1) / steps) * _gumbel((batch, n), generator, device)
        confidence = torch.where(unknown, confidence, math.inf)  # decided positions are never put back
        remaining = cosine_schedule(step, steps, n)
        lowest = confidence.topk(remaining, dim=1, largest=False).indices
        unknown = torch.zeros_like(unknown).scatter(1, lowest, True)
        tokens = torch.where(unknown, unknown_value, sampled)
    return tokens
