"""Learned circles metrics: prompt accuracy and a domain Fréchet distance from a small motion classifier.

The classifier is trained once per dataset setting on real clips of every prompt (a seed of its own) and
cached under cache_dir. It is only used when its accuracy on held-out real clips (another seed) reaches
`min_heldout_accuracy`; below that its verdicts would mean nothing and the metric is reported unavailable.
The cache key covers what changes the pixels (not num_videos, seed or prompts: the classifier always sees
every prompt) and everything that changes the training, so a stale classifier is never reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from t2vlab.data.circles import PROMPT_MOTIONS, CirclesSettings, generate, motion_of
from t2vlab.evaluation.metrics.circles_classifier_net import MOTIONS, CirclesMotionNet
from t2vlab.evaluation.metrics.frechet import frechet_distance
from t2vlab.evaluation.metrics.result import MetricResult, MetricUnavailable
from t2vlab.runtime.atomic import atomic_path
from t2vlab.runtime.hardware import cpu_supports_bf16

log = logging.getLogger(__name__)

VERSION = "2"  # bump when the network, the training or the clips it sees change
METRIC = "circles_classifier"
NOT_PIXEL_SETTINGS = ("num_videos", "seed", "prompts")


@dataclass(frozen=True)
class ClassifierHParams:
    """Everything besides the dataset's pixels that changes the trained weights (all of it is in the key)."""

    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    num_train: int = 4000
    num_heldout: int = 1600
    epochs: int = 6
    batch_size: int = 64
    lr: float = 3e-3
    jitter: float = 1.0  # training clips' per-frame wobble in pixels, plus pixel noise; 0 = clean renders
    # fixed, since the key ignores the dataset's seed; neither the training set (seed 0) nor evaluation uses them
    train_seed: int = 90_001
    heldout_seed: int = 90_002

    def __post_init__(self) -> None:
        checks = [("num_train", self.num_train >= 1, ">= 1"), ("num_heldout", self.num_heldout >= 1, ">= 1"),
                  ("epochs", self.epochs >= 0, ">= 0"), ("batch_size", self.batch_size >= 1, ">= 1"),
                  ("lr", self.lr > 0, "> 0"), ("jitter", self.jitter >= 0, ">= 0"),
                  ("widths", len(self.widths) >= 1, "a non-empty list")]
        for key, ok, allowed in checks:
            if not ok:
                raise ValueError(f"circles_classifier.{key}={getattr(self, key)!r} is invalid; allowed: {allowed}")


def pixel_settings(settings: CirclesSettings) -> dict:
    return {k: v for k, v in asdict(settings).items() if k not in NOT_PIXEL_SETTINGS}


def cache_key(settings: CirclesSettings, hparams: ClassifierHParams) -> str:
    blob = {"version": VERSION, "dataset": pixel_settings(settings), "classifier": asdict(hparams)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def real_clips(settings: CirclesSettings, num: int, seed: int,
               jitter: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """`num` real clips cycling through every prompt -> uint8 (N, T, 3, H, W) and motion indices (N,).

    `jitter` > 0 (training only) shakes each frame's centre by about `jitter` pixels and its radius by about
    `jitter` x 6%: generated clips never move as cleanly as rendered ones, and a classifier that has only seen
    perfect paths judges a wobbly but clearly downward clip by details that have nothing to do with the motion.
    """
    s = CirclesSettings(**{**asdict(settings), "num_videos": num, "seed": seed, "prompts": list(PROMPT_MOTIONS)})
    videos, texts, _ = generate(s, wobble=jitter)
    labels = torch.tensor([MOTIONS.index(motion_of(t)) for t in texts])
    return torch.from_numpy(videos).permute(0, 1, 4, 2, 3).contiguous(), labels


def pixel_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per clip: a contrast change of up to 10% and faint noise, the other ways generated pixels differ."""
    n = len(x)
    contrast = 1 - 0.1 * torch.rand(n, 1, 1, 1, 1, generator=generator)
    noise = 0.03 * torch.rand(n, 1, 1, 1, 1, generator=generator) * torch.randn(x.shape, generator=generator)
    return (1 - (1 - x) * contrast + noise).clamp(0, 1)


def to_unit(videos: torch.Tensor) -> torch.Tensor:
    return videos.float().div_(255) if videos.dtype == torch.uint8 else videos.float()


def train_classifier(settings: CirclesSettings, hp: ClassifierHParams, device: torch.device) -> CirclesMotionNet:
    """Adam with a one-cycle learning rate; bf16 autocast where the CPU has native bf16."""
    videos, labels = real_clips(settings, hp.num_train, hp.train_seed, jitter=hp.jitter)
    with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the caller's RNG alone
        torch.manual_seed(hp.train_seed)
        net = CirclesMotionNet(settings.num_frames, settings.image_size, hp.widths).to(device)
    order = torch.Generator().manual_seed(hp.train_seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=hp.lr)
    total_steps = max(1, hp.epochs * -(-len(videos) // hp.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=hp.lr, total_steps=total_steps, pct_start=0.15)
    bf16 = device.type == "cpu" and cpu_supports_bf16()
    net.train()
    for epoch in range(hp.epochs):
        start, loss_sum, hits = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(videos), generator=order).split(hp.batch_size):
            x, y = to_unit(videos[idx]), labels[idx].to(device)
            if hp.jitter > 0:
                x = pixel_jitter(x, order)
            x = x.to(device)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(idx)
            hits += int((logits.argmax(1) == y).sum())
        log.info("circles classifier epoch %d/%d: loss %.4f, train accuracy %.4f (%.1f s)", epoch + 1, hp.epochs,
                 loss_sum / len(videos), hits / len(videos), time.perf_counter() - start)
    return net.eval()


@torch.no_grad()
def run_net(net: CirclesMotionNet, videos: torch.Tensor, batch_size: int, device: torch.device,
            output: str = "logits") -> torch.Tensor:
    """Logits or features, float64 on the CPU. float32 on purpose: scores must not depend on the CPU's bf16."""
    out = []
    for batch in torch.as_tensor(videos).split(batch_size):
        x = to_unit(batch).to(device)
        out.append((net.features(x) if output == "features" else net(x)).double().cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


@dataclass
class TrainedClassifier:
    net: CirclesMotionNet
    info: dict  # key, held-out accuracy and N, training time, dataset settings, hyper-parameters

    @property
    def heldout_accuracy(self) -> float:
        return self.info["heldout_accuracy"]

    @property
    def heldout_n(self) -> int:
        return self.info["heldout_n"]


def save_classifier(path: Path, clf: TrainedClassifier) -> None:
    # the info travels inside the weights file, so one rename makes the whole entry appear at once
    with atomic_path(path) as tmp:
        save_file(clf.net.state_dict(), str(tmp), metadata={"info": json.dumps(clf.info)})
    with atomic_path(path.with_suffix(".json")) as tmp:  # a readable copy; the weights file is what is read
        tmp.write_text(json.dumps(clf.info, indent=2))


def load_classifier(path: Path, settings: CirclesSettings, hp: ClassifierHParams) -> TrainedClassifier:
    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["info"])
    net = CirclesMotionNet(settings.num_frames, settings.image_size, hp.widths)
    net.load_state_dict(load_file(str(path)))
    return TrainedClassifier(net.eval(), info)


class CirclesClassifierScores:
    """Prompt accuracy and Fréchet distance measured with a motion classifier trained on real circles clips.

    `load(settings)` comes first: it trains the classifier for that dataset setting (about a minute at 10
    frames, 64x64 on 2 CPU cores) or reads it from the cache, and raises MetricUnavailable when its accuracy
    on held-out real clips is below `min_heldout_accuracy`.
    """

    def __init__(self, cache_dir: str = "data/cache", num_train: int = 4000, num_heldout: int = 1600,
                 epochs: int = 6, batch_size: int = 64, lr: float = 3e-3,
                 widths: tuple[int, ...] | list[int] = (8, 16, 32, 64, 128), device: str = "cpu",
                 min_heldout_accuracy: float = 0.98, jitter: float = 1.0) -> None:
        if not 0 <= min_heldout_accuracy <= 1:
            raise ValueError(f"circles_classifier.min_heldout_accuracy={min_heldout_accuracy} is invalid; "
                             "allowed: [0, 1]")
        self.cache_dir = Path(cache_dir)
        self.hparams = ClassifierHParams(tuple(widths), num_train, num_heldout, epochs, batch_size, lr, jitter)
        self.device = torch.device(device)
        self.min_heldout_accuracy = min_heldout_accuracy
        self.classifier: TrainedClassifier | None = None
        self.trained_now = False  # whether the last load() trained (True) or read the cache (False)

    def cache_path(self, settings: CirclesSettings) -> Path:
        return self.cache_dir / f"circles_classifier-{cache_key(settings, self.hparams)}.safetensors"

    def load(self, settings: CirclesSettings) -> None:
        self.classifier = None
        path = self.cache_path(settings)
        self.trained_now = not path.exists()
        if self.trained_now:
            clf = self._train(settings)
            save_classifier(path, clf)  # kept even when too weak: the same key would train the same again
        else:
            clf = load_classifier(path, settings, self.hparams)
        if clf.heldout_accuracy < self.min_heldout_accuracy:
            raise MetricUnavailable(
                METRIC, f"the classifier ({path.name}) reaches only {clf.heldout_accuracy:.4f} accuracy on "
                f"{clf.heldout_n} held-out real clips, below the {self.min_heldout_accuracy} its verdicts need",
                "train it longer or on more clips (epochs, num_train in conf/metrics/circles_classifier.yaml; "
                "the cache key changes with them)")
        clf.net.to(self.device)
        self.classifier = clf

    def _train(self, settings: CirclesSettings) -> TrainedClassifier:
        hp, key = self.hparams, cache_key(settings, self.hparams)
        log.info("training the circles classifier %s: %d real clips, %d epochs", key, hp.num_train, hp.epochs)
        start = time.perf_counter()
        net = train_classifier(settings, hp, self.device)
        seconds = time.perf_counter() - start
        videos, labels = real_clips(settings, hp.num_heldout, hp.heldout_seed)
        predicted = run_net(net, videos, hp.batch_size * 4, self.device).argmax(1)
        accuracy = float((predicted == labels).double().mean())
        log.info("circles classifier %s: held-out accuracy %.4f on %d real clips; trained in %.1f s", key, accuracy,
                 len(labels), seconds)
        info = {"key": key, "version": VERSION, "heldout_accuracy": accuracy, "heldout_n": len(labels),
                "train_seconds": round(seconds, 2), "bf16": self.device.type == "cpu" and cpu_supports_bf16(),
                "dataset": pixel_settings(settings), "classifier": asdict(hp)}
        return TrainedClassifier(net, info)

    def loaded(self) -> TrainedClassifier:
        if self.classifier is None:
            raise RuntimeError("call load(settings) before scoring with the circles classifier")
        return self.classifier

    @property
    def heldout_accuracy(self) -> float:
        """Accuracy on held-out real clips, measured once after training and stored with the weights."""
        return self.loaded().heldout_accuracy

    @property
    def heldout_n(self) -> int:
        return self.loaded().heldout_n

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """(N, T, C, H, W) in [0, 1] -> (N, feature_dim) float64: the classifier's pooled penultimate features."""
        return run_net(self.loaded().net, videos, self.hparams.batch_size * 4, self.device, output="features")

    def predict(self, videos: torch.Tensor) -> list[str]:
        """The motion the classifier sees in each clip."""
        logits = run_net(self.loaded().net, videos, self.hparams.batch_size * 4, self.device)
        return [MOTIONS[i] for i in logits.argmax(1).tolist()]

    def _settings(self) -> dict:
        clf = self.loaded()
        return {"classifier": clf.info["key"], "classifier_heldout_accuracy": clf.heldout_accuracy,
                "classifier_heldout_n": clf.heldout_n, "frames": clf.net.num_frames,
                "resolution": clf.net.image_size}

    def hits(self, videos: torch.Tensor, prompts: list[str]) -> np.ndarray:
        """Per clip: 1.0 where the classifier sees the prompt's motion, else 0.0."""
        if len(videos) != len(prompts) or not prompts:
            raise ValueError(f"{len(videos)} videos with {len(prompts)} prompts is invalid; allowed: one prompt "
                             "per video, at least one video")
        expected = [motion_of(p) for p in prompts]
        return np.array([p == e for p, e in zip(self.predict(videos), expected, strict=True)], dtype=np.float64)

    def _mean(self, hits: np.ndarray, **settings) -> MetricResult:
        return MetricResult(value=float(hits.mean()), n=len(hits), std=float(hits.std()), unit="clips",
                            settings={**self._settings(), **settings})

    def prompt_accuracy(self, videos: torch.Tensor, prompts: list[str]) -> dict:
        """{"per_prompt": {prompt: MetricResult}, "overall": MetricResult}: the fraction of each prompt's clips
        classified as its motion, and the mean over all clips."""
        hits = self.hits(videos, prompts)
        return {"per_prompt": self._per_prompt(hits, prompts), "overall": self._mean(hits)}

    def _per_prompt(self, hits: np.ndarray, prompts: list[str]) -> dict[str, MetricResult]:
        texts = np.array(prompts)
        return {p: self._mean(hits[texts == p], motion=motion_of(p)) for p in dict.fromkeys(prompts)}

    def frechet_distance(self, generated: torch.Tensor, real: torch.Tensor) -> MetricResult:
        """Fréchet distance between the classifier's features of two sets of clips, in float64."""
        if len(generated) < 2 or len(real) < 2:
            raise ValueError(f"the Fréchet distance needs at least 2 videos per set; got {len(generated)} "
                             f"generated and {len(real)} real")
        value = frechet_distance(self.features(generated), self.features(real))
        return MetricResult(value=value, n=min(len(generated), len(real)),
                            settings={**self._settings(), "n_generated": len(generated), "n_real": len(real),
                                      "feature_dim": self.loaded().net.feature_dim})

    def score(self, ev) -> dict:
        """For an evaluation protocol's EvalSet: accuracy over all, seen and held-out prompts, the per-prompt
        accuracies, each clip's hit (clips/prompt_acc) and the Fréchet distance to the real clips."""
        hits = self.hits(ev.generated, ev.prompts)
        heldout = np.array([p in ev.heldout for p in ev.prompts])
        per_prompt = self._per_prompt(hits, ev.prompts)
        out: dict = {"prompt_acc/per_prompt": {p: r.value for p, r in per_prompt.items()},
                     "prompt_acc/all": self._mean(hits), "clips/prompt_acc": hits.tolist()}
        if heldout.any() and not heldout.all():
            out["prompt_acc/seen"] = self._mean(hits[~heldout])
            out["prompt_acc/heldout"] = self._mean(hits[heldout])
        out["classifier_fd"] = self.frechet_distance(ev.generated, ev.reference)
        return out
