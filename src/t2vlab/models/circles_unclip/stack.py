"""Build the circles_unclip components from sizes: the same transformers/diffusers classes as Kandinsky 2.2.

Text encoder CLIPTextModelWithProjection, frame encoder CLIPVisionModelWithProjection, prior
PriorTransformer with an UnCLIPScheduler, all small; the decoder is our EmbeddingDecoder. Because the
classes are Kandinsky's, the trained stack is saved as a KandinskyV22PriorPipeline folder and the
backbone loads it through the same code as the real Kandinsky 2.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import PriorTransformer, UnCLIPScheduler
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from t2vlab.models.circles_unclip.decoder import EmbeddingDecoder
from t2vlab.text.clip_tokenizer import byte_level_clip_tokenizer


@dataclass
class StackSizes:
    dim: int = 64  # D: frame embedding and text hidden width
    text_len: int = 16  # L: prompt tokens incl. start/end (circles prompts take at most 8)
    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 96
    vision_layers: int = 2
    text_layers: int = 2
    heads: int = 4
    prior_layers: int = 4
    prior_heads: int = 4
    prior_head_dim: int = 32
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16)

    def __post_init__(self) -> None:
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        for key in ("dim", "text_len", "patch_size", "vision_hidden", "vision_layers", "text_layers", "heads",
                    "prior_layers", "prior_heads", "prior_head_dim"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.sizes.{key}={getattr(self, key)} is invalid; allowed: >= 1")
        if self.image_size % self.patch_size:
            raise ValueError(f"model.sizes.image_size={self.image_size} is invalid; allowed: a multiple of "
                             f"patch_size={self.patch_size}")
        if self.dim % self.heads or self.vision_hidden % self.heads:
            raise ValueError(f"model.sizes.heads={self.heads} is invalid; allowed: a divisor of dim={self.dim} "
                             f"and vision_hidden={self.vision_hidden}")


def build_components(sizes: StackSizes, words: list[str]) -> dict:
    """Fresh (untrained) components; each of `words` is one token (any other text still tokenizes, by bytes)."""
    tokenizer = byte_level_clip_tokenizer(words, model_max_length=sizes.text_len)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=sizes.dim, intermediate_size=4 * sizes.dim,
        num_hidden_layers=sizes.text_layers, num_attention_heads=sizes.heads, projection_dim=sizes.dim,
        max_position_embeddings=sizes.text_len, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=sizes.vision_hidden, intermediate_size=4 * sizes.vision_hidden,
        num_hidden_layers=sizes.vision_layers, num_attention_heads=sizes.heads, image_size=sizes.image_size,
        patch_size=sizes.patch_size, projection_dim=sizes.dim))
    # pixel values as CLIP takes them: no resize or crop at this size, CLIP's normalisation
    image_processor = CLIPImageProcessor(size={"shortest_edge": sizes.image_size},
                                         crop_size={"height": sizes.image_size, "width": sizes.image_size})
    prior = PriorTransformer(num_attention_heads=sizes.prior_heads, attention_head_dim=sizes.prior_head_dim,
                             num_layers=sizes.prior_layers, embedding_dim=sizes.dim,
                             num_embeddings=sizes.text_len, additional_embeddings=4, clip_embed_dim=sizes.dim)
    with torch.no_grad():  # the prior's output scaling, set from data before the prior trains
        prior.clip_std.fill_(1.0)
        prior.clip_mean.zero_()
    # sample prediction, as in Kandinsky 2.2's prior; targets are standardised, so a range of 5 std suffices
    scheduler = UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample",
                                num_train_timesteps=1000, clip_sample=True, clip_sample_range=5.0)
    decoder = EmbeddingDecoder(embedding_dim=sizes.dim, image_size=sizes.image_size,
                               channels=sizes.decoder_channels,
                               base_size=sizes.image_size // 2 ** len(sizes.decoder_channels))
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "image_encoder": image_encoder,
            "image_processor": image_processor, "prior": prior, "scheduler": scheduler, "decoder": decoder}
