"""The learned circles classifier: cache key, cache reuse, atomic files, prompt accuracy, Fréchet distance."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from t2vlab.data.circles import PROMPT_MOTIONS, CirclesSettings, generate
from t2vlab.evaluation.metrics import circles_classifier
from t2vlab.evaluation.metrics.circles_classifier import CirclesClassifierScores, ClassifierHParams, cache_key
from t2vlab.evaluation.metrics.circles_classifier_net import MOTIONS, CirclesMotionNet
from t2vlab.evaluation.metrics.result import MetricUnavailable

# 6 frames at 24x24: trains in about 5 s on one thread to ~0.9 held-out accuracy
TINY = CirclesSettings(num_videos=100, num_frames=6, image_size=24, radius=(2.0, 4.0), speed=(1.5, 2.5))
TINY_TRAINING = dict(num_train=960, num_heldout=320, epochs=10, batch_size=32, widths=(8, 16, 32))


def clips(settings: CirclesSettings, num: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    s = CirclesSettings(**{**asdict(settings), "num_videos": num, "seed": seed, "prompts": list(PROMPT_MOTIONS)})
    videos, texts, _ = generate(s)
    return torch.from_numpy(videos).permute(0, 1, 4, 2, 3).float() / 255, texts


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("classifier_cache")


@pytest.fixture(scope="module")
def scores(cache_dir) -> CirclesClassifierScores:
    metric = CirclesClassifierScores(cache_dir=str(cache_dir), min_heldout_accuracy=0.0, **TINY_TRAINING)
    metric.load(TINY)
    assert metric.trained_now
    return metric


def test_one_class_per_distinct_motion():
    assert len(MOTIONS) == len(set(PROMPT_MOTIONS.values())) == 16
    assert list(MOTIONS) == sorted(MOTIONS)


def test_cache_key_follows_the_pixels_and_the_training_only():
    hp = ClassifierHParams()
    key = cache_key(TINY, hp)
    for change in ({"image_size": 32}, {"num_frames": 7}, {"colors": [[255, 0, 0]]}, {"radius": (2.0, 3.0)},
                   {"background": [0, 0, 0]}, {"start_jitter": 0.5}):
        assert cache_key(replace(TINY, **change), hp) != key, change
    for change in ({"num_videos": 5}, {"seed": 7}, {"prompts": ["circle moving up"]}):
        assert cache_key(replace(TINY, **change), hp) == key, change
    assert cache_key(TINY, replace(hp, epochs=hp.epochs + 1)) != key
    assert cache_key(TINY, replace(hp, widths=(8, 16))) != key


def test_cache_holds_complete_files_only(scores, cache_dir):
    stem = f"circles_classifier-{cache_key(TINY, scores.hparams)}"
    assert sorted(p.name for p in cache_dir.iterdir()) == [f"{stem}.json", f"{stem}.safetensors"]
    assert scores.heldout_n == 320
    assert 0.0 <= scores.heldout_accuracy <= 1.0


def test_second_load_reads_the_cache(scores, cache_dir, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of reading the cache")

    monkeypatch.setattr(circles_classifier, "train_classifier", no_training)
    again = CirclesClassifierScores(cache_dir=str(cache_dir), min_heldout_accuracy=0.0, **TINY_TRAINING)
    again.load(replace(TINY, seed=5, num_videos=7))  # same pixels: same classifier
    assert not again.trained_now
    assert again.heldout_accuracy == scores.heldout_accuracy and again.heldout_n == scores.heldout_n
    videos, _ = clips(TINY, 20, seed=3)
    assert torch.equal(again.features(videos), scores.features(videos))


def test_prompt_accuracy_per_prompt_with_its_count(scores):
    videos, texts = clips(TINY, 60, seed=3)  # 20 prompts x 3 clips
    out = scores.prompt_accuracy(videos, texts)
    assert set(out["per_prompt"]) == set(PROMPT_MOTIONS)
    assert all(r.n == 3 for r in out["per_prompt"].values())
    predicted = scores.predict(videos)
    for prompt, result in out["per_prompt"].items():
        mine = [p == PROMPT_MOTIONS[prompt] for p, t in zip(predicted, texts, strict=True) if t == prompt]
        assert result.value == pytest.approx(np.mean(mine))
    overall = out["overall"]
    assert overall.n == 60
    right = [p == PROMPT_MOTIONS[t] for p, t in zip(predicted, texts, strict=True)]
    assert overall.value == pytest.approx(np.mean(right))
    assert overall.settings["classifier_heldout_accuracy"] == scores.heldout_accuracy
    assert overall.settings["classifier_heldout_n"] == 320
    assert overall.value >= 0.6  # it learned something even at this size (measured ~0.9)


def test_frechet_distance_is_zero_for_a_set_with_itself_and_grows_for_other_sets(scores):
    videos, _ = clips(TINY, 80, seed=3)
    others, _ = clips(TINY, 60, seed=4)
    itself = scores.frechet_distance(videos, videos)
    assert abs(itself.value) < 1e-6
    real = scores.frechet_distance(videos, others)
    assert real.n == 60 and real.settings["n_generated"] == 80 and real.settings["n_real"] == 60
    assert real.settings["feature_dim"] == 32
    shuffled = scores.frechet_distance(videos, others[:, torch.tensor([3, 0, 5, 1, 4, 2])])
    blank = scores.frechet_distance(videos, torch.ones_like(others))
    assert shuffled.value > 5 * real.value and blank.value > 5 * real.value


def test_other_sizes_are_resized_and_other_frame_counts_refused(scores):
    videos, _ = clips(TINY, 20, seed=3)
    doubled = videos.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # 48x48; halving it is exact
    assert torch.allclose(scores.features(doubled), scores.features(videos), atol=1e-5)
    with pytest.raises(ValueError, match=r"6-frame clips; got 8-frame videos"):
        scores.features(torch.cat([videos, videos[:, :2]], dim=1))


def test_a_classifier_below_the_threshold_is_refused(tmp_path):
    weak = CirclesClassifierScores(cache_dir=str(tmp_path), num_train=40, num_heldout=64, epochs=0,
                                   widths=(4,), min_heldout_accuracy=0.98)
    with pytest.raises(MetricUnavailable, match=r"accuracy on 64 held-out real clips") as e:
        weak.load(TINY)
    assert e.value.metric == "circles_classifier" and "epochs" in e.value.how_to_enable
    with pytest.raises(RuntimeError, match="call load"):
        _ = weak.heldout_accuracy
    # the cached verdict is refused as well, without training again
    with pytest.raises(MetricUnavailable):
        weak.load(TINY)
    assert not weak.trained_now


def test_the_network_takes_one_or_three_channels():
    net = CirclesMotionNet(num_frames=6, image_size=24, widths=(4, 8)).eval()
    gray = torch.rand(2, 6, 1, 24, 24)
    with torch.no_grad():
        assert torch.equal(net.features(gray), net.features(gray.expand(2, 6, 3, 24, 24)))
        assert net(gray).shape == (2, len(MOTIONS))


@pytest.mark.slow
def test_default_setting_trains_to_the_required_accuracy(tmp_path):
    metric = CirclesClassifierScores(cache_dir=str(tmp_path))
    metric.load(CirclesSettings())  # raises MetricUnavailable below 0.98
    assert metric.heldout_accuracy >= 0.98 and metric.heldout_n == 1600


def test_training_clips_are_the_real_renderer_wobbled_only_when_asked():
    real_clips = circles_classifier.real_clips
    clean, labels = real_clips(TINY, 40, seed=5)
    videos, _, _ = generate(replace(TINY, num_videos=40, seed=5, prompts=list(PROMPT_MOTIONS)))
    assert torch.equal(clean, torch.from_numpy(videos).permute(0, 1, 4, 2, 3))  # held-out clips are real clips
    wobbly, same_labels = real_clips(TINY, 40, seed=5, jitter=1.0)
    assert torch.equal(labels, same_labels) and not torch.equal(clean, wobbly)
