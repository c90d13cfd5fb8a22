"""The MAGVIT masked token transformer: a bidirectional pre-norm transformer over
[task token][condition tokens][latent tokens] that predicts the codebook id of every latent position.

Shapes: B clips, N = t*h*w latent positions, K codebook size, L text words, D width.
"""

from __future__ import annotations

import torch
from torch import nn

POSITIONS = ("factorized", "full")


class MaskedTransformer(nn.Module):
    """Token ids 0..K-1 are codebook entries, K (`mask_id`) is [MASK].

    Condition tokens: with `text_vocab_size` and `text_len` each word is one token (id 0 = padding, left out of
    attention); with `num_classes` one class token, id `num_classes` (`null_class`) meaning "no class" (the
    dropped condition, also used when no class ids are given).
    """

    def __init__(
        self,
        codebook_size: int,
        latent_shape: tuple[int, int, int],
        num_tasks: int,
        text_vocab_size: int = 0,
        text_len: int = 0,
        num_classes: int = 0,
        dim: int = 256,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        positions: str = "factorized",
    ) -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"positions={positions!r} is invalid; allowed: {', '.join(POSITIONS)}")
        if len(latent_shape) != 3 or min(latent_shape) < 1:
            raise ValueError(f"latent_shape={tuple(latent_shape)} is invalid; allowed: (t, h, w), all >= 1")
        for name, value in (("codebook_size", codebook_size), ("num_tasks", num_tasks), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name}={value} is invalid; allowed: >= 1")
        if (text_vocab_size > 0) != (text_len > 0):
            raise ValueError(
                f"text_vocab_size={text_vocab_size}, text_len={text_len} are invalid; allowed: both > 0 (text "
                "condition) or both 0 (none)"
            )
        if dim % heads:
            raise ValueError(f"heads={heads} is invalid; allowed: a divisor of dim={dim}")
        self.codebook_size, self.mask_id = codebook_size, codebook_size
        self.latent_shape = tuple(latent_shape)
        self.num_tokens = latent_shape[0] * latent_shape[1] * latent_shape[2]
        self.num_tasks, self.text_len, self.num_classes = num_tasks, text_len, num_classes
        self.null_class = num_classes
        self.positions = positions

        self.token_emb = nn.Embedding(codebook_size + 1, dim)
        self.task_emb = nn.Embedding(num_tasks, dim)
        if text_len:
            self.word_emb = nn.Embedding(text_vocab_size, dim, padding_idx=0)
            self.word_pos = nn.Parameter(torch.zeros(text_len, dim))
        if num_classes:
            self.class_emb = nn.Embedding(num_classes + 1, dim)
        if positions == "factorized":
            self.pos_t, self.pos_h, self.pos_w = (nn.Parameter(torch.zeros(n, dim)) for n in latent_shape)
        else:
            self.pos = nn.Parameter(torch.zeros(self.num_tokens, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, int(dim * mlp_ratio), dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)
        self._init_weights()

    def _init_weights(self) -> None:
        tables = [self.token_emb.weight, self.task_emb.weight]
        tables += [self.word_emb.weight, self.word_pos] if self.text_len else []
        tables += [self.class_emb.weight] if self.num_classes else []
        tables += [self.pos] if self.positions == "full" else [self.pos_t, self.pos_h, self.pos_w]
        for table in tables:
            nn.init.trunc_normal_(table, std=0.02)
        if self.text_len:
            with torch.no_grad():
                self.word_emb.weight[0].zero_()

    def latent_positions(self) -> torch.Tensor:
        """Position embedding of each latent, (N,D), in (t,h,w) row-major order."""
        if self.positions == "full":
            return self.pos
        t, h, w = self.pos_t, self.pos_h, self.pos_w
        return (t[:, None, None] + h[None, :, None] + w[None, None, :]).flatten(0, 2)

    def forward(
        self,
        tokens: torch.Tensor,
        task: torch.Tensor,
        text_ids: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        class_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tokens (B,N) ids in [0,K]; task (B,); text_ids, text_mask (B,L), L <= text_len; class_ids (B,)
        -> logits (B,N,K) of the latent positions."""
        if tokens.dim() != 2 or tokens.shape[1] != self.num_tokens or tokens.dtype != torch.long:
            raise ValueError(
                f"tokens {tuple(tokens.shape)} {tokens.dtype} is invalid; allowed: (B, {self.num_tokens}) long"
            )
        B = tokens.shape[0]
        if tokens.min() < 0 or tokens.max() > self.mask_id:
            raise ValueError(f"token ids must lie in [0, {self.mask_id}] (mask_id={self.mask_id})")
        if task.shape != (B,):
            raise ValueError(f"task has shape {tuple(task.shape)}; allowed: ({B},)")
        if task.min() < 0 or task.max() >= self.num_tasks:
            raise ValueError(f"task ids must lie in [0, {self.num_tasks})")
        ones = lambda n: torch.ones(B, n, dtype=torch.bool, device=tokens.device)
        parts, keep = [self.task_emb(task)[:, None]], [ones(1)]  # (B,S_i,D) and (B,S_i) True = attended
        if text_ids is not None or text_mask is not None:
            if not self.text_len:
                raise ValueError("text_ids were given but the model has no text condition (text_len=0)")
            if text_ids is None:
                raise ValueError("text_mask was given without text_ids")
            if text_ids.dim() != 2 or text_ids.shape[0] != B or text_ids.shape[1] > self.text_len:
                raise ValueError(
                    f"text_ids has shape {tuple(text_ids.shape)}; allowed: ({B}, L) with L <= text_len={self.text_len}"
                )
            if text_mask is None:
                text_mask = text_ids != 0
            elif text_mask.shape != text_ids.shape:
                raise ValueError(f"text_mask {tuple(text_mask.shape)} must match text_ids {tuple(text_ids.shape)}")
            L = text_ids.shape[1]
            parts.append(self.word_emb(text_ids) + self.word_pos[:L])
            keep.append(text_mask.bool())
        if self.num_classes:
            if class_ids is None:
                class_ids = torch.full((B,), self.null_class, dtype=torch.long, device=tokens.device)
            if class_ids.shape != (B,) or class_ids.min() < 0 or class_ids.max() > self.null_class:
                raise ValueError(
                    f"class_ids must be ({B},) ids in [0, {self.null_class}] ({self.null_class} = no class)"
                )
            parts.append(self.class_emb(class_ids)[:, None])
            keep.append(ones(1))
        elif class_ids is not None:
            raise ValueError("class_ids were given but the model has no class condition (num_classes=0)")
        prefix = sum(p.shape[1] for p in parts)
        parts.append(self.token_emb(tokens) + self.latent_positions())
        keep.append(ones(self.num_tokens))
        ignore = ~torch.cat(keep, 1) if text_ids is not None else None  # (B,S)
        x = self.blocks(torch.cat(parts, 1), src_key_padding_mask=ignore)
        return self.head(self.norm(x[:, prefix:]))
