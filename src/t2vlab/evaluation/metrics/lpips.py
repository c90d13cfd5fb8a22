"""LPIPS (Zhang et al. 2018) with the AlexNet backbone, per frame, between each generated and reference video.

The backbone is torchvision's ImageNet AlexNet (its `features.*` weights, from a local file or downloaded once
into torch's hub cache); the learned linear heads are LPIPS v0.1's, which torchmetrics ships inside its
package (lpips_models/alex.pth), so only the backbone has to come from outside. Lower is more similar.
"""

from __future__ import annotations

import torch

from t2vlab.evaluation.metrics.frames import paired_videos, resize_frames, summarise
from t2vlab.evaluation.metrics.result import MetricResult
from t2vlab.pretrained.alexnet_lpips import ALEXNET_URL, MIN_SIZE, LPIPSNet, as_rgb, load_lpips_net


class LPIPS:
    """Per-frame LPIPS (AlexNet), averaged over each video's frames, then mean and std over videos."""

    def __init__(self, backbone_weights: str | None = None, url: str = ALEXNET_URL, size: int | None = None,
                 batch_size: int = 64, device: str = "cpu") -> None:
        if size is not None and size < 1:
            raise ValueError(f"lpips size={size} is invalid; allowed: null (score as is) or a positive int")
        self.backbone_weights, self.url, self.size, self.batch_size = backbone_weights, url, size, batch_size
        self.device = torch.device(device)
        self.net: LPIPSNet | None = None
        self.source = ""

    def load(self) -> None:
        if self.net is None:
            net, self.source = load_lpips_net(self.backbone_weights, self.url)
            self.net = net.to(self.device)

    @torch.no_grad()
    def __call__(self, generated: torch.Tensor, reference: torch.Tensor) -> MetricResult:
        generated, reference = paired_videos(generated, reference, self.size)
        side = self.size or min(generated.shape[-2:])
        if side < MIN_SIZE:
            raise ValueError(f"LPIPS on {side}-pixel frames is invalid; allowed: frames of at least {MIN_SIZE} pixels "
                             f"(set size >= {MIN_SIZE} to upsample)")
        self.load()
        n, t = generated.shape[:2]
        per_frame = []
        for batch in torch.arange(n * t).split(self.batch_size):
            video, frame = batch // t, batch % t  # gathers only this batch's frames
            a = as_rgb(resize_frames(generated[video, frame], self.size)).to(self.device)
            b = as_rgb(resize_frames(reference[video, frame], self.size)).to(self.device)
            per_frame.append(self.net(a, b).double().cpu())
        per_video = torch.cat(per_frame).view(n, t).mean(1)
        settings = {"backbone": "alexnet", "backbone_weights": self.source, "heads": "lpips v0.1 (torchmetrics)",
                    "size": self.size, "frames": t}
        return summarise(per_video, "video pairs", settings)
