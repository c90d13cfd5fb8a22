"""backbone=circles_unclip: the small unCLIP stack trained by `python train.py experiment=circles_unclip`.

The folder holds `prior/` (a KandinskyV22PriorPipeline: tokenizer, text encoder, CLIP vision encoder,
prior, scheduler, image processor) and `decoder/` (EmbeddingDecoder), so everything but decode runs
through the same code as the real Kandinsky 2.2.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import diffusers.utils.logging as diffusers_logging
import torch
import transformers.utils.logging as transformers_logging
from diffusers import KandinskyV22PriorPipeline

from t2vlab.backbones.base import BackboneUnavailable
from t2vlab.backbones.fingerprint import folder_fingerprint, settings_hash
from t2vlab.backbones.unclip_prior import DTYPES, PriorPipeline, UnclipPriorBackbone
from t2vlab.models.circles_unclip.decoder import EmbeddingDecoder

BUILD_HINT = "build it with `python train.py experiment=circles_unclip` (about 6 minutes on a 2-core CPU)"


@contextlib.contextmanager
def quiet_progress():
    """No per-file progress bars from diffusers/transformers while a tiny stack saves or loads in milliseconds."""
    was = diffusers_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was[0]:
            diffusers_logging.enable_progress_bar()
        if was[1]:
            transformers_logging.enable_progress_bar()




class CirclesUnclipBackbone(UnclipPriorBackbone):
    name = "circles_unclip"

    def __init__(self, path: str, device: str = "cpu", dtype: str = "float32", prior_steps: int = 25,
                 prior_guidance: float = 1.0, crop_fraction: float | None = 1.0, frame_batch: int = 1024) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"backbone.dtype={dtype} is invalid; allowed: {', '.join(DTYPES)}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"backbone.device={device} is invalid; allowed: cpu, cuda")
        folder = Path(path)
        if not (folder / "prior" / "model_index.json").is_file() or not (folder / "decoder" / "config.json").is_file():
            raise BackboneUnavailable(f"backbone=circles_unclip: no trained stack at {folder.resolve()}; {BUILD_HINT}, "
                                      "or set backbone.path=<the folder an earlier run exported>")
        with quiet_progress():
            pipe = PriorPipeline.from_pretrained(folder / "prior", dtype=DTYPES[dtype]).to(device)
        super().__init__(pipe, prior_steps=prior_steps, prior_guidance=prior_guidance, crop_fraction=crop_fraction,
                         frame_batch=frame_batch)
        self.folder = folder
        self.decoder = EmbeddingDecoder.from_pretrained(folder / "decoder").to(device).eval()
        self.image_size = int(self.decoder.config.image_size)
        self._identity = f"{self.name}-{folder_fingerprint(folder)}-{settings_hash(self.embedding_settings())}"

    @property
    def identity(self) -> str:
        return self._identity

    @torch.inference_mode()
    def decode(self, embeds: torch.Tensor, seed: int | list[int] = 0) -> torch.Tensor:
        """Deterministic: the seed is accepted for the contract and has no effect."""
        out = [self.decoder(chunk.to(self.device, torch.float32)).float()
               for chunk in embeds.reshape(-1, self.dim).split(self.frame_batch)]
        return torch.cat(out) if out else embeds.new_zeros(0, 3, self.image_size, self.image_size)


def export_stack(module, folder: Path, info: dict | None = None) -> Path:
    """Save a trained CirclesUnclipModule's stack to `folder`, replacing what was there only once the new
    copy is complete (a crash leaves the old stack or the new one, never a half-written folder)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = KandinskyV22PriorPipeline(prior=module.prior, image_encoder=module.image_encoder,
                                     text_encoder=module.text_encoder, tokenizer=module.tokenizer,
                                     scheduler=module.scheduler, image_processor=module.image_processor)
    with quiet_progress():
        pipe.save_pretrained(tmp / "prior")
        module.decoder.save_pretrained(tmp / "decoder")
    (tmp / "t2vlab.json").write_text(json.dumps({"trained_steps": int(module.global_step), **(info or {})}, indent=2))
    previous = folder.parent / f".{folder.name}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        os.replace(folder, previous)
    os.replace(tmp, folder)
    shutil.rmtree(previous, ignore_errors=True)
    return folder
