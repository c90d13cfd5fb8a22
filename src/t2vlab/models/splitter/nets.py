"""The Splitter variants: (text hidden states (B,L,D), start embedding (B,D), step `rise` (B,)) -> the
embedding (B,D) of the frame `rise` away from the start, as start + a predicted change.

Several predictions per prompt share one text: start (B,J,D) and rise (B,J) give (B,J,D), and what depends
on the text alone (its normalisation, the cross-attention keys and values, the text's part of the token-axis
reduction) is computed once per prompt, not once per prediction; pass the same `share_text(hidden)` to
several calls and they share it too. The rotation and regression steps turn the text towards each
prediction's start: `rotation=(v1, v2, weight)` rotates the text per prediction, the raw hidden states before
the network's LayerNorm (`rotation_space="raw"`, the reference) or the normalised ones ("normed"), and those
maps follow by low-rank updates (`text_tokens.RotatedText`). At the thesis shapes they are most of the work.

D and L come from the backbone (1280 and 77 for Kandinsky 2.2). All variants share the input encoding
(layer-normed streams, a learned projection of the start, a Linear(1, D) step encoding that carries
direction and size in one number) and the output (start + a linear head, zero-initialised so training
starts from "nothing moves").
"""

from __future__ import annotations

import torch
from torch import nn

from t2vlab.models.splitter.layers import CrossAttention, ImprovedBlock, TokenReducer, stack_tokens
from t2vlab.models.splitter.text_tokens import RotatedText, SharedText


class SplitterNet(nn.Module):
    """Shared encoding and output; subclasses define `features(text, start, step) -> (B,D)`."""

    def __init__(self, dim: int, text_len: int, dropout: float = 0.1, learnable_dropout: bool = False) -> None:
        super().__init__()
        for key, value in (("dim", dim), ("text_len", text_len)):
            if value < 1:
                raise ValueError(f"model.net.{key}={value} is invalid; allowed: >= 1 (set by the backbone)")
        if not 0 <= dropout < 1:
            raise ValueError(f"model.net.dropout={dropout} is invalid; allowed: [0, 1)")
        self.dim, self.text_len = dim, text_len
        self.text_norm, self.start_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.start_proj = nn.Linear(dim, dim)
        self.step_proj = nn.Linear(1, dim)
        self.head = nn.Linear(dim, dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def normalize_text(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.text_norm(hidden)

    def share_text(self, hidden: torch.Tensor) -> SharedText:
        """The text, for several forward calls with the same weights (its maps computed once)."""
        return SharedText(self.text_norm(hidden), raw=hidden, norm=self.text_norm)

    def forward(self, hidden: torch.Tensor | SharedText, start: torch.Tensor, rise: torch.Tensor, rotation=None,
                text_normalized: bool = False, rotation_space: str = "raw") -> torch.Tensor:
        """hidden (B,L,D) or share_text's output, start (B,D) or (B,J,D), rise (B,) or (B,J) in (-1, 1) -> next
        embedding(s), shaped like start. rotation: (v1, v2 (B,J,D), weight (B,J)) turns the text, per prediction,
        by the soft rotation v1 -> v2, in `rotation_space` (raw: the hidden states; normed: after the LayerNorm).
        text_normalized: `hidden` is already normalised (then only a normed rotation is possible)."""
        single = start.ndim == 2
        if single:
            start, rise = start[:, None], rise.reshape(-1, 1)
            if rotation is not None:
                rotation = (rotation[0][:, None], rotation[1][:, None], rotation[2].reshape(-1, 1))
        if isinstance(hidden, SharedText):
            text = hidden
        elif text_normalized:
            text = SharedText(hidden)
        else:
            text = self.share_text(hidden)  # (B,L,D)
        if rotation is not None:
            text = RotatedText(text, *rotation, space=rotation_space)
        start_tok = self.start_proj(self.start_norm(start))  # (B,J,D)
        step_tok = self.step_proj(rise[..., None].to(start.dtype))  # (B,J,D)
        out = start + self.head(self.features(text, start_tok, step_tok))
        return out[:, 0] if single else out

    def features(self, text, start: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """text a SharedText or RotatedText, start and step tokens (B,J,D) -> (B,J,D)."""
        raise NotImplementedError

    def regularizer(self, weight_reg: float, dropout_reg: float) -> torch.Tensor:
        """Sum of the concrete-dropout regularisers of every block with learnable dropout (0 without)."""
        terms = [t for m in self.modules() if isinstance(m, ImprovedBlock)
                 if (t := m.regularizer(weight_reg, dropout_reg)) is not None]
        return torch.stack(terms).sum() if terms else torch.zeros(())


class Splitter(SplitterNet):
    """Base: [text, start, step] tokens, reduced to one vector."""

    def __init__(self, dim: int, text_len: int, reduction: str = "tokens", widths: tuple[int, ...] = (64, 32, 16),
                 dropout: float = 0.1, learnable_dropout: bool = False, heads: int = 8) -> None:
        super().__init__(dim, text_len, dropout, learnable_dropout)
        self.reduce = TokenReducer(text_len + 2, dim, reduction, tuple(widths), dropout, learnable_dropout, heads)

    def features(self, text, start, step):
        return self.reduce.reduce_parts(text, [start, step])


class SplitterNext(SplitterNet):
    """Next: rotary positions on the text, cross-attention from the step and start to the text, improved
    blocks (optionally with learnable dropout) before the reduction."""

    def __init__(self, dim: int, text_len: int, heads: int = 8, reduction: str = "tokens",
                 widths: tuple[int, ...] = (64, 32, 16), dropout: float = 0.1, learnable_dropout: bool = True) -> None:
        super().__init__(dim, text_len, dropout, learnable_dropout)
        self.cross = CrossAttention(dim, heads)
        self.block = ImprovedBlock(dim, dim, dropout, learnable_dropout)
        self.reduce = TokenReducer(text_len + 3, dim, reduction, tuple(widths), dropout, learnable_dropout, heads)

    def features(self, text, start, step):
        attended = self.cross(torch.stack([step, start], dim=2), text)  # (B,J,2,D)
        return self.reduce.reduce_parts(text, [self.block(start), self.block(attended[:, :, 0]),
                                               self.block(attended[:, :, 1])])


class SplitterDual(SplitterNet):
    """Dual: a base branch over [text, start, step] (optionally with self-attention: Dual CSA) and a cross
    branch over [cross-attn(text, step), cross-attn(text, start)], each reduced, then merged."""

    def __init__(self, dim: int, text_len: int, heads: int = 8, self_attention: bool = False,
                 reduction: str = "tokens", widths: tuple[int, ...] = (64, 32, 16), dropout: float = 0.1,
                 learnable_dropout: bool = False) -> None:
        super().__init__(dim, text_len, dropout, learnable_dropout)
        self.self_attention = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True,
                                                         norm_first=True) if self_attention else None
        self.base_reduce = TokenReducer(text_len + 2, dim, reduction, tuple(widths), dropout, learnable_dropout, heads)
        self.cross_step, self.cross_start = CrossAttention(dim, heads), CrossAttention(dim, heads)
        self.cross_block = ImprovedBlock(dim, dim, dropout, learnable_dropout)
        self.merge = nn.Sequential(ImprovedBlock(2 * dim, dim, dropout, learnable_dropout),
                                   ImprovedBlock(dim, dim, dropout, learnable_dropout))

    def features(self, text, start, step):
        B, J, D = start.shape
        if self.self_attention is not None:  # mixes the text with each prediction's tokens: per prediction
            base = stack_tokens(text, [start, step])  # (B,J,L+2,D)
            base = self.base_reduce(self.self_attention(base.flatten(0, 1).view(B * J, -1, D)).view(B, J, -1, D))
        else:
            base = self.base_reduce.reduce_parts(text, [start, step])  # (B,J,D)
        # keys/values of the text once per prompt, one query per prediction
        cross = (self.cross_block(self.cross_step(step[:, :, None], text)[:, :, 0])
                 + self.cross_block(self.cross_start(start[:, :, None], text)[:, :, 0])) / 2
        return self.merge(torch.cat([base, cross], dim=-1))
