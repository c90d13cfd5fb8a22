import pytest

from t2vlab.data.datamodule import CirclesDataModule


def test_clip_batches_and_holdout_is_never_trained_on():
    dm = CirclesDataModule({"num_videos": 40}, holdout_prompts=["circle moving up-right"], batch_size=8)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (8, 10, 3, 64, 64)
    assert len(batch["text"]) == 8
    assert "circle moving up-right" not in dm.train_set.texts


def test_frames_view_gives_single_frames():
    dm = CirclesDataModule({"num_videos": 4}, batch_size=16, as_frames=True)
    dm.setup()
    assert len(dm.train_set) == 40
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (16, 1, 3, 64, 64)


def test_bad_batch_size_names_the_key():
    with pytest.raises(ValueError, match="batch_size=0.*>= 1"):
        CirclesDataModule(batch_size=0)
