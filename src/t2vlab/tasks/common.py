"""Building blocks the train and evaluate tasks share."""

from __future__ import annotations

import inspect
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import Logger, WandbLogger

from t2vlab.backbones.base import BackboneUnavailable
from t2vlab.evaluation.circles_scoring import circles_settings
from t2vlab.lit.family import FamilyModule
from t2vlab.loggers.labels import choice_tags
from t2vlab.runtime.atomic import atomic_path
from t2vlab.tasks.preflight import BadInput
from t2vlab.text.word_tokenizer import WordTokenizer

log = logging.getLogger(__name__)


def instantiate(node, *args, **kwargs):
    """hydra.utils.instantiate, but a constructor's ValueError (bad input) or BackboneUnavailable (missing
    weights) surfaces as itself, not wrapped."""
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, ValueError | BackboneUnavailable):
            raise cause from None
        raise


def pin_to_checkpoint(cfg: DictConfig, checkpoint: dict) -> DictConfig:
    """The run config with the model keys its class lists in `pinned_hparams` set to the values the checkpoint
    recorded, e.g. MAGVIT's tokenizer: the config may name a folder whose newest run has changed since (a newer
    tokenizer), while the checkpoint holds the file that was used. A recorded file that is gone keeps the
    config's value, with a warning."""
    keys = model_class(cfg).pinned_hparams
    if not keys:
        return cfg
    recorded = checkpoint.get("hyper_parameters") or {}
    pinned = cfg.copy()
    for key in keys:
        value = recorded.get(key)
        if value is None or value == OmegaConf.select(cfg, f"model.{key}"):
            continue
        if not Path(str(value)).exists():
            log.warning("model.%s: the checkpoint's %s is gone; using the config's %s", key, value,
                        OmegaConf.select(cfg, f"model.{key}"))
            continue
        pinned.model[key] = value
    return pinned


def name_the_run(cfg: DictConfig) -> DictConfig:
    """A run with no experiment= is named after its model and loss, `<model>-<loss>` (the options chosen), as
    its run folder is (conf/train.yaml); the name goes into `experiment_name` for the loggers and ckpt_path=last."""
    if cfg.get("experiment_name") or not HydraConfig.initialized():
        return cfg
    choices = HydraConfig.get().runtime.choices
    with open_dict(cfg):
        cfg.experiment_name = f"{choices.get('model')}-{choices.get('loss')}"
    return cfg


def model_class(cfg: DictConfig) -> type[FamilyModule]:
    """The class `model._target_` names; it must be a model family (t2vlab.lit.family.FamilyModule)."""
    cls = get_class(cfg.model._target_)
    if not (isinstance(cls, type) and issubclass(cls, FamilyModule)):
        raise BadInput(f"model._target_={cfg.model._target_} is not a model family; allowed: a subclass of "
                       "t2vlab.lit.family.FamilyModule (the LightningModules of conf/model/)")
    return cls


def build_model(cfg: DictConfig, vocab: list[str], backbone=None, datamodule=None) -> FamilyModule:
    """The model group's LightningModule with its loss; sub-networks get the vocabulary size, a Splitter's
    network gets D and L from the backbone, which is then attached; then the family contract's hooks
    (t2vlab.lit.family.FamilyModule): the model checks the data set against its settings, and gets the data
    set's circles settings (MAGVIT's conditional generate_task renders real clips to condition on)."""
    loss = instantiate(cfg.loss)
    vocab_size = len(WordTokenizer(vocab))  # includes the padding id
    parts = {name: {"vocab_size": vocab_size}
             for name in ("generator", "discriminator") if cfg.model.get(name)
             and "vocab_size" in _signature_args(cfg.model[name]._target_)}
    if backbone is not None and "net" in cfg.model:
        parts["net"] = {"dim": backbone.dim, "text_len": backbone.text_len}
    # plain Python containers in the hyperparameters, so checkpoints load with weights_only=True
    model = instantiate(cfg.model, loss=loss, vocab=list(vocab), _convert_="all", **parts)
    if backbone is not None:
        model.attach_backbone(backbone)
    if datamodule is not None:
        model.check_data(datamodule)  # e.g. the prompts fit MAGVIT's condition
        model.attach_circles(circles_settings(datamodule))
    return model


def dataset_name(cfg: DictConfig) -> str:
    """circles, tgif, ...: the data module's class name without "DataModule" (names the embedding cache)."""
    return cfg.dataset._target_.rsplit(".", 1)[-1].removesuffix("DataModule").lower()


def build_data_and_backbone(cfg: DictConfig):
    """The dataset group's data module; for a family that walks a backbone's embedding space (the Splitter),
    the backbone too, and the data module wrapped so that it serves cached embeddings."""
    datamodule = instantiate(cfg.dataset)
    if not model_class(cfg).needs_backbone:
        return datamodule, None
    if not cfg.get("backbone"):
        raise BadInput(f"model={cfg.model._target_.rsplit('.', 1)[-1]} walks a backbone's embedding space; "
                       "allowed: backbone=circles_unclip (CPU, build with `python train.py "
                       "experiment=circles_unclip`) or backbone=kandinsky22")
    from t2vlab.backbones.embedding_data import EmbeddingDataModule

    backbone = build_backbone(cfg.backbone)
    cache = cfg.get("embedding_cache") or {}
    wrapped = EmbeddingDataModule(datamodule, backbone, str(Path(cfg.paths.cache_dir) / "embeddings"),
                                  dataset_name(cfg), prior_seed=cache.get("prior_seed", 0),
                                  shard_size=cache.get("shard_size", 256), batch_size=datamodule.batch_size)
    return wrapped, backbone


def build_backbone(cfg: DictConfig):
    """The backbone group's backbone. Missing weights or a bad setting end the run with one message (how to
    get the weights, or the key and what is allowed), before any work."""
    try:
        return instantiate(cfg, _convert_="all")
    except (BackboneUnavailable, ValueError) as e:
        raise BadInput(str(e)) from None


def _signature_args(target: str) -> set[str]:
    return set(inspect.signature(get_class(target)).parameters)


def instantiate_callbacks(cfg: DictConfig | None) -> list[pl.Callback]:
    return [instantiate(c) for c in (cfg or {}).values() if c is not None and "_target_" in c]


def instantiate_loggers(cfg: DictConfig | None, run_cfg: DictConfig, resume_id: str | None = None) -> list[Logger]:
    """The logger group's logger. W&B gets the resolved run config at init so every run is comparable, and tags
    `group=option` for the main config groups; in a multirun every job is grouped under the sweep and tagged with
    its overrides; a resumed run continues the W&B run it came from. MLflow gets the main groups as tags."""
    if not cfg or "_target_" not in cfg:
        return []
    if cfg._target_.endswith("WandbLogger"):
        job = OmegaConf.masked_copy(run_cfg, [k for k in run_cfg if k != "hydra"])
        extra: dict = sweep_grouping(run_cfg)
        choices = [f"{group}={option}" for group, option in choice_tags().items()]
        tags = [*(cfg.get("tags") or []), *choices, *extra.get("tags", [])]
        extra["tags"] = list(dict.fromkeys(t[:64] for t in tags))  # W&B caps a tag at 64 characters
        if resume_id:
            extra |= {"id": resume_id, "resume": "allow"}
        # `config` is also the name of instantiate's first parameter, hence the partial
        make_logger = instantiate(cfg, _partial_=True)
        return [make_logger(config=OmegaConf.to_container(job, resolve=True), **extra)]
    if cfg._target_.endswith("MLFlowLogger"):
        if str(cfg.get("tracking_uri") or "").startswith("file:"):
            # MLflow 3 refuses its file store unless asked (it wants a database); one folder of runs is all we need
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        user_tags = {"tags": ", ".join(run_cfg.get("tags") or [])} if run_cfg.get("tags") else {}
        return [instantiate(cfg, tags={**(cfg.get("tags") or {}), **choice_tags(), **user_tags})]
    return [instantiate(cfg)]


def sweep_grouping(run_cfg: DictConfig) -> dict:
    """For a multirun job: W&B group = the sweep folder as <its parent>/<its name> (one group for every job of a
    sweep, e.g. video_gan_circles/multirun_<time>, whatever model each job runs), tags = the job's overrides."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hydra_cfg = HydraConfig.get()
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith("hydra.")]
    sweep = Path(hydra_cfg.sweep.dir)
    group = f"{sweep.parent.name}/{sweep.name}"
    return {"group": group, "tags": overrides}


def close_loggers(loggers: list[Logger], failed: bool = False) -> None:
    """Finish every W&B run, so jobs of a multirun never merge into one run; the other loggers write out what was
    logged after Lightning finalised them (the end scores)."""
    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            logger.finalize("failed" if failed else "success")
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)
        # finish() can return before W&B's service has closed the run's transaction log, which it buffers until
        # then; teardown waits for the service to exit, so the run is whole on disk when training returns
        wandb.teardown()


def write_json(path: Path, data: dict) -> None:
    """Write via a temporary file and rename, so a crash never leaves a truncated file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def apply_generation(model: pl.LightningModule, settings, name: str = "generation") -> dict:
    """Change hyperparameters that only steer generation (e.g. a Splitter's mode); returns the old values. A key
    the model does not have, or a value its `check_generation` refuses, is a ValueError naming `<name>.<key>`."""
    settings = dict(settings or {})
    unknown = [key for key in settings if key not in model.hparams]
    if unknown:
        raise ValueError(f"{name}.{unknown[0]} is not a setting of {type(model).__name__}; allowed: "
                         f"{', '.join(sorted(model.hparams))}")
    before = {key: model.hparams[key] for key in settings}
    model.hparams.update(settings)
    try:
        if settings:
            model.check_generation(name)
    except ValueError:
        model.hparams.update(before)
        raise
    return before


@contextmanager
def generation_settings(model: pl.LightningModule, settings, name: str = "generation"):
    """apply_generation for the duration of a block."""
    before = apply_generation(model, settings, name)
    try:
        yield model
    finally:
        model.hparams.update(before)
