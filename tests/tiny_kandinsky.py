"""Tiny random Kandinsky 2.2 pipelines at the diffusers test suite's sizes, saved as real model folders.

The backbone then loads them through the same `from_pretrained` code as the published weights. The
tokenizer is a byte-level CLIPTokenizer made in code (no download) with model_max_length 77.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    DDPMScheduler,
    KandinskyV22Pipeline,
    KandinskyV22PriorPipeline,
    PriorTransformer,
    UnCLIPScheduler,
    UNet2DConditionModel,
    VQModel,
)
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from t2vlab.text.clip_tokenizer import byte_level_clip_tokenizer

DIM = 32  # the tiny embedding width (Kandinsky 2.2: 1280)
WORDS = ["a", "circle", "moving", "left", "right", "red", "cat"]


def tiny_prior_pipeline() -> KandinskyV22PriorPipeline:
    torch.manual_seed(0)
    tokenizer = byte_level_clip_tokenizer(WORDS, model_max_length=77)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=DIM, projection_dim=DIM, intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
        num_hidden_layers=5, vocab_size=len(tokenizer), max_position_embeddings=77))
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=DIM, num_layers=1)
    prior.clip_std = torch.nn.Parameter(torch.ones(prior.clip_std.shape))  # random std would blow up the output
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=DIM, image_size=224, projection_dim=DIM, intermediate_size=37, num_attention_heads=4,
        num_channels=3, num_hidden_layers=5, patch_size=14))
    image_processor = CLIPImageProcessor(crop_size=224, do_center_crop=True, do_normalize=True, do_resize=True,
                                         image_mean=[0.48145466, 0.4578275, 0.40821073],
                                         image_std=[0.26862954, 0.26130258, 0.27577711], resample=3, size=224)
    scheduler = UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                                clip_sample=True, clip_sample_range=10.0)
    return KandinskyV22PriorPipeline(prior=prior, image_encoder=image_encoder, text_encoder=text_encoder,
                                     tokenizer=tokenizer, scheduler=scheduler, image_processor=image_processor)


def tiny_decoder_pipeline() -> KandinskyV22Pipeline:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        in_channels=4, out_channels=8, addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(32, 64), layers_per_block=1,
        encoder_hid_dim=DIM, encoder_hid_dim_type="image_proj", cross_attention_dim=100, attention_head_dim=4,
        resnet_time_scale_shift="scale_shift", class_embed_type=None)
    movq = VQModel(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
                   in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
                   num_vq_embeddings=12, out_channels=3, up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
                   vq_embed_dim=4)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, prediction_type="epsilon")
    return KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=movq)


def save_tiny_kandinsky(folder: Path) -> tuple[Path, Path]:
    """Write both pipelines under `folder`; returns (prior folder, decoder folder)."""
    prior, decoder = folder / "prior", folder / "decoder"
    tiny_prior_pipeline().save_pretrained(prior)
    tiny_decoder_pipeline().save_pretrained(decoder)
    return prior, decoder
