"""A tokenizer measured on held-out circles clips: reconstruction PSNR and SSIM (the evaluation suite's
metrics), codebook usage, bits per clip, the motion accuracy of the reconstructions (the ceiling of a
transformer generating its tokens), and optionally FVD of the reconstructions against the originals."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch

from t2vlab.data.circles import CirclesSettings, generate
from t2vlab.evaluation.metrics.codebook import codebook_usage
from t2vlab.evaluation.metrics.image import PSNR, SSIM
from t2vlab.evaluation.metrics.motion_accuracy import motion_accuracy, summarize
from t2vlab.evaluation.metrics.result import MetricUnavailable
from t2vlab.runtime.hardware import inference_autocast

log = logging.getLogger(__name__)


def heldout_clips(settings, num_clips: int, seed: int, prompts: list[str]) -> tuple[torch.Tensor, list[str]]:
    """num_clips circles clips (N,T,3,H,W) in [0,1], rendered with a seed the training set does not use, and
    their prompts."""
    s = dataclasses.replace(settings, seed=seed, num_videos=num_clips)
    videos, clip_prompts, _ = generate(s, prompts)
    return torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float() / 255, list(clip_prompts)


@torch.no_grad()
def reconstruct(tokenizer, videos: torch.Tensor, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """videos (N,T,3,H,W) -> (reconstructions clamped to [0,1], token ids (N,t,h,w))."""
    device = next(tokenizer.parameters()).device
    recons, ids = [], []
    with inference_autocast(device):
        for chunk in videos.split(batch):
            tokens = tokenizer.tokenize(chunk.to(device))
            recons.append(tokenizer.detokenize(tokens, chunk.shape[1]).float().cpu())
            ids.append(tokens.cpu())
    return torch.cat(recons), torch.cat(ids)


def tokenizer_report(tokenizer, datamodule, num_clips: int, seed: int, fvd: bool = False,
                     out_dir: Path | None = None) -> dict:
    settings = getattr(datamodule, "settings", None)
    if not isinstance(settings, CirclesSettings):
        log.warning("the tokenizer is measured on held-out circles clips; %s has none: no measures",
                    type(datamodule).__name__)
        return {}
    if seed == settings.seed:
        raise ValueError(f"model.eval_seed={seed} is the training set's seed; allowed: any other seed")
    tokenizer.eval()
    videos, prompts = heldout_clips(settings, num_clips, seed, datamodule.prompts + datamodule.holdout_prompts)
    start = time.perf_counter()
    recons, ids = reconstruct(tokenizer, videos)
    seconds = time.perf_counter() - start
    K = tokenizer.codebook_size
    usage = codebook_usage(ids, K)
    psnr, ssim = PSNR()(recons, videos), SSIM()(recons, videos)
    # frame by frame over the clips; these average to the headline PSNR (each clip's mean over its frames)
    per_frame = PSNR().score_frames(recons.flatten(0, 1), videos.flatten(0, 1)).view(videos.shape[:2])
    per_frame = per_frame.double().mean(0).tolist()
    mse = float((recons - videos).double().square().mean())
    tokens = math.prod(ids.shape[1:])
    metrics = {"tokenizer/psnr": psnr.value, "tokenizer/psnr_std": psnr.std,
               "tokenizer/psnr_of_mean_mse": -10 * math.log10(max(mse, 1e-12)),
               "tokenizer/psnr_per_frame": " ".join(f"{v:.1f}" for v in per_frame), "tokenizer/ssim": ssim.value,
               "tokenizer/codes_used": usage["codes_used"], "tokenizer/codes_used_count": usage["codes_used_count"],
               "tokenizer/perplexity": usage["perplexity"], "tokenizer/codebook_size": K,
               "tokenizer/tokens_per_clip": tokens, "tokenizer/bits_per_clip": tokens * math.log2(K),
               "tokenizer/latent_shape": "x".join(map(str, ids.shape[1:])), "tokenizer/eval_clips": num_clips,
               "tokenizer/eval_seed": seed, "tokenizer/clips_per_second": num_clips / seconds}
    motion = summarize(motion_accuracy(recons, prompts, settings), datamodule.prompts)
    metrics |= {f"tokenizer/reconstruction_{k}": v for k, v in motion.items()}
    if fvd:
        metrics |= _fvd(recons, videos, datamodule)
    if out_dir is not None:
        _write_pairs(videos[:4], recons[:4], Path(out_dir) / "samples" / "reconstructions")
    return metrics


def _fvd(recons: torch.Tensor, videos: torch.Tensor, datamodule) -> dict:
    from t2vlab.evaluation.metrics.fvd import FVD

    metric = FVD(cache_dir=str(getattr(datamodule, "cache_dir", None) or "data/cache"))
    try:
        metric.load()
    except MetricUnavailable as e:
        log.warning("%s", e)
        return {"tokenizer/fvd": None, "tokenizer/fvd_unavailable": e.reason}
    result = metric(recons, videos)
    return {"tokenizer/fvd": result.value, "tokenizer/fvd_n": result.n}


def _write_pairs(videos: torch.Tensor, recons: torch.Tensor, folder: Path) -> None:
    """Original above reconstruction, a GIF per clip, for a quick look."""
    from t2vlab.evaluation.sampling import write_samples

    pairs = torch.cat([videos, recons], dim=3)  # (N,T,3,2H,W)
    write_samples(pairs, [f"reconstruction {i}" for i in range(len(pairs))], folder)
