"""The smallest text encoder: the mean of learned word embeddings, as in the write-up."""

import torch
from torch import nn


class MeanWordEmbedding(nn.Module):
    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, L) -> (B, dim)"""
        e = self.embedding(ids) * mask.unsqueeze(-1)
        return e.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
