"""The smallest text encoders: learned word embeddings pooled over the prompt, order ignored.

`mean` is the write-up's. `sum` makes every word a fixed offset: "diagonally" adds the same vector to
"up-left" as to "up-right", so a network that learns to ignore it on seen prompts ignores it on unseen
ones too; under `mean` the same word shifts each prompt differently (its weight depends on the length).
"""

import torch
from torch import nn


class MeanWordEmbedding(nn.Module):
    def __init__(self, vocab_size: int, dim: int, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in ("mean", "sum"):
            raise ValueError(f"text pooling={pooling!r} is invalid; allowed: 'mean', 'sum'")
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, L) -> (B, dim)"""
        e = (self.embedding(ids) * mask.unsqueeze(-1)).sum(1)
        return e if self.pooling == "sum" else e / mask.sum(1, keepdim=True).clamp(min=1)
