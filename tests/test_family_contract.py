"""Every model option builds an object that meets the family contract (t2vlab.lit.family.FamilyModule), and the
tasks call the contract instead of probing a module for what it can do."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import CONF, compose_cfg
from omegaconf import OmegaConf

from t2vlab.lit.family import FamilyModule
from t2vlab.tasks.common import build_model, model_class
from t2vlab.tasks.preflight import BadInput, family_of, losses_for

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
BUILT_ELSEWHERE = {"magvit": "tests/test_magvit_pipeline.py (needs a trained tokenizer file)"}
VOCAB = ["a", "circle", "moving", "left", "right"]
TINY_BACKBONE = SimpleNamespace(name="tiny", dim=16, text_len=6)  # what attach_backbone reads of a backbone


def meets_the_contract(model, loss_target: str) -> None:
    cls = type(model)
    assert isinstance(model, FamilyModule)
    assert model.family == family_of(loss_target)
    if cls.generates_video:
        assert cls.generate is not FamilyModule.generate, f"{cls.__name__} generates videos but has no generate()"
    else:
        assert (cls.after_fit is not FamilyModule.after_fit or cls.measure is not FamilyModule.measure), \
            f"{cls.__name__} neither generates videos nor measures itself"
    if cls.needs_backbone:
        assert cls.attach_backbone is not FamilyModule.attach_backbone
    for key in cls.pinned_hparams:
        assert key in model.hparams


@pytest.mark.parametrize("name", [m for m in MODELS if m not in BUILT_ELSEWHERE])
def test_every_model_option_builds_a_family_module(name, tmp_path):
    family = family_of(compose_cfg("train", [f"model={name}"]).model._target_)
    loss = losses_for(family)[0]
    cfg = compose_cfg("train", [f"model={name}", f"loss={loss}"], tmp_path)
    backbone = TINY_BACKBONE if model_class(cfg).needs_backbone else None
    model = build_model(cfg, VOCAB, backbone)
    meets_the_contract(model, cfg.loss._target_)


def test_no_model_option_goes_unchecked():
    assert set(BUILT_ELSEWHERE) <= set(MODELS)


def test_a_class_that_is_not_a_family_is_refused_by_name(tmp_path):
    cfg = compose_cfg("train", [], tmp_path)
    cfg.model = OmegaConf.create({"_target_": "torch.nn.Linear"})
    with pytest.raises(BadInput, match=r"model._target_=torch.nn.Linear is not a model family"):
        model_class(cfg)


def test_a_family_must_name_itself():
    with pytest.raises(TypeError, match="must name its family"):
        type("Nameless", (FamilyModule,), {})


def test_the_hooks_default_to_nothing_and_measure_refuses():
    class Tiny(FamilyModule):
        family = "tiny"

    m = Tiny()
    m.check_data(None), m.attach_circles(None), m.check_generation("generation")
    assert m.given_frames == 0 and m.generates_video and not m.needs_backbone
    with pytest.raises(NotImplementedError, match="does not generate videos"):
        m.generate(["a"], 2)
    with pytest.raises(NotImplementedError, match="neither generates videos nor measures itself"):
        m.measure(None)


def test_the_tasks_do_not_probe_a_module_for_its_abilities():
    tasks = Path(__file__).resolve().parents[1] / "src" / "t2vlab" / "tasks"
    probes = [f"{path.name}:{n}: {line.strip()}" for path in sorted(tasks.glob("*.py"))
              for n, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"(hasattr|getattr)\((model|module|cls|get_class)\b", line)]
    assert probes == []


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


SRC = Path(__file__).resolve().parents[1] / "src" / "t2vlab"
# family code: the networks, losses and family data (models/<family>/), the Lightning wrappers (lit/) and the
# Splitter's frozen backbones with their embedding cache (backbones/); the contract itself is shared
FAMILY = ("t2vlab.models", "t2vlab.lit", "t2vlab.backbones")
SHARED_CONTRACT = {"t2vlab.lit.family", "t2vlab.lit.schedules"}
WIRING = ("tasks/",)  # the entry points' tasks put families and shared code together


def test_shared_packages_import_no_family():
    found = [f"{path.relative_to(SRC)} imports {module}" for path in sorted(SRC.rglob("*.py"))
             if not path.relative_to(SRC).as_posix().startswith(("models/", "lit/", "backbones/", *WIRING))
             for module in _imports(path) if module.startswith(FAMILY) and module not in SHARED_CONTRACT]
    assert found == []


def test_model_code_imports_no_evaluation():
    found = [f"{path.relative_to(SRC)} imports {module}" for path in sorted((SRC / "models").rglob("*.py"))
             for module in _imports(path) if module.startswith("t2vlab.evaluation")]
    assert found == []
