"""A prompt's text tokens as the Splitter's layers see them: shared by all of the prompt's predictions, or
turned per prediction by a soft rotation. Linear maps of the shared tokens (attention keys and values, the
token-axis reduction's first layer) are computed once and reused by every prediction, and by every step
type of a training step; a rotated text reaches them through a rank-2 update instead of a copy per
prediction. At the thesis shapes (77 tokens, D=1280) those maps are most of the network's work."""

from __future__ import annotations

import torch
from torch import nn

from t2vlab.models.splitter.rotation import rotation_plane


class SharedText:
    """Normalised text tokens (B,L,D), one text per item, shared by its predictions. Remembers the linear
    maps taken of it; build one per forward pass of the weights (a training step, a generation)."""

    def __init__(self, text: torch.Tensor) -> None:
        self.text = text
        self._memo: dict[tuple[int, str], torch.Tensor] = {}

    def _remember(self, owner: nn.Module, kind: str, compute) -> torch.Tensor:
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
        the same for every prediction (RotatedText adds a low-rank part per prediction)."""
        base = self._remember(owner, "tokens", lambda: torch.einsum("bld,ol->bdo", self.text, weight)[:, None])
        return base, None, None


class RotatedText:
    """A SharedText under one soft rotation per prediction (J per text), never materialised per linear map:
    T'_j = T + a_j n1_j^T + b_j n2_j^T (a_j, b_j (L,) per token, n1_j, n2_j (D,) the rotation plane), so a
    feature map is W T'_j = W T + a_j (W n1_j)^T + b_j (W n2_j)^T and a token map is T'_j^T M = T^T M
    + n1_j (M a_j)^T + n2_j (M b_j)^T: low-rank updates of the shared maps, O((L + D) * width) per prediction
    instead of O(L * D * width). CrossAttention and TokenReducer.reduce_parts use them.

    v1, v2 (B,J,D) are the rotation's endpoints, weight (B,J) the blend c^p (already clipped and powered).
    """

    def __init__(self, shared: SharedText | torch.Tensor, v1: torch.Tensor, v2: torch.Tensor,
                 weight: torch.Tensor) -> None:
        self.shared = shared if isinstance(shared, SharedText) else SharedText(shared)
        B, J, D = v1.shape
        n1, n2, cos, sin = (t.view(B, J, -1) for t in rotation_plane(v1.reshape(-1, D), v2.reshape(-1, D)))
        tf = self.shared.text.float()
        p1, p2 = torch.einsum("bld,bjd->bjl", tf, n1), torch.einsum("bld,bjd->bjl", tf, n2)  # (B,J,L)
        w = weight.float().view(B, J, 1)
        self.n1, self.n2 = n1, n2
        self.a = w * (-sin * p2 + (cos - 1) * p1)  # coefficient of n1 per token
        self.b = w * (sin * p1 + (cos - 1) * p2)  # coefficient of n2 per token

    @property
    def text(self) -> torch.Tensor:
        return self.shared.text

    def tokens(self, predictions: int | None = None) -> torch.Tensor:
        """(B,J,L,D): every prediction's rotated text, materialised (for layers that mix it per prediction)."""
        t = self.text.float()[:, None]
        out = t + self.a[..., None] * self.n1[:, :, None] + self.b[..., None] * self.n2[:, :, None]
        return out.to(self.text.dtype)

    def token_parts(self, owner: nn.Module, weight: torch.Tensor):
        """A token-axis map weight (O,L) of every prediction's rotated text as base (B,1,D,O) + left @ right, with
        left (B,J,D,2) = [n1, n2] and right (B,J,2,O) = [M a, M b]."""
        base, _, _ = self.shared.token_parts(owner, weight)
        w = weight.T.to(self.a)  # (L,O)
        return base, torch.stack([self.n1, self.n2], dim=-1), torch.stack([self.a @ w, self.b @ w], dim=-2)
