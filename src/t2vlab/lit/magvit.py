"""The thin LightningModule of MAGVIT's stage 2: a masked token transformer over a frozen tokenizer.

Training (COMMIT): each clip of a batch draws a task by `task_weights`; the visible part of a conditional
task's clip is padded to a full video and tokenized into condition tokens (once per clip and task, cached with
the clips' own tokens); a cosine-scheduled random mask hides latent tokens, those inside the task's condition
region showing the condition token instead of [MASK]; cross-entropy against the real clip's tokens (cached once
per tokenizer and data set), logged as its mask / refine / recons parts. The condition is the prompt's words
(`condition=text`) or one class token per prompt (`condition=class`, the classes being `classes`, e.g. the
circles prompts); it is dropped now and then (`text_drop`), so generation can use classifier-free guidance.
Generation: `generate(prompts, num_frames, seed)` decodes text-to-video in `steps` parallel steps;
`predict(video, task)` does the conditional tasks and returns the input's visible region unchanged, the rest
generated.
"""

from __future__ import annotations

import functools
import logging

import torch

from t2vlab.lit.family import FamilyModule
from t2vlab.models.magvit.masking import TASKS, commit_inputs, condition_video, latent_region, pixel_region, random_mask
from t2vlab.models.magvit.sampling import decode_tokens
from t2vlab.models.magvit.tokenizer import TEMPORAL_FACTOR
from t2vlab.text.word_tokenizer import WordTokenizer

log = logging.getLogger(__name__)
CONDITIONS = ("text", "class")


class MagvitModule(FamilyModule):
    family = "magvit"
    # tokenizer_ckpt is recorded as the file used (the config may name a folder of runs, whose newest can change):
    # a resumed or evaluated run rebuilds on that file (tasks.common.pin_to_checkpoint)
    pinned_hparams = ("tokenizer_ckpt",)

    def __init__(self, transformer, loss, vocab: list[str], tokenizer_ckpt: str, num_frames: int, image_size: int,
                 task_weights: dict[str, float] | None = None, cond_frames: int = 1, text_len: int = 8,
                 text_drop: float = 0.1, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.96),
                 weight_decay: float = 0.045, warmup_steps: int = 200, min_lr_ratio: float = 0.05, steps: int = 12,
                 temperature: float = 1.0, choice_temperature: float = 4.5, guidance: float = 0.0,
                 generate_task: str = "generation", token_cache_dir: str | None = None, condition: str = "text",
                 classes: list[str] | None = None) -> None:
        super().__init__()
        weights = dict(task_weights or {"generation": 1.0})
        unknown = sorted(set(weights) - set(TASKS))
        if unknown:
            raise ValueError(f"model.task_weights has unknown task(s) {unknown}; allowed: {', '.join(TASKS)}")
        checks = [("lr", lr > 0, "> 0"), ("steps", steps >= 1, ">= 1"), ("temperature", temperature >= 0, ">= 0"),
                  ("choice_temperature", choice_temperature >= 0, ">= 0"), ("guidance", guidance >= 0, ">= 0"),
                  ("text_drop", 0 <= text_drop < 1, "[0, 1)"), ("text_len", text_len >= 1, ">= 1"),
                  ("task_weights", all(w >= 0 for w in weights.values()) and sum(weights.values()) > 0,
                   "non-negative weights, at least one > 0"),
                  ("cond_frames", 1 <= cond_frames < num_frames, f"1 .. num_frames - 1 = {num_frames - 1}")]
        self.check_arguments(checks, {**locals(), "task_weights": weights})
        if condition not in CONDITIONS:
            raise ValueError(f"model.condition={condition!r} is invalid; allowed: {', '.join(CONDITIONS)}")
        if condition == "class" and (not classes or len(set(classes)) != len(classes)):
            raise ValueError(f"model.classes={classes} is invalid for model.condition=class; allowed: a list of "
                             "distinct class names (on circles it defaults to the data set's prompts)")
        self.check_loss(loss, "loss=magvit_commit")
        from t2vlab.models.magvit.tokens import find_tokenizer_checkpoint, load_tokenizer

        self.circles = None  # the data set's circles settings: generate_task renders real clips to condition on

        self.save_hyperparameters(ignore=["transformer", "loss"])
        self.hparams.tokenizer_ckpt = str(find_tokenizer_checkpoint(tokenizer_ckpt).resolve())
        self.tokenizer, self.tokenizer_identity = load_tokenizer(self.hparams.tokenizer_ckpt)
        self.latent_shape = self.tokenizer.latent_shape(num_frames, image_size, image_size)
        self.words = WordTokenizer(vocab)
        self.class_ids = {name: i for i, name in enumerate(classes or [])} if condition == "class" else {}
        given = ({"num_classes": len(self.class_ids)} if condition == "class"
                 else {"text_vocab_size": len(self.words), "text_len": text_len})
        self.net = transformer(codebook_size=self.tokenizer.codebook_size, latent_shape=self.latent_shape,
                               num_tasks=len(TASKS), **given)
        self._warned_classless: set[str] = set()
        self.loss = loss
        self.task_names = [t for t in TASKS if weights.get(t, 0) > 0]
        self.register_buffer("task_probs", torch.tensor([weights[t] for t in self.task_names]), persistent=False)
        self.padded_frames = 1 + TEMPORAL_FACTOR * (self.latent_shape[0] - 1)
        self.tokens = None  # TokenTable of the training clips, built at fit start
        self.check_generation("model")

    def check_generation(self, name: str = "generation") -> None:
        """Generation settings (also changed after training: evaluate.py +generation.<key>=, evaluation.variants)."""
        task = self.hparams.generate_task
        if task not in TASKS:
            raise ValueError(f"{name}.generate_task={task!r} is invalid; allowed: {', '.join(TASKS)}")

    def attach_circles(self, settings) -> None:
        """The circles settings whose real clips a conditional `generate_task` continues or fills in (None for a
        data set that is not circles)."""
        from t2vlab.data.circles import CirclesSettings

        self.circles = settings if isinstance(settings, CirclesSettings) else None

    def check_data(self, datamodule) -> None:
        """The data set's prompts fit the condition: every prompt's words in `text_len` positions, or every
        training prompt one of `classes` (held-out prompts may name none: they are generated without a class)."""
        train_prompts = list(getattr(datamodule, "prompts", []))
        if self.hparams.condition == "class":
            classless = sorted(set(train_prompts) - set(self.class_ids))
            if classless:
                raise ValueError(f"model.classes has no class for the training prompt(s) {classless}; allowed: classes "
                                 "that name every training prompt")
            return
        prompts = train_prompts + list(getattr(datamodule, "holdout_prompts", []))
        longest = max(prompts, key=lambda p: len(self.words.encode(p)), default=None)
        if longest is not None and len(self.words.encode(longest)) > self.hparams.text_len:
            raise ValueError(f"model.text_len={self.hparams.text_len} is invalid for the prompt {longest!r}; allowed: "
                             f">= {len(self.words.encode(longest))} (its number of words)")

    # ---------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        if stage != "fit" or self.tokens is not None:
            return
        from t2vlab.models.magvit.tokens import build_token_table

        dm = self.trainer.datamodule
        self.check_data(dm)
        dm.setup("fit")
        key = f"{type(dm).__name__}-{getattr(dm.settings, 'key', lambda: '')()}"
        cache = self.hparams.token_cache_dir or "data/cache/magvit_tokens"
        self.tokenizer.to(self.device)
        cf = self.hparams.cond_frames
        conditions = {t: functools.partial(condition_video, task=t, cond_frames=cf)
                      for t in self.task_names if t != "generation"}
        self.tokens = build_token_table(self.tokenizer, self.tokenizer_identity, dm.train_set, key, cache,
                                        conditions, conditions_key=f"cond_frames={cf}")

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen: its norms stay in inference mode
        return self

    def configure_optimizers(self):
        h = self.hparams
        return self.per_step(*self.adamw_warmup_cosine(self.net.parameters(), h.lr, h.warmup_steps, h.min_lr_ratio,
                                                       self.planned_steps(), betas=tuple(h.betas),
                                                       weight_decay=h.weight_decay))

    # ---------------------------------------------------------------- pieces shared by training and sampling
    def _condition(self, prompts: list[str] | None, batch: int, drop: torch.Tensor | None = None) -> dict:
        """The transformer's condition inputs for the prompts: their words (text_ids, text_mask) or their class
        (class_ids). No prompts, or a dropped one, is the empty condition: no word attended, or the null class."""
        if self.hparams.condition == "class":
            null = self.net.null_class
            ids = torch.tensor([self._class_of(p, null) for p in prompts] if prompts is not None else [null] * batch,
                               dtype=torch.long, device=self.device)
            return {"class_ids": ids if drop is None else ids.masked_fill(drop, null)}
        if prompts is None:
            return {"text_ids": torch.zeros(batch, 1, dtype=torch.long, device=self.device),
                    "text_mask": torch.zeros(batch, 1, dtype=torch.bool, device=self.device)}
        ids, mask = self.words(prompts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        if drop is not None:  # a dropped prompt: no word is attended
            ids, mask = ids.masked_fill(drop[:, None], 0), mask & ~drop[:, None]
        return {"text_ids": ids, "text_mask": mask}

    def _class_of(self, prompt: str, null: int) -> int:
        """A prompt's class id; one that names no class (a held-out prompt) gets the null class: unconditional."""
        if prompt in self.class_ids:
            return self.class_ids[prompt]
        if prompt not in self._warned_classless:
            self._warned_classless.add(prompt)
            log.warning("prompt %r is not one of model.classes: generated without a class (unconditional)", prompt)
        return null

    def _region(self, task: str) -> torch.Tensor:
        """(N,) bool: latent positions inside the task's condition region."""
        H = W = self.hparams.image_size
        region = latent_region(task, self.padded_frames, H, W, self.tokenizer.spatial_factor, TEMPORAL_FACTOR,
                               self.hparams.cond_frames)
        return region.flatten().to(self.device)

    def _condition_tokens(self, video: torch.Tensor, task: str) -> torch.Tensor:
        """(B,T,3,H,W) -> (B,N) tokens of the task's padded visible part."""
        return self.tokenizer.tokenize(condition_video(video, task, self.hparams.cond_frames)).flatten(1)

    # ---------------------------------------------------------------- training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        B = len(batch["id"])
        targets = self.tokens(batch["id"]).to(self.device).flatten(1)  # (B,N)
        choice = torch.multinomial(self.task_probs, B, replacement=True).to(self.device)  # index into task_names
        cond = targets.clone()
        region = torch.zeros_like(targets, dtype=torch.bool)
        for k, task in enumerate(self.task_names):
            rows = (choice == k).nonzero().flatten()
            if task == "generation" or len(rows) == 0:
                continue
            cond[rows] = self.tokens.condition(task, [batch["id"][i] for i in rows.tolist()]).to(self.device).flatten(1)
            region[rows] = self._region(task)
        mask = random_mask(B, targets.shape[1], device=self.device)
        inputs, kinds = commit_inputs(targets, cond, region, mask, self.net.mask_id)
        drop = torch.rand(B, device=self.device) < self.hparams.text_drop
        task_ids = torch.tensor([TASKS.index(t) for t in self.task_names], device=self.device)[choice]
        logits = self.net(inputs, task_ids, **self._condition(list(batch["text"]), B, drop))
        parts = self.loss(logits, targets, kinds)
        with torch.no_grad():
            hit = logits.argmax(-1) == targets
            masked = kinds == 2
            acc = (hit & masked).sum() / masked.sum().clamp(min=1)
        self.log_dict({"train/loss": parts["total"].detach(), "train/loss_mask": parts["mask"].detach(),
                       "train/loss_refine": parts["refine"].detach(), "train/loss_recons": parts["recons"].detach(),
                       "train/acc_mask": acc}, prog_bar=True)
        return parts["total"]

    # ---------------------------------------------------------------- generation
    def _check_frames(self, num_frames: int) -> None:
        if not 1 <= num_frames <= self.hparams.num_frames:
            raise ValueError(f"num_frames={num_frames} is invalid; allowed: 1 .. {self.hparams.num_frames} (the "
                             "clip length the transformer was trained for)")

    def _decode(self, task: str, prompts: list[str] | None, B: int, seed: int,
                cond_tokens: torch.Tensor | None = None, region: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hparams
        task_ids = torch.full((B,), TASKS.index(task), dtype=torch.long, device=self.device)
        given, empty = self._condition(prompts, B), self._condition(None, B)

        def logits_fn(tokens: torch.Tensor) -> torch.Tensor:
            logits = self.net(tokens, task_ids, **given).float()
            if h.guidance > 0:  # classifier-free guidance against the dropped prompt
                logits = logits + h.guidance * (logits - self.net(tokens, task_ids, **empty).float())
            return logits

        gen = torch.Generator().manual_seed(seed)
        tokens = decode_tokens(logits_fn, self.net.num_tokens, B, mask_id=self.net.mask_id, steps=h.steps,
                               temperature=h.temperature, choice_temperature=h.choice_temperature,
                               cond_tokens=cond_tokens, region=region, generator=gen, device=self.device)
        return tokens.view(B, *self.latent_shape)

    @property
    def given_frames(self) -> int:
        """Leading frames of `generate`'s clips that are real, not generated: `cond_frames` for frame
        prediction (evaluation also scores the frames after them alone), else 0."""
        return self.hparams.cond_frames if self.hparams.generate_task == "frame_prediction" else 0

    @torch.no_grad()
    def generate(self, prompts: list[str], num_frames: int, seed: int = 0) -> torch.Tensor:
        """prompts -> videos (B,T,3,H,W) in [0,1] in `steps` parallel decoding steps: text-to-video, or with
        generate_task=<a conditional task> that task on a real circles clip of each prompt (rendered with the
        seed), e.g. frame_prediction: the prompted motion continued from a real first frame."""
        self._check_frames(num_frames)
        task = self.hparams.generate_task
        if task != "generation":
            return self.predict(self._real_clips(list(prompts), num_frames, seed), task, list(prompts), seed)
        tokens = self._decode("generation", list(prompts), len(prompts), seed)
        return self.tokenizer.detokenize(tokens, num_frames).float()

    def _real_clips(self, prompts: list[str], num_frames: int, seed: int) -> torch.Tensor:
        """One real circles clip per prompt, (B,T,3,H,W), rendered with `seed` (never the training set's)."""
        import dataclasses

        from t2vlab.evaluation.reconstruction import heldout_clips

        if self.circles is None:
            raise ValueError(f"generate_task={self.hparams.generate_task} continues real circles clips, and this "
                             "model has no circles settings attached (a run on circles attaches them)")
        settings = dataclasses.replace(self.circles, num_frames=num_frames)
        clips = torch.empty(len(prompts), num_frames, 3, self.hparams.image_size, self.hparams.image_size)
        for k, prompt in enumerate(dict.fromkeys(prompts)):
            rows = [i for i, p in enumerate(prompts) if p == prompt]
            clips[rows] = heldout_clips(settings, len(rows), self.circles.seed + 7919 * (seed + 1) + k, [prompt])[0]
        return clips.to(self.device)

    @torch.no_grad()
    def predict(self, video: torch.Tensor, task: str, prompts: list[str] | None = None, seed: int = 0) -> torch.Tensor:
        """A conditional task on real clips (B,T,3,H,W) in [0,1] -> (B,T,3,H,W): the visible region of the input
        as it is, the rest generated (frame_prediction, frame_interpolation, outpaint_*, inpaint_central; or
        generation, which ignores the video). Prompts are optional."""
        if task not in TASKS:
            raise ValueError(f"task={task!r} is invalid; allowed: {', '.join(TASKS)}")
        B, T = video.shape[:2]
        self._check_frames(T)
        video = video.to(self.device)
        prompts = list(prompts) if prompts else None
        if task == "generation":
            return self.tokenizer.detokenize(self._decode(task, prompts, B, seed), T).float()
        cond = self._condition_tokens(video, task)
        tokens = self._decode(task, prompts, B, seed, cond, self._region(task))
        out = self.tokenizer.detokenize(tokens, T).float()
        visible = pixel_region(task, T, *video.shape[-2:], cond_frames=self.hparams.cond_frames).to(self.device)
        return torch.where(visible[None, :, None], video.float(), out)
