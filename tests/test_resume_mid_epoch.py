"""A run resumed from a checkpoint written in the middle of an epoch trains the rest of that epoch's batches in
the same order, and ends with the same weights as a run that was never stopped."""

from __future__ import annotations

from pathlib import Path

import torch

from t2vlab.tasks.train import train

# 32 clips in batches of 8 = 4 GAN iterations = 8 optimiser steps per epoch; a checkpoint every 6 steps lands
# in the middle of the first and second epochs
RUN = ["seed=3", "trainer.max_steps=16", "dataset.settings.num_videos=32", "model.generator.base_channels=32",
       "model.generator.hidden=64", "model.discriminator.features=64",
       "callbacks.model_checkpoint.every_n_train_steps=6", "callbacks.model_checkpoint.save_top_k=-1",
       "evaluation.clips_per_prompt=1", "callbacks.video_sampler=null"]


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_a_mid_epoch_checkpoint_resumes_with_the_next_batch_of_the_same_order(train_cfg):
    straight = train_cfg(*RUN, name="straight")
    train(straight)
    out = Path(straight.paths.output_dir)
    for step in (6, 12):
        ckpt = out / "checkpoints" / f"step{step:06d}.ckpt"
        state = torch.load(ckpt, weights_only=True)
        loader = state["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
        assert loader["pass"] == step // 8 and loader["batches"] == (step % 8) // 2  # 2 optimiser steps a batch
        resumed = train_cfg(*RUN, f"ckpt_path={ckpt}", name=f"resumed_{step}")
        metrics = train(resumed)
        assert metrics["train/global_step"] == 16
        expected, got = weights(out), weights(Path(resumed.paths.output_dir))
        assert all(torch.equal(expected[k], got[k]) for k in expected), f"resumed from step {step}"


def test_the_loader_resumes_its_pass_and_starts_the_next_one_after_a_finished_pass():
    from torch.utils.data import SequentialSampler

    from t2vlab.data.resumable_loader import ResumableLoader

    data = list(range(20))
    torch.manual_seed(5)
    straight = ResumableLoader(data, 4)
    passes = [[b.tolist() for b in straight] for _ in range(2)]
    assert sorted(sum(passes[0], [])) == data and passes[0] != passes[1]  # every item once, a new order a pass

    torch.manual_seed(5)
    stopped = ResumableLoader(data, 4)
    iterator = iter(stopped)
    next(iterator), next(iterator), next(iterator)  # handed out ahead of training: the count comes from outside
    stopped.trained_in_pass = lambda: 2
    torch.manual_seed(123)  # a resumed process's own seed does not matter: the state carries the order's
    resumed = ResumableLoader(data, 4)
    resumed.load_state_dict(stopped.state_dict())
    assert [b.tolist() for b in resumed] == passes[0][2:]
    assert [b.tolist() for b in resumed] == passes[1]

    stopped.trained_in_pass = lambda: 5  # the whole pass had trained: a resume starts the next pass
    after = ResumableLoader(data, 4)
    after.load_state_dict(stopped.state_dict())
    assert [b.tolist() for b in after] == passes[1]

    fixed = ResumableLoader(data, 4, sampler=SequentialSampler(data))  # Lightning's overfit_batches rebuild
    assert [b.tolist() for b in fixed][0] == [0, 1, 2, 3] and fixed.state_dict() == {}


def test_a_resumed_run_counts_its_place_in_the_pass_for_its_own_checkpoints(train_cfg):
    every_batch = [*RUN, "trainer.max_steps=8", "callbacks.model_checkpoint.every_n_train_steps=2"]
    straight = train_cfg(*every_batch, name="straight")
    train(straight)
    first = Path(straight.paths.output_dir) / "checkpoints" / "step000002.ckpt"
    again = train_cfg(*every_batch, f"ckpt_path={first}", name="again")
    train(again)  # resumed after batch 1 of pass 0; its own checkpoint after batch 2 must say 2, not 1
    second = Path(again.paths.output_dir) / "checkpoints" / "step000004.ckpt"
    state = torch.load(second, weights_only=True)["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert (state["pass"], state["batches"]) == (0, 2)
    last = train_cfg(*every_batch, f"ckpt_path={second}", name="last")
    train(last)
    expected, got = weights(Path(straight.paths.output_dir)), weights(Path(last.paths.output_dir))
    assert all(torch.equal(expected[k], got[k]) for k in expected)
