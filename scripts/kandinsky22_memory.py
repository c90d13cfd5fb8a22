"""GPU memory the real Kandinsky 2.2 backbone needs, from parameter counts (no weights needed).

Builds each component on the meta device from the published configs of
kandinsky-community/kandinsky-2-2-prior and -decoder (written out below), counts its parameters and
prints the weight memory per hardware dtype for the component sets the backbone loads:
  caching    = text (tokenizer, text encoder, prior) + image_encoder
  generation = text + decoder (UNet + MoVQ)
Weights only: activations add to it (modest at batch 1, 512x512). Published sizes for the check: prior 1B,
CLIP image encoder 1.8B, U-Net 1.22B, MoVQ 67M (ai-forever/Kandinsky-2 README).

    .venv/bin/python scripts/kandinsky22_memory.py
"""

from __future__ import annotations

from accelerate import init_empty_weights
from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection


def components() -> dict:
    with init_empty_weights():
        return {
            # CLIP ViT-bigG-14 (laion2B-39B-b160k), as in the prior repository's text_encoder/ and image_encoder/
            "text_encoder": CLIPTextModelWithProjection(CLIPTextConfig(
                vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                num_attention_heads=20, max_position_embeddings=77, projection_dim=1280, hidden_act="gelu")),
            "prior": PriorTransformer(num_attention_heads=32, attention_head_dim=64, num_layers=20,
                                      embedding_dim=1280, num_embeddings=77, additional_embeddings=4),
            "image_encoder": CLIPVisionModelWithProjection(CLIPVisionConfig(
                hidden_size=1664, intermediate_size=8192, num_hidden_layers=48, num_attention_heads=16,
                image_size=224, patch_size=14, projection_dim=1280, hidden_act="gelu")),
            "unet": UNet2DConditionModel(
                in_channels=4, out_channels=8, addition_embed_type="image", encoder_hid_dim=1280,
                encoder_hid_dim_type="image_proj", cross_attention_dim=768, attention_head_dim=64,
                block_out_channels=(384, 768, 1152, 1536), layers_per_block=3,
                down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                                  "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"),
                up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                                "ResnetUpsampleBlock2D"),
                mid_block_type="UNetMidBlock2DSimpleCrossAttn", resnet_time_scale_shift="scale_shift",
                class_embed_type=None),
            "movq": VQModel(
                in_channels=3, out_channels=3, latent_channels=4, vq_embed_dim=4, num_vq_embeddings=16384,
                block_out_channels=(128, 256, 256, 512), layers_per_block=2, norm_type="spatial",
                down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                                  "AttnDownEncoderBlock2D"),
                up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D")),
        }


SETS = {"caching (text + image_encoder)": ["text_encoder", "prior", "image_encoder"],
        "generation (text + decoder)": ["text_encoder", "prior", "unet", "movq"],
        "everything": ["text_encoder", "prior", "image_encoder", "unet", "movq"]}
HARDWARE = {"t4 (fp16)": 2, "a10 (bf16)": 2, "cpu fp32": 4}


def main() -> None:
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in components().items()}
    print("| component | parameters |\n|---|---|")
    for name, n in counts.items():
        print(f"| {name} | {n / 1e6:,.0f} M |")
    print("\n| loaded for | parameters | " + " | ".join(HARDWARE) + " |\n|---|---|" + "---|" * len(HARDWARE))
    for label, parts in SETS.items():
        n = sum(counts[p] for p in parts)
        print(f"| {label} | {n / 1e9:.2f} B | " + " | ".join(f"{n * b / 2**30:.1f} GiB" for b in HARDWARE.values())
              + " |")


if __name__ == "__main__":
    main()
