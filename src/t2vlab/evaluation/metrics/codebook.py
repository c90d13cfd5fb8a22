"""How a tokenizer uses its codebook: perplexity and the fraction of codes in use, from token ids."""

from __future__ import annotations

import math

import torch


def codebook_usage(ids: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """ids (any shape) in [0, K) -> perplexity exp(H) of the code frequencies (K when all are equally used),
    the fraction of the K codes that occur, and the bits a clip of these tokens takes (tokens x log2 K)."""
    counts = torch.bincount(ids.flatten().long(), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "codes_used": float((counts > 0).double().mean()),
            "codes_used_count": int((counts > 0).sum()), "entropy_bits": float(entropy / math.log(2))}
