"""evaluate.py end to end: a trained run or a folder of videos, both protocols, seeds, unavailable metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_cfg, load_script

from t2vlab.data.video_io import write_video
from t2vlab.loggers.wandb_offline import read_offline_run
from t2vlab.tasks.evaluate import evaluate
from t2vlab.tasks.preflight import BadInput
from t2vlab.tasks.train import train

# keep the learned scorers small here: their own tests cover them at full size
SMALL = ["clips_per_prompt=2", "protocol.metrics.classifier.num_train=64", "protocol.metrics.classifier.epochs=1",
         "protocol.metrics.classifier.num_heldout=32"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "run"
    cfg = compose_cfg("train", ["debug=fast", "logger=wandb", "print_config=false"], out)
    train(cfg)
    return out


def _eval(tmp_path: Path, scripted_i3d: Path, *overrides: str, name: str = "eval") -> dict:
    cfg = compose_cfg("evaluate", [f"protocol.metrics.fvd.weights={scripted_i3d}", *overrides], tmp_path / name)
    return evaluate(cfg)


def test_a_run_gets_every_circles_metric_or_the_reason_it_is_missing(trained_run, tmp_path, scripted_i3d):
    report = _eval(tmp_path, scripted_i3d, f"run_dir={trained_run}", *SMALL)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == json.loads(json.dumps(report))
    m = report["metrics"]
    n = 19 * 2  # 18 training prompts and 1 held-out, 2 clips each
    for key in ("fvd", "ssim", "psnr", "motion_acc/seen_all", "motion_acc/heldout"):
        assert m[key]["available"] and np.isfinite(m[key]["value"]), key
    assert m["fvd"]["n"] == n and m["fvd"]["settings"]["n_real"] == n
    assert m["motion_acc/heldout"]["n"] == 2 and m["motion_acc/seen_all"]["n"] == 36
    # offline: no backbone weights for these, so they are reported unavailable with the way to enable them
    for key in ("lpips", "fid", "clipsim"):
        assert m[key]["available"] is False and m[key]["reason"] and m[key]["enable"], key
    # a one-epoch classifier cannot reach 0.98 on held-out clips: its verdicts are withheld, not reported
    assert m["classifier"]["available"] is False and "0.98" in m["classifier"]["reason"]
    assert report["seeds"] == [1234] and report["protocol"] == "circles"
    assert report["versions"]["torch"] == torch.__version__
    assert len(list((tmp_path / "eval" / "samples" / "seed_1234").glob("*.gif"))) == n


def test_seeds_give_mean_and_std_over_seeds(trained_run, tmp_path, scripted_i3d):
    report = _eval(tmp_path, scripted_i3d, f"run_dir={trained_run}", "seeds=[0,1]", "write_videos=false",
                   "wandb_summary=false", *SMALL)
    fvd = report["metrics"]["fvd"]
    assert len(fvd["per_seed"]) == 2 and fvd["value"] == pytest.approx(np.mean(fvd["per_seed"]))
    assert fvd["std_over_seeds"] == pytest.approx(np.std(fvd["per_seed"], ddof=1))
    assert fvd["per_seed"][0] != fvd["per_seed"][1]  # different seeds, different clips
    assert set(report["details"]) == {"0", "1"}


def test_a_video_folder_scores_like_the_run_it_came_from(trained_run, tmp_path, scripted_i3d):
    from_run = _eval(tmp_path, scripted_i3d, f"run_dir={trained_run}", "wandb_summary=false", *SMALL, name="a")
    folder = tmp_path / "a" / "samples" / "seed_1234"
    from_folder = _eval(tmp_path, scripted_i3d, f"videos={folder}", *SMALL, name="b")
    assert from_folder["source"] == {"videos": str(folder)}
    for key in ("motion_acc/seen_all", "motion_acc/heldout"):
        assert from_folder["metrics"][key]["value"] == from_run["metrics"][key]["value"]
    # GIF colours are quantised, so pixel metrics move a little but not much
    assert from_folder["metrics"]["psnr"]["value"] == pytest.approx(from_run["metrics"]["psnr"]["value"], abs=0.5)


def test_evaluating_a_run_adds_the_values_to_its_wandb_run(trained_run, tmp_path, scripted_i3d):
    before = {p.name for p in (trained_run / "wandb").glob("offline-run-*")}
    _eval(tmp_path, scripted_i3d, f"run_dir={trained_run}", "write_videos=false", *SMALL)
    runs = sorted((trained_run / "wandb").glob("offline-run-*"))
    ids = {p.name.rsplit("-", 1)[-1] for p in runs}
    assert len(runs) > len(before) and len(ids) == 1  # the same run id, resumed
    newest = max(runs, key=lambda p: p.name.split("-")[-2])
    summary = read_offline_run(newest).summary
    assert np.isfinite(summary["eval/circles/fvd"])
    # one row per clip: 19 prompts, 2 clips each; under eval/circles/, beside the training's evaluation/clips
    table = summary["eval/circles/clips"]
    # seed, prompt, clip, split, verdict, motion_acc; no video column: this evaluation wrote no GIFs
    assert table["_type"] == "table-file" and table["nrows"] == 19 * 2 and table["ncols"] == 6


def _write_clips(folder: Path, clips: list[torch.Tensor], captions: list[str], ids: list[int], suffix: str) -> None:
    folder.mkdir(parents=True)
    rows = []
    for i, clip, caption in zip(ids, clips, captions, strict=True):
        path = folder / f"video{i}{suffix}"
        if suffix == ".npy":
            np.save(path, (clip.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy())
        else:
            write_video(clip, path)
        rows.append({"prompt": caption, "path": path.name, "id": f"video{i}"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_msrvtt_thesis_protocol_on_fixture_videos(tmp_path, scripted_i3d):
    g = torch.Generator().manual_seed(0)
    captions = [f"a person does thing {i}" for i in range(4)]
    real = [torch.rand(20, 3, 96, 128, generator=g) for _ in captions]  # 20 frames, landscape
    generated = [torch.rand(16, 3, 64, 64, generator=g) for _ in captions]
    _write_clips(tmp_path / "real", real, captions, [0, 1, 2, 3], ".mp4")
    _write_clips(tmp_path / "gen", generated[::-1], captions[::-1], [3, 2, 1, 0], ".npy")  # listed in another order
    report = _eval(tmp_path, scripted_i3d, "protocol=msrvtt_thesis", f"protocol.real_videos={tmp_path / 'real'}",
                   "protocol.num_clips=4", f"videos={tmp_path / 'gen'}")
    m = report["metrics"]
    assert list(m["fvd"]["settings"]["per_length"]) == [str(t) for t in range(10, 17)]
    assert m["fvd"]["n"] == 4 and m["ssim"]["n"] == 4 and m["psnr"]["available"]
    assert report["settings"]["size"] == 256 and report["settings"]["real_crop_fraction"] == 0.5
    assert m["fid"]["available"] is False  # no Inception weights offline


def test_msrvtt_thesis_protocol_reads_msrvtt_in_its_published_format(tmp_path, scripted_i3d):
    from video_fixtures import msrvtt_fixture

    paths = msrvtt_fixture(tmp_path / "msrvtt", zipped=True)
    override = tmp_path / "recaptioned.csv"
    override.write_text("id,caption\nvideo2,a square crosses the frame\nvideo0,a white square moves right\n")
    g = torch.Generator().manual_seed(0)
    _write_clips(tmp_path / "gen", [torch.rand(16, 3, 64, 64, generator=g) for _ in range(2)],
                 ["a square crosses the frame", "a white square moves right"], [2, 0], ".npy")
    report = _eval(tmp_path, scripted_i3d, "protocol=msrvtt_thesis",
                   f"protocol.msrvtt.annotations={paths['annotations']}", f"protocol.msrvtt.videos={paths['videos']}",
                   "protocol.msrvtt.split=train", f"protocol.msrvtt.captions_override={override}",
                   "protocol.num_clips=2", "protocol.num_frames=12", "protocol.metrics.fvd.prefixes=[10,12]",
                   f"videos={tmp_path / 'gen'}")
    assert report["metrics"]["ssim"]["n"] == 2 and report["settings"]["real_videos"] == "msrvtt loader"
    assert list((tmp_path / "data" / "cache" / "videos").glob("msrvtt-*/shard-00000.safetensors"))


def test_msrvtt_thesis_names_a_generated_clip_it_needs_that_was_skipped_as_damaged(tmp_path):
    g = torch.Generator().manual_seed(0)
    captions = [f"a person does thing {i}" for i in range(3)]
    _write_clips(tmp_path / "real", [torch.rand(16, 3, 32, 32, generator=g) for _ in captions], captions, [0, 1, 2],
                 ".npy")
    _write_clips(tmp_path / "gen", [torch.rand(16, 3, 32, 32, generator=g) for _ in captions], captions, [0, 1, 2],
                 ".npy")
    (tmp_path / "gen" / "video1.npy").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(BadInput, match=r"lacks 1 of the protocol's clips .*\(skipped as damaged: video1.npy: "
                                       r"undecodable NPY: no NumPy header\)"):
        evaluate(compose_cfg("evaluate", ["protocol=msrvtt_thesis", f"protocol.real_videos={tmp_path / 'real'}",
                                          "protocol.num_clips=3", f"videos={tmp_path / 'gen'}"], tmp_path / "eval"))


def test_msrvtt_thesis_refuses_a_damaged_real_clip_before_any_work(tmp_path):
    g = torch.Generator().manual_seed(0)
    captions = [f"a person does thing {i}" for i in range(3)]
    _write_clips(tmp_path / "real", [torch.rand(16, 3, 32, 32, generator=g) for _ in captions], captions, [0, 1, 2],
                 ".npy")
    real = tmp_path / "real" / "video2.npy"
    real.write_bytes(real.read_bytes()[:2000])
    with pytest.raises(BadInput, match=f"protocol.real_videos={tmp_path / 'real'}: video2.npy is damaged "
                                       r"\(undecodable NPY: Failed to read all data"):
        evaluate(compose_cfg("evaluate", ["protocol=msrvtt_thesis", f"protocol.real_videos={tmp_path / 'real'}",
                                          "protocol.num_clips=3", "videos=/nonexistent"], tmp_path / "eval"))


@pytest.mark.parametrize(("overrides", "message"), [
    ([], "exactly one of run_dir"),
    (["run_dir=x", "videos=y"], "both were given"),
    (["videos=/nonexistent", "seeds=[]"], "seeds=[] is invalid"),
    (["videos=/nonexistent"], "manifest.jsonl"),
    (["videos=/nonexistent", "protocol=msrvtt_thesis"], "protocol.real_videos="),
    (["run_dir=/nonexistent", "device=tpu"], "device=tpu is invalid; allowed: auto, cpu, cuda"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, overrides, message):
    with pytest.raises(BadInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        evaluate(compose_cfg("evaluate", overrides, tmp_path / "eval"))


def test_the_benchmark_scores_every_run_alike_and_lists_missing_families(trained_run, tmp_path, scripted_i3d):
    second = tmp_path / "second"
    train(compose_cfg("train", ["debug=fast", "logger=none", "print_config=false", "seed=1"], second))
    small = [o.replace("clips_per_prompt", "protocol.clips_per_prompt") for o in SMALL]
    report = _eval(tmp_path, scripted_i3d, "protocol=circles_benchmark", f"benchmark=[{trained_run},{second}]",
                   "seeds=[0,1]", *small)
    gan = next(e for e in report["entries"] if e["family"] == "gan")
    assert len(gan["runs"]) == 2 and gan["experiment"] == "debug_fast"  # two training seeds, one entry
    assert {e["family"] for e in report["entries"] if e.get("missing")} == {"splitter", "magvit"}
    for run in report["runs"]:
        assert run["num_frames"] == 16 and [s["seed"] for s in run["per_seed"]] == [0, 1]  # 16 frames, not the 4
        assert run["parameters"]["trained"] > 0 and run["train_seconds"]["run"] > 0
        assert 0 <= run["means"]["motion/all seen"] <= 1 and np.isfinite(run["means"]["fvd"])
    mean, std = gan["stats"]["motion/straight moves"]
    runs = [r["means"]["motion/straight moves"] for r in report["runs"]]
    assert mean == pytest.approx(np.mean(runs)) and std == pytest.approx(np.std(runs, ddof=1))
    assert report["fvd_floor"] is not None and np.isfinite(report["fvd_floor"])
    table = (tmp_path / "eval" / "benchmark.md").read_text()
    assert "| splitter | missing |" in table and "| gan | `debug_fast` | 2 |" in table
    assert "generated on cpu" in table and {r["generated_on"] for r in report["runs"]} == {"cpu"}  # no GPU here
    assert "Time to quality" in (tmp_path / "eval" / "benchmark.html").read_text()  # the runs' sampling rounds
    with pytest.raises(BadInput, match="protocol=circles_benchmark"):
        _eval(tmp_path, scripted_i3d, f"benchmark=[{trained_run}]", name="refused")


def test_splitter_table_script_means_seeds_and_names_the_scorer(tmp_path):
    table = load_script("splitter_table")
    for seed, acc in enumerate([0.5, 0.7]):
        run = tmp_path / "dual_base" / str(seed)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({
            "motion_acc/seen_moves": acc, "motion_acc/scorer": "circles-v2", "train/seconds": 100 + seed,
            "superseded": {"circles-v1": {"motion_acc/seen_moves": 0.9}}}))
    (row,) = table.rows(tmp_path)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["`dual_base`", "2", "circles-v2", "0.60 ± 0.14"]
    assert cells[-2:] == ["100", "0.90 ± 0.00"] and cells[4] == "-"


def test_a_folder_of_clips_too_small_for_the_data_sets_discs_names_the_protocol_key(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    write_video(torch.rand(10, 3, 32, 32), folder / "a.gif")
    (folder / "manifest.jsonl").write_text(json.dumps({"prompt": "circle moving left", "path": "a.gif"}) + "\n")
    cfg = compose_cfg("evaluate", [f"videos={folder}"], tmp_path / "eval")
    with pytest.raises(ValueError, match=r"videos= holds 32x32 clips of 10 frames.*protocol\.dataset\.radius=.*"
                                         r"\+protocol\.dataset\.<key>"):
        evaluate(cfg)


def test_a_fixed_frame_protocol_gives_its_metrics_the_frames_it_scores():
    from t2vlab.data.circles import CirclesSettings
    from t2vlab.evaluation.protocols.circles_protocol import CirclesProtocol

    protocol = CirclesProtocol(num_frames=16, metrics={})
    protocol._setup(CirclesSettings(num_frames=10, num_videos=8), ["circle moving left"], ["circle moving up-right"])
    # the classifier and the scorer's limits are built for 16-frame clips, not the run's 10
    assert protocol.num_frames == 16 and protocol.load_context()["settings"].num_frames == 16
    assert protocol.reference(["circle moving left"], 16).shape[1] == 16
    same = CirclesProtocol(metrics={})
    same._setup(CirclesSettings(num_frames=10, num_videos=8), ["circle moving left"], [])
    assert same.num_frames == 10 and same.load_context()["settings"].num_frames == 10


def test_magvit_ablation_table_script_reads_each_jobs_weights_and_seed_means(tmp_path):
    table = load_script("magvit_ablation_table")
    job = tmp_path / "3"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        "- model.task_weights.frame_prediction=0.5\n- model.task_weights.frame_interpolation=0\n"
        "- spatial_tasks=0.25\n- experiment=magvit_task_ablation\n")
    (job / "eval_frame_prediction").mkdir()
    (job / "eval_frame_prediction" / "metrics.json").write_text(json.dumps({"seeds": [1, 2, 3], "metrics": {
        "motion_acc/seen_moves": {"value": 0.7, "std_over_seeds": 0.05}, "motion_acc/heldout": {"value": 0.25}}}))
    cells = [c.strip() for c in table.job_row(job).strip("|").split("|")]
    assert cells[:4] == ["3", "0.5", "0", "0.25"]
    assert cells[4:7] == ["-", "-", "-"]  # text-to-video not evaluated: shown as missing, not as zero
    assert cells[7:10] == ["0.70 ± 0.05", "-", "0.25"] and cells[-1] == "[1, 2, 3]"
    assert table.job_row(tmp_path / "missing") is None
