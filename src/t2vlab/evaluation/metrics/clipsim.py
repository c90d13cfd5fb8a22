"""CLIPSIM: how well each generated video's frames match its prompt under CLIP.

Per frame, the cosine between CLIP's projected text embedding of the prompt and its projected image
embedding of the frame; a video's score is the mean over its frames; the result is the mean (and std) over
videos. `value` is that raw mean cosine, in [-1, 1], as the text-to-video literature reports CLIPSIM on
MSR-VTT (around 0.3 for recent models). torchmetrics' CLIPScore reports 100 * max(cos, 0) instead; that
number is in settings["clip_score"] so results can be set beside papers that use it.

Frames are quantised to uint8 and preprocessed by the model's own CLIP image processor (resize of the short
side, centre crop, CLIP's mean and std); prompts are cut to CLIP's 77 tokens.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import CLIPImageProcessorPil as CLIPImageProcessor  # the PIL backend: no torchvision
from transformers import CLIPModel, CLIPTokenizer

from t2vlab.evaluation.metrics.frames import check_videos, summarise
from t2vlab.evaluation.metrics.result import MetricResult, MetricUnavailable

HOW_TO_ENABLE = ("set protocol.metrics.clipsim.model=/path/to/a/saved/CLIP folder (save_pretrained) or run once "
                 "with internet so the hub cache has it")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it only once, at import)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers at all; huggingface_hub itself retries an unreachable host for ~20 s."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def embedding(output) -> torch.Tensor:
    """get_*_features return the projected embedding (transformers 4) or an output holding it (transformers 5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _in_hub_cache(model: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model, "config.json"), str)


class CLIPSIM:
    """Mean CLIP cosine between each video's frames and its prompt. `model`: a hub id or a saved CLIP folder."""

    needs_prompts = True  # the evaluation protocol passes the prompts instead of the reference videos

    def __init__(self, model: str = "openai/clip-vit-base-patch32", local_files_only: bool | None = None,
                 batch_size: int = 64, device: str = "cpu") -> None:
        self.model_name, self.local_files_only = str(model), local_files_only
        self.batch_size, self.device = batch_size, torch.device(device)
        self.model: CLIPModel | None = None

    def load(self) -> None:
        if self.model is not None:
            return
        local = hub_offline() if self.local_files_only is None else self.local_files_only
        if not local and not Path(self.model_name).exists() and not _in_hub_cache(self.model_name):
            if not hub_reachable():
                raise MetricUnavailable("clipsim", f"cannot load CLIP {self.model_name!r}: it is not in the hub cache "
                                        "and the hub cannot be reached", HOW_TO_ENABLE)
        try:
            model = CLIPModel.from_pretrained(self.model_name, local_files_only=local)
            self.tokenizer = CLIPTokenizer.from_pretrained(self.model_name, local_files_only=local)
            self.processor = CLIPImageProcessor.from_pretrained(self.model_name, local_files_only=local)
        except OSError as e:  # what transformers raises for a missing folder, an uncached id and no connection
            raise MetricUnavailable("clipsim", f"cannot load CLIP {self.model_name!r}: {str(e).splitlines()[0][:200]}",
                                    HOW_TO_ENABLE) from None
        self.model = model.eval().requires_grad_(False).to(self.device)

    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """prompts -> (len(prompts), D) unit vectors."""
        out = []
        for start in range(0, len(prompts), self.batch_size):
            tokens = self.tokenizer(prompts[start:start + self.batch_size], padding=True, truncation=True,
                                    max_length=self.tokenizer.model_max_length, return_tensors="pt")
            out.append(embedding(self.model.get_text_features(**tokens.to(self.device))).float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)

    def image_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, D) unit vectors."""
        images = frames.expand(-1, 3, -1, -1) if frames.shape[1] == 1 else frames
        images = images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        return torch.nn.functional.normalize(embedding(self.model.get_image_features(pixel_values=pixels)).float(),
                                             dim=-1)

    @torch.no_grad()
    def __call__(self, generated: torch.Tensor, prompts: list[str]) -> MetricResult:
        check_videos(generated, "generated videos")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if len(prompts) != len(generated):
            raise ValueError(f"{len(prompts)} prompts for {len(generated)} videos; allowed: one prompt per video")
        self.load()
        n, t = generated.shape[:2]
        texts = self.text_embeddings(prompts)  # (N, D)
        cosines = []
        for index in torch.arange(n * t).split(self.batch_size):
            frames = self.image_embeddings(generated[index // t, index % t])  # (B, D)
            cosines.append((frames * texts[(index // t).to(texts.device)]).sum(-1).double().cpu())
        per_frame = torch.cat(cosines).view(n, t)
        clip_score = float((100 * per_frame.clamp(min=0)).mean(1).mean())
        settings = {"model": self.model_name, "frames": t, "scale": "raw cosine in [-1, 1]", "clip_score": clip_score,
                    "clip_score_scale": "100 * max(cos, 0) per frame, as torchmetrics' CLIPScore"}
        return summarise(per_frame.mean(1), "videos", settings)
