import json

import pytest
import torch

from t2vlab.data.video_io import read_video, write_video
from t2vlab.evaluation.sampling import sample, write_samples
from t2vlab.lit.gan import GANModule
from t2vlab.models.gan.losses import GANHingeLoss
from t2vlab.models.gan.video import VideoDiscriminator, VideoGenerator
from t2vlab.runtime.hardware import cpu_precision

VOCAB = ["circle", "down", "left", "moving", "right", "up"]


def test_gif_round_trip_keeps_shape_and_flat_colours(tmp_path):
    video = torch.ones(6, 3, 32, 32)
    for t in range(6):  # a moving yellow square on white: two palette colours survive exactly
        video[t, 2, 8:16, 2 + 3 * t:10 + 3 * t] = 0.0
    path = write_video(video, tmp_path / "clip.gif")
    back = read_video(path)
    assert back.shape == video.shape and torch.allclose(back, video, atol=1 / 255)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]  # no temporary file left behind


def test_gif_of_many_colours_keeps_the_picture_and_greyscale_round_trips(tmp_path):
    torch.manual_seed(0)
    x = torch.linspace(0, 1, 32)
    ramp = torch.stack([x[None, :].expand(32, 32), x[:, None].expand(32, 32), (x[None, :] + x[:, None]) / 2])
    video = (ramp + 0.1 * torch.rand(8, 3, 32, 32)).clamp(0, 1)  # thousands of colours per frame
    back = read_video(write_video(video, tmp_path / "noisy.gif"))
    psnr = 10 * torch.log10(1 / (back - video).square().mean())
    assert back.shape == video.shape and psnr > 25  # 256 colours: 28.8 dB here (median cut: 33.1)
    grey = torch.rand(4, 1, 16, 16)
    back = read_video(write_video(grey, tmp_path / "grey.gif"))
    assert back.shape == (4, 3, 16, 16) and torch.allclose(back, grey.expand(-1, 3, -1, -1), atol=1 / 255)


def test_bad_suffix_and_shape_are_refused(tmp_path):
    with pytest.raises(ValueError, match="allowed suffixes"):
        write_video(torch.zeros(2, 3, 8, 8), tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="shape"):
        write_video(torch.zeros(2, 8, 8), tmp_path / "clip.gif")


def test_samples_and_manifest(tmp_path):
    n = len(VOCAB) + 1
    module = GANModule(VideoGenerator(n, base_channels=32), VideoDiscriminator(n, base_channels=8), GANHingeLoss(),
                       VOCAB).eval()
    prompts = ["circle moving up", "circle moving left"]
    videos, texts = sample(module, prompts, clips_per_prompt=2, num_frames=5, seed=3)
    assert videos.shape == (4, 5, 3, 64, 64) and texts == [prompts[0]] * 2 + [prompts[1]] * 2
    again, _ = sample(module, prompts, clips_per_prompt=2, num_frames=5, seed=3)
    assert torch.equal(videos, again)
    rows = write_samples(videos, texts, tmp_path / "s", heldout=["circle moving left"], fields={"step": 7})
    lines = [json.loads(x) for x in (tmp_path / "s" / "manifest.jsonl").read_text().splitlines()]
    assert lines == rows and len(rows) == 4
    assert all((tmp_path / "s" / r["path"]).is_file() and r["step"] == 7 for r in rows)
    assert [r["heldout"] for r in rows] == [False, False, True, True]


def test_cpu_precision_is_a_lightning_precision():
    assert cpu_precision() in ("bf16-mixed", "32-true")
