"""A prompt's text tokens as the Splitter's layers see them: shared by all of the prompt's predictions, or
turned per prediction by a soft rotation. Linear maps of the shared tokens (attention keys and values, the
token-axis reduction's first layer) are computed once and reused by every prediction, and by every step
type of a training step; a rotated text reaches them through low-rank updates instead of a copy per
prediction. At the thesis shapes (77 tokens, D=1280) those maps are most of the network's work.

The network sees its text through a LayerNorm, T = LN(X) = g * (X - mean) / std + beta per token. A rotation
can turn either side of it (`space`):
- "raw" (the reference: the rotation acts on the hidden states before any layer): X'_l = X_l + a_l n1 + b_l n2,
  and the LayerNorm of X'_l has a new mean and variance per token; written out,
  LN(X'_l) = r_l (T_l - beta) + beta + A_l u1 + B_l u2, with r_l = std(X_l) / std(X'_l), u_i = g * (n_i - mean n_i),
  A_l = a_l / std(X'_l), B_l = b_l / std(X'_l); std(X'_l) comes from dot products with n1, n2 (no copy).
- "normed": T'_l = T_l + a_l n1 + b_l n2 (r = 1, u_i = n_i): the rotation acts after the LayerNorm.
Either way every rotated token is T_l scaled, plus beta and two directions, which the layers use as
rank-one and rank-two updates of what they computed once for T.
"""

from __future__ import annotations

import torch
from torch import nn

from t2vlab.models.splitter.rotation import rotation_plane

SPACES = ("raw", "normed")


class SharedText:
    """Normalised text tokens (B,L,D), one text per item, shared by its predictions, with the raw hidden states and
    the LayerNorm that made them (needed to turn the raw text). Remembers the linear maps taken of it; build one
    per forward pass of the weights (a training step, a generation)."""

    def __init__(self, text: torch.Tensor, raw: torch.Tensor | None = None, norm: nn.LayerNorm | None = None) -> None:
        self.text, self.raw, self.norm = text, raw, norm
        self._memo: dict[tuple[int, str], torch.Tensor] = {}

    def _remember(self, owner, kind: str, compute) -> torch.Tensor:
        key = (id(owner), kind)
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def tokens(self, predictions: int) -> torch.Tensor:
        """(B,J,L,D): the text once per prediction (a view)."""
        return self.text[:, None].expand(-1, predictions, -1, -1)

    def compute_input(self) -> torch.Tensor:
        """The text in the dtype autocast computes linear maps in, cast once for all of them (autocast would cast
        it again for every layer)."""
        device = self.text.device.type
        if not torch.is_autocast_enabled(device):
            return self.text
        return self._remember(self, "cast", lambda: self.text.to(torch.get_autocast_dtype(device)))

    def linear(self, layer: nn.Linear) -> torch.Tensor:
        """layer over the feature axis: (B,L,out), once for all predictions."""
        return self._remember(layer, "features", lambda: layer(self.compute_input()))

    def token_parts(self, owner: nn.Module, weight: torch.Tensor):
        """A map over the token axis, weight (O,L), as (base (B,1,D,O), None, None): sum_l weight[o,l] text[l,d],
        the same for every prediction (RotatedText adds its per-prediction parts)."""
        base = self._remember(owner, "tokens", lambda: torch.einsum("bld,ol->bdo", self.text, weight)[:, None])
        return base, None, None

    def raw_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per token of the raw text: mean and biased variance over D, (B,L) each, float32."""
        if self.raw is None or self.norm is None:
            raise ValueError("turning the raw text needs the raw hidden states and the LayerNorm (net.share_text)")

        def stats():
            x = self.raw.float()
            return torch.stack([x.mean(-1), x.var(-1, unbiased=False)])

        mean, var = self._remember(self, "raw_stats", stats)
        return mean, var


class RotatedText:
    """A SharedText under one soft rotation per prediction (J per text), never materialised per linear map:
    T'_j = r_j * (T - beta) + beta + A_j u1_j^T + B_j u2_j^T (r_j, A_j, B_j (L,) per token; u1_j, u2_j (D,)), see the
    module docstring for both spaces. A feature map is then W T'_j + c = r_j (W T + c - Wbeta - c) + (Wbeta + c)
    + A_j (W u1_j)^T + B_j (W u2_j)^T, and a token map T'_j^T M = T^T (M r_j)^T + beta (M (1 - r_j))^T
    + u1_j (M A_j)^T + u2_j (M B_j)^T: updates of the shared maps of O(L (D + width)) per prediction (the token map
    with r != 1 costs one (O,L)x(L,D) product per prediction, still no L x D x width map). CrossAttention and
    TokenReducer.reduce_parts use them.

    v1, v2 (B,J,D) are the rotation's endpoints, weight (B,J) the blend c^p (already clipped and powered).
    """

    def __init__(self, shared: SharedText | torch.Tensor, v1: torch.Tensor, v2: torch.Tensor,
                 weight: torch.Tensor, space: str = "normed") -> None:
        if space not in SPACES:
            raise ValueError(f"rotation space {space!r} is invalid; allowed: {', '.join(SPACES)}")
        self.shared = shared if isinstance(shared, SharedText) else SharedText(shared)
        self.space = space
        B, J, D = v1.shape
        n1, n2, cos, sin = (t.view(B, J, -1) for t in rotation_plane(v1.reshape(-1, D), v2.reshape(-1, D)))
        source = self.shared.text if space == "normed" else self.shared.raw
        if source is None:
            raise ValueError("turning the raw text needs the raw hidden states and the LayerNorm (net.share_text)")
        xf = source.float()
        p1, p2 = torch.einsum("bld,bjd->bjl", xf, n1), torch.einsum("bld,bjd->bjl", xf, n2)  # (B,J,L)
        w = weight.float().view(B, J, 1)
        a = w * (-sin * p2 + (cos - 1) * p1)  # coefficient of n1 per token
        b = w * (sin * p1 + (cos - 1) * p2)  # coefficient of n2 per token
        if space == "normed":
            self.r, self.beta = None, None
            self.u1, self.u2, self.A, self.B = n1, n2, a, b
            return
        norm = self.shared.norm
        mean, var = self.shared.raw_stats()  # (B,L)
        m1, m2 = n1.mean(-1, keepdim=True), n2.mean(-1, keepdim=True)  # (B,J,1)
        c1, c2 = n1 - m1, n2 - m2  # the plane's directions, centred
        # variance of X'_l = X_l + a n1 + b n2 over D, from dot products with the centred directions
        cx1 = p1 - D * mean[:, None] * m1  # (centred X_l) . c1
        cx2 = p2 - D * mean[:, None] * m2
        s11, s22, s12 = ((x * y).sum(-1, keepdim=True) for x, y in ((c1, c1), (c2, c2), (c1, c2)))
        var_new = var[:, None] + (a * a * s11 + b * b * s22 + 2 * a * cx1 + 2 * b * cx2 + 2 * a * b * s12) / D
        inv_new = (var_new.clamp_min(0) + norm.eps).rsqrt()  # (B,J,L)
        gamma = norm.weight.float() if norm.weight is not None else torch.ones(D, device=xf.device)
        self.r = inv_new * (var[:, None] + norm.eps).sqrt()
        self.beta = norm.bias.float() if norm.bias is not None else torch.zeros(D, device=xf.device)
        self.u1, self.u2 = gamma * c1, gamma * c2
        self.A, self.B = inv_new * a, inv_new * b

    @property
    def text(self) -> torch.Tensor:
        return self.shared.text

    def tokens(self, predictions: int | None = None) -> torch.Tensor:
        """(B,J,L,D): every prediction's rotated (and normalised) text, materialised (for layers that mix it per
        prediction)."""
        t = self.text.float()[:, None]
        if self.r is not None:
            t = self.r[..., None] * (t - self.beta) + self.beta
        out = t + self.A[..., None] * self.u1[:, :, None] + self.B[..., None] * self.u2[:, :, None]
        return out.to(self.text.dtype)

    def token_parts(self, owner: nn.Module, weight: torch.Tensor):
        """A token-axis map weight (O,L) of every prediction's rotated text as main + left @ right: main (B,1,D,O)
        shared (or (B,J,D,O) when the tokens are rescaled), left (B,J,D,k) = [u1, u2(, beta)] and right (B,J,k,O)."""
        w = weight.T.to(self.A)  # (L,O)
        left, right = [self.u1, self.u2], [self.A @ w, self.B @ w]
        if self.r is None:
            main, _, _ = self.shared.token_parts(owner, weight)
        else:
            text = self.shared.compute_input()
            mix = (self.r[..., None, :].to(text.dtype) * weight.to(text.dtype))  # (B,J,O,L): M r_j per prediction
            main = (mix @ text[:, None]).transpose(-1, -2)  # (B,J,D,O)
            left.append(self.beta.expand_as(self.u1))
            right.append((1 - self.r) @ w)
        return main, torch.stack(left, dim=-1), torch.stack(right, dim=-2)
