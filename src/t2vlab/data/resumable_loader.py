"""A shuffled DataLoader that resumes in the middle of an epoch.

Each pass over the data takes its order from a generator seeded by (the run's seed, the pass number), never
from the global random stream. Lightning saves `state_dict()` in every checkpoint and calls `load_state_dict()`
on resume; the state is the seed, the pass and how many of its batches had trained, so a resumed run goes on
with the next batch of the same order instead of starting the pass again (which would train part of an epoch
twice). Skipped batches are never loaded: the sampler drops their indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class _PassOrder(Sampler[int]):
    """A random permutation drawn from `generator`, less its first `skip` indices."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator, self.skip = size, generator, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        return iter(order[self.skip:])


class ResumableLoader(DataLoader):
    """`DataLoader(dataset, batch_size, shuffle=True, drop_last=True, ...)` whose place survives a checkpoint.

    `trained_in_pass` is told by the data module: it returns how many batches of the current pass have trained
    (Lightning's count), since the loader itself hands out batches ahead of training (the trainer prefetches).
    """

    def __init__(self, dataset: Dataset, batch_size: int, sampler: Sampler | None = None, **kwargs) -> None:
        self._generator = torch.Generator()
        # Lightning rebuilds the loader with a sampler of its own for trainer.overfit_batches (a fixed order):
        # that order is used as it is, and a pass then starts again on resume
        self._order = _PassOrder(len(dataset), self._generator) if sampler is None else None
        for key in ("shuffle", "drop_last", "generator"):  # what a rebuild copies from this loader's attributes
            kwargs.pop(key, None)
        super().__init__(dataset, batch_size=batch_size, sampler=self._order if sampler is None else sampler,
                         drop_last=True, generator=self._generator, **kwargs)
        # the run's seed (seed_everything), read without drawing: a resumed run builds its loader after its random
        # states are restored, and a draw here would shift everything after it
        self._seed = torch.initial_seed()
        self._pass = -1
        self._skip = 0
        self.trained_in_pass: Callable[[], int] | None = None

    def __iter__(self):
        self._pass += 1
        self._generator.manual_seed((self._seed * 1_000_003 + self._pass) % 2**63)
        if self._order is not None:
            self._order.skip, self._skip = self._skip * self.batch_size, 0
        return super().__iter__()

    def state_dict(self) -> dict:
        if self._order is None:
            return {}
        trained = self.trained_in_pass() if self.trained_in_pass is not None else 0
        if trained >= len(self):  # the pass is over: a resume starts the next one
            return {"seed": self._seed, "pass": self._pass + 1, "batches": 0}
        return {"seed": self._seed, "pass": max(self._pass, 0), "batches": trained}

    def load_state_dict(self, state: dict) -> None:
        if self._order is None or not state:
            return
        self._seed, self._pass, self._skip = int(state["seed"]), int(state["pass"]) - 1, int(state["batches"])


def training_loader(datamodule, dataset: Dataset, batch_size: int, num_workers: int = 0, **kwargs) -> DataLoader:
    """The data module's shuffled training loader (workers kept between passes): resumable on one process; under
    DDP a plain one, which Lightning rebuilds with its distributed sampler (a pass then starts again on resume)."""
    kwargs.update(num_workers=num_workers, persistent_workers=num_workers > 0)
    trainer = getattr(datamodule, "trainer", None)
    if trainer is not None and trainer.world_size > 1:
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, **kwargs)
    loader = ResumableLoader(dataset, batch_size, **kwargs)
    if trainer is not None:  # batches of this pass that have trained, as Lightning counts them
        loader.trained_in_pass = lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return loader
