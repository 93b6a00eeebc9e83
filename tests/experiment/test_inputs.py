"""Reading rows to predict: columns matched to the model's features, and a target scored honestly."""

from __future__ import annotations

import numpy as np
import pytest

from devgrad.data import DataError
from devgrad.experiment import inputs


def test_columns_go_by_position_only_when_no_column_is_named_like_a_feature(tmp_path):
    names = ["x0", "x1"]
    (tmp_path / "plain.csv").write_text("a,b\n1,2\n")
    assert inputs.read_file(tmp_path / "plain.csv", names, None).X.tolist() == [[1.0, 2.0]]
    (tmp_path / "named.csv").write_text("x1,x0\n1,2\n")
    assert inputs.read_file(tmp_path / "named.csv", names, None).X.tolist() == [[2.0, 1.0]]
    (tmp_path / "shifted.csv").write_text("x1,z\n1,2\n")  # x1 here must not be read as x0
    with pytest.raises(DataError, match=r"shifted.csv: no column 'x0'; the model takes x0, x1; the data has x1, z"):
        inputs.read_file(tmp_path / "shifted.csv", names, None)
    with pytest.raises(DataError, match="no column 'x0'"):
        inputs.read({"x1": [1.0], "z": [2.0]}, names, None)


def test_rows_with_an_empty_target_are_left_out_and_unseen_classes_are_named():
    from types import SimpleNamespace

    from devgrad.experiment import predict

    model = SimpleNamespace(task="classification", classes=np.array(["cat", "dog"]))
    rows = inputs.Inputs(np.zeros((4, 1)), np.array(["cat", "", " ", "dog"]), "data.csv")
    metrics = predict.metrics_of(model, np.array(["cat", "dog", "dog", "dog"]), rows)
    assert metrics == {"rows": 2, "accuracy": 1.0, "rows_without_target": 2}
    assert predict.metric_notices(metrics, "data.csv") == [
        "data.csv: 2 rows have an empty (or NaN) target, left out of the metrics, which score the other 2"]
    rows = inputs.Inputs(np.zeros((3, 1)), np.array(["cat", "fox", "dog"]), "data.csv")
    metrics = predict.metrics_of(model, np.array(["cat", "cat", "dog"]), rows)
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["unseen_classes"] == ["fox"]
    assert "never saw in training (fox)" in predict.metric_notices(metrics, "data.csv")[0]
    numeric = SimpleNamespace(task="classification", classes=np.array([0.0, 1.0]))
    rows = inputs.Inputs(np.zeros((3, 1)), np.array([0.0, np.nan, 2.0]), "data.npz")
    assert predict.metrics_of(numeric, np.array([0.0, 1.0, 1.0]), rows) == {
        "rows": 2, "accuracy": 0.5, "rows_without_target": 1, "unseen_classes": [2.0]}
    regression = SimpleNamespace(task="regression", classes=None)
    rows = inputs.Inputs(np.zeros((3, 1)), np.array(["1", "", "3"]), "data.csv")
    assert predict.metrics_of(regression, np.array([1.0, 5.0, 3.0]), rows)["mse"] == 0.0
    with pytest.raises(DataError, match="every row's target is empty"):
        predict.metrics_of(regression, np.zeros(2), inputs.Inputs(np.zeros((2, 1)), np.array(["", ""]), "d.csv"))


def test_a_nan_written_in_a_numeric_target_is_left_out_as_an_empty_cell():
    """A CSV's target column comes as text: "NaN" there is a missing number (never a class, as
    training refuses it), unless the classes themselves are text."""
    from types import SimpleNamespace

    from devgrad.experiment import predict

    regression = SimpleNamespace(task="regression", classes=None)
    rows = inputs.Inputs(np.zeros((4, 1)), np.array(["1", "NaN", " nan ", "3"]), "data.csv")
    assert predict.metrics_of(regression, np.array([1.0, 7.0, 7.0, 5.0]), rows) == {
        "rows": 2, "mse": 2.0, "mae": 1.0, "r2": -1.0, "rows_without_target": 2}
    with pytest.raises(DataError, match=r"data.csv: the target holds inf \(1 such value"):
        predict.metrics_of(regression, np.zeros(2), inputs.Inputs(np.zeros((2, 1)), np.array(["1", "inf"]), "data.csv"))
    numeric = SimpleNamespace(task="classification", classes=np.array([0, 1]))
    rows = inputs.Inputs(np.zeros((4, 1)), np.array(["0", "NaN", "1", "1"]), "data.csv")
    assert predict.metrics_of(numeric, np.array([0, 1, 1, 0]), rows) == {
        "rows": 3, "accuracy": 2 / 3, "rows_without_target": 1}
    text = SimpleNamespace(task="classification", classes=np.array(["NaN", "cat"]))
    rows = inputs.Inputs(np.zeros((2, 1)), np.array(["NaN", "cat"]), "data.csv")
    assert predict.metrics_of(text, np.array(["NaN", "NaN"]), rows) == {"rows": 2, "accuracy": 0.5}


def test_a_column_the_model_reads_named_twice_is_an_error_not_a_guess(tmp_path):
    names = ["a", "b"]
    (tmp_path / "twice.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match="twice.csv: the column 'a' appears more than once"):
        inputs.read_file(tmp_path / "twice.csv", names, None)
    (tmp_path / "target.csv").write_text("a,b,y,y\n1,2,0,1\n")
    with pytest.raises(DataError, match="the column 'y' appears more than once"):
        inputs.read_file(tmp_path / "target.csv", names, "y")
    (tmp_path / "notes.csv").write_text("a,note,b,note\n1,x,2,y\n")  # a column the model does not read
    assert inputs.read_file(tmp_path / "notes.csv", names, None).X.tolist() == [[1.0, 2.0]]
