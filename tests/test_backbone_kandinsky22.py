"""backbone=kandinsky22 end to end on tiny random Kandinsky 2.2 pipelines, loaded through from_pretrained."""

import pytest
import torch
from tiny_kandinsky import DIM, save_tiny_kandinsky

from t2vlab.backbones.base import BackboneUnavailable
from t2vlab.backbones.kandinsky22 import Kandinsky22Backbone
from t2vlab.data.video_preprocess import center_square_crop

PROMPTS = ["a red circle moving left", "a cat"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return save_tiny_kandinsky(tmp_path_factory.mktemp("tiny_kandinsky"))


def load(folders, tmp_path, **kw):
    prior, decoder = folders
    settings = dict(prior_model=str(prior), decoder_model=str(decoder), prior_steps=3, decoder_steps=2, height=64,
                    width=64, zero_embed_dir=str(tmp_path / "zero"))
    return Kandinsky22Backbone(**{**settings, **kw})


def test_text_is_encoded_as_the_prior_pipeline_does(folders, tmp_path):
    bb = load(folders, tmp_path)
    hidden, pooled = bb.encode_text(PROMPTS)
    assert hidden.shape == (2, 77, DIM) and pooled.shape == (2, DIM) and bb.text_len == 77 and bb.dim == DIM
    # padded to 77 and run without an attention mask, like KandinskyV22PriorPipeline._encode_prompt
    pipe = bb.pipe
    ids = pipe.tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        out = pipe.text_encoder(ids)
    torch.testing.assert_close(hidden, out.last_hidden_state)
    torch.testing.assert_close(pooled, out.text_embeds)


def test_prior_is_seeded_per_prompt(folders, tmp_path):
    bb = load(folders, tmp_path)
    a = bb.prior(PROMPTS, seed=[0, 1])
    assert a.shape == (2, DIM) and torch.isfinite(a).all()
    torch.testing.assert_close(bb.prior(PROMPTS, seed=[0, 1]), a)
    torch.testing.assert_close(bb.prior(PROMPTS[:1], seed=0), a[:1])  # batch composition does not matter
    assert not torch.allclose(bb.prior(PROMPTS, seed=[5, 6]), a)


def test_frames_are_cropped_to_the_centre_square_before_clip(folders, tmp_path):
    frames = torch.rand(3, 3, 96, 160)
    crop = load(folders, tmp_path, crop_fraction=0.5)
    full = load(folders, tmp_path, crop_fraction=1.0)
    embeds = crop.encode_frames(frames)
    assert embeds.shape == (3, DIM)
    torch.testing.assert_close(embeds, full.encode_frames(center_square_crop(frames, 0.5)), atol=1e-4, rtol=1e-4)
    assert crop.identity != full.identity  # a changed preprocessing setting is a new cache key


def test_decode_renders_frames_in_unit_range_with_one_seed_for_all_frames(folders, tmp_path):
    bb = load(folders, tmp_path)
    e = bb.prior(PROMPTS[:1], seed=0).repeat(2, 1)
    frames = bb.decode(e, seed=3)
    assert frames.shape == (2, 3, 64, 64) and 0 <= frames.min() and frames.max() <= 1
    torch.testing.assert_close(frames[0], frames[1])  # same embedding, same seed -> same frame
    per_frame = load(folders, tmp_path, seed_per_frame=True).decode(e, seed=3)
    assert not torch.allclose(per_frame[0], per_frame[1])
    torch.testing.assert_close(per_frame[0], frames[0])  # frame 0 still uses the seed itself
    video = bb.decode_video(e.view(1, 2, DIM), seed=3)
    assert video.shape == (1, 2, 3, 64, 64)


def test_generation_without_the_vision_encoder_uses_the_stored_zero_embedding(folders, tmp_path):
    full = load(folders, tmp_path)
    lean = load(folders, tmp_path, components=["text", "decoder"])
    assert lean.pipe.image_encoder is None
    assert list((tmp_path / "zero").glob("zero_embed-*.safetensors"))
    torch.testing.assert_close(lean.prior(PROMPTS, seed=0), full.prior(PROMPTS, seed=0), atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="image_encoder"):
        lean.encode_frames(torch.rand(1, 3, 64, 64))
    caching = load(folders, tmp_path, components=["text", "image_encoder"])
    with pytest.raises(RuntimeError, match="decoder"):
        caching.decode(torch.zeros(1, DIM))


def test_a_missing_model_names_the_id_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(BackboneUnavailable, match=r"kandinsky-community/kandinsky-2-2-prior.*huggingface-cli download"):
        Kandinsky22Backbone(zero_embed_dir=str(tmp_path / "zero"))


@pytest.mark.parametrize("key,value", [("components", ["decoder"]), ("dtype", "float64"), ("offload", "model"),
                                       ("height", 100), ("device", "tpu")])
def test_bad_settings_are_refused_with_the_key(folders, tmp_path, key, value):
    with pytest.raises(ValueError, match=f"backbone.{key}="):
        load(folders, tmp_path, **{key: value})
