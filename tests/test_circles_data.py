import logging

import numpy as np
import pytest
import torch

from t2vlab.data.circles import (
    DEFAULT_HOLDOUT,
    PROMPT_MOTIONS,
    TRAIN_PROMPTS,
    CirclesDataset,
    CirclesSettings,
    generate,
)


def test_eighteen_training_prompts_and_holdout_not_among_them():
    assert len(TRAIN_PROMPTS) == 18
    assert not set(DEFAULT_HOLDOUT) & set(TRAIN_PROMPTS)


def test_generation_is_deterministic_for_a_seed():
    s = CirclesSettings(num_videos=40, seed=3)
    a, ta, _ = generate(s)
    b, tb, _ = generate(CirclesSettings(num_videos=40, seed=3))
    c, _, _ = generate(CirclesSettings(num_videos=40, seed=4))
    assert ta == tb and np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("frames", [10, 16])
def test_circle_is_drawn_and_stays_in_frame(frames):
    s = CirclesSettings(num_videos=200, num_frames=frames)
    v, texts, gt = generate(s, list(PROMPT_MOTIONS))
    assert v.shape == (200, frames, 64, 64, 3)
    # every frame shows some circle pixels (the write-up's frames were all white)
    fg = (v != 255).any(-1).sum(axis=(2, 3))
    assert (fg >= 20).all()
    r = gt["radius"]
    assert (gt["cx"] - r >= 0).all() and (gt["cx"] + r <= 64).all()
    assert (gt["cy"] - r >= 0).all() and (gt["cy"] + r <= 64).all()
    # continuous motion: no teleports between frames
    step = np.hypot(np.diff(gt["cx"], axis=1), np.diff(gt["cy"], axis=1))
    assert step.max() < 12


def test_shrink_and_expand_change_the_radius():
    s = CirclesSettings(num_videos=20, prompts=["circle shrinking", "circle expanding"])
    _, texts, gt = generate(s)
    for text, rad in zip(texts, gt["radius"], strict=True):
        assert (np.diff(rad) < 0).all() if "shrinking" in text else (np.diff(rad) > 0).all()


def test_cache_round_trip_and_key_changes_with_settings(tmp_path):
    s = CirclesSettings(num_videos=12)
    ds = CirclesDataset(s, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("circles-*.npz"))) == 1
    again = CirclesDataset(CirclesSettings(num_videos=12), cache_dir=str(tmp_path))
    assert torch.equal(ds.videos, again.videos) and ds.texts == again.texts
    CirclesDataset(CirclesSettings(num_videos=12, radius=(3, 5)), cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("circles-*.npz"))) == 2
    item = ds[0]
    assert item["video"].shape == (10, 3, 64, 64) and item["video"].dtype == torch.float32
    assert 0.0 <= item["video"].min() and item["video"].max() <= 1.0
    assert item["text"] in TRAIN_PROMPTS and item["id"]


def _cut_in_half(cache):
    cache.write_bytes(cache.read_bytes()[:cache.stat().st_size // 2])


def _flip_bytes_in_the_middle(cache):
    data = bytearray(cache.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    cache.write_bytes(bytes(data))


def _delete_the_sidecar(cache):
    cache.with_suffix(".json").unlink()


def _garble_the_sidecar(cache):
    cache.with_suffix(".json").write_text("{not json")


@pytest.mark.parametrize("damage", [_cut_in_half, _flip_bytes_in_the_middle, _delete_the_sidecar,
                                    _garble_the_sidecar])
def test_a_damaged_cache_is_rebuilt_with_a_warning_naming_it(tmp_path, caplog, damage):
    s = CirclesSettings(num_videos=12)
    CirclesDataset(s, cache_dir=str(tmp_path))
    (cache,) = tmp_path.glob("circles-*.npz")
    damage(cache)
    with caplog.at_level(logging.WARNING, logger="t2vlab.data.circles_cache"):
        rebuilt = CirclesDataset(CirclesSettings(num_videos=12), cache_dir=str(tmp_path))
    assert [r.levelno for r in caplog.records] == [logging.WARNING] and str(cache) in caplog.text
    fresh, texts, _ = generate(s)
    assert torch.equal(rebuilt.videos, torch.from_numpy(fresh).permute(0, 1, 4, 2, 3)) and rebuilt.texts == texts
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="t2vlab.data.circles_cache"):
        again = CirclesDataset(CirclesSettings(num_videos=12), cache_dir=str(tmp_path))
    assert not caplog.records and torch.equal(again.videos, rebuilt.videos)  # the rebuilt cache passes its check


@pytest.mark.parametrize(
    "kwargs, key",
    [({"num_frames": 1}, "num_frames"), ({"radius": (9, 30)}, "radius"), ({"speed": (0, 1)}, "speed"),
     ({"prompts": ["circle dancing"]}, "circle dancing")],
)
def test_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        CirclesSettings(**kwargs)


def test_settings_that_do_not_fit_in_memory_are_refused_before_rendering(monkeypatch):
    need = CirclesSettings(num_videos=100, num_frames=10, image_size=48).peak_bytes()
    assert need == 3 * 100 * 10 * 3 * 48 * 48
    monkeypatch.setattr("t2vlab.data.memory.available_bytes", lambda: need - 1)
    with pytest.raises(ValueError, match=r"dataset.settings is invalid: num_videos=100 clips .* image_size=48\^2"):
        CirclesSettings(num_videos=100, num_frames=10, image_size=48)
    monkeypatch.setattr("t2vlab.data.memory.available_bytes", lambda: need)
    CirclesSettings(num_videos=100, num_frames=10, image_size=48)
