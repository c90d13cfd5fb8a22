import math

import pytest
import torch

from t2vlab.models.magvit.masking import (
    TASKS,
    commit_inputs,
    commit_loss,
    condition_video,
    cosine_mask_ratio,
    latent_region,
    pixel_region,
    random_mask,
)
from t2vlab.models.magvit.sampling import cosine_schedule, decode_tokens
from t2vlab.models.magvit.transformer import MaskedTransformer

# ---- masking ----


def test_cosine_ratio_and_random_mask_counts():
    assert cosine_mask_ratio(torch.tensor(0.0)) == 1.0
    assert cosine_mask_ratio(torch.tensor(1 - 1e-6)) < 1e-5
    assert torch.isclose(cosine_mask_ratio(torch.tensor(2 / 3)), torch.tensor(0.5))
    g = torch.Generator().manual_seed(0)
    mask = random_mask(256, 10, generator=g)
    counts = mask.sum(1)
    assert mask.shape == (256, 10) and mask.dtype == torch.bool
    assert counts.min() >= 1 and counts.max() <= 10
    # the count is round(cos(pi/2 r) N) with r drawn first from the same generator
    r = torch.rand(256, generator=torch.Generator().manual_seed(0))
    assert torch.equal(counts, (cosine_mask_ratio(r) * 10).round().long().clamp(1, 10))
    assert (random_mask(64, 1, generator=g).sum(1) == 1).all()
    # positions are spread over the whole sequence, not a prefix
    assert mask.float().mean(0).min() > 0.3


@pytest.mark.parametrize("frames", [16, 17])  # 16 is padded to 17 by repeating its last frame, as the tokenizer does
def test_latent_region_of_every_task_on_a_64x64_clip(frames):
    """By hand: latent frame 0 holds video frame 0, latent j >= 1 frames 4j-3 .. 4j (frame 16 is 16-frame clips'
    padding, a copy of frame 15); a latent is condition when any frame it holds is visible."""
    def latent_frames(*js):
        return (torch.isin(torch.arange(5), torch.tensor(js, dtype=torch.long)))[:, None, None].expand(5, 8, 8)

    box = torch.zeros(5, 8, 8, dtype=torch.bool)
    box[:, 2:6, 2:6] = True
    middle = (torch.arange(8) >= 2) & (torch.arange(8) < 6)
    expected = {
        "generation": latent_frames(),
        "frame_interpolation": latent_frames(0, 4),  # the last frame is in the last group: it is shown
        "outpaint_central": box,
        "inpaint_central": ~box,
        "outpaint_horizontal": middle[None, None, :].expand(5, 8, 8),
        "outpaint_vertical": middle[None, :, None].expand(5, 8, 8),
    }
    for task, want in expected.items():
        got = latent_region(task, frames, 64, 64)
        assert got.shape == (5, 8, 8) and torch.equal(got, want), task
    for cond_frames, groups in ((1, [0]), (2, [0, 1]), (5, [0, 1]), (6, [0, 1, 2]), (9, [0, 1, 2]), (10, [0, 1, 2, 3])):
        got = latent_region("frame_prediction", frames, 64, 64, cond_frames=cond_frames)
        assert torch.equal(got, latent_frames(*groups)), cond_frames
    assert set(TASKS) == set(expected) | {"frame_prediction"}
    assert not torch.equal(latent_region("frame_interpolation", frames, 64, 64),
                           latent_region("frame_prediction", frames, 64, 64))


def test_pixel_region_boxes_and_unaligned_latent_box():
    region = pixel_region("outpaint_central", 3, 64, 32)
    assert region[:, 16:48, 8:24].all() and region.sum() == 3 * 32 * 16
    assert torch.equal(pixel_region("inpaint_central", 3, 64, 32), ~region)
    assert pixel_region("frame_interpolation", 9, 4, 4).all(dim=(1, 2)).nonzero().flatten().tolist() == [0, 8]
    # 48 pixels: the box is [12, 36); latents 1 and 4 straddle its edge and hold visible pixels either way
    assert latent_region("outpaint_central", 5, 48, 48)[0].nonzero()[:, 0].unique().tolist() == [1, 2, 3, 4]
    inpaint = latent_region("inpaint_central", 5, 48, 48)[0]
    assert inpaint[1].all() and inpaint[4].all() and inpaint[:, 1].all() and not inpaint[2:4, 2:4].any()


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match="num_frames=15"):  # neither 1 + 4k nor 4k
        latent_region("generation", 15, 64, 64)
    with pytest.raises(ValueError, match="height=60"):
        latent_region("generation", 17, 60, 64)
    with pytest.raises(ValueError, match="width=20.*spatial_factor=8"):
        latent_region("generation", 17, 64, 20)
    with pytest.raises(ValueError, match="task='foo'.*frame_prediction"):
        pixel_region("foo", 17, 64, 64)
    with pytest.raises(ValueError, match="cond_frames=17"):
        latent_region("frame_prediction", 17, 64, 64, cond_frames=17)


@pytest.mark.parametrize("task", TASKS)
def test_condition_video_keeps_visible_pixels_exactly(task):
    video = torch.rand(2, 9, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    cond = condition_video(video, task, cond_frames=2)
    visible = pixel_region(task, 9, 16, 16, cond_frames=2)[None, :, None].expand_as(video)
    assert cond.shape == video.shape
    assert torch.equal(cond[visible], video[visible])
    assert not visible.all()


def test_condition_video_padding_kinds():
    video = torch.rand(1, 9, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    pred = condition_video(video, "frame_prediction", cond_frames=2)
    assert all(torch.equal(pred[:, i], video[:, 1]) for i in range(2, 9))
    interp = condition_video(video, "frame_interpolation")
    assert torch.allclose(interp[:, 4], (video[:, 0] + video[:, 8]) / 2)
    assert torch.allclose(interp[:, 2], 0.75 * video[:, 0] + 0.25 * video[:, 8])
    inpaint = condition_video(video, "inpaint_central")
    assert (inpaint[..., 4:12, 4:12] == 0.5).all()
    central = condition_video(video, "outpaint_central")
    assert torch.equal(central[..., 0, 0], video[..., 4, 4]) and torch.equal(central[..., 15, 2], video[..., 11, 4])
    horizontal = condition_video(video, "outpaint_horizontal")
    assert torch.equal(horizontal[..., 0], video[..., 4]) and torch.equal(horizontal[..., 15], video[..., 11])
    vertical = condition_video(video, "outpaint_vertical")
    assert torch.equal(vertical[..., 0, :], video[..., 4, :]) and torch.equal(vertical[..., 13, :], video[..., 11, :])
    assert (condition_video(video, "generation") == 0.5).all()


def test_commit_inputs_kinds_and_values():
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    cond = tokens + 100
    region = torch.tensor([True, True, False, False])
    mask = torch.tensor([[True, False, True, False], [False, True, True, True]])
    inputs, kinds = commit_inputs(tokens, cond, region, mask, mask_id=999)
    assert inputs.tolist() == [[101, 2, 999, 4], [5, 106, 999, 999]]
    assert kinds.dtype == torch.int8 and kinds.tolist() == [[1, 0, 2, 0], [0, 1, 2, 2]]
    per_sample = torch.tensor([[True] * 4, [False] * 4])
    inputs, kinds = commit_inputs(tokens, cond, per_sample, mask, mask_id=999)
    assert inputs.tolist() == [[101, 2, 103, 4], [5, 999, 999, 999]]


def test_commit_loss_parts():
    targets = torch.tensor([[0, 1, 2, 3]])
    kinds = torch.tensor([[0, 0, 2, 2]], dtype=torch.int8)
    logits = torch.full((1, 4, 4), -20.0)
    logits[0, 0, 0] = logits[0, 1, 1] = 20.0  # right on the recons positions
    logits[0, 2, 0] = logits[0, 3, 0] = 20.0  # wrong on the mask positions
    parts = commit_loss(logits, targets, kinds)
    assert parts["recons"] < 0.01 and parts["mask"] > 30
    assert parts["refine"] == 0 and not parts["refine"].isnan()
    assert torch.isclose(parts["loss"], (parts["recons"] + parts["mask"]) / 2)
    # label smoothing keeps even a perfect prediction's loss above 0
    assert parts["recons"] > 0
    logits.requires_grad_(True)
    commit_loss(logits, targets, kinds)["refine"].backward()
    assert not logits.grad.isnan().any()


# ---- transformer ----


def _model(**kw):
    torch.manual_seed(0)
    args = dict(codebook_size=16, latent_shape=(2, 3, 3), num_tasks=3, dim=32, depth=2, heads=4)
    return MaskedTransformer(**(args | kw)).eval()


@pytest.mark.parametrize("positions", ["factorized", "full"])
def test_transformer_shape_and_bidirectional(positions):
    model = _model(positions=positions, num_classes=5)
    tokens = torch.randint(0, 17, (2, 18), generator=torch.Generator().manual_seed(0))
    task = torch.tensor([0, 2])
    logits = model(tokens, task, class_ids=torch.tensor([1, 5]))
    assert logits.shape == (2, 18, 16)
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 17
    assert not torch.allclose(model(changed, task, class_ids=torch.tensor([1, 5]))[:, 0], logits[:, 0])
    # the class and the task condition the output
    assert not torch.allclose(model(tokens, task, class_ids=torch.tensor([2, 5])), logits)
    assert not torch.allclose(model(tokens, torch.tensor([1, 2]), class_ids=torch.tensor([1, 5])), logits)


def test_transformer_ignores_text_padding():
    model = _model(text_vocab_size=10, text_len=6)
    tokens = torch.randint(0, 17, (2, 18), generator=torch.Generator().manual_seed(0))
    task = torch.tensor([1, 1])
    ids = torch.tensor([[3, 4, 0], [5, 0, 0]])
    out = model(tokens, task, ids)
    padded = torch.tensor([[3, 4, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0]])
    assert torch.allclose(model(tokens, task, padded), out, atol=1e-5)
    # masked-out positions may hold any id
    junk = torch.tensor([[3, 4, 9], [5, 7, 8]])
    assert torch.allclose(model(tokens, task, junk, ids != 0), out, atol=1e-5)
    assert not torch.allclose(model(tokens, task, junk), out, atol=1e-3)


def test_transformer_errors():
    with pytest.raises(ValueError, match="positions='rope'.*factorized, full"):
        _model(positions="rope")
    model = _model()
    with pytest.raises(ValueError, match=r"allowed: \(B, 18\)"):
        model(torch.zeros(1, 17, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="no text condition"):
        model(torch.zeros(1, 18, dtype=torch.long), torch.zeros(1, dtype=torch.long), torch.ones(1, 2).long())


# ---- decoding ----


class Recorder:
    """Random logits over K tokens, never the condition id COND; counts what each call saw."""

    COND, MASK, K = 7, 8, 8

    def __init__(self, seed=0):
        self.g = torch.Generator().manual_seed(seed)
        self.inputs = []

    def __call__(self, tokens):
        self.inputs.append(tokens.clone())
        logits = torch.randn(*tokens.shape, self.K, generator=self.g)
        logits[..., self.COND] = -1e9
        return logits


@pytest.mark.parametrize("steps", [1, 2, 12])
def test_decode_fills_every_mask_following_the_schedule(steps):
    fn, g = Recorder(), torch.Generator().manual_seed(0)
    out = decode_tokens(fn, (2, 3, 5), 3, mask_id=Recorder.MASK, steps=steps, generator=g)
    assert out.shape == (3, 30) and out.dtype == torch.long
    assert (out != Recorder.MASK).all() and (out < Recorder.K).all()
    assert len(fn.inputs) == steps
    assert [(x == Recorder.MASK).sum(1).tolist() for x in fn.inputs] == [[30] * 3] + [
        [cosine_schedule(s, steps, 30)] * 3 for s in range(steps - 1)
    ]


def test_decode_puts_condition_tokens_back_inside_the_region():
    fn, n, steps = Recorder(), 40, 6
    region = torch.arange(n) < 15
    cond = torch.full((2, n), Recorder.COND)
    out = decode_tokens(
        fn,
        n,
        2,
        mask_id=Recorder.MASK,
        steps=steps,
        cond_tokens=cond,
        region=region,
        generator=torch.Generator().manual_seed(0),
    )
    assert (out != Recorder.MASK).all() and (out != Recorder.COND).all()
    assert torch.equal(fn.inputs[0], torch.where(region, Recorder.COND, Recorder.MASK).expand(2, n))
    for step, x in enumerate(fn.inputs[1:]):
        unknown = (x == Recorder.MASK) | (x == Recorder.COND)
        assert (unknown.sum(1) == cosine_schedule(step, steps, n)).all()
        # re-masked positions: condition token inside the region, [MASK] outside
        assert not (x == Recorder.COND)[:, ~region].any() and not (x == Recorder.MASK)[:, region].any()
    assert any((x == Recorder.COND).any() for x in fn.inputs[2:])
    # decided positions never change afterwards
    for before, after in zip(fn.inputs[1:], fn.inputs[2:] + [out], strict=True):
        known = (before != Recorder.MASK) & (before != Recorder.COND)
        assert torch.equal(after[known], before[known])


def test_decode_is_deterministic_and_follows_a_strong_preference():
    g = lambda seed: torch.Generator().manual_seed(seed)
    run = lambda seed: decode_tokens(Recorder(), 20, 2, mask_id=8, steps=4, generator=g(seed))
    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))

    def prefers_three(tokens):
        logits = torch.zeros(*tokens.shape, 8)
        logits[..., 3] = 30.0
        return logits

    assert (decode_tokens(prefers_three, 20, 2, mask_id=8, steps=3) == 3).all()
    # a head that also scores the [MASK] id never decodes to it
    prefers_mask = lambda tokens: torch.cat([prefers_three(tokens), torch.full((*tokens.shape, 1), 50.0)], -1)
    assert (decode_tokens(prefers_mask, 20, 2, mask_id=8, steps=3) == 3).all()
    with pytest.raises(ValueError, match="steps=0"):
        decode_tokens(prefers_three, 20, 2, mask_id=8, steps=0)


def test_cosine_schedule_values():
    assert [cosine_schedule(s, 4, 100) for s in range(4)] == [92, 70, 38, 0]
    assert cosine_schedule(0, 1, 100) == 0 and math.floor(100 * math.cos(math.pi / 8)) == 92
