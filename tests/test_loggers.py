"""What a run sends to W&B, TensorBoard and MLflow: one step unit (training batches), the run's config choices,
overrides and command, tags, and the final evaluation's clips as a W&B table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import compose_cfg

from t2vlab.evaluation.metrics.circle_verdicts import REASONS
from t2vlab.loggers.clips_table import clip_columns, merge_seeds
from t2vlab.loggers.wandb_offline import read_offline_run
from t2vlab.tasks.train import train

MAIN_TAGS = ["model=video_gan", "loss=gan_hinge", "dataset=circles", "hardware=cpu", "experiment=video_gan_circles"]


def _evaluation_rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "samples" / "manifest.jsonl").read_text().splitlines()]
    return [r for r in rows if r["tag"] == "evaluation"]


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    """A debug=fast video GAN run logged to offline W&B: (its metrics, its folder, the W&B run read back)."""
    tmp = tmp_path_factory.mktemp("wandb_run")
    cfg = compose_cfg("train", ["experiment=video_gan_circles", "debug=fast", "logger=wandb", "print_config=false",
                                "tags=[mytag]"], tmp / "run")
    metrics = train(cfg)
    out = Path(cfg.paths.output_dir)
    (folder,) = (out / "wandb").glob("offline-run-*")
    return metrics, out, read_offline_run(folder)


def test_wandb_run_logs_everything_at_the_training_batch_count(wandb_run):
    metrics, _, run = wandb_run
    batches = metrics["train/global_step"] // 2  # the GAN steps two optimisers per batch
    assert batches < metrics["train/global_step"]  # so the two units differ here

    def steps(key: str) -> list[int]:
        return [row["trainer/global_step"] for row in run.history if key in row]

    assert all(row["trainer/global_step"] <= batches for row in run.history)
    last_loss = max(steps("train/loss_d"))
    assert batches - 1 <= last_loss <= steps("motion_acc/seen_all")[-1] == batches
    assert steps("samples/motion_acc/seen_all")[-1] == steps("samples/videos")[-1] == batches
    final = next(row for row in run.history if "motion_acc/seen_all" in row)
    assert final["train/global_step"] == metrics["train/global_step"]  # optimiser steps stay, as a value


def test_wandb_run_has_the_options_overrides_command_and_tags(wandb_run):
    _, _, run = wandb_run
    for group, option in [("model", "video_gan"), ("loss", "gan_hinge"), ("dataset", "circles"),
                          ("hardware", "cpu"), ("experiment", "video_gan_circles"), ("debug", "fast"),
                          ("logger", "wandb")]:
        assert run.config[f"choices/{group}"] == option, group
    assert {"logger=wandb", "tags=[mytag]"} <= set(run.config["overrides"])
    assert run.config["command"].startswith("python ") and "logger=wandb" in run.config["command"]
    assert run.config["experiment_name"] == "debug_fast"  # the resolved config is still there
    assert set(run.tags) == {"mytag", *MAIN_TAGS}


def test_wandb_run_has_the_evaluation_clips_table(wandb_run):
    metrics, out, run = wandb_run
    clips = _evaluation_rows(out)
    (logged,) = [row for row in run.history if "evaluation/clips" in row]
    assert logged["trainer/global_step"] == metrics["train/global_step"] // 2
    assert logged["evaluation/clips"]["_type"] == "table-file" and logged["evaluation/clips"]["nrows"] == len(clips)
    # the table itself is an artifact: its JSON and the clips' GIFs, staged in WANDB_DATA_DIR until `wandb sync`
    (artifact,) = [a for a in run.artifacts if "-evaluationclips-" in a.name]
    files = {entry.path: entry.local_path for entry in artifact.manifest.contents}
    assert sum(path.endswith(".gif") for path in files) == len(clips)
    table = json.loads(Path(files["evaluation/clips.table.json"]).read_text())
    assert table["columns"] == ["prompt", "clip", "split", "verdict", "motion_acc", "video"]
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [(r["prompt"], r["clip"]) for r in rows] == [(c["prompt"], c["index"]) for c in clips]
    assert all(r["verdict"] in ("pass", *REASONS) and r["video"]["_type"] == "video-file" for r in rows)
    assert {r["split"] for r in rows if r["prompt"] == "circle moving up-right"} == {"held-out"}
    for prompt in {r["prompt"] for r in rows}:  # a prompt's rows give its accuracy
        mean = np.mean([r["motion_acc"] for r in rows if r["prompt"] == prompt])
        assert mean == pytest.approx(metrics[f"motion_acc/prompt/{prompt}"]), prompt


def test_tensorboard_run_writes_scalars_at_the_batch_count_and_the_choices(train_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = train_cfg("logger=tensorboard")
    metrics = train(cfg)
    logdir = Path(cfg.paths.output_dir) / "tensorboard"
    events = EventAccumulator(str(logdir))
    events.Reload()
    batches = metrics["train/global_step"] // 2
    assert [e.step for e in events.Scalars("train/loss_d")][-1] == batches - 1
    (final,) = events.Scalars("motion_acc/seen_all")
    assert final.step == batches and final.value == pytest.approx(metrics["motion_acc/seen_all"])
    hparams = yaml.safe_load((logdir / "hparams.yaml").read_text())
    assert hparams["choices/model"] == "video_gan" and "logger=tensorboard" in hparams["overrides"]


def test_mlflow_run_lands_in_the_shared_file_store(train_cfg, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # set by the run; unset again afterwards
    cfg = train_cfg("experiment=video_gan_circles", "logger=mlflow", "tags=[mytag]")
    metrics = train(cfg)
    from mlflow.tracking import MlflowClient

    store = Path(cfg.paths.output_root) / "mlruns"
    assert store.is_dir()
    client = MlflowClient(f"file:{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("debug_fast").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("debug_fast/")
    params, tags = run.data.params, run.data.tags
    assert params["choices/model"] == "video_gan" and params["choices/loss"] == "gan_hinge"
    assert "logger=mlflow" in params["overrides"] and params["command"].startswith("python ")
    assert {k: tags[k] for k in ("model", "loss", "dataset", "hardware", "experiment")} == dict(
        t.split("=") for t in MAIN_TAGS)
    assert tags["tags"] == "mytag"
    assert run.data.metrics["motion_acc/seen_all"] == pytest.approx(metrics["motion_acc/seen_all"])
    losses = client.get_metric_history(run.info.run_id, "train/loss_d")
    assert losses and max(m.step for m in losses) == metrics["train/global_step"] // 2 - 1


def test_without_hydra_a_run_has_no_labels_and_still_logs(train_cfg):
    from hydra.core.hydra_config import HydraConfig

    from t2vlab.loggers.labels import choice_tags, log_run_labels, run_labels

    cfg = train_cfg("logger=csv")
    HydraConfig.instance().cfg = None  # as when a script calls the task without Hydra
    assert run_labels() == {} and choice_tags() == {}

    class Recorder:
        def __init__(self):
            self.calls = []

        def log_hyperparams(self, params):
            self.calls.append(params)

    recorder = Recorder()
    log_run_labels([recorder])
    assert recorder.calls == []
    train(cfg)
    header = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss_d" in header and "motion_acc/seen_all" in header


def test_clip_columns_number_clips_per_prompt_and_name_verdicts():
    columns = clip_columns(["a", "a", "b"], heldout=["b"], verdicts=["", "jumps", ""],
                           predicted_verdicts=["", "", "wrong motion"], scores={"prompt_acc": [1.0, 0.0, 1.0]})
    assert columns == {"prompt": ["a", "a", "b"], "clip": [0, 1, 0], "split": ["seen", "seen", "held-out"],
                       "verdict": ["pass", "jumps", "pass"], "motion_acc": [1.0, 0.0, 1.0],
                       "verdict_predicted": ["pass", "pass", "wrong motion"], "motion_acc_predicted": [1.0, 1.0, 0.0],
                       "prompt_acc": [1.0, 0.0, 1.0]}
    with pytest.raises(ValueError, match="differ in length"):
        clip_columns(["a"], heldout=[], verdicts=["", ""])
    merged, videos = merge_seeds([({"seed": [0], "prompt": ["a"]}, [Path("x.gif")]),
                                  ({"seed": [1], "prompt": ["a"]}, None)])
    assert merged == {"seed": [0, 1], "prompt": ["a", "a"]} and videos is None  # a seed without GIFs: no videos
