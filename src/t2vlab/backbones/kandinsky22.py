"""backbone=kandinsky22: Kandinsky 2.2 through diffusers, loaded with `from_pretrained` (hub ids or folders).

Two pipelines: the prior (CLIP ViT-bigG text encoder, CLIP ViT-bigG vision encoder, PriorTransformer) and
the decoder (UNet + MoVQ). `components` picks what is loaded, since caching and generation need
different parts:
  text           tokenizer, text encoder, prior          encode_text, prior
  image_encoder  the CLIP vision encoder (1.8B params)   encode_frames (caching only)
  decoder        UNet + MoVQ                             decode (generation only)
Without the vision encoder the prior pipeline still needs the embedding of an all-zero image (the
decoder's negative embedding); it is computed once and kept in `zero_embed_dir`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import KandinskyV22Pipeline
from safetensors.torch import load_file, save_file

from t2vlab.backbones.base import BackboneUnavailable, generators, seeds_for
from t2vlab.backbones.fingerprint import folder_fingerprint, settings_hash
from t2vlab.backbones.unclip_prior import DTYPES, PriorPipeline, UnclipPriorBackbone
from t2vlab.runtime.atomic import atomic_path

log = logging.getLogger(__name__)

COMPONENTS = ("text", "image_encoder", "decoder")
OFFLOAD = ("none", "model", "sequential")


def _model_folder(model: str) -> Path:
    """A local folder as is; a hub id -> its snapshot in the local hub cache (no network)."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, local_files_only=True))


def _unavailable(model: str, error: Exception) -> BackboneUnavailable:
    return BackboneUnavailable(
        f"backbone=kandinsky22: cannot load {model!r} ({type(error).__name__}: {str(error).splitlines()[0][:200]}). "
        f"Get it on a machine with internet: `huggingface-cli download {model}` (then copy ~/.cache/huggingface), "
        f"or `python -c \"from diffusers import DiffusionPipeline; DiffusionPipeline.from_pretrained('{model}')"
        ".save_pretrained('<folder>')\"` and pass that folder as the model")


class Kandinsky22Backbone(UnclipPriorBackbone):
    name = "kandinsky22"

    def __init__(self, prior_model: str = "kandinsky-community/kandinsky-2-2-prior",
                 decoder_model: str = "kandinsky-community/kandinsky-2-2-decoder",
                 components: list[str] | tuple[str, ...] = COMPONENTS, device: str = "cpu", dtype: str = "float32",
                 offload: str = "none", prior_steps: int = 25, prior_guidance: float = 4.0, decoder_steps: int = 50,
                 decoder_guidance: float = 4.0, height: int = 512, width: int = 512, seed_per_frame: bool = False,
                 crop_fraction: float | None = 1.0, frame_batch: int = 16,
                 zero_embed_dir: str = "data/cache/kandinsky22") -> None:
        components = tuple(components)
        bad = [c for c in components if c not in COMPONENTS]
        if bad or "text" not in components:
            raise ValueError(f"backbone.components={list(components)} is invalid; allowed: 'text' plus any of "
                             "'image_encoder' (to encode frames) and 'decoder' (to render embeddings)")
        checks = [("dtype", dtype in DTYPES, ", ".join(DTYPES)), ("device", device in ("cpu", "cuda"), "cpu, cuda"),
                  ("offload", offload in OFFLOAD, ", ".join(OFFLOAD)),
                  ("offload", offload == "none" or device == "cuda", "none unless device=cuda (offload moves "
                   "weights between CPU and GPU)"),
                  ("decoder_steps", decoder_steps >= 1, ">= 1"), ("decoder_guidance", decoder_guidance >= 0, ">= 0"),
                  ("height", height >= 64 and height % 64 == 0, "a multiple of 64"),
                  ("width", width >= 64 and width % 64 == 0, "a multiple of 64")]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"backbone.{key}={locals()[key]} is invalid; allowed: {allowed}")
        self.components, self.offload = components, offload
        self.decoder_steps, self.decoder_guidance = decoder_steps, decoder_guidance
        self.height, self.width, self.seed_per_frame = height, width, seed_per_frame
        torch_dtype = DTYPES[dtype]

        try:
            prior_folder = _model_folder(prior_model)
            extra = {} if "image_encoder" in components else {"image_encoder": None}
            pipe = PriorPipeline.from_pretrained(prior_folder, dtype=torch_dtype, **extra)
        except (OSError, ValueError) as e:
            raise _unavailable(prior_model, e) from e
        if "image_encoder" not in components:
            pipe.zero_image_embed = self._zero_embed(prior_folder, Path(zero_embed_dir), torch_dtype)
        self._place(pipe, device)
        super().__init__(pipe, prior_steps=prior_steps, prior_guidance=prior_guidance, crop_fraction=crop_fraction,
                         frame_batch=frame_batch)

        self.decoder_pipe = None
        decoder_id = "-"
        if "decoder" in components:
            try:
                decoder_folder = _model_folder(decoder_model)
                self.decoder_pipe = KandinskyV22Pipeline.from_pretrained(decoder_folder, dtype=torch_dtype)
            except (OSError, ValueError) as e:
                raise _unavailable(decoder_model, e) from e
            self._place(self.decoder_pipe, device)
            self.decoder_pipe.set_progress_bar_config(disable=True)
            decoder_id = folder_fingerprint(decoder_folder)
        # the identity keys cached embeddings: only what changes encode_text / prior / encode_frames
        self._identity = f"{self.name}-{folder_fingerprint(prior_folder)}-{settings_hash(self.embedding_settings())}"
        self.decoder_identity = decoder_id

    def _place(self, pipe, device: str) -> None:
        if self.offload == "model":
            pipe.enable_model_cpu_offload()
        elif self.offload == "sequential":
            pipe.enable_sequential_cpu_offload()
        else:
            pipe.to(device)

    @staticmethod
    def _zero_embed(prior_folder: Path, folder: Path, dtype: torch.dtype) -> torch.Tensor:
        """The vision encoder's embedding of an all-zero image, computed once per encoder and kept on disk."""
        encoder_folder = prior_folder / "image_encoder"
        path = folder / f"zero_embed-{folder_fingerprint(encoder_folder)}.safetensors"
        if path.is_file():
            return load_file(str(path))["zero_embed"].to(dtype)
        from transformers import CLIPVisionModelWithProjection

        log.info("computing the zero-image embedding once (loads the CLIP vision encoder briefly) -> %s", path)
        try:
            encoder = CLIPVisionModelWithProjection.from_pretrained(encoder_folder)
        except OSError as e:
            raise _unavailable(str(prior_folder), e) from e
        size = encoder.config.image_size
        with torch.inference_mode():
            embed = encoder(torch.zeros(1, 3, size, size)).image_embeds.float()
        del encoder
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"zero_embed": embed.contiguous()}, str(tmp))
        return embed.to(dtype)

    @property
    def identity(self) -> str:
        return self._identity

    def embedding_settings(self) -> dict:
        return {**super().embedding_settings(), "with_image_encoder": "image_encoder" in self.components}

    @torch.inference_mode()
    def decode(self, embeds: torch.Tensor, seed: int | list[int] = 0) -> torch.Tensor:
        """embeds (N,D) -> frames (N,3,height,width) in [0,1]. One seed for every frame (the thesis' choice:
        the same starting noise keeps frames consistent) unless `seed_per_frame`, then seed + frame index;
        a list gives each frame its own."""
        if self.decoder_pipe is None:
            raise RuntimeError("backbone=kandinsky22 was loaded without its decoder; add 'decoder' to "
                               "backbone.components to render embeddings")
        embeds = embeds.reshape(-1, self.dim)
        n = len(embeds)
        if isinstance(seed, int):
            seeds = [seed + i for i in range(n)] if self.seed_per_frame else [seed] * n
        else:
            seeds = seeds_for(seed, n, "decoder seed")
        pipe = self.decoder_pipe
        device = pipe._execution_device
        negative = self.pipe.get_zero_embed(1, device=device).float()
        out = []
        for start in range(0, n, self.frame_batch):
            chunk = embeds[start : start + self.frame_batch].to(device, pipe.unet.dtype)
            images = pipe(image_embeds=chunk, negative_image_embeds=negative.repeat(len(chunk), 1).to(chunk.dtype),
                          height=self.height, width=self.width, num_inference_steps=self.decoder_steps,
                          guidance_scale=self.decoder_guidance,
                          generator=generators(seeds[start : start + len(chunk)], device), output_type="pt").images
            out.append((images.float() * 0.5 + 0.5).clamp(0, 1))  # "pt" output is in [-1, 1]
        return torch.cat(out) if out else embeds.new_zeros(0, 3, self.height, self.width)

