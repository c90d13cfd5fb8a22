"""The FLOP counting and the peaks the benchmarks report MFU against."""

import importlib.util
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from t2vlab.runtime.flops import StepFlopCounter, Utilisation, count_flops, matmul_peak
from t2vlab.runtime.resolvers import register_resolvers


def test_a_linear_layer_forward_and_backward_counts_its_matrix_products():
    layer = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)
    assert count_flops(lambda: layer(x)) == 2 * 8 * 64 * 32
    # backward: the gradient of the weight and of the input, each as many as the forward
    assert count_flops(lambda: layer(x.requires_grad_()).sum().backward()) == 3 * 2 * 8 * 64 * 32


def test_the_peak_is_a_measured_rate_and_mfu_divides_by_it():
    peak = matmul_peak(torch.float32, size=256, seconds=0.05)
    assert peak > 1e8  # any CPU multiplies 256x256 matrices faster than 0.1 GFLOP/s
    use = Utilisation(flops_per_step=10**9, steps_per_second=2.0, peak_bf16=8e9, peak_fp32=4e9)
    assert use.as_dict()["mfu_bf16"] == 0.25 and use.as_dict()["mfu_fp32"] == 0.5
    assert "2.0 GFLOP/s achieved" in use.line()


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(16, 4, bias=False)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(12, 16))
        return torch.utils.data.DataLoader(data, batch_size=4)


def test_the_callback_counts_one_training_batch(tmp_path):
    counter = StepFlopCounter(batch_index=1)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[counter], default_root_dir=tmp_path)
    trainer.fit(_Tiny())
    assert counter.flops == 2 * 2 * 4 * 16 * 4  # forward + the weight gradient (the data needs none), one batch


def _bench(name: str):
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_benchmark_times_the_default_recipe_without_its_end_of_fit_work(tmp_path):
    bench = _bench("train_throughput")
    register_resolvers()
    small = ["dataset.settings.num_videos=40", "dataset.batch_size=4"]
    assert bench.compose_config(["experiment=keypoint_vae_circles", *small]).model.prior_fit_steps == 0
    report = bench.main(["keypoint_vae_circles", *small, "--iterations", "2", "--warmup", "1",
                         "--precisions", "32-true", "--profile", "2", "--out", str(tmp_path / "bench.json")])
    assert json.loads((tmp_path / "bench.json").read_text()) == report
    (result,) = report["results"]
    assert result["iterations"] == 2 and result["batch"] == 4 and result["frames_per_batch"] == 40
    assert result["clips_per_second"] == pytest.approx(2 * 4 / result["seconds"], rel=0.01)
    assert result["utilisation"]["flops_per_step"] > 0 and result["utilisation"]["mfu_fp32"] > 0
    shares = [op["share"] for op in report["profile"]["operators"]]
    assert report["profile"]["iterations"] == 2 and shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1


def test_the_training_benchmark_names_the_recipes_it_knows(capsys):
    with pytest.raises(SystemExit):
        _bench("train_throughput").main(["keypoint_vae_circle"])
    assert "no experiment 'keypoint_vae_circle'; choose from" in capsys.readouterr().err
