"""The backbone contract: what the Splitter and the embedding cache may ask of a frozen text-to-image model.

Shapes: B prompts, N frames, L text tokens, D embedding width. Frames in and out are float (N,3,H,W) in
[0,1], the framework's video convention. Every method returns float32 on the backbone's device, whatever
dtype the networks run in, so cached embeddings never depend on the hardware's precision setting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class BackboneUnavailable(RuntimeError):
    """The backbone's weights are not where the config says; the message says how to get them."""


class Backbone(ABC):
    name: str  # the config option, e.g. "kandinsky22"
    dim: int  # D: width of image embeddings and of the text hidden states
    text_len: int  # L: text tokens per prompt (padded)

    @property
    @abstractmethod
    def identity(self) -> str:
        """Name plus a hash of the weights and of every setting that changes an embedding; keys the cache."""

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (hidden (B,L,D), pooled (B,D)): the text encoder's last hidden state and projected embedding."""

    @abstractmethod
    def prior(self, prompts: list[str], seed: int | list[int]) -> torch.Tensor:
        """-> (B,D): the prior's image embedding for each prompt; one seed for all, or one per prompt."""

    @abstractmethod
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (N,3,H,W) in [0,1] -> (N,D) image embeddings."""

    @abstractmethod
    def decode(self, embeds: torch.Tensor, seed: int | list[int] = 0) -> torch.Tensor:
        """embeds (N,D) -> frames (N,3,H,W) in [0,1]; one seed for all frames, or one per frame."""

    def decode_video(self, embeds: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """embeds (B,T,D) -> video (B,T,3,H,W); every frame of a clip rendered with the same seed."""
        B, T, D = embeds.shape
        frames = self.decode(embeds.reshape(B * T, D), seed)
        return frames.view(B, T, *frames.shape[1:])


def seeds_for(seed: int | list[int], n: int, what: str = "seed") -> list[int]:
    """One seed per item: a single int is shared; a list must have one per item."""
    if isinstance(seed, int):
        return [seed] * n
    seeds = [int(s) for s in seed]
    if len(seeds) != n:
        raise ValueError(f"{what}: got {len(seeds)} seeds for {n} items; allowed: one int, or one seed per item")
    return seeds


def generators(seeds: list[int], device: torch.device) -> list[torch.Generator]:
    # diffusers draws CUDA noise from CUDA generators; CPU generators elsewhere
    kind = "cuda" if device.type == "cuda" else "cpu"
    return [torch.Generator(kind).manual_seed(s) for s in seeds]
