"""LPIPS's network (Zhang et al. 2018) with the AlexNet backbone, frozen: the LPIPS metric scores with it and the
MAGVIT tokenizer's perceptual loss trains through it. The backbone is torchvision's ImageNet AlexNet (its
`features.*` weights, from a local file or downloaded once into torch's hub cache); the learned linear heads are
LPIPS v0.1's, which torchmetrics ships inside its package (lpips_models/alex.pth)."""

from __future__ import annotations

from pathlib import Path

import torch
import torchmetrics
from torch import nn

from t2vlab.pretrained.download import read_state_dict, weights_file
from t2vlab.pretrained.unavailable import MetricUnavailable


def as_rgb(frames: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with C 1 or 3 -> (B, 3, H, W): networks trained on RGB see grey frames as grey RGB."""
    return frames.expand(-1, 3, -1, -1) if frames.shape[1] == 1 else frames


ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
HOW_TO_ENABLE = ("set protocol.metrics.lpips.backbone_weights=/path/to/alexnet-owt-7be5be79.pth "
                 "(torchvision's AlexNet) or run once with internet")
TAPS = (1, 4, 7, 9, 11)  # indices in `features` of the ReLUs whose outputs LPIPS compares
TAP_CHANNELS = (64, 192, 384, 256, 256)
MIN_SIZE = 31  # smaller frames vanish in AlexNet's strided layers
# LPIPS's fixed input scaling: inputs in [-1, 1] are shifted and scaled per RGB channel before the backbone
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def lpips_heads_file() -> Path:
    """torchmetrics' copy of the LPIPS v0.1 AlexNet heads (its LPIPS code itself needs torchvision)."""
    return Path(torchmetrics.__file__).parent / "functional" / "image" / "lpips_models" / "alex.pth"


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet `features` up to its last ReLU, indexed alike so its state dict loads unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> the five tapped ReLU outputs (B, C_k, H_k, W_k)."""
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                taps.append(x)
        return taps


class LPIPSNet(nn.Module):
    """Distance between two batches of images in [0, 1]: (B, 3, H, W), (B, 3, H, W) -> (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = AlexNetFeatures()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def load_heads(self, path: Path) -> None:
        """LPIPS's own files name the heads lin{k}.model.1.weight (a Dropout sits at model.0)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.heads.load_state_dict({f"{k}.weight": state[f"lin{k}.model.1.weight"] for k in range(len(TAPS))})

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([a, b]) * 2 - 1
        taps = self.backbone((x - self.shift) / self.scale)  # both sides in one pass
        distance = torch.zeros(len(a), device=a.device)
        for feats, head in zip(taps, self.heads, strict=True):
            unit = feats / (feats.square().sum(1, keepdim=True).sqrt() + 1e-10)  # unit length along channels
            fa, fb = unit.chunk(2)
            distance = distance + head((fa - fb).square()).mean((1, 2, 3))  # spatial mean of the weighted diff
        return distance


def load_lpips_net(backbone_weights: str | None = None, url: str = ALEXNET_URL,
                   how_to_enable: str = HOW_TO_ENABLE) -> tuple[LPIPSNet, str]:
    """The frozen LPIPS network and where its backbone came from: `backbone_weights` (torchvision's AlexNet
    state dict) if given, else the cached download of `url`. MetricUnavailable when either part is missing."""
    path = weights_file("lpips", backbone_weights, url, how_to_enable)
    state = read_state_dict("lpips", path, how_to_enable)
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    net = LPIPSNet()
    try:
        net.backbone.load_state_dict(features)
    except RuntimeError as e:
        raise MetricUnavailable("lpips", f"{path} is not torchvision's AlexNet state dict ({str(e)[:200]})",
                                how_to_enable) from None
    heads = lpips_heads_file()
    if not heads.is_file():
        raise MetricUnavailable("lpips", f"the LPIPS heads {heads} are missing from the installed torchmetrics",
                                "reinstall torchmetrics (pip install --force-reinstall torchmetrics)")
    net.load_heads(heads)
    return net.eval().requires_grad_(False), str(path)
