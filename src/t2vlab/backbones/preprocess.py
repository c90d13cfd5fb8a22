"""Frames -> the pixel values a CLIP image encoder expects, batched in torch.

The reference code meant to crop the centre square before CLIP encoding and lost the crop, so frames were
squashed; here the crop is explicit and configurable. After it, the image processor's own recipe runs as
its config says (resize of the short side with bicubic filtering, centre crop, rescale, normalise), in torch
on the whole batch instead of one PIL image at a time; it agrees with CLIPImageProcessor to about 1e-2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from t2vlab.data.video_preprocess import center_square_crop


def processor_settings(processor) -> dict:
    """The numbers of a transformers CLIPImageProcessor that the torch recipe needs."""
    size = processor.size
    short = size.get("shortest_edge") or min(size.get("height", 0), size.get("width", 0))
    crop = processor.crop_size or {"height": short, "width": short}
    return {"short_side": int(short), "crop": (int(crop["height"]), int(crop["width"])),
            "mean": [float(m) for m in processor.image_mean], "std": [float(s) for s in processor.image_std],
            "resize": bool(getattr(processor, "do_resize", True)),
            "center_crop": bool(getattr(processor, "do_center_crop", True))}


def clip_pixels(frames: torch.Tensor, settings: dict, crop_fraction: float | None = 1.0) -> torch.Tensor:
    """frames (N,3,H,W) float in [0,1] -> normalised pixel values (N,3,h,w); crop_fraction None skips the crop."""
    x = frames.float()
    if crop_fraction is not None:
        x = center_square_crop(x, crop_fraction)
    H, W = x.shape[-2:]
    if settings["resize"]:
        scale = settings["short_side"] / min(H, W)
        size = (max(1, round(H * scale)), max(1, round(W * scale)))
        if size != (H, W):
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    if settings["center_crop"]:
        ch, cw = settings["crop"]
        H, W = x.shape[-2:]
        top, left = max(0, (H - ch) // 2), max(0, (W - cw) // 2)
        x = x[..., top : top + ch, left : left + cw]
    mean = torch.tensor(settings["mean"], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(settings["std"], device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
