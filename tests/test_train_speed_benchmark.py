"""The pure parts of benchmarks/train_speed.py: log.csv → throughput, and the pairwise ratio arithmetic."""

import importlib.util
import io
import sys
from pathlib import Path

import pandas as pd
import pytest

SPEC = importlib.util.spec_from_file_location(
    "benchmarks_train_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py")
train_speed = importlib.util.module_from_spec(SPEC)
sys.modules["benchmarks_train_speed"] = train_speed  # dataclasses look their module up there
SPEC.loader.exec_module(train_speed)

# 10 training studies at batch 4: 3 steps per epoch, the last with 2 studies.
# Epoch 1 (stage1): 4/2 + 4/4 + 2/1 = 5 s for 10 samples; epoch 2 (stage2): 4/8 + 4/8 + 2/2 = 2 s for 10 samples.
LOG = """step,epoch,phase,loss,lr_lora,lr_mapper,lr_vision,samples_per_s
1,1,stage1,3.0,1e-3,1e-3,0,2.00
2,1,stage1,2.9,1e-3,1e-3,0,4.00
3,1,stage1,2.8,1e-3,1e-3,0,1.00
4,2,stage2,2.7,1e-3,1e-3,1e-4,8.00
5,2,stage2,2.6,1e-3,1e-3,1e-4,8.00
6,2,stage2,2.5,1e-3,1e-3,1e-4,2.00
"""


def read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_last_step_of_each_epoch_holds_the_remainder():
    assert train_speed.step_samples(read(LOG), 4, 10).tolist() == [4, 4, 2, 4, 4, 2]


def test_throughput_overall_and_per_phase():
    result = train_speed.log_throughput(read(LOG), 4, 10)
    assert result["samples"] == 20 and result["seconds"] == pytest.approx(7.0)
    assert result["samples_per_s"] == pytest.approx(20 / 7)
    assert list(result["phases"]) == ["stage1", "stage2"]
    assert result["phases"]["stage1"] == {"steps": 3, "samples": 10, "seconds": pytest.approx(5.0),
                                          "samples_per_s": pytest.approx(2.0)}
    assert result["phases"]["stage2"]["samples_per_s"] == pytest.approx(5.0)


def test_a_stopped_run_counts_full_steps_only():
    stopped = read(LOG).head(2)  # the crash simulator stopped the run after step 2, mid-epoch
    result = train_speed.log_throughput(stopped, 4, 10)
    assert result["samples"] == 8 and result["seconds"] == pytest.approx(3.0)


def test_exact_epochs_have_no_remainder():
    two_per_epoch = read(LOG).iloc[[0, 1, 3, 4]]  # 10 studies at batch 5
    assert train_speed.step_samples(two_per_epoch, 5, 10).tolist() == [5, 5, 5, 5]


def test_pair_ratios():
    result = train_speed.pair_ratios([10.0, 20.0, 10.0], [12.0, 20.0, 15.0])
    assert result["ratios"] == pytest.approx([1.2, 1.0, 1.5])
    assert (result["ratio_min"], result["ratio_median"], result["ratio_max"]) == pytest.approx((1.0, 1.2, 1.5))
    assert (result["base"], result["this"]) == (10.0, 15.0)


def test_pair_ratios_need_pairs():
    with pytest.raises(ValueError):
        train_speed.pair_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        train_speed.pair_ratios([], [])
