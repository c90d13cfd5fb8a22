"""Per-frame FID: Fréchet distance between Inception pool3 features of generated and reference frames.

Two protocols:
- `per_video` (the Splitter thesis): for each generated video and its paired reference video, the FID
  between their T frames (16 vs 16 in the thesis), then mean and std over videos. With T frames the
  covariances have rank T-1 against 2048 features, so the number is degenerate as an FID; it is what the
  thesis reported, and every result says N and T. The distance is computed exactly in that low-rank form
  (see `frechet_distance_few`), which equals torchmetrics' but costs O(T^2 d) instead of a 2048x2048
  eigen-decomposition (seconds) per video.
- `pooled`: all generated frames against all reference frames, through torchmetrics'
  FrechetInceptionDistance.

The network is pytorch-fid's FID Inception (fid_inception.py), or, with `feature=`, any module a config
builds (frames in [0, 1] -> (B, d) features), which is how the tests use a tiny random network.
"""

from __future__ import annotations

import hydra
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from t2vlab.evaluation.metrics.fid_inception import FID_WEIGHTS_URL, FIDInceptionV3
from t2vlab.evaluation.metrics.frames import check_videos, paired_videos, resize_frames, summarise
from t2vlab.evaluation.metrics.frechet import frechet_distance_few
from t2vlab.evaluation.metrics.result import MetricResult, MetricUnavailable
from t2vlab.pretrained.alexnet_lpips import as_rgb
from t2vlab.pretrained.download import read_state_dict, weights_file

HOW_TO_ENABLE = ("set protocol.metrics.fid.weights=/path/to/pt_inception-2015-12-05-6726825d.pth (pytorch-fid's FID "
                 "Inception) or run once with internet")
MODES = ("per_video", "pooled")


class FID:
    """Per-frame FID between generated and reference videos, `per_video` (paired) or `pooled`."""

    def __init__(self, weights: str | None = None, url: str = FID_WEIGHTS_URL, mode: str = "per_video",
                 size: int | None = None, feature: dict | nn.Module | None = None, batch_size: int = 32,
                 device: str = "cpu") -> None:
        if mode not in MODES:
            raise ValueError(f"fid mode={mode!r} is invalid; allowed: {', '.join(MODES)}")
        if size is not None and size < 1:
            raise ValueError(f"fid size={size} is invalid; allowed: null (frames as they are) or a positive int")
        self.weights, self.url, self.mode, self.size, self.feature = weights, url, mode, size, feature
        self.batch_size, self.device = batch_size, torch.device(device)
        self.metric: FrechetInceptionDistance | None = None
        self.source = ""

    def _network(self) -> nn.Module:
        if isinstance(self.feature, nn.Module):  # a config instantiated recursively hands over the module
            self.source = type(self.feature).__name__
            return self.feature
        if self.feature is not None:
            self.source = f"feature config ({self.feature.get('_target_', '?')})"
            return hydra.utils.instantiate(self.feature)
        path = weights_file("fid", self.weights, self.url, HOW_TO_ENABLE)
        net = FIDInceptionV3()
        try:
            net.load_checkpoint(read_state_dict("fid", path, HOW_TO_ENABLE))
        except (ValueError, RuntimeError) as e:
            raise MetricUnavailable("fid", f"{path}: {str(e)[:200]}", HOW_TO_ENABLE) from None
        self.source = str(path)
        return net

    def load(self) -> None:
        if self.metric is not None:
            return
        net = self._network().eval().requires_grad_(False)
        # normalize=True: a custom network gets the float frames in [0, 1] as they are
        self.metric = FrechetInceptionDistance(feature=net, normalize=True).to(self.device)

    def _frames(self, videos: torch.Tensor):
        """(N, T, C, H, W) -> batches of frames (B, 3, H', W') on the device, in video order."""
        t = videos.shape[1]
        for index in torch.arange(videos.shape[0] * t).split(self.batch_size):
            frames = videos[index // t, index % t]  # gathers only this batch's frames
            yield as_rgb(resize_frames(frames, self.size)).to(self.device)

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """(N, T, C, H, W) in [0, 1] -> (N, T, d) float64 features."""
        self.load()
        with torch.no_grad():
            feats = torch.cat([self.metric.inception(batch).double().cpu() for batch in self._frames(videos)])
        return feats.view(*videos.shape[:2], -1)

    @torch.no_grad()
    def __call__(self, generated: torch.Tensor, reference: torch.Tensor) -> MetricResult:
        return self._pooled(generated, reference) if self.mode == "pooled" else self._per_video(generated, reference)

    def _per_video(self, generated: torch.Tensor, reference: torch.Tensor) -> MetricResult:
        generated, reference = paired_videos(generated, reference, self.size)
        frames = generated.shape[1]
        if frames < 2:
            raise ValueError(f"per-video FID of {frames}-frame videos is invalid; allowed: at least 2 frames")
        self.load()
        per_video = []
        videos_per_group = max(1, self.batch_size // frames)  # bounds memory to about a batch of features
        for start in range(0, len(generated), videos_per_group):
            gen = self.features(generated[start:start + videos_per_group])
            ref = self.features(reference[start:start + videos_per_group])
            per_video += [frechet_distance_few(g, r) for g, r in zip(gen, ref, strict=True)]
        settings = {"mode": self.mode, "network": self.source, "size": self.size, "frames": frames,
                    "distance": "exact low-rank Fréchet distance per video"}
        return summarise(torch.tensor(per_video, dtype=torch.float64), "video pairs", settings)

    def _pooled(self, generated: torch.Tensor, reference: torch.Tensor) -> MetricResult:
        check_videos(generated, "generated videos")
        check_videos(reference, "reference videos")
        counts = {"generated_frames": generated.shape[0] * generated.shape[1],
                  "reference_frames": reference.shape[0] * reference.shape[1]}
        if min(counts.values()) < 2:
            raise ValueError(f"pooled FID over {counts} is invalid; allowed: at least 2 frames on each side")
        self.load()
        self.metric.reset()
        for videos, real in ((generated, False), (reference, True)):
            for batch in self._frames(videos):
                self.metric.update(batch, real=real)
        value = float(self.metric.compute())
        self.metric.reset()
        settings = {"mode": self.mode, "network": self.source, "size": self.size, "frames": generated.shape[1],
                    "n_reference": len(reference), **counts, "distance": "torchmetrics FrechetInceptionDistance"}
        return MetricResult(value=value, n=len(generated), unit="videos", settings=settings)
