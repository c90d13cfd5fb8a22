import numpy as np
import pytest
import torch

from t2vlab.data.circles import PROMPT_MOTIONS, TRAIN_PROMPTS, CirclesSettings, generate, motion_of
from t2vlab.evaluation.metrics.circle_motion import check_motion, track
from t2vlab.evaluation.metrics.motion_accuracy import describe_failures, motion_accuracy, score_clips, summarize


@pytest.fixture(scope="module")
def real_clips():
    v, texts, _ = generate(CirclesSettings(num_videos=190, seed=11), list(PROMPT_MOTIONS))
    return torch.from_numpy(v).permute(0, 1, 4, 2, 3).float() / 255, texts


def test_every_prompt_of_real_data_passes(real_clips):
    videos, texts = real_clips
    acc = motion_accuracy(videos, texts)
    assert set(acc) == set(PROMPT_MOTIONS)
    assert all(a == 1.0 for a in acc.values()), acc


def test_real_clips_fail_every_other_motion(real_clips):
    videos, texts = real_clips
    motions = set(PROMPT_MOTIONS.values())
    for video, text in zip(videos[:60], texts[:60], strict=True):
        tr = track(video)
        wrong = [m for m in motions if m != motion_of(text) and check_motion(m, tr)]
        assert not wrong, (text, wrong)


def test_static_and_random_clips_score_low():
    v, texts, _ = generate(CirclesSettings(num_videos=36, seed=2))
    videos = torch.from_numpy(v).permute(0, 1, 4, 2, 3).float() / 255
    frozen = videos[:, :1].expand_as(videos)
    assert max(motion_accuracy(frozen, texts).values()) == 0.0
    order = torch.randperm(videos.shape[1], generator=torch.Generator().manual_seed(0))  # fixed: no luck involved
    shuffled = videos[:, order]
    assert np.mean(list(motion_accuracy(shuffled, texts).values())) < 0.3
    blank = torch.ones_like(videos)
    assert max(motion_accuracy(blank, texts).values()) == 0.0


def test_failures_are_counted_per_prompt_by_reason(real_clips):
    videos, texts = real_clips
    idx = [texts.index(p) for p in list(dict.fromkeys(texts))[:4]]  # four prompts, one real clip each
    prompts = [texts[i] for i in idx]
    accuracy, reasons = score_clips(torch.cat([videos[idx], torch.ones_like(videos[idx])]), prompts * 2)
    assert accuracy == {p: 0.5 for p in prompts}  # the real clip passes, the blank one fails
    assert reasons == {p: {"no circle": 1} for p in prompts}
    assert describe_failures({"jumps": 1, "several blobs": 3}) == "several blobs 3, jumps 1"


def test_summary_groups():
    per = {"circle moving down": 1.0, "circle shrinking": 0.0, "circle moving up-right": 0.5}
    out = summarize(per, list(TRAIN_PROMPTS))
    assert out == {"motion_acc/seen_moves": 1.0, "motion_acc/seen_all": 0.5, "motion_acc/heldout": 0.5}


def test_clips_that_start_with_given_frames_are_also_scored_on_the_generated_ones(real_clips):
    from t2vlab.evaluation.circles_scoring import predicted_summary
    from t2vlab.evaluation.metrics.motion_accuracy import MotionAccuracy
    from t2vlab.evaluation.protocols.base import EvalSet

    videos, texts = real_clips[0][:40], real_clips[1][:40]
    jump = videos[:, -1:].expand_as(videos).clone()
    jump[:, 0] = videos[:, 0]  # the given first frame, then one jump to the end and no motion after it
    metric = MotionAccuracy()
    for clips, expected in ((videos, 1.0), (jump, 0.0)):
        out = metric.score(EvalSet(clips, texts, clips, given_frames=1))
        assert out["motion_acc_predicted/seen_all"].value == expected
        assert out["motion_acc_predicted/seen_all"].settings["from_frame"] == 1
        assert out["motion_acc_predicted/seen_all"].n == out["motion_acc/seen_all"].n == 40
        assert predicted_summary(clips, texts, TRAIN_PROMPTS, 1)["motion_acc_predicted/seen_all"] == expected
    assert not any(k.startswith("motion_acc_predicted/") for k in metric.score(EvalSet(videos, texts, videos)))
    assert predicted_summary(videos, texts, TRAIN_PROMPTS, 0) == {}
