"""The embedding cache: contents, cache hits, resume after an interruption, damaged shards, keys, serving."""

import json

import pytest
import torch
from conftest import compose_cfg
from torch.utils.data import Dataset

from t2vlab.backbones.base import Backbone
from t2vlab.backbones.embedding_cache import EmbeddingCache
from t2vlab.backbones.embedding_data import EmbeddingDataModule, EmbeddingDataset, collate_embeddings
from t2vlab.data.datamodule import CirclesDataModule
from t2vlab.tasks.embed import embed
from t2vlab.tasks.preflight import BadInput

D, L = 8, 4


class CountingBackbone(Backbone):
    """A fixed random projection of the pixels; counts what it is asked to compute."""

    name, dim, text_len = "counting", D, L
    device = torch.device("cpu")

    def __init__(self, tag: str = "a", fail_after_frames: int | None = None) -> None:
        self.tag, self.fail_after_frames = tag, fail_after_frames
        self.proj = torch.randn(3 * 4 * 4, D, generator=torch.Generator().manual_seed(0))
        self.frames_seen, self.prompts_seen = 0, []

    @property
    def identity(self) -> str:
        return f"counting-{self.tag}"

    def encode_text(self, prompts):
        self.prompts_seen += list(prompts)
        codes = torch.tensor([[float(len(p)), float(sum(map(ord, p)) % 97)] for p in prompts])
        hidden = codes[:, None, :1].expand(-1, L, D) + torch.arange(L)[None, :, None]
        return hidden.clone(), codes[:, 1:].expand(-1, D).clone()

    def prior(self, prompts, seed=0):
        # one generator per prompt, as the real backbones draw it: a prompt's embedding ignores its batch
        return torch.stack([torch.randn(D, generator=torch.Generator().manual_seed(seed)) + len(p) for p in prompts])

    def encode_frames(self, frames):
        if self.fail_after_frames is not None and self.frames_seen >= self.fail_after_frames:
            raise KeyboardInterrupt  # as if Ctrl-C arrived mid-run
        self.frames_seen += len(frames)
        return torch.nn.functional.adaptive_avg_pool2d(frames, 4).flatten(1) @ self.proj

    def decode(self, embeds, seed=0):
        raise NotImplementedError


class Clips(Dataset):
    """Clips of different lengths; prompts repeat."""

    def __init__(self, n: int = 10, key: str = "v1") -> None:
        self.n, self._key = n, key
        g = torch.Generator().manual_seed(1)
        self.videos = [torch.rand(3 + i % 4, 3, 8, 8, generator=g) for i in range(n)]

    def key(self) -> str:
        return self._key

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"video": self.videos[i], "text": ["a circle", "a square", "a line"][i % 3], "id": f"clip{i}"}


def test_cache_holds_what_the_backbone_computes(tmp_path):
    bb, data = CountingBackbone(), Clips()
    cache = EmbeddingCache(tmp_path, bb, data, "clips", prior_seed=3, shard_size=4)
    summary = cache.build(progress=False)
    assert summary["computed_shards"] == cache.num_shards == 3 and summary["computed_clips"] == 10
    assert bb.prompts_seen == ["a circle", "a square", "a line"]  # each prompt encoded once
    served = EmbeddingDataset(cache)
    assert len(served) == 10
    for i in (0, 5, 9):
        item = served[i]
        torch.testing.assert_close(item["frames"], CountingBackbone().encode_frames(data[i]["video"]))
        hidden, pooled = CountingBackbone().encode_text([data[i]["text"]])
        torch.testing.assert_close(item["hidden"], hidden[0])
        torch.testing.assert_close(item["pooled"], pooled[0])
        torch.testing.assert_close(item["prior"], CountingBackbone().prior([data[i]["text"]], seed=3)[0])
        assert item["text"] == data[i]["text"] and item["id"] == f"clip{i}"
    manifest = json.loads((cache.folder / "manifest.json").read_text())
    assert manifest["backbone"] == "counting-a" and manifest["dataset_key"] == "v1"


def test_second_build_is_a_hit_and_computes_nothing(tmp_path):
    EmbeddingCache(tmp_path, CountingBackbone(), Clips(), "clips", shard_size=4).build(progress=False)
    again = CountingBackbone()
    summary = EmbeddingCache(tmp_path, again, Clips(), "clips", shard_size=4).build(progress=False)
    assert summary["computed_shards"] == 0 and summary["reused_shards"] == 3
    assert again.frames_seen == 0 and again.prompts_seen == []


def test_interrupted_build_resumes_without_recomputing_finished_shards(tmp_path):
    data = Clips()
    first_shard_frames = sum(len(data[i]["video"]) for i in range(4))
    dying = CountingBackbone(fail_after_frames=first_shard_frames)  # dies while embedding the second shard
    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(tmp_path, dying, data, "clips", shard_size=4).build(progress=False)
    cache = EmbeddingCache(tmp_path, CountingBackbone(), data, "clips", shard_size=4)
    assert cache.missing_shards() == [1, 2]
    assert not [p for p in cache.folder.iterdir() if p.name.startswith(".")]  # no half-written file in place
    summary = cache.build(progress=False)
    assert summary["computed_shards"] == 2 and summary["reused_shards"] == 1
    assert cache.backbone.frames_seen == sum(len(data[i]["video"]) for i in range(4, 10))


def test_a_damaged_shard_is_detected_and_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path, CountingBackbone(), Clips(), "clips", shard_size=4)
    cache.build(progress=False)
    shard = cache.shard_path(1)
    blob = bytearray(shard.read_bytes())
    blob[-5] ^= 0xFF
    shard.write_bytes(bytes(blob))
    assert cache.missing_shards() == [1]
    with pytest.raises(RuntimeError, match="shard 1 is missing or damaged"):
        cache.load_shard(1)
    fresh = CountingBackbone()
    summary = EmbeddingCache(tmp_path, fresh, Clips(), "clips", shard_size=4).build(progress=False)
    assert summary["computed_shards"] == 1 and summary["repaired_shards"] == 1
    assert fresh.frames_seen == sum(len(Clips()[i]["video"]) for i in range(4, 8))
    assert cache.missing_shards() == []


def test_every_setting_that_changes_an_embedding_changes_the_key(tmp_path):
    def key(**kw):
        args = {"backbone": CountingBackbone(), "dataset": Clips(), "prior_seed": 0, **kw}
        return EmbeddingCache(tmp_path, args["backbone"], args["dataset"], "clips", prior_seed=args["prior_seed"]).key

    base = key()
    assert base == key()
    assert len({base, key(backbone=CountingBackbone("b")), key(dataset=Clips(key="v2")), key(prior_seed=1),
                key(dataset=Clips(n=9))}) == 5


def test_batches_pad_clips_of_different_lengths(tmp_path):
    cache = EmbeddingCache(tmp_path, CountingBackbone(), Clips(), "clips", shard_size=4)
    cache.build(progress=False)
    served = EmbeddingDataset(cache)
    batch = collate_embeddings([served[i] for i in range(4)])
    assert batch["lengths"].tolist() == [3, 4, 5, 6]
    assert batch["frames"].shape == (4, 6, D) and batch["hidden"].shape == (4, L, D)
    assert batch["frame_mask"].sum(1).tolist() == [3, 4, 5, 6]
    assert (batch["frames"][0, 3:] == 0).all()


def test_datamodule_embeds_circles_once_and_serves_them(tmp_path):
    source = CirclesDataModule(settings={"num_videos": 12, "image_size": 16, "radius": [1.0, 3.0]},
                               holdout_prompts=["circle moving up-right"], batch_size=4, cache_dir=str(tmp_path))
    dm = EmbeddingDataModule(source, CountingBackbone(), str(tmp_path / "emb"), "circles", batch_size=4,
                             shard_size=5, progress=False)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (4, 10, D) and batch["lengths"].tolist() == [10] * 4
    assert dm.prompts == source.prompts and dm.vocab == source.vocab and dm.holdout_prompts == source.holdout_prompts
    with pytest.raises(ValueError, match="as_frames"):
        EmbeddingDataModule(CirclesDataModule(as_frames=True), CountingBackbone(), str(tmp_path), "circles")


def test_embed_task_reports_a_missing_backbone_before_any_work(tmp_path):
    cfg = compose_cfg("embed", [f"backbone.path={tmp_path / 'none'}", "dataset.settings.num_videos=8"], tmp_path / "o")
    with pytest.raises(BadInput, match="experiment=circles_unclip"):
        embed(cfg)
