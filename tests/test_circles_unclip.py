"""The circles_unclip backbone: its tokenizer and pixel recipe, a fast training run that exports and loads
back through backbone=circles_unclip, the missing-stack error, and the quality measures themselves."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor

from t2vlab.backbones.base import Backbone, BackboneUnavailable
from t2vlab.backbones.circles_unclip import CirclesUnclipBackbone
from t2vlab.backbones.preprocess import clip_pixels, processor_settings
from t2vlab.backbones.quality import circles_quality
from t2vlab.data.circles import CirclesSettings, generate
from t2vlab.tasks.train import train
from t2vlab.text.clip_tokenizer import byte_level_clip_tokenizer


def test_listed_words_are_single_tokens_and_the_tokenizer_round_trips(tmp_path):
    tok = byte_level_clip_tokenizer(["circle", "moving", "left"], model_max_length=16)
    ids = tok("circle moving left").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 5
    assert len(tok("zebra!").input_ids) > 3  # unknown text still tokenizes, byte by byte
    tok.save_pretrained(tmp_path)
    again = type(tok).from_pretrained(tmp_path)
    assert again("circle moving left").input_ids == ids and again.model_max_length == 16
    assert tok.decode(ids, skip_special_tokens=True).strip() == "circle moving left"


def test_clip_pixels_matches_the_clip_image_processor():
    processor = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})
    rng = np.random.default_rng(0)
    # smooth content: resampling filters agree there; white noise would only measure their differences
    base = rng.integers(0, 256, (2, 12, 16, 3)).astype(np.uint8)
    images = [np.asarray(Image.fromarray(b).resize((80, 60), Image.BILINEAR)) for b in base]
    expected = processor(images=images, return_tensors="pt").pixel_values
    frames = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    got = clip_pixels(frames, processor_settings(processor), crop_fraction=None)
    assert got.shape == expected.shape == (2, 3, 48, 48)
    # in [0,1] units (x std): bicubic in torch vs PIL differ slightly
    assert (got - expected).abs().mean() * 0.27 < 5e-3


def fast_run(tmp: Path, *overrides: str):
    from conftest import compose_cfg

    export = tmp / "exported"
    cfg = compose_cfg("train", ["experiment=circles_unclip", "debug=fast", "logger=none", "print_config=false",
                                "model.ae_steps=2", "model.prior_steps=1", "model.quality_clips=4",
                                "model.stats_clips=8", f"model.export_dir={export}", *overrides], tmp / "run")
    return cfg, train(cfg), export


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One fast run of experiment=circles_unclip: the three stages, export, load back, measure."""
    return fast_run(tmp_path_factory.mktemp("circles_unclip"))


def test_the_decoder_stage_moves_the_decoder_alone(trained, tmp_path):
    """The same run stopped before stage 3: every exported weight but the decoder's is the same, so embeddings
    (and the caches built on them) do not change when the decoder is sharpened."""
    from safetensors.torch import load_file

    _, _, export = trained
    _, _, before = fast_run(tmp_path, "trainer.max_steps=3")
    for part in ("prior/prior", "prior/image_encoder", "prior/text_encoder", "decoder"):
        a, b = (load_file(next((root / part).glob("*.safetensors"))) for root in (before, export))
        same = all(torch.equal(a[k], b[k]) for k in a)
        assert same == (part != "decoder"), part


def test_fast_run_trains_the_three_stages_and_exports_a_loadable_backbone(trained):
    cfg, metrics, export = trained
    assert metrics["train/global_step"] == cfg.trainer.max_steps == 4
    for key in ("unclip/center_err_px", "unclip/radius_err_px", "unclip/order_frac", "unclip/prior_circle_frac"):
        assert np.isfinite(metrics[key])
    assert (Path(cfg.paths.output_dir) / "backbone" / "prior" / "model_index.json").is_file()
    bb = CirclesUnclipBackbone(path=str(export))
    assert bb.identity == metrics["unclip/identity"]
    hidden, pooled = bb.encode_text(["circle moving left", "circle shrinking"])
    assert hidden.shape == (2, 16, 64) and pooled.shape == (2, 64) and bb.text_len == 16 and bb.dim == 64
    frames = torch.rand(3, 3, 64, 64)
    embeds = bb.encode_frames(frames)
    assert embeds.shape == (3, 64)
    out = bb.decode(embeds)
    assert out.shape == (3, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(bb.decode(embeds, seed=7), out)  # deterministic decoder
    prior = bb.prior(["circle moving left"] * 2, seed=[0, 1])
    assert prior.shape == (2, 64) and not torch.allclose(prior[0], prior[1])


def test_export_replaces_the_stack_whole(trained, tmp_path):
    _, _, export = trained
    before = CirclesUnclipBackbone(path=str(export)).identity
    bb = CirclesUnclipBackbone(path=str(export), prior_steps=5)
    assert bb.identity != before  # the prior's settings change the embeddings, so the cache key
    assert not [p for p in export.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_missing_stack_says_how_to_build_it(tmp_path):
    with pytest.raises(BackboneUnavailable, match=r"python train.py experiment=circles_unclip"):
        CirclesUnclipBackbone(path=str(tmp_path / "nothing"))


class PixelBackbone(Backbone):
    """Embedding = the frame's pixels: a perfect autoencoder, to check the quality measures read it so."""

    name, text_len = "pixels", 1

    def __init__(self, settings: CirclesSettings, blank: bool = False) -> None:
        self.settings, self.blank = settings, blank
        self.dim = 3 * settings.image_size**2

    identity = "pixels"
    device = torch.device("cpu")

    def encode_text(self, prompts):
        return torch.zeros(len(prompts), 1, self.dim), torch.zeros(len(prompts), self.dim)

    def prior(self, prompts, seed=0):
        videos, _, _ = generate(CirclesSettings(num_videos=len(prompts), image_size=self.settings.image_size))
        return self.encode_frames(torch.from_numpy(videos[:, 0]).permute(0, 3, 1, 2).float() / 255)

    def encode_frames(self, frames):
        return frames.flatten(1)

    def decode(self, embeds, seed=0):
        frames = embeds.view(len(embeds), 3, self.settings.image_size, self.settings.image_size)
        return torch.ones_like(frames) if self.blank else frames


def test_quality_measures_a_perfect_and_a_blank_backbone():
    settings = CirclesSettings(num_videos=8)
    perfect = circles_quality(PixelBackbone(settings), settings, num_clips=6, seed=3, prior_samples=1)
    assert perfect["unclip/center_err_px"] < 0.05 and perfect["unclip/radius_err_px"] < 0.05
    assert perfect["unclip/frames_without_circle"] == 0 and perfect["unclip/prior_circle_frac"] == 1
    assert perfect["unclip/frames"] == 6 * settings.num_frames
    blank = circles_quality(PixelBackbone(settings, blank=True), settings, num_clips=6, seed=3, prior_samples=1)
    assert blank["unclip/frames_without_circle"] == 6 * settings.num_frames and blank["unclip/prior_circle_frac"] == 0
    assert blank["unclip/center_err_px"] == float("inf")
