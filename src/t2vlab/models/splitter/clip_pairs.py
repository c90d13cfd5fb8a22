"""Which predictions a Splitter training step makes from a clip, as the reference trainer chooses them, batched
over clips of different lengths.

Frames: from a clip of n frames, K = min(n, max_batch) are sampled: the first, the last and K - 2 distinct
random ones between, sorted (all n frames when n <= max_batch).

Ways: the clip forwards (frames f_0 < ... < f_{K-1}, sign +1) and, with `reverse`, backwards (f_{K-1} > ... > f_0,
sign -1). In a way w_0, ..., w_{K-1}, a frame's offset is d_k = |w_k - w_0|.
- base predictions: w_k from the way's start for k = 1..K-1, rise = sign * d_k / n;
- pairs (the rotation and regression steps): s = w_a, t = w_b for 1 <= a < b <= K-1 (both after the way's first
  frame), rise = sign * (d_b - d_a) / (n - 1) (the reference divides these by the last frame's index, and the
  base rises by the clip length).
  pairs="all" (the reference): every a < b, in the order (a, b); the rotation step keeps the first K - 1 of
  them when there are more than max_batch - 1 (the reference's batch-size control), the regression step keeps
  them all. pairs="consecutive" (this project's earlier choice): (a, a + 1) only.
"""

from __future__ import annotations

import torch

PAIRS = ("all", "consecutive")


def sample_frames(lengths: torch.Tensor, max_batch: int, generator: torch.Generator | None = None):
    """(B,) clip lengths -> idx (B,K) sorted frame indices, K = min(max(lengths), max_batch), and count (B,) the
    frames sampled per clip: min(n, max_batch). Slots from count on repeat the last frame (padding)."""
    B, T = len(lengths), int(lengths.max())
    count = lengths.clamp(max=max_batch)
    K = int(count.max())
    pos = torch.arange(T, device=lengths.device)[None]
    inside = (pos >= 1) & (pos <= lengths[:, None] - 2)
    scores = torch.rand(B, T, device=lengths.device, generator=generator)
    scores = torch.where(inside, scores, torch.full_like(scores, -1.0))
    idx = (lengths - 1)[:, None].repeat(1, K)
    if K > 2:
        top, mid = scores.topk(K - 2, dim=1)
        mid = torch.where(top >= 0, mid, torch.full_like(mid, T)).sort(dim=1).values  # chosen ones first, sorted
        slot = torch.arange(1, K - 1, device=lengths.device)[None]
        idx[:, 1 : K - 1] = torch.where(slot < count[:, None] - 1, mid, idx[:, 1 : K - 1])
    idx[:, 0] = 0
    return idx, count


def way_order(count: torch.Tensor, K: int, way: str) -> torch.Tensor:
    """(B,K) slot of each way position: forward k -> k; back k -> count - 1 - k (padding slots stay in place)."""
    k = torch.arange(K, device=count.device)[None].expand(len(count), -1)
    if way == "forward":
        return k
    return torch.where(k < count[:, None], count[:, None] - 1 - k, k)


def pair_table(K: int, rule: str, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Way positions (a, b) of every pair a clip of K sampled frames can have, in the reference's order."""
    if rule not in PAIRS:
        raise ValueError(f"model.pairs={rule} is invalid; allowed: {', '.join(PAIRS)}")
    if rule == "all":
        pairs = [(a, b) for a in range(1, K) for b in range(a + 1, K)]
    else:
        pairs = [(a, a + 1) for a in range(1, K - 1)]
    a, b = (torch.tensor([p[i] for p in pairs], dtype=torch.long, device=device) for i in (0, 1))
    return a, b


def pair_mask(count: torch.Tensor, a: torch.Tensor, b: torch.Tensor, rule: str, max_batch: int,
              capped: bool) -> torch.Tensor:
    """(B,P) which table pairs each clip uses: both frames sampled (b < count); with `capped` and rule="all", only
    the first count - 1 when the clip has more than max_batch - 1 pairs."""
    mask = b[None] < count[:, None]
    if capped and rule == "all":
        total = mask.sum(1, keepdim=True)
        rank = mask.cumsum(1) - 1
        over = total > max_batch - 1
        mask = mask & (~over | (rank < (count[:, None] - 1)))
    return mask


def compact(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,P) mask -> (B,J) positions of the True entries first (in order), J the most any row has, and their mask:
    the predictions to make, without computing the masked-out ones."""
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    J = int(mask.sum(1).max()) if mask.numel() else 0
    order = order[:, :J]
    return order, mask.gather(1, order)
