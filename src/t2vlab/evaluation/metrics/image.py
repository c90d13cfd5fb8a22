"""Paired per-frame image metrics: SSIM and PSNR between each generated video and its reference video.

Each frame is scored against the reference frame at the same index, a video's score is the mean over its
frames, and the result is the mean (and std) over videos. `size` resizes both sides first (the Splitter
thesis scored at 256x256).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from t2vlab.evaluation.metrics.frames import paired_videos, resize_frames, summarise
from t2vlab.evaluation.metrics.result import MetricResult


class PairedFrameMetric:
    """Shared by SSIM and PSNR: subclasses score one video's frames, (T, C, H, W) against (T, C, H, W) -> (T,)."""

    name = "paired"

    def __init__(self, size: int | None = None) -> None:
        if size is not None and size < 1:
            raise ValueError(f"{self.name} size={size} is invalid; allowed: null (score as is) or a positive int")
        self.size = size

    def load(self) -> None:
        """Nothing to load; here so every metric offers the same calls."""

    def score_frames(self, generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def settings(self) -> dict:
        return {}

    @torch.no_grad()
    def __call__(self, generated: torch.Tensor, reference: torch.Tensor) -> MetricResult:
        generated, reference = paired_videos(generated, reference, self.size)
        # one video at a time keeps memory at one clip's worth of frames
        per_video = torch.stack([
            self.score_frames(resize_frames(g, self.size), resize_frames(r, self.size)).double().mean()
            for g, r in zip(generated, reference, strict=True)
        ])
        settings = {"size": self.size, "frames": generated.shape[1], **self.settings()}
        return summarise(per_video, "video pairs", settings)


class SSIM(PairedFrameMetric):
    """Structural similarity: 11x11 Gaussian window (sigma 1.5), data range 1. 1 for identical frames."""

    name = "ssim"

    def score_frames(self, generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return structural_similarity_index_measure(generated, reference, gaussian_kernel=True, sigma=1.5,
                                                   kernel_size=11, data_range=1.0, reduction="none")

    def settings(self) -> dict:
        return {"kernel": "gaussian 11x11, sigma 1.5", "data_range": 1.0}


class PSNR(PairedFrameMetric):
    """Peak signal-to-noise ratio in dB with peak 1, per frame (inf for identical frames), then averaged."""

    name = "psnr"

    def score_frames(self, generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return peak_signal_noise_ratio(generated, reference, data_range=1.0, reduction="none", dim=(1, 2, 3))

    def settings(self) -> dict:
        return {"data_range": 1.0, "per": "frame"}
