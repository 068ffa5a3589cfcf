"""The attention (06) and soft-prompt (07) chapters' library: summaries and claims over fabricated traced runs."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from test_experiments import _labels

from rrgkit.experiments.attention_study import allocation_summary, attention_claim
from rrgkit.experiments.claims import claims_table, seed_claim
from rrgkit.experiments.prompt_study import seed_summary, similarity_table
from rrgkit.experiments.trace import SplitPrompts, Trace, _save, prompt_run, prompt_runs, trace_path, trace_run, trace_runs


def _trace(alphas: list[list[float]], no_sink: float = 1.0, prompts: np.ndarray | None = None, classes=None) -> Trace:
    """A trace whose report r has one step per value in ``alphas[r]``, two layers with that alpha each."""
    rows = [{"report": r, "step": t, "layer": layer, "alpha": a, "sink": 0.5, "alpha_no_sink": no_sink}
            for r, steps in enumerate(alphas) for t, a in enumerate(steps, 1) for layer in (0, 1)]
    n = len(alphas)
    classes = classes or [None] * n
    labels = np.array([_labels(c) for c in classes])
    prompts = np.ones((n, 2, 3)) if prompts is None else prompts
    return Trace(np.array([f"s{i}" for i in range(n)]), labels, labels, np.full(n, 0.5), prompts, pd.DataFrame(rows))


def _traced(cells: dict[tuple[str, str], dict[int, Trace]], column: str = "trace") -> pd.DataFrame:
    return pd.DataFrame([{"rung": rung, "schedule": schedule, "variant": f"{rung} · {schedule}", "seed": seed,
                          "run": f"{rung}-{schedule}-{seed}", "converged": True, column: trace}
                         for (rung, schedule), traces in cells.items() for seed, trace in traces.items()])


def test_allocation_summary_averages_reports_then_seeds_and_counts_who_reaches_a_position():
    seed0 = _trace([[1.0, 1.0], [1.0]])  # report 0 reaches position 2, report 1 stops at 1
    seed1 = _trace([[3.0, 3.0], [3.0]])
    traced = _traced({("tiny", "frozen"): {0: seed0, 1: seed1}})
    overall = allocation_summary(traced, quantities=["alpha"], n_boot=200)
    assert len(overall) == 1 and overall.loc[0, "mean"] == pytest.approx(2.0)
    assert overall.loc[0, "ci_low"] <= 2.0 <= overall.loc[0, "ci_high"] and overall.loc[0, "n_reports"] == 4
    by_step = allocation_summary(traced, by="step", n_boot=200).set_index(["quantity", "step"])
    assert by_step.loc[("alpha", 2), "n_reports"] == 2 and by_step.loc[("alpha", 1), "n_reports"] == 4
    assert by_step.loc[("sink", 1), "mean"] == pytest.approx(0.5)
    assert list(allocation_summary(traced, by="step", max_step=1, n_boot=50)["step"].unique()) == [1]
    assert set(allocation_summary(traced, by="layer", n_boot=50)["layer"]) == {0, 1}


def test_attention_claim_pairs_seeds_and_reads_c4_as_less_attention_for_the_larger_lm():
    rng = np.random.default_rng(0)
    small, big = {}, {}
    for seed in range(5):
        alphas = 1.0 + 0.2 * rng.normal(size=20)
        small[seed] = _trace([[a, a] for a in alphas])
        big[seed] = _trace([[a - 0.3, a - 0.3] for a in alphas])  # 0.3 less on every report; same without the sink
    traced = _traced({("small", "two-stage"): small, ("big", "two-stage"): big})
    less = attention_claim(traced, "big · two-stage", "small · two-stage", "C4", n_boot=300)
    assert less.verdict.verdict == "replicates" and less.verdict.diff == pytest.approx(-0.3) and less.n_seeds == 5
    assert less.metric == "α (Eq. 2) ×100" and less.a_beats_text_only is None
    no_sink = attention_claim(traced, "big · two-stage", "small · two-stage", "C4", quantity="alpha_no_sink", n_boot=300)
    assert no_sink.verdict.verdict == "equivalent" and no_sink.verdict.diff == 0
    assert claims_table([less, no_sink])["difference"].tolist() == [-30.0, 0.0]
    other = _traced({("big", "two-stage"): {0: _trace([[1.0]] * 3)}, ("small", "two-stage"): {0: _trace([[1.0]] * 4)}})
    with pytest.raises(ValueError, match="different studies"):
        attention_claim(other, "big · two-stage", "small · two-stage", "C4")


def test_seed_claim_uses_a_t_interval_over_seeds_and_skips_undefined_seeds():
    differences = np.array([0.4, 0.6, 0.5, 0.45, 0.55])
    runs = pd.DataFrame([{"variant": cell, "seed": s, "converged": s != 0, "delta": value}
                         for s, d in enumerate(differences) for cell, value in (("a", 1.0 + d), ("b", 1.0))])
    result = seed_claim(runs, "a", "b", "delta", "C5", metric="Δ (Eq. 3) ×100")
    half = scipy_stats.t.ppf(0.975, 4) * differences.std(ddof=1) / np.sqrt(5)
    assert result.verdict.diff == pytest.approx(0.5)
    assert result.verdict.ci_low == pytest.approx(0.5 - half) and result.verdict.ci_high == pytest.approx(0.5 + half)
    assert result.verdict.verdict == "replicates" and result.unconverged_runs == 2 and result.metric == "Δ (Eq. 3) ×100"
    assert seed_claim(runs, "a", "b", "delta", "C5", direction=-1).verdict.verdict == "contradicts"
    runs.loc[(runs.variant == "a") & (runs.seed == 1), "delta"] = np.nan
    assert seed_claim(runs, "a", "b", "delta", "C5").n_seeds == 4
    one = seed_claim(runs[runs.seed == 0], "a", "b", "delta", "C5")
    assert one.verdict.verdict == "undetermined" and one.n_seeds == 1


def test_similarity_table_and_seed_summary():
    rng = np.random.default_rng(1)
    classes = ["Cardiomegaly", "Edema", None] * 4
    centres = {c: rng.normal(size=(2, 3)) for c in set(classes)}
    cells = {}
    for schedule, spread in (("frozen", 0.05), ("two-stage", 0.5)):
        cells[("tiny", schedule)] = {seed: _trace([[1.0]] * 12, classes=classes, prompts=np.stack(
            [5 + centres[c] + spread * rng.normal(size=(2, 3)) for c in classes])) for seed in (0, 1, 2)}
    table = similarity_table(_traced(cells, column="prompts"))
    assert len(table) == 6 and (table["n_single_label"] == 12).all() and (table["n_studies"] == 12).all()
    assert (table["delta"] > 0).all() and (table["mean_cosine"] < 1).all()
    frozen, tuned = (table[table.schedule == s] for s in ("frozen", "two-stage"))
    assert tuned["mean_cosine"].max() < frozen["mean_cosine"].min()  # prompts spread apart: lower cosines
    summary = seed_summary(table).set_index(["schedule", "measure"])
    assert summary.loc[("frozen", "delta"), "mean"] == pytest.approx(frozen["delta"].mean())
    assert summary.loc[("frozen", "delta"), "n_seeds"] == 3
    assert summary.loc[("frozen", "delta"), "ci_low"] < summary.loc[("frozen", "delta"), "mean"]


def test_trace_runs_reads_cached_traces_of_the_chosen_seeds(tmp_path, capsys):
    rows = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        _save(trace_path(run, 5), _trace([[float(seed)]] * 3))
        rows.append({"variant": "a", "seed": seed, "run": str(run)})
    traced = trace_runs(pd.DataFrame(rows), max_reports=5, seeds=[1])
    assert list(traced["seed"]) == [1] and traced["trace"].iloc[0].allocation["alpha"].tolist() == [1.0] * 6
    assert capsys.readouterr().out == ""  # cached: nothing to report
    with pytest.raises(ValueError, match="no run has a seed"):
        trace_runs(pd.DataFrame(rows), max_reports=5, seeds=[7])


@pytest.mark.slow
def test_prompt_run_gives_the_soft_prompts_a_trace_records(tmp_path, monkeypatch):
    """A trained tiny run: the prompts of the whole test split, as its trace recorded them while generating."""
    import torch
    from test_training_integration import tiny_config, write_synthetic_manifest

    from rrgkit.training.finetune import train

    monkeypatch.setenv("RRGKIT_RUNS", str(tmp_path / "runs"))
    torch.manual_seed(0)
    config = tiny_config(write_synthetic_manifest(tmp_path), tmp_path / "run")
    train(config, progress=False)
    prompts = prompt_run(tmp_path / "run")
    trace = trace_run(tmp_path / "run", max_reports=3, progress=False)
    assert isinstance(prompts, SplitPrompts) and len(prompts.ids) >= 3
    np.testing.assert_array_equal(prompts.ids[:3], trace.ids)
    np.testing.assert_allclose(prompts.soft_prompts[:3], trace.soft_prompts, atol=1e-5)
    assert set(trace.allocation.columns) >= {"sink", "alpha_no_sink"} and (trace.allocation.sink > 0).all()
    runs = pd.DataFrame([{"variant": "a", "seed": 0, "run": str(tmp_path / "run")}])
    assert list(prompt_runs(runs)["prompts"].iloc[0].ids) == list(prompts.ids)
