"""Word tokenizer with a fixed, sorted vocabulary, shared by the GAN and MAGVIT families.

Hyphens split words, so "up-right" is read as "up" + "right" and a held-out prompt made of seen words
is understood. Id 0 is padding; word ids follow the sorted vocabulary, so they never change between
processes (the write-up built its vocabulary from a Python set, whose order does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

PAD = "<pad>"


def split_words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s\-]+", text.lower().strip()) if w]


class WordTokenizer:
    def __init__(self, vocab: Iterable[str]) -> None:
        words = sorted(set(vocab) - {PAD})
        if not words:
            raise ValueError("tokenizer vocabulary is empty")
        self.vocab: list[str] = [PAD, *words]
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> WordTokenizer:
        return cls(w for t in texts for w in split_words(t))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        words = split_words(text)
        unknown = [w for w in words if w not in self.index]
        if unknown:
            raise ValueError(f"unknown word(s) {unknown} in prompt {text!r}; "
                             f"the vocabulary is: {', '.join(self.vocab[1:])}")
        if not words:
            raise ValueError(f"prompt {text!r} has no words")
        return [self.index[w] for w in words]

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, L) padded with 0 and a bool mask (B, L), True on real words."""
        ids = [self.encode(t) for t in texts]
        length = max(len(x) for x in ids)
        out = torch.zeros(len(ids), length, dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, : len(x)] = torch.tensor(x)
        return out, out != 0
