import math

import pytest
import torch

from t2vlab.data.circles import MOVE_DIRECTIONS, PROMPT_MOTIONS, CirclesSettings
from t2vlab.evaluation.metrics.circle_verdicts import CircleLimits
from t2vlab.evaluation.metrics.interpolation_path import interpolation_path
from t2vlab.evaluation.reconstruction import heldout_clips

MOVES = [p for p, m in PROMPT_MOTIONS.items() if m in MOVE_DIRECTIONS]
T = 16


@pytest.fixture(scope="module")
def real():
    settings = CirclesSettings(num_frames=T, num_videos=1)
    videos, prompts = heldout_clips(settings, 20 * len(MOVES), seed=4242, prompts=MOVES)
    return videos, prompts, CircleLimits.from_settings(settings)


def test_real_straight_moves_lie_between_their_first_and_last_frames(real):
    videos, prompts, limits = real
    paths = [interpolation_path(p, v, limits) for v, p in zip(videos, prompts, strict=True)]
    assert all(path.lies_between for path in paths)
    assert max(path.max_off_path for path in paths) < 1.0  # on the segment, up to the blob centre's rounding
    assert max(path.end_gap for path in paths) <= limits.settings.speed[1] + 0.5  # one frame's move


def test_middles_that_do_not_join_the_given_frames_fail(real):
    videos, prompts, limits = real
    for video, prompt in list(zip(videos, prompts, strict=True))[:: len(MOVES)]:
        other = videos[prompts.index(next(p for p in MOVES if PROMPT_MOTIONS[p] != PROMPT_MOTIONS[prompt]))]
        fakes = {
            "stuck at the first frame": torch.cat([video[:1].expand(T - 1, -1, -1, -1), video[-1:]]),
            "stuck at the last frame": torch.cat([video[:1], video[-1:].expand(T - 1, -1, -1, -1)]),
            "runs backwards": torch.cat([video[:1], video[1:-1].flip(0), video[-1:]]),
            "overshoots (the last frame given is the middle one)": torch.cat([video[:-1], video[T // 2 : T // 2 + 1]]),
            "another direction's middle": torch.cat([video[:1], other[1:-1], video[-1:]]),
        }
        for name, fake in fakes.items():
            assert interpolation_path(prompt, fake, limits).lies_between is False, (prompt, name)


def test_a_blank_middle_fails_and_other_motions_get_the_end_gap_only():
    settings = CirclesSettings(num_frames=T, num_videos=1)
    limits = CircleLimits.from_settings(settings)
    videos, prompts = heldout_clips(settings, 2, seed=7, prompts=["circle moving left", "circle rotating clockwise"])
    blank = videos[0].clone()
    blank[5] = 1.0
    assert interpolation_path(prompts[0], blank, limits).lies_between is False
    rotation = interpolation_path(prompts[1], videos[1], limits)
    assert rotation.lies_between is None and math.isnan(rotation.max_off_path)
    assert 0 < rotation.end_gap <= limits.of("rotate-cw", T)["step"] + 0.5
    with pytest.raises(ValueError, match="allowed: >= 3 frames"):
        interpolation_path(prompts[0], videos[0][:2], limits)
