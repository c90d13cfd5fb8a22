"""The config check every entry point runs first: keys a class does not take and values of the wrong type or
out of range are refused naming the key, before anything is written."""

from pathlib import Path

import pytest
from entry_points import run_script
from hydra import compose, initialize_config_dir

from t2vlab.runtime.resolvers import register_resolvers
from t2vlab.tasks.config_types import check_config_types, describe
from t2vlab.tasks.preflight import BadInput

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
EXPERIMENTS = sorted(str(p.relative_to(ROOT / "conf/experiment").with_suffix(""))
                     for p in (ROOT / "conf/experiment").rglob("*.yaml"))
LOGGERS = sorted(p.stem for p in (ROOT / "conf/logger").glob("*.yaml"))

register_resolvers()


def composed(config_name: str, *overrides: str):
    with initialize_config_dir(CONF, version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_shipped_experiment_passes(experiment):
    check_config_types(composed("train", f"experiment={experiment}"))


@pytest.mark.parametrize("logger", LOGGERS)
def test_every_logger_option_passes(logger):
    check_config_types(composed("train", f"logger={logger}"))


@pytest.mark.parametrize("config_name", ["train", "evaluate", "prepare", "embed"])
def test_every_entry_point_default_passes(config_name):
    check_config_types(composed(config_name))


@pytest.mark.parametrize("config_name, override, message", [
    ("train", "dataset.batch_size=abc", "dataset.batch_size='abc' is invalid; allowed: int >= 1"),
    ("train", "dataset.batch_size=0", "dataset.batch_size=0 is invalid; allowed: int >= 1"),
    ("train", "model.lr_g=fast", "model.lr_g='fast' is invalid; allowed: float"),
    ("train", "trainer.max_steps=abc", "trainer.max_steps='abc' is invalid; allowed: int"),
    ("train", "model.ema_decay=1.5", "model.ema_decay=1.5 is invalid; allowed: float >= 0 and < 1 or null"),
    ("train", "dataset.num_workers=-1", "dataset.num_workers=-1 is invalid; allowed: int >= 0"),
    ("train", "dataset.settings.image_size=big", "dataset.settings.image_size='big' is invalid; allowed: int"),
    ("train", "+dataset.settings.fps=5", "dataset.settings.fps is not a setting of CirclesSettings"),
    ("train", "+model.lr_gg=1", "model.lr_gg is not a setting of GANModule; allowed: "),
    ("train", "model.generator.hidden=abc", "model.generator.hidden='abc' is invalid; allowed: int"),
    ("train", "dataset.as_frames=maybe", "dataset.as_frames='maybe' is invalid; allowed: bool"),
    ("train", "seed=x", "seed='x' is invalid; allowed: int"),
    ("train", "optimized_direction=up", "optimized_direction='up' is invalid; allowed: one of 'maximize', 'minimize'"),
    ("train", "evaluation.clips_per_prompt=0", "evaluation.clips_per_prompt=0 is invalid; allowed: int >= 1"),
    ("evaluate", "fps=0", "fps=0 is invalid; allowed: int >= 1"),
    ("evaluate", "seeds=[a]", "seeds=['a'] is invalid; allowed: a list of int or null"),
    ("embed", "embedding_cache.shard_size=0", "embedding_cache.shard_size=0 is invalid; allowed: int >= 1"),
])
def test_bad_key_or_value_is_refused_naming_it(config_name, override, message):
    with pytest.raises(BadInput) as refused:
        check_config_types(composed(config_name, override))
    assert message in str(refused.value)


def test_describe_reads_like_the_allowed_values():
    from typing import Annotated, Literal

    from annotated_types import Ge, Interval

    assert describe(Annotated[int, Ge(1)]) == "int >= 1"
    assert describe(Annotated[float, Interval(gt=0, le=1)] | None) == "float > 0 and <= 1 or null"
    assert describe(Literal["text", "class"]) == "one of 'text', 'class'"
    assert describe(list[int]) == "a list of int"


@pytest.mark.parametrize("script, args, key", [
    ("train.py", ["dataset.batch_size=abc"], "dataset.batch_size"),
    ("train.py", ["model.ema_decay=1.5"], "model.ema_decay"),
    ("train.py", ["dataset.holdout_prompts=[circle flying]"], "dataset.holdout_prompts"),
    ("evaluate.py", ["clips_per_prompt=abc"], "clips_per_prompt"),
    ("train.py", ["dataset.settings.image_size=1024"], "dataset.settings"),  # terabytes of clips in memory
])
def test_entry_point_refuses_before_writing_anything(tmp_path, script, args, key):
    run_dir = tmp_path / "run"
    logger = ["logger=none"] if script == "train.py" else []
    result = run_script([ROOT / script, *args, *logger, f"hydra.run.dir={run_dir}"], cwd=tmp_path, timeout=120,
                        env={"PATH": "/usr/bin:/bin", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline"})
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {key}"), last
    assert "Traceback" not in result.stderr
    written = {p.relative_to(run_dir).parts[0] for p in run_dir.rglob("*") if p.is_file()}
    assert written <= {".hydra", f"{Path(script).stem}.log"}, written
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "wandb").exists()
