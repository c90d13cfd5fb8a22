"""Text encoding, prior sampling and frame encoding through a diffusers KandinskyV22PriorPipeline.

Both backbones run this code: kandinsky22 with the published weights, circles_unclip with the small
stack the project trains (same classes, small sizes). The text encoder is called exactly as the prior
pipeline calls it (padded to the tokenizer's length, no attention mask), through the pipeline itself.
"""

from __future__ import annotations

import torch
from diffusers import KandinskyV22PriorPipeline

from t2vlab.backbones.base import Backbone, generators, seeds_for
from t2vlab.backbones.preprocess import clip_pixels, processor_settings

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}  # backbone.dtype


class PriorPipeline(KandinskyV22PriorPipeline):
    """The diffusers prior pipeline, able to run without its CLIP vision encoder.

    The pipeline asks the vision encoder for the embedding of an all-zero image (the decoder's negative
    embedding). Generation needs nothing else from that 1.8B-parameter encoder, so a known zero embedding
    can be handed in and the encoder left unloaded.
    """

    zero_image_embed: torch.Tensor | None = None

    def get_zero_embed(self, batch_size=1, device=None):
        if self.image_encoder is None:
            if self.zero_image_embed is None:
                raise RuntimeError("the prior pipeline was loaded without its image encoder and no zero image "
                                   "embedding was given")
            return self.zero_image_embed.to(device or self.device).repeat(batch_size, 1)
        return super().get_zero_embed(batch_size, device)


class UnclipPriorBackbone(Backbone):
    """encode_text, prior and encode_frames over a PriorPipeline; subclasses add decode and loading."""

    def __init__(self, pipe: PriorPipeline, prior_steps: int = 25, prior_guidance: float = 4.0,
                 crop_fraction: float | None = 1.0, frame_batch: int = 64) -> None:
        if prior_steps < 1:
            raise ValueError(f"backbone.prior_steps={prior_steps} is invalid; allowed: >= 1")
        if prior_guidance < 0:
            raise ValueError(f"backbone.prior_guidance={prior_guidance} is invalid; allowed: >= 0 "
                             "(<= 1 turns classifier-free guidance off)")
        if crop_fraction is not None and not 0 < crop_fraction <= 1:
            raise ValueError(f"backbone.crop_fraction={crop_fraction} is invalid; allowed: (0, 1] or null (no crop)")
        if frame_batch < 1:
            raise ValueError(f"backbone.frame_batch={frame_batch} is invalid; allowed: >= 1")
        self.pipe = pipe
        pipe.set_progress_bar_config(disable=True)
        self.prior_steps, self.prior_guidance = prior_steps, prior_guidance
        self.crop_fraction, self.frame_batch = crop_fraction, frame_batch
        self.dim = int(pipe.prior.config.embedding_dim)
        self.text_len = int(pipe.tokenizer.model_max_length)
        self._pixels = processor_settings(pipe.image_processor) if pipe.image_processor is not None else None

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device

    def embedding_settings(self) -> dict:
        """Settings that change what encode_text / prior / encode_frames return (part of the identity)."""
        return {"prior_steps": self.prior_steps, "prior_guidance": self.prior_guidance,
                "crop_fraction": self.crop_fraction, "dtype": str(self.pipe.text_encoder.dtype),
                "pixels": self._pixels}

    @torch.inference_mode()
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, hidden, _mask = self.pipe._encode_prompt(list(prompts), self.device, 1, False)
        return hidden.float(), pooled.float()

    @torch.inference_mode()
    def prior(self, prompts: list[str], seed: int | list[int] = 0) -> torch.Tensor:
        prompts = list(prompts)
        seeds = seeds_for(seed, len(prompts), "prior seed")
        out = self.pipe(prompts, num_inference_steps=self.prior_steps, guidance_scale=self.prior_guidance,
                        generator=generators(seeds, self.device), output_type="pt")
        return out.image_embeds.float()

    @torch.inference_mode()
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        encoder = self.pipe.image_encoder
        if encoder is None:
            raise RuntimeError(f"{self.name} was loaded for generation only (no image encoder); encoding frames "
                               "needs it: load with components including 'image_encoder'")
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"encode_frames takes frames (N,3,H,W) in [0,1]; got shape {tuple(frames.shape)}")
        out = []
        for chunk in frames.split(self.frame_batch):
            pixels = clip_pixels(chunk.to(self.device), self._pixels, self.crop_fraction)
            out.append(encoder(pixels.to(encoder.dtype)).image_embeds.float())
        return torch.cat(out) if out else frames.new_zeros(0, self.dim)
