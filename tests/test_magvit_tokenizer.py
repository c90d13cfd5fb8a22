"""The MAGVIT tokenizer: causality, shapes, quantizer ids, the training module's wiring and its report."""

from __future__ import annotations

import pytest
import torch

from t2vlab.evaluation.metrics.codebook import codebook_usage
from t2vlab.models.magvit.tokenizer import CausalConv3d, CausalUpsample, ChannelNorm, VideoTokenizer


def _tokenizer(**kw) -> VideoTokenizer:
    torch.manual_seed(0)
    return VideoTokenizer(**{"channels": 8, "multipliers": (1, 2, 2), "patch": 2, "latent_dim": 6,
                             "codebook_size": 64, **kw}).eval()


def test_shapes_1_plus_4k_frames_and_padding_of_16():
    tok = _tokenizer()
    assert tok.spatial_factor == 8
    for frames, latent in ((1, 1), (5, 2), (9, 3), (16, 5), (17, 5)):
        video = torch.rand(2, frames, 3, 32, 32)
        ids = tok.tokenize(video)
        assert ids.shape == (2, latent, 4, 4) and tok.latent_shape(frames, 32, 32) == (latent, 4, 4)
        assert tok.detokenize(ids, frames).shape == (2, frames, 3, 32, 32)
    with pytest.raises(ValueError, match="multiples of 8"):
        tok.tokenize(torch.rand(1, 5, 3, 30, 32))


def test_encoder_is_causal_in_time():
    tok = _tokenizer()
    video = torch.rand(1, 17, 3, 32, 32)
    base = tok.encode(video)
    for k in (1, 5, 8, 16):  # changing frame k leaves every latent frame before k // 4 (ceil) unchanged
        changed = video.clone()
        changed[:, k] = torch.rand_like(changed[:, k])
        z = tok.encode(changed)
        first_affected = (k + 3) // 4  # latent j covers frames 4j-3 .. 4j
        torch.testing.assert_close(z[:, :, :first_affected], base[:, :, :first_affected])
        assert not torch.allclose(z[:, :, first_affected], base[:, :, first_affected])


def test_decoder_is_causal_and_its_first_frame_comes_from_the_first_latent_alone():
    tok = _tokenizer()
    ids = torch.randint(0, 64, (1, 5, 4, 4))
    base = tok.detokenize(ids)
    changed = ids.clone()
    changed[:, 2] = (changed[:, 2] + 1) % 64
    out = tok.detokenize(changed)
    torch.testing.assert_close(out[:, :5], base[:, :5])  # frames 0..4 come from latent frames 0 and 1
    assert not torch.allclose(out[:, 5:9], base[:, 5:9])


def test_causal_building_blocks():
    conv = CausalConv3d(2, 3, (3, 3, 3), (2, 1, 1))
    assert conv(torch.rand(1, 2, 9, 8, 8)).shape == (1, 3, 5, 8, 8)  # 1 + 2k -> 1 + k
    up = CausalUpsample(4, 2, time=True)
    assert up(torch.rand(1, 4, 5, 4, 4)).shape == (1, 2, 9, 8, 8)  # 1 + k -> 1 + 2k


def test_channel_norm_normalises_each_position_over_its_channels():
    norm = ChannelNorm(6)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
        norm.bias.fill_(0.5)
    x = torch.randn(2, 6, 3, 4, 5) * 3 + 2
    mean, var = x.mean(1, keepdim=True), x.var(1, keepdim=True, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(1, -1, 1, 1, 1) + 0.5
    torch.testing.assert_close(norm(x), expected, rtol=1e-4, atol=1e-5)
    changed = x.clone()
    changed[:, :, 2] += 5  # a later frame leaves the earlier frames' outputs as they were
    torch.testing.assert_close(norm(changed)[:, :, :2], norm(x)[:, :, :2])


def test_lfq_ids_round_trip_through_the_codes():
    tok = _tokenizer()
    ids = torch.randint(0, 64, (3, 2, 4, 4))
    codes = tok.codes(ids)  # (B,d,t,h,w) of +-1
    assert codes.shape == (3, 6, 2, 4, 4) and set(codes.unique().tolist()) == {-1.0, 1.0}
    _, again, _ = tok.quantize(codes)
    assert torch.equal(again.long(), ids)
    # most significant bit first, as vector-quantize-pytorch orders them
    one = tok.codes(torch.tensor([[[[1]]]]))[0, :, 0, 0, 0]
    assert one.tolist() == [-1, -1, -1, -1, -1, 1]


@pytest.mark.parametrize("kind,extra", [("fsq", {"latent_dim": 3, "codebook_size": 64, "fsq_levels": [4, 4, 4]}),
                                        ("vq", {})])
def test_other_quantizers_round_trip(kind, extra):
    tok = _tokenizer(quantizer=kind, **extra)
    video = torch.rand(2, 5, 3, 32, 32)
    ids = tok.tokenize(video)
    assert ids.shape == (2, 2, 4, 4) and int(ids.max()) < 64
    codes = tok.codes(ids)
    if kind == "fsq":  # FSQ's bounding is not idempotent on its own codes: its index map is the round trip
        again = tok.quantizer.codes_to_indices(codes.movedim(1, -1))
    else:  # a codebook entry is its own nearest entry
        _, again, _ = tok.quantize(codes)
    assert torch.equal(again.long(), ids)


@pytest.mark.parametrize("temperature, gamma", [(0.01, 1.0), (1.0, 1.0), (0.1, 0.0), (0.5, 3.0)])
def test_lfq_entropy_term_against_its_formula(temperature, gamma):
    """Code probabilities p_i(c) = softmax_c(2 z_i.c / T) over every code c in {-1, 1}^d; the term is
    entropy_weight x (mean_i H(p_i) - gamma H(mean_i p_i)), plus commitment_weight x mean (z - sign z)^2."""
    tok = _tokenizer(latent_dim=4, codebook_size=16, entropy_weight=0.3, commitment_weight=0.2,
                     entropy_temperature=temperature, diversity_gamma=gamma).train()
    z = torch.randn(2, 4, 2, 3, 3) * 0.3
    _, _, aux = tok.quantize(z)
    codes = torch.tensor([[1.0 if (c >> (3 - b)) & 1 else -1.0 for b in range(4)] for c in range(16)])
    flat = z.movedim(1, -1).reshape(-1, 4).double()
    p = (2 * flat @ codes.double().T / temperature).softmax(-1)
    H = lambda q: -(q * q.clamp_min(1e-5).log()).sum(-1)  # noqa: E731  (the library clamps inside the log)
    per_sample, codebook = H(p).mean(), H(p.mean(0))
    commitment = (flat - flat.sign()).square().mean()
    torch.testing.assert_close(aux["per_sample_entropy"].double(), per_sample, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(aux["codebook_entropy"].double(), codebook, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(aux["aux"].double(), 0.3 * (per_sample - gamma * codebook) + 0.2 * commitment,
                               rtol=1e-4, atol=1e-5)


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="codebook_size=100 .* 2\\^latent_dim = 64"):
        VideoTokenizer(latent_dim=6, codebook_size=100)
    with pytest.raises(ValueError, match="fsq_levels"):
        VideoTokenizer(latent_dim=3, codebook_size=64, quantizer="fsq", fsq_levels=[4, 4])
    with pytest.raises(ValueError, match="quantizer='pq' is invalid; allowed: lfq, fsq, vq"):
        VideoTokenizer(quantizer="pq")
    with pytest.raises(ValueError, match="multipliers"):
        VideoTokenizer(multipliers=(1, 2))
    with pytest.raises(ValueError, match="entropy_temperature=0 is invalid; allowed: > 0"):
        VideoTokenizer(entropy_temperature=0)
    with pytest.raises(ValueError, match="diversity_gamma=-1 is invalid; allowed: >= 0"):
        VideoTokenizer(diversity_gamma=-1)


def test_codebook_usage():
    ids = torch.tensor([0, 1, 2, 3] * 10)
    usage = codebook_usage(ids, 8)
    assert usage["codes_used"] == 0.5 and usage["codes_used_count"] == 4
    assert abs(usage["perplexity"] - 4) < 1e-9 and abs(usage["entropy_bits"] - 2) < 1e-9
    assert codebook_usage(torch.zeros(10, dtype=torch.long), 8)["perplexity"] == 1.0


def test_training_windows_are_any_length_and_contiguous():
    from t2vlab.lit.magvit_tokenizer import TokenizerModule
    from t2vlab.models.magvit.losses import TokenizerLoss

    def module(frames):
        return TokenizerModule(_tokenizer(), TokenizerLoss(), vocab=["circle"], train_frames=frames)

    clips = torch.arange(16.0).view(1, 16, 1, 1, 1).expand(2, 16, 3, 4, 4)
    for _ in range(5):  # a 12-frame window ends padded like a 16-frame clip: 3 frames and a repeat
        window = module(12)._window(clips)
        first = int(window[0, 0, 0, 0, 0])
        assert window.shape[1] == 12 and 0 <= first <= 4
        assert torch.equal(window[0, :, 0, 0, 0], torch.arange(first, first + 12.0))
    assert module(None)._window(clips).shape[1] == 16 and module(20)._window(clips).shape[1] == 16
    with pytest.raises(ValueError, match="train_frames=0 is invalid; allowed: null .* or >= 1"):
        module(0)


def test_auxiliary_terms_start_and_ramp_as_configured():
    from t2vlab.lit.magvit_tokenizer import TokenizerModule
    from t2vlab.models.magvit.losses import TokenizerLoss

    def scales(**kw):
        module = TokenizerModule(_tokenizer(), TokenizerLoss(), vocab=["circle"], **kw)
        return [module.aux_scale(step) for step in range(8)]

    assert scales() == [1.0] * 8
    assert scales(aux_start=3) == [0, 0, 0, 1, 1, 1, 1, 1]
    assert scales(aux_start=2, aux_ramp=4) == [0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    with pytest.raises(ValueError, match="aux_ramp=-1 is invalid; allowed: >= 0"):
        scales(aux_ramp=-1)


def test_perceptual_term_is_lpips_on_frames_with_gradients(alexnet_file):
    from t2vlab.models.magvit.losses import TokenizerLoss

    loss = TokenizerLoss(perceptual_weight=0.5, perceptual_backbone=str(alexnet_file))
    torch.manual_seed(1)
    video = torch.rand(2, 5, 3, 32, 32)
    recon = video.clone().add_(0.2 * torch.randn_like(video)).clamp_(0, 1).requires_grad_(True)
    assert float(loss.perceptual(video, video.clone())) == pytest.approx(0.0, abs=1e-6)
    value = loss.perceptual(recon, video)
    assert value > 0
    value.backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    grey = video[:, :, :1]  # one channel: compared as grey RGB
    assert loss.perceptual(grey.flip(1), grey) > 0

    some = TokenizerLoss(perceptual_weight=0.5, perceptual_backbone=str(alexnet_file), perceptual_frames=2)
    first_only = recon.detach().clone()
    first_only[:, 1:] = video[:, 1:]  # only frame 0 differs: scored when picked, 0 when not
    values = {round(float(some.perceptual(first_only, video)), 6) for _ in range(20)}
    assert 0.0 in values and len(values) > 1


def test_perceptual_term_settings_are_checked_before_any_training(tmp_path, alexnet_file):
    from t2vlab.models.magvit.losses import TokenizerLoss

    missing = tmp_path / "alexnet.pth"
    with pytest.raises(ValueError, match=r"loss.perceptual_weight=0.1 needs LPIPS weights.*alexnet.pth does not exist"
                                         r".*loss.perceptual_backbone="):
        TokenizerLoss(perceptual_weight=0.1, perceptual_backbone=str(missing))
    with pytest.raises(ValueError, match=r"loss.perceptual_frames=0 is invalid; allowed: null"):
        TokenizerLoss(perceptual_frames=0)
    with pytest.raises(ValueError, match=r"loss.perceptual_weight=-1 is invalid"):
        TokenizerLoss(perceptual_weight=-1)
    assert TokenizerLoss(perceptual_backbone=str(missing)).perceptual_net is None  # weight 0: nothing loaded
    small = TokenizerLoss(perceptual_weight=0.1, perceptual_backbone=str(alexnet_file))
    with pytest.raises(ValueError, match=r"16-pixel frames is invalid; allowed: frames of at least 31"):
        small.perceptual(torch.rand(1, 2, 3, 16, 16), torch.rand(1, 2, 3, 16, 16))
