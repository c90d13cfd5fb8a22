"""Real video data sets on generated fixtures in their published formats: decoding and damaged files,
frame sampling and cropping, the preprocessing cache (hits, resume, repair, skip report), MSR-VTT's
annotations, splits, captions, override file and safe zip extraction, and both data sets in training."""

from __future__ import annotations

import json
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import compose_cfg
from video_fixtures import cut_in_half, damage_middle, gif_bytes, moving_square, msrvtt_fixture, write_mp4

from t2vlab.data.clip_cache import ClipCache, VideoEntry
from t2vlab.data.msrvtt import MsrvttDataModule, read_captions_override, read_msrvtt_annotations, safe_extract
from t2vlab.data.tgif import read_tgif_tsv
from t2vlab.data.video_decode import DamagedVideo, DecodedVideo, decode_video
from t2vlab.data.video_preprocess import SkippedClip, VideoSettings, crop_and_resize, preprocess, sample_indices

SMALL = {"num_frames": 8, "image_size": 32}


def test_mp4_and_gif_decode_to_their_frames_and_rate(tmp_path):
    video = moving_square(12)
    mp4 = decode_video(write_mp4(tmp_path / "a.mp4", video, fps=10))
    assert mp4.frames.shape == (12, 48, 64, 3) and mp4.fps == 10
    # lossy (the noise blurs away), but the same picture: the square and the red column come back
    assert np.corrcoef(mp4.frames.mean(-1).ravel(), video.mean(-1).ravel())[0, 1] > 0.9
    (tmp_path / "a.gif").write_bytes(gif_bytes(video, duration_ms=50))
    gif = decode_video(tmp_path / "a.gif")
    assert gif.frames.shape == (12, 48, 64, 3) and gif.fps == pytest.approx(20)
    for path in (tmp_path / "a.mp4", tmp_path / "a.gif"):
        head = decode_video(path, max_frames=5).frames
        assert head.shape == (5, 48, 64, 3) and (head == decode_video(path).frames[:5]).all()


# damaged in the middle: "undecodable" too when ffmpeg stops before imageio-ffmpeg has read its header (timing)
@pytest.mark.parametrize("damage,reason", [(damage_middle, "damaged: decoded|undecodable"),
                                           (cut_in_half, "undecodable"),
                                           (lambda p: p.write_bytes(b"<html>" * 50), "undecodable"),
                                           (lambda p: p.write_bytes(b""), "empty file"),
                                           (lambda p: p.unlink(), "missing file")])
def test_a_damaged_mp4_is_refused_not_half_decoded(tmp_path, damage, reason):
    path = write_mp4(tmp_path / "a.mp4", moving_square(30, seed=1))
    damage(path)
    with pytest.raises(DamagedVideo, match=reason):
        decode_video(path)


def test_a_truncated_gif_is_refused(tmp_path):
    data = gif_bytes(moving_square(12))
    (tmp_path / "a.gif").write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedVideo, match="undecodable GIF"):
        decode_video(tmp_path / "a.gif")


def test_frame_sampling_modes():
    s = lambda **kw: VideoSettings(**{"num_frames": 4, **kw})  # noqa: E731
    assert sample_indices(10, 10, s()).tolist() == [0, 1, 2, 3]
    assert sample_indices(10, 10, s(sampling="uniform")).tolist() == [0, 3, 6, 9]
    assert sample_indices(10, 10, s(sampling="stride", stride=3)).tolist() == [0, 3, 6, 9]
    assert sample_indices(20, 30, s(sampling="fps", fps=10)).tolist() == [0, 3, 6, 9]  # 30 fps -> 10 fps
    assert sample_indices(7, 10, s(num_frames=None, sampling="stride", stride=2)).tolist() == [0, 2, 4, 6]
    assert sample_indices(7, 10, s(num_frames=None, max_frames=2)).tolist() == [0, 1]
    with pytest.raises(SkippedClip, match="too short"):
        sample_indices(10, 10, s(sampling="stride", stride=4))
    # only the leading frames that sampling and filters read are decoded
    assert s().frames_needed() == 4 and s(sampling="stride", stride=3).frames_needed() == 10
    assert s(min_frames=16).frames_needed() == 16 and s(sampling="uniform").frames_needed() is None


def test_crop_takes_the_centred_square_of_the_fraction_and_resizes():
    video = moving_square(2, height=40, width=80)
    out = crop_and_resize(video, crop_fraction=0.5, size=20)
    assert out.shape == (2, 20, 20, 3) and out.dtype == np.uint8
    # the red column sits at the centre of the 80-pixel frame, so also at the centre of the crop
    assert out[0, :, 9:11, 0].mean() > 100 and out[0, :, :5, 0].mean() < 30


def test_filters_and_bad_settings():
    clip = DecodedVideo(moving_square(10, height=40, width=80), 10.0)
    with pytest.raises(SkippedClip, match="too small: 80x40 < min_side=64"):
        preprocess(clip, VideoSettings(min_side=64))
    with pytest.raises(SkippedClip, match="too short: 10 frames < min_frames=16"):
        preprocess(clip, VideoSettings(min_frames=16))
    assert preprocess(clip, VideoSettings(num_frames=10, image_size=16)).shape == (10, 16, 16, 3)
    for bad, match in [({"sampling": "random"}, "dataset.settings.sampling=.random. is invalid; allowed: first"),
                       ({"sampling": "fps"}, "dataset.settings.fps=None is invalid"),
                       ({"crop_fraction": 0}, "crop_fraction=0 is invalid"),
                       ({"sampling": "uniform", "num_frames": None}, "num_frames=null is invalid")]:
        with pytest.raises(ValueError, match=match):
            VideoSettings(**bad)


def _entries(tmp_path, n=5):
    folder = tmp_path / "src"
    folder.mkdir()
    entries = [VideoEntry(f"v{i}", write_mp4(folder / f"v{i}.mp4", moving_square(12, seed=i))) for i in range(n)]
    damage_middle(entries[1].path)
    entries.append(VideoEntry("gone", folder / "gone.mp4"))
    return entries


def test_cache_skips_bad_files_with_reasons_and_a_second_build_is_a_hit(tmp_path):
    entries = _entries(tmp_path)
    settings = VideoSettings(**SMALL)
    cache = ClipCache(tmp_path / "cache", "t", entries, settings, shard_size=2)
    first = cache.build(progress=False)
    assert first["clips"] == 4 and first["decoded_files"] == 6
    report = json.loads((cache.folder / "report.json").read_text())
    # the file damaged a third in is "damaged" (ffmpeg stopped part way) or "undecodable" (ffmpeg stopped before
    # imageio-ffmpeg had read its stream header, which depends on timing): both skip it with a reason
    reasons = report["by_reason"]
    assert reasons.pop("missing file") == 1 and reasons in ({"damaged": 1}, {"undecodable": 1})
    assert {f["id"] for f in report["files"]} == {"v1", "gone"}
    clip = cache.clip(0)
    assert clip.shape == (8, 32, 32, 3) and str(clip.dtype) == "torch.uint8"
    again = ClipCache(tmp_path / "cache", "t", entries, settings, shard_size=2)
    second = again.build(progress=False)
    assert second["decoded_files"] == 0 and second["clips"] == 4 and again.folder == cache.folder
    assert (again.clip(3) == cache.clip(3)).all()
    # other settings: another cache; a changed source file: another cache
    assert ClipCache(tmp_path / "cache", "t", entries, VideoSettings(num_frames=4), 2).folder != cache.folder
    write_mp4(entries[0].path, moving_square(11))
    assert ClipCache(tmp_path / "cache", "t", entries, settings, 2).folder != cache.folder


def test_cache_resumes_after_a_kill_and_repairs_a_damaged_shard(tmp_path):
    entries = _entries(tmp_path)
    settings = VideoSettings(**SMALL)
    cache = ClipCache(tmp_path / "cache", "t", entries, settings, shard_size=2)
    cache.build(progress=False)
    cache.sidecar_path(2).unlink()  # killed before shard 2 was done
    data = bytearray(cache.shard_path(0).read_bytes())
    data[-10:] = bytes(10)  # shard 0 damaged on disk
    cache.shard_path(0).write_bytes(bytes(data))
    rebuilt = ClipCache(tmp_path / "cache", "t", entries, settings, shard_size=2).build(progress=False)
    assert rebuilt["decoded_files"] == 4 and rebuilt["clips"] == 4  # shards 0 and 2, two files each
    assert not [p for p in cache.folder.iterdir() if p.name.startswith("tmp")]


def test_cache_with_a_limit_decodes_only_until_enough_clips_are_kept(tmp_path):
    entries = _entries(tmp_path)
    cache = ClipCache(tmp_path / "cache", "t", entries, VideoSettings(**SMALL), shard_size=1, limit=2)
    summary = cache.build(progress=False)
    assert summary["clips"] == 2 and summary["decoded_files"] == 3  # v0, v1 (damaged), v2
    assert [i for _, _, i in cache.index] == ["v0", "v2"]


def test_msrvtt_annotations_splits_captions_and_override(tmp_path):
    paths = msrvtt_fixture(tmp_path)
    splits, captions = read_msrvtt_annotations(paths["annotations"])
    assert splits["video3"] == "test" and captions["video2"][:2] == ["clip 2 caption 0", "clip 2 caption 1"]
    override = tmp_path / "override.csv"
    override.write_text('id,caption\nvideo0,"a square, moving right"\nvideo9,unknown clip\n')
    assert read_captions_override(override) == {"video0": "a square, moving right", "video9": "unknown clip"}

    def module(**kw):
        dm = MsrvttDataModule(str(paths["annotations"]), str(paths["videos"]), settings=SMALL,
                              cache_dir=str(tmp_path / "cache"), progress=False, **kw)
        dm.check()
        dm.prepare_data()
        dm.setup()
        return dm

    dm = module(captions="first")
    assert len(dm.train_set) == 3  # train: video0, 1, 2, 4; video4 is damaged
    assert dm.report["by_reason"] == {"damaged": 1}
    item = dm.train_set[0]
    assert item["video"].shape == (8, 3, 32, 32) and 0 <= item["video"].min() and item["video"].max() <= 1
    assert item["text"] == f"clip {item['id'][5:]} caption 0"
    assert len(module(captions="all").train_set) == 60
    test = module(split="test", captions="random", caption_seed=1)
    assert {x["id"] for x in test.train_set} == {"video3"}  # video5 is not a video
    assert test.train_set[0]["text"] != "clip 3 caption 0" or module(split="test", captions="random",
                                                                      caption_seed=2).train_set[0]["text"]
    renamed = module(captions="first", captions_override=str(override))
    assert "a square, moving right" in {text for _, text in renamed.train_set.items}
    with pytest.raises(ValueError, match="dataset.split=val is invalid; allowed: train, validate, test"):
        MsrvttDataModule(str(paths["annotations"]), str(paths["videos"]), split="val")


def test_msrvtt_from_its_zip_extracts_once_and_refuses_members_that_escape(tmp_path):
    paths = msrvtt_fixture(tmp_path, zipped=True)
    dm = MsrvttDataModule(str(paths["annotations"]), str(paths["videos"]), settings=SMALL,
                          cache_dir=str(tmp_path / "cache"), progress=False)
    dm.check()
    dm.prepare_data()
    dm.setup()
    assert len(dm.train_set) == 3 * 20 and (tmp_path / "MSRVTT" / "MSRVTT" / "videos" / "all" / "video0.mp4").is_file()
    for name in ("../evil.mp4", "/abs/evil.mp4", "a/../../evil.mp4"):
        evil = tmp_path / f"evil{len(name)}.zip"
        with zipfile.ZipFile(evil, "w") as z:
            z.writestr("fine.mp4", b"x")
            z.writestr(name, b"x")
        with pytest.raises(ValueError, match="outside"):
            safe_extract(evil, tmp_path / "target")
        assert not (tmp_path / "target" / "fine.mp4").exists()  # checked before anything is written
    assert not (tmp_path / "evil.mp4").exists()


def test_tgif_tsv_groups_descriptions_and_skips_malformed_lines(tmp_path):
    tsv = tmp_path / "tgif.tsv"
    tsv.write_text("http://x/a.gif\ta cat jumps\nhttp://x/b.gif\ta dog runs\nnot a line\n\n"
                   "http://x/a.gif\tthe cat leaps\nhttp://x/c.gif\t\n")
    assert read_tgif_tsv(tsv) == {"http://x/a.gif": ["a cat jumps", "the cat leaps"], "http://x/b.gif": ["a dog runs"]}
    with pytest.raises(ValueError, match="dataset.tsv=.* is invalid"):
        read_tgif_tsv(tmp_path / "nope.tsv")


def test_msrvtt_trains_a_gan_and_a_missing_folder_stops_before_training(tmp_path):
    from t2vlab.tasks.preflight import BadInput
    from t2vlab.tasks.train import train

    paths = msrvtt_fixture(tmp_path / "msrvtt")
    common = ["dataset=msrvtt", f"dataset.annotations={paths['annotations']}", "dataset.settings.num_frames=10",
              "dataset.settings.image_size=64", "model=video_gan", "loss=gan_r3", "debug=fast", "logger=none",
              "print_config=false", "callbacks.video_sampler=null"]
    metrics = train(compose_cfg("train", [*common, f"dataset.videos={paths['videos']}"], tmp_path / "run"))
    assert metrics["train/global_step"] > 0 and not any(k.startswith("motion_acc") for k in metrics)
    with pytest.raises(BadInput, match="dataset.videos=.*nowhere.* is invalid"):
        train(compose_cfg("train", [*common, f"dataset.videos={tmp_path / 'nowhere'}"], tmp_path / "run2"))


class _GifServer(ThreadingHTTPServer):
    """Serves {path: bytes} as GIFs; a path that is not there is a 404; counts requests per path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests = files, Counter()
        files_, requests = self.files, self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                requests[self.path] += 1
                if self.path not in files_:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(files_[self.path])))
                self.end_headers()
                self.wfile.write(files_[self.path])

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_tgif_prepare_downloads_and_caches_then_the_splitter_trains_on_it_with_samples(circles_unclip_stack, tmp_path):
    from t2vlab.tasks.prepare import prepare
    from t2vlab.tasks.train import train

    files = {f"/gifs/clip{i}.gif": gif_bytes(moving_square(8 + i, seed=i)) for i in range(5)}
    files["/gifs/page.gif"] = b"<html>" * 40
    server = _GifServer(files)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    tsv = tmp_path / "tgif-v1.0.tsv"
    tsv.write_text("".join(f"{base}{p}\ta circle {p[6:-4]}\n" for p in files) + f"{base}/gifs/clip0.gif\tclip zero\n"
                   f"{base}/gifs/missing.gif\tnothing\n")
    settings = ["dataset=tgif", f"dataset.tsv={tsv}", "dataset.settings.num_frames=null", "dataset.settings.min_side=0",
                "dataset.settings.min_frames=8", "dataset.settings.image_size=64", "dataset.download.backoff=0.01",
                "dataset.download.retries=1", "print_config=false"]
    try:
        summary = prepare(compose_cfg("prepare", settings, tmp_path / "prep"))
        assert summary["kept"] == 5 and summary["clips"] == 6  # 5 GIFs, clip0 with two descriptions
        assert summary["by_reason"] == {}  # the failed downloads never reach the cache: they are not on disk
        failed = (tmp_path / "data" / "tgif" / "gifs" / "failed.tsv").read_text()
        assert "missing.gif\tHTTP 404" in failed and "page.gif\tnot a GIF" in failed
        before = sum(server.requests[p] for p in files if p != "/gifs/page.gif")
        assert prepare(compose_cfg("prepare", settings, tmp_path / "prep2"))["kept"] == 5
        assert sum(server.requests[p] for p in files if p != "/gifs/page.gif") == before  # nothing fetched twice
    finally:
        server.shutdown()
        server.server_close()

    metrics = train(compose_cfg("train", ["experiment=splitter/dual_base", *settings, "dataset.batch_size=2",
                                          "debug=fast", "logger=none", f"backbone.path={circles_unclip_stack}",
                                          "callbacks.video_sampler.every_n_epochs=1"], tmp_path / "run"))
    assert metrics["train/global_step"] == 4 and not any(k.startswith("motion_acc") for k in metrics)
    assert list((tmp_path / "data" / "cache" / "embeddings").glob("circles_unclip-tgif-*/shard-00000.safetensors"))
    assert list((tmp_path / "run" / "samples").rglob("*.gif"))  # clips of any length: 16-frame samples
