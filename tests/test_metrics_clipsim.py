"""CLIPSIM through the real loading path: a tiny random CLIP saved with save_pretrained, and the unavailable path."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from t2vlab.evaluation.metrics.clipsim import CLIPSIM, CLIPImageProcessor
from t2vlab.evaluation.metrics.result import MetricUnavailable

PROMPTS = ["a red circle moves left", "a blue square"]


def tiny_tokenizer(folder: Path) -> CLIPTokenizer:
    """Byte-level BPE over lowercase letters (each also as a word end) and a few merges, CLIP's special tokens."""
    letters = list(string.ascii_lowercase)
    tokens = letters + [f"{c}</w>" for c in letters] + ["re", "red</w>", "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\nr e\nre d</w>\n")
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=77)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = tiny_tokenizer(folder)
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77, **special},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clipsim(clip_folder) -> CLIPSIM:
    metric = CLIPSIM(model=str(clip_folder), local_files_only=True, batch_size=3)  # batches cross videos
    metric.load()
    return metric


def test_clipsim_is_the_mean_frame_text_cosine(clipsim, clip_folder):
    videos = torch.rand(2, 4, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    result = clipsim(videos, PROMPTS)
    assert result.n == 2 and result.unit == "videos" and result.settings["frames"] == 4
    assert -1 <= result.value <= 1 and result.std is not None

    # the same numbers computed by hand with the saved model, tokenizer and image processor
    model = CLIPModel.from_pretrained(clip_folder).eval()
    tokenizer = CLIPTokenizer.from_pretrained(clip_folder)
    processor = CLIPImageProcessor.from_pretrained(clip_folder)
    cosines = []
    with torch.no_grad():
        for video, prompt in zip(videos, PROMPTS, strict=True):
            text = model.get_text_features(**tokenizer([prompt], return_tensors="pt")).pooler_output
            images = [(f.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() for f in video]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            frames = model.get_image_features(pixel_values=pixels).pooler_output
            cosines.append(torch.cosine_similarity(frames, text))
    per_frame = torch.stack(cosines)  # (videos, frames)
    assert result.value == pytest.approx(float(per_frame.mean(1).mean()), abs=1e-5)
    assert result.std == pytest.approx(float(per_frame.mean(1).std()), abs=1e-5)
    assert result.settings["clip_score"] == pytest.approx(float((100 * per_frame.clamp(min=0)).mean()), abs=1e-3)


def test_clipsim_depends_on_the_prompt_and_checks_counts(clipsim):
    video = torch.rand(1, 2, 1, 32, 32, generator=torch.Generator().manual_seed(1))  # grey frames become RGB
    first, second = clipsim(video, PROMPTS[:1]), clipsim(video, PROMPTS[1:])
    assert first.value != pytest.approx(second.value, abs=1e-6)
    assert first.std is None  # one video
    long_prompt = ["abc " * 60]  # beyond CLIP's 77 tokens: cut, not refused
    assert -1 <= clipsim(video, long_prompt).value <= 1
    with pytest.raises(ValueError, match="2 prompts for 1 videos"):
        clipsim(video, PROMPTS)


def test_clipsim_unavailable_offline_or_without_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MetricUnavailable) as info:
        CLIPSIM(model="t2vlab-tests/clip-that-is-not-cached").load()
    assert "clip-that-is-not-cached" in info.value.reason
    assert "metrics.clipsim.model" in info.value.how_to_enable and "internet" in info.value.how_to_enable
    with pytest.raises(MetricUnavailable, match="cannot load CLIP"):
        CLIPSIM(model=str(tmp_path / "no_such_folder"), local_files_only=True).load()
