"""Building blocks of the Splitter variants. Shapes: B items, L text tokens, D embedding width."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from t2vlab.models.splitter.text_tokens import RotatedText, SharedText


class RotaryEmbedding(nn.Module):
    """Rotary positional embedding: feature pairs (2i, 2i+1) of the token at position m turn by m * theta_i,
    theta_i = base^(-2i/D). Relative positions then show up in dot products between tokens. (The reference
    code's "RoPE" was a fixed cosine table times a fixed matrix.)"""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary embedding needs an even width; got D={dim}")
        self.register_buffer("inv_freq", base ** (-torch.arange(0, dim, 2).float() / dim), persistent=False)

    def table(self, length: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of m * theta_i, (length, D/2)."""
        angles = torch.arange(length, device=device).float()[:, None] * self.inv_freq.to(device)
        return angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., L, D) -> same shape, the token at position m turned by m * theta."""
        cos, sin = (t.to(x.dtype) for t in self.table(x.shape[-2], x.device))
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class CrossAttention(nn.Module):
    """Multi-head attention from per-prediction query tokens (step, start) to the text, with a residual.

    Rotary positions are applied to the keys (where RoPE belongs: the query tokens have no position), so the
    score of a text token depends on where it sits. The text may be shared by all of a prompt's predictions
    (a SharedText: keys and values computed once) or rotated per prediction (a RotatedText: keys and values by
    a rank-2 update). (The reference's "cross-attention" attended to a single token, so it reduced to a projection.)
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.heads={heads} is invalid; allowed: a divisor of the embedding width {dim}")
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.rope = RotaryEmbedding(dim // heads) if (dim // heads) % 2 == 0 else None

    def forward(self, queries: torch.Tensor, text: SharedText | RotatedText) -> torch.Tensor:
        """queries (B,J,Q,D); text a SharedText, or a RotatedText with J rotations -> (B,J,Q,D).

        Keys and values come from the shared text once per prompt. A rotated token r_l (T_l - beta) + beta + A_l u1
        + B_l u2 (text_tokens.py) has the key r_l (K_l - K_beta) + K_beta + A_l Wk u1 + B_l Wk u2 (K_beta = Wk beta +
        bias; r = 1 for a rotation after the LayerNorm), so the scores get the same updates with q.rope_l(.) of
        each direction, and the output (p r) V + sum(p (1 - r)) V_beta + (p.A) Wv u1 + (p.B) Wv u2: nothing of size
        L x D per prediction."""
        B, J, Q, D = queries.shape
        H, dh = self.heads, D // self.heads
        rotated = isinstance(text, RotatedText)
        shared = text.shared if rotated else text
        heads = lambda t: t.unflatten(-1, (H, dh)).transpose(-3, -2)  # (B,L,D) -> (B,H,L,dh)  # noqa: E731
        k, v = heads(shared.linear(self.k)), heads(shared.linear(self.v))
        if self.rope is not None:
            k = self.rope(k)
        q = self.q(self.norm_q(queries)).unflatten(-1, (H, dh)).permute(0, 3, 1, 2, 4)  # (B,H,J,Q,dh)
        scores = (q.flatten(2, 3) @ k.transpose(-1, -2)).unflatten(2, (J, Q))  # (B,H,J,Q,L)
        L = k.shape[-2]
        if rotated:
            per_head = lambda n, layer: (n @ layer.weight.T.to(n)).unflatten(-1, (H, dh)).transpose(1, 2)  # noqa: E731
            A, Bc = text.A[:, None, :, None], text.B[:, None, :, None]  # (B,1,J,1,L)
            update = A * self._key_scores(q, per_head(text.u1, self.k), L) \
                + Bc * self._key_scores(q, per_head(text.u2, self.k), L)
            if text.r is not None:
                r = text.r[:, None, :, None]
                k_beta = self.k(text.beta.to(q.dtype)).view(1, H, 1, dh).expand(B, -1, J, -1)
                at_beta = self._key_scores(q, k_beta, L)
                scores = r * (scores - at_beta) + at_beta
            scores = scores + update
        p = (scores * dh**-0.5).softmax(-1)
        if rotated and text.r is not None:
            out = ((p * r).flatten(2, 3) @ v).unflatten(2, (J, Q))  # (B,H,J,Q,dh)
            v_beta = self.v(text.beta.to(p.dtype)).view(1, H, 1, 1, dh)
            out = out + (p * (1 - r)).sum(-1, keepdim=True) * v_beta
        else:
            out = (p.flatten(2, 3) @ v).unflatten(2, (J, Q))  # (B,H,J,Q,dh)
        if rotated:
            out = out + (p * A).sum(-1, keepdim=True) * per_head(text.u1, self.v)[:, :, :, None] \
                + (p * Bc).sum(-1, keepdim=True) * per_head(text.u2, self.v)[:, :, :, None]
        return queries + self.o(out.permute(0, 2, 3, 1, 4).flatten(-2).to(queries.dtype))

    def _key_scores(self, q: torch.Tensor, d: torch.Tensor, length: int) -> torch.Tensor:
        """q (B,H,J,Q,dh) against one key direction d (B,H,J,dh) placed at every position l (rotary: turned by
        l * theta) -> (B,H,J,Q,L or 1). Per frequency pair, q.R_l d = cos(l theta)(qe de + qo do)
        + sin(l theta)(qo de - qe do), so the L positions come from two small matmuls with the angle table."""
        d = d[:, :, :, None]
        if self.rope is None:
            return (q * d).sum(-1, keepdim=True)
        qe, qo, de, do = q[..., 0::2], q[..., 1::2], d[..., 0::2], d[..., 1::2]
        cos, sin = self.rope.table(length, q.device)
        # one (rows, dh/2) x (dh/2, L) product each: a batched matmul against the 2-D table would copy it per row
        both = torch.cat([qe * de + qo * do, qo * de - qe * do], dim=-1)
        table = torch.cat([cos.T, sin.T]).to(both.dtype)
        return (both.reshape(-1, both.shape[-1]) @ table).view(*both.shape[:-1], length)


class _RelaxedDropout(torch.autograd.Function):
    """x * keep / (1 - p), keep = sigmoid(-(logit(u) + logit p) / t) (a relaxed Bernoulli(1 - p) sample), with
    the gradients for x and logit p written out: the noise is built in place and only x and keep*scale are
    saved, a few passes over x-sized tensors instead of autograd's chain of sub, sigmoid and two products."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, logit: torch.Tensor, temperature: float) -> torch.Tensor:
        scale = 1 + logit.detach().float().exp()  # 1 / (1 - p)
        noise = torch.rand(x.shape, device=x.device).logit_(eps=1e-6)  # logistic noise, built in place
        keep = noise.add_(logit.detach().float()).mul_(-1 / temperature).sigmoid_().mul_(scale).to(x.dtype)
        ctx.save_for_backward(x, keep, logit)
        ctx.temperature = temperature
        return x * keep

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, keep, logit = ctx.saved_tensors  # keep holds keep * scale
        t = ctx.temperature
        dx = grad * keep
        dlogit = None
        if ctx.needs_input_grad[1]:
            # d(out)/d(logit p) = out * (p - (1 - k) / t), k = keep without the scale. Summed as p sum(y) -
            # sum(y (1 - k)) / t: the other grouping, (p - 1/t) sum(y) + ..., cancels two large terms, which bf16
            # sums cannot afford. In x's dtype (reduced-precision sums accumulate in float32; sum(dtype=) would
            # copy x-sized tensors first), and no flatten: the incoming gradient is often strided.
            p = torch.sigmoid(logit.detach().float())
            y = dx * x
            total = y.sum().float()
            y.addcmul_(y, keep, value=-float(1 - p))  # y (1 - k), in place: k = keep * (1 - p)
            dlogit = p * total - y.sum().float() / t
            dlogit = dlogit.to(logit.dtype)
        return dx, dlogit, None


class ConcreteDropout(nn.Module):
    """Dropout whose rate is learned (Gal, Hron and Kendall, "Concrete Dropout", 2017): the mask is a relaxed
    Bernoulli sample, so the loss has a gradient with respect to p. The method's regulariser (`regularizer`) has
    two terms, weight_reg * |W|^2 / (1 - p) for the weights W the mask acts on, and dropout_reg * K * (p log p +
    (1 - p) log(1 - p)) for K dropped units (the negative entropy, which keeps p from collapsing to 0); the
    paper's code defaults to weight_reg 1e-6 and dropout_reg 1e-5. (The reference read p with .item(), so its
    rate never learned.)"""

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
        return _RelaxedDropout.apply(x, self.logit, self.temperature)

    def regularizer(self, weight: torch.Tensor, units: int, weight_reg: float, dropout_reg: float) -> torch.Tensor:
        """weight_reg * |weight|^2 / (1 - p) + dropout_reg * units * (p log p + (1 - p) log(1 - p))."""
        p = self.p
        neg_entropy = p * torch.log(p) + (1 - p) * torch.log(1 - p)
        return weight_reg * weight.float().square().sum() / (1 - p) + dropout_reg * units * neg_entropy


class ImprovedBlock(nn.Module):
    """Linear -> GELU -> LayerNorm -> dropout, plus a projected residual; dropout fixed or learnable."""

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.1, learnable_dropout: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
        self.norm = nn.LayerNorm(d_out)
        self.drop = ConcreteDropout(dropout) if learnable_dropout else nn.Dropout(dropout)
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.lin(x), self.skip(x))

    def finish(self, pre: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The block from lin(x) and skip(x), for callers that compute those two linear maps another way."""
        return skip + self.drop(self.norm(F.gelu(pre)))

    def regularizer(self, weight_reg: float, dropout_reg: float) -> torch.Tensor | None:
        """Concrete dropout's regulariser (None with fixed dropout). The mask drops the block's output units, each
        made by one row of `lin`, so W is `lin.weight` and K its output width. (Gal et al. wrap the layer that
        reads the dropped units; here the dropout closes the block that computes them.)"""
        if not isinstance(self.drop, ConcreteDropout):
            return None
        return self.drop.regularizer(self.lin.weight, self.lin.out_features, weight_reg, dropout_reg)


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

    def reduce_parts(self, text, tokens: list[torch.Tensor]) -> torch.Tensor:
        """The reduction of [text tokens, *tokens] without building that (B,J,L+n,D) stack: the first block's
        token-axis maps split into the text's part (SharedText/RotatedText: once per prompt, plus a rank-2
        update per rotated prediction) and the extra tokens' part, one small matmul: (B,J,D) each -> (B,J,D)."""
        first = self.blocks[0] if self.mode == "tokens" else None
        if first is None or isinstance(first.skip, nn.Identity):  # nothing to split: stack the tokens
            return self(stack_tokens(text, tokens))
        L, width = text.text.shape[1], first.lin.out_features
        weight = torch.cat([first.lin.weight, first.skip.weight])  # (2 width, L+n): lin and skip in one pass
        bias = torch.cat([first.lin.bias, first.lin.bias.new_zeros(width)])
        base, left, right = text.token_parts(self, weight[:, :L])  # (B,1,D,2 width); rotated: + left @ right
        B, J = tokens[0].shape[:2]
        extra = torch.stack(tokens, dim=-1)  # (B,J,D,n): the extra tokens' map is one small matmul
        mix = weight[:, L:].T.to(extra.dtype)  # (n, 2 width)
        if left is not None:  # the rotation's rank-2 part joins the same matmul
            extra = torch.cat([extra, left.to(extra.dtype)], dim=-1)
            mix = torch.cat([mix.expand(B, J, -1, -1), right.to(extra.dtype)], dim=-2)
        # the bias joins the shared part once per prompt (per prediction only when rotated tokens are rescaled),
        # and the sum lands in the matmul's output: one pass over the (B,J,D,2 width) pre-activations
        pre = (extra @ mix).add_(base + bias.to(base.dtype))
        x = first.finish(*pre.split(width, dim=-1))  # split, not two slices: one copy in the backward pass
        return self.last(self.blocks[1:](x)).squeeze(-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., N, D) -> (..., D)."""
        lead = tokens.shape[:-2]
        tokens = tokens.reshape(-1, *tokens.shape[-2:])
        if self.mode == "tokens":
            out = self.last(self.blocks(tokens.transpose(1, 2))).squeeze(-1)  # (M,D,N) -> (M,D)
        else:
            out = self.pool(self.query[:, None].expand(len(tokens), 1, 1, -1), SharedText(tokens))[:, 0, 0]
        return out.view(*lead, -1)


def stack_tokens(text: SharedText | RotatedText, tokens: list[torch.Tensor]) -> torch.Tensor:
    """Each prediction's [text tokens, *tokens], materialised: tokens (B,J,D) each -> (B,J,L+len(tokens),D)."""
    return torch.cat([text.tokens(tokens[0].shape[1]).to(tokens[0].dtype), *(t[:, :, None] for t in tokens)], dim=2)
