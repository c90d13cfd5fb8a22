"""A byte-level CLIP tokenizer built in code: every byte is a token, and chosen words become single tokens.

The small backbones (circles_unclip, the tiny Kandinsky components in tests) need a real
`transformers.CLIPTokenizer` that round-trips through save_pretrained/from_pretrained, without a
downloaded vocabulary. Byte-level BPE with no merges reads any text; a merge chain per listed word makes
each of those words one token, so circles prompts take a handful of positions.
"""

from __future__ import annotations

from transformers import CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, which byte-level BPE vocabularies are written in."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars), strict=True))


def byte_level_clip_tokenizer(words: list[str] | tuple[str, ...] = (), model_max_length: int = 77) -> CLIPTokenizer:
    table = bytes_to_unicode()
    symbols = [table[b] for b in range(256)]
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in sorted({w.lower() for w in words}):
        pieces = ["".join(table[b] for b in ch.encode()) for ch in word]
        if len(pieces) < 2:
            continue
        pieces[-1] += "</w>"
        left = pieces[0]
        for right in pieces[1:]:
            merge = (left, right)
            if merge not in merges:
                merges.append(merge)
            left += right
            vocab.setdefault(left, len(vocab))
    vocab.setdefault(BOS, len(vocab))
    vocab.setdefault(EOS, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
