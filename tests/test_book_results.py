"""Chapter verdicts: one rule from a 95% interval, written only where the book runner asks for them."""

import json
import math

from rrgkit.book.results import RESULTS_ENV, Verdict, load, paired_verdict, record


def test_verdict_follows_the_interval():
    assert paired_verdict("a", "b", "m", 0.03, 0.01, 0.05).verdict == "a better"
    assert paired_verdict("a", "b", "m", -0.03, -0.05, -0.01).verdict == "b better"
    assert paired_verdict("a", "b", "m", 0.01, -0.01, 0.03).verdict == "inconclusive (detects ≥ 2.9 points)"
    assert paired_verdict("a", "b", "m", 0.001, -0.005, 0.007).verdict == "equivalent (within ±1 point)"
    undefined = paired_verdict("a", "b", "m", 0.01, math.nan, math.nan)
    assert undefined.verdict == "no verdict (no interval)" and undefined.interval() == "none (one seed)"


def test_verdict_is_shown_in_points():
    v = paired_verdict("the model", "text only", "F1-CXP-14", 0.0512, 0.0101, 0.0899)
    assert v.row() == {"comparison": "the model − text only", "metric": "F1-CXP-14", "estimate": "+5.1 points",
                       "95% interval": "[+1.0, +9.0]", "verdict": "the model better"}


def test_a_verdict_against_a_target_is_shown_without_sign():
    v = Verdict("labeler vs exact labels", "micro-F1", 99.07, 98.6, 99.5, "meets the 98 % target", unit="%", signed=False)
    assert v.row()["estimate"] == "99.1 %" and v.row()["95% interval"] == "[98.6, 99.5]"


def test_record_outside_the_book_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    shown = record([paired_verdict("a", "b", "m", 0.1, 0.0, 0.2)])
    assert list(shown["verdict"]) == ["inconclusive (detects ≥ 14.3 points)"]
    assert not list(tmp_path.iterdir())


def test_record_in_the_book_appends_and_round_trips(monkeypatch, tmp_path):
    target = tmp_path / "results" / "03.json"
    monkeypatch.setenv(RESULTS_ENV, str(target))
    first = paired_verdict("a", "b", "m", 0.1, math.nan, math.nan)
    second = paired_verdict("a", "c", "m", 0.1, 0.05, 0.2)
    record([first])
    record([second])
    assert json.loads(target.read_text())[0]["ci_low"] is None  # strict JSON: no NaN
    assert load(target) == [first, second]
    assert load(tmp_path / "missing.json") == []
