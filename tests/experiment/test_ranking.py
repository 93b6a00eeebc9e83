"""A sweep's runs ranked by the metric its heading names: a run without that metric (no
validation split) is listed unranked with a note, never ranked by its train value."""

from __future__ import annotations

import csv
import json
import re

import yaml

from devgrad.experiment.html_report import write_sweep_report
from devgrad.experiment.ranking import monitor_of_spec, ranked, summary_table, value, write_tables
from devgrad.experiment.spec import resolve
from devgrad.experiment.sweeps import SweepResult

MONITOR = ("val_loss", "min")


def _line(index, status, best):
    return {"index": index, "overrides": {"data.split.val": 0.2 if best and "val_loss" in best else 0},
            "seed": 0, "status": status, "best": best, "final": best, "test": None, "wall_seconds": 1.0,
            "worker": "host:1", "run_dir": f"/runs/{index}", "error": None if status == "completed" else "diverged"}


RESULTS = [_line(0, "failed", None),
           _line(1, "completed", {"epoch": 3, "train_loss": 0.01}),  # no validation split: no val_loss
           _line(2, "completed", {"epoch": 3, "train_loss": 0.2, "val_loss": 0.3})]


def test_a_run_without_the_val_metric_is_not_ranked_by_its_train_value():
    assert value(RESULTS[1], "val_loss") is None and value(RESULTS[2], "val_loss") == 0.3
    assert [r["index"] for r in ranked(RESULTS, *MONITOR)] == [2, 1, 0]
    table = summary_table(RESULTS, MONITOR).splitlines()
    assert table[1].split()[:3] == ["2", "completed", "0.3000"]
    assert table[2].split()[:3] == ["1", "completed", "-"] and "0.0100" not in "\n".join(table)
    assert table[-1].startswith("note: run 1 measured no val_loss (no validation split), shown as -")


def test_the_csv_and_the_page_leave_the_missing_value_empty_and_say_why(tmp_path):
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {"name": "g", "monitor": list(MONITOR), "grid": {"data.split.val": [0.2, 0]}, "seeds": 1,
         "points": [{"index": r["index"]} for r in RESULTS]}))
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RESULTS))
    write_tables(tmp_path, RESULTS, 3, MONITOR, "completed")
    with open(tmp_path / "results.csv") as fh:
        rows = {row["index"]: row for row in csv.DictReader(fh)}
    assert rows["1"]["best_val_loss"] == "" and rows["2"]["best_val_loss"] == "0.3"
    page = write_sweep_report(tmp_path).read_text()
    assert "run 1 measured no val_loss (no validation split), shown as an empty cell" in page
    assert 'data-value="0.01"' not in page


def test_a_spec_without_a_validation_split_is_judged_by_the_metric_its_runs_watch():
    spec = {"name": "x", "data": {"source": "triangle", "split": {"train": 0.8, "val": 0, "test": 0.2}}}
    assert monitor_of_spec(resolve(spec).to_dict()) == ("train_loss", "min")
    assert monitor_of_spec(resolve({"name": "x", "data": {"source": "triangle"}}).to_dict()) == MONITOR


def _folder(tmp_path, results, monitor):
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {"name": "g", "monitor": list(monitor), "grid": {"optimizer.lr": [0.1, 0.2, 0.3]}, "seeds": 1,
         "points": [{"index": r["index"]} for r in results]}))
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    write_tables(tmp_path, results, len(results), monitor, "completed")
    with open(tmp_path / "results.csv") as fh:
        csv_order = [int(row["index"]) for row in csv.DictReader(fh)]
    page = write_sweep_report(tmp_path).read_text()
    page_order = [int(i) for i in re.findall(r'<tr><td data-value="(\d+)">', page)]
    summary_order = [int(line.split()[0]) for line in (tmp_path / "summary.txt").read_text().splitlines()[1:]]
    return csv_order, page_order, summary_order


def test_the_page_ranks_a_failed_run_after_the_completed_ones_as_the_tables_do(tmp_path):
    """A run that failed keeps the value of its last good epoch; it is never ranked above a completed run."""
    monitor = ("val_accuracy", "max")
    results = [_line(0, "completed", {"epoch": 3, "val_accuracy": 0.6}),
               _line(1, "failed", {"epoch": 2, "val_accuracy": 0.9}),
               _line(2, "pruned", {"epoch": 1, "val_accuracy": 0.95})]
    csv_order, page_order, summary_order = _folder(tmp_path, results, monitor)
    assert csv_order == page_order == summary_order == [0, 2, 1]
    assert SweepResult(tmp_path, results).best["index"] == 0


def test_runs_that_tie_are_ranked_by_index_everywhere_not_by_when_they_finished(tmp_path):
    monitor = ("val_accuracy", "max")
    tie = {"epoch": 3, "val_accuracy": 0.4667}
    finished = [_line(2, "completed", tie), _line(1, "completed", tie), _line(0, "completed", {**tie,
                                                                                              "val_accuracy": 0.3})]
    assert [r["index"] for r in ranked(finished, *monitor)] == [1, 2, 0]
    csv_order, page_order, summary_order = _folder(tmp_path, finished, monitor)
    assert csv_order == page_order == summary_order == [1, 2, 0]
    assert SweepResult(tmp_path, sorted(finished, key=lambda r: r["index"])).best["index"] == 1
