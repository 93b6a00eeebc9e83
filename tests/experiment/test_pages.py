"""The lecture, visible: per-neuron pictures, the zero-init and collapse pictures, report.html for
runs and sweeps, ``devgrad lecture`` — and both pages opened in a real (headless) browser.

Pictures are checked by their statistics (drawn, not blank), their numbers by recomputing them;
the browser test loads each page in Chromium, checks that every image decoded
(naturalWidth > 0), that the page logged no error, and that its screenshot is not blank.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import devgrad as dg
from devgrad.experiment import neurons, run, sweep
from tests.support.run_helpers import HAVE_MATPLOTLIB, ROOT, SMALL, cli

needs_plots = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="plots need matplotlib (the plot extra)")

TRIANGLE = {"name": "tri", "seed": 0, "device": "cpu", "data": {"source": "triangle", "n_samples": 600},
            "model": {"hidden": [3], "activation": "sigmoid", "init": "xavier_uniform"}, "loss": "bce",
            "optimizer": {"name": "adam", "lr": 0.05}, "train": {"epochs": 12, "batch_size": 32}}


def _not_blank(path: Path) -> None:
    from matplotlib.image import imread

    image = imread(path)[..., :3]
    assert image.shape[0] > 150 and image.shape[1] > 150, path
    assert image.std() > 0.05 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20, f"{path} looks blank"


@pytest.fixture(scope="module")
def triangle_run(tmp_path_factory):
    return run(TRIANGLE, out=tmp_path_factory.mktemp("runs"), quiet=True)


@pytest.mark.slow
@needs_plots
def test_a_2d_run_draws_each_hidden_unit_with_its_line(triangle_run):
    plots = Path(triangle_run.run_dir) / "plots"
    for name in ("neurons.png", "hidden_units.png", "decision_boundary.png", "learning_curves.png"):
        _not_blank(plots / name)
    # the lines drawn are the units' own: a·x + c = 0 in raw coordinates is w·z + b = 0 in standardised ones
    model_state = dg.load(Path(triangle_run.run_dir) / "checkpoints" / "last.npz")["model"]
    w, b = model_state["net.0.weight"].numpy(), model_state["net.0.bias"].numpy()
    rng = np.random.default_rng(0)
    mean, std = rng.standard_normal(2), rng.random(2) + 0.5
    for (a, c), wi, bi in zip(neurons.raw_lines(w, b, mean, std), w, b):
        x = rng.standard_normal((5, 2))
        np.testing.assert_allclose(x @ a + c, ((x - mean) / std) @ wi + bi, rtol=1e-10, atol=1e-10)


@pytest.mark.slow
@needs_plots
def test_a_2d_regression_draws_its_units_beside_the_predicted_surface(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.uniform(-2, 2, (300, 2))
    y = np.sin(X[:, 0]) * 10 + X[:, 1] ** 2 + 100
    path = tmp_path / "surface.csv"
    path.write_text("a,b,y\n" + "".join(f"{a:.5f},{b:.5f},{t:.5f}\n" for (a, b), t in zip(X, y)))
    spec = {"name": "surface", "device": "cpu", "task": "regression", "loss": "mse",
            "data": {"source": "csv", "path": str(path), "target": "y"},
            "model": {"hidden": [5], "activation": "tanh"}, "train": {"epochs": 5}}
    result = run(spec, out=tmp_path, quiet=True)
    plots = Path(result.run_dir) / "plots"
    for name in ("neurons.png", "hidden_units.png", "predictions.png"):
        _not_blank(plots / name)
    assert not (plots / "decision_boundary.png").exists()


@pytest.mark.slow
@needs_plots
def test_plots_animate_writes_the_boundary_epoch_by_epoch(tmp_path):
    from PIL import Image

    result = run({**TRIANGLE, "plots": {"animate": True}}, out=tmp_path, quiet=True)
    gif = Path(result.run_dir) / "plots" / "training.gif"
    with Image.open(gif) as movie:
        assert movie.n_frames == 12  # one frame per epoch (12 epochs, under the 120-frame cap)
        movie.seek(11)
        last = np.asarray(movie.convert("RGB"), dtype=float) / 255
    assert last.std() > 0.05
    assert "data:image/gif;base64," in (Path(result.run_dir) / "report.html").read_text()
    frames = neurons.BoundaryFrames(np.random.default_rng(0).random((50, 2)), epochs=1000)
    assert frames.every == 9  # 1000 epochs: every 9th, at most 120 frames


@pytest.mark.slow
def test_plots_can_be_left_for_later(tmp_path):
    result = run({**TRIANGLE, "train": {"epochs": 2}, "plots": {"enabled": False}}, out=tmp_path, quiet=True)
    assert result.summary["plots"] == [] and not any((Path(result.run_dir) / "plots").iterdir())
    assert (Path(result.run_dir) / "report.html").exists()
    assert "no plots drawn" in (Path(result.run_dir) / "train.log").read_text()
    if HAVE_MATPLOTLIB:  # drawn on demand
        assert cli("plot", result.run_dir).returncode == 0
        assert (Path(result.run_dir) / "plots" / "neurons.png").exists()


@pytest.mark.slow
def test_hidden_unit_history_shows_zero_init_symmetry(tmp_path):
    """All-zero start: every unit has the same weights at every epoch; a random start breaks it."""
    for init, identical in (("zeros", True), ("xavier_uniform", False)):
        result = run({**TRIANGLE, "model": {**TRIANGLE["model"], "init": init}}, out=tmp_path, quiet=True)
        rows = neurons.UnitHistory(result.run_dir).rows()
        assert [r["epoch"] for r in rows] == list(range(1, 13))
        spread = max(np.ptp(np.array(r["weight"]), axis=0).max() for r in rows)
        assert (spread == 0.0) == identical, (init, spread)


@pytest.mark.slow
def test_without_a_nonlinearity_the_run_reports_its_composed_linear_map(tmp_path):
    spec = {**TRIANGLE, "model": {"hidden": [3, 3], "activation": "identity"}}
    result = run(spec, out=tmp_path, quiet=True)
    linear = result.summary["linear_map"]
    weight, bias = np.array(linear["weight"]), np.array(linear["bias"])
    assert weight.shape == (1, 2) and linear["text"].startswith("out = ")
    model = dg.nn.MLP([2, 3, 3, 1], activation="identity")
    model.load_state_dict(dg.load(Path(result.run_dir) / "checkpoints" / "last.npz")["model"])
    z = np.random.default_rng(1).standard_normal((7, 2)).astype(np.float32)
    with dg.no_grad():
        np.testing.assert_allclose(model(dg.tensor(z)).numpy(), z @ weight.T + bias, rtol=1e-5, atol=1e-5)
    assert "one affine map" in (Path(result.run_dir) / "report.html").read_text()


def test_unit_history_rewinds_with_a_resumed_run(tmp_path):
    history = neurons.UnitHistory(tmp_path)
    for epoch in range(1, 6):
        history.append(epoch, np.ones((3, 2)) * epoch, np.zeros(3))
    history.keep_before(4)
    assert [r["epoch"] for r in history.rows()] == [1, 2, 3]


@pytest.mark.slow
def test_every_run_folder_has_a_self_contained_report_and_devgrad_report_rewrites_it(tmp_path, triangle_run):
    page = Path(triangle_run.run_dir) / "report.html"
    text = page.read_text()
    assert "completed" in text and "test_accuracy" in text and "Configuration" in text
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    if HAVE_MATPLOTLIB:
        assert text.count("data:image/png;base64,") == 4
        assert "early stop" not in text and "stopped early" not in text  # 12 epochs of 12: none happened
    page.unlink()
    result = cli("report", triangle_run.run_dir)
    assert result.returncode == 0 and page.exists(), result.stderr
    # a run that diverged says so, and why
    bad = run({**SMALL, "model": {"hidden": [6], "activation": "relu"}, "optimizer": {"name": "sgd", "lr": 1e20}},
              out=tmp_path, quiet=True)
    assert bad.status == "failed"
    text = (Path(bad.run_dir) / "report.html").read_text()
    assert "did not complete" in text and "diverged" in text
    result = cli("report", tmp_path)
    assert result.returncode == 2 and "neither a run folder" in result.stderr


@pytest.mark.slow
def test_a_sweep_has_a_report_with_a_sortable_table(tmp_path):
    # the table is checked, not the runs' pictures: a run's report is written without them too
    result = sweep({**SMALL, "train": {"epochs": 2}, "plots": {"enabled": False}},
                   grid={"optimizer.lr": [0.0005, 0.05, 0.01]}, jobs=2, out=tmp_path, quiet=True)
    text = (result.sweep_dir / "report.html").read_text()
    assert 'class="sortable"' in text and text.count("<tr>") >= 4 and "val_loss" in text
    # the best run first (val_loss: lowest first), each run's name a link to its own report
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", text).group(1)
    column = re.findall(r"<th[^>]*>(.*?)</th>", head).index("val_loss")
    body = re.search(r"<tbody>(.*?)</tbody>", text).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    values = [float(re.findall(r"<td[^>]*>(.*?)</td>", row)[column]) for row in rows]
    assert values == sorted(values) and len(values) == 3, values
    links = re.findall(r'<a href="([^"]+)">', body)
    assert len(links) == 3 and all((result.sweep_dir / link).name == "report.html" for link in links)
    assert all((result.sweep_dir / link).exists() for link in links)


def test_the_learning_curves_caption_says_what_the_picture_marks():
    from devgrad.experiment.html_report import _curves_caption

    config = {"train": {"epochs": 50}}
    full = _curves_caption({"status": "completed", "epochs_run": 50, "best_epoch": 31}, config)
    assert "early" not in full and "best epoch (31)" in full
    stopped = _curves_caption({"status": "completed", "epochs_run": 12, "best_epoch": 4}, config)
    assert "stopped early at epoch 12 of 50" in stopped
    assert "early" not in _curves_caption({"status": "stopped", "epochs_run": 12}, config)  # Ctrl-C is no early stop


@pytest.fixture(scope="module")
def lecture_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("lecture")
    result = cli("lecture", "--out", out, "--quiet", timeout=600)
    assert result.returncode == 0, result.stderr
    return out / "index.html"


@pytest.mark.slow
@needs_plots
def test_devgrad_lecture_writes_one_page_through_the_lecture(lecture_page):
    text = lecture_page.read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    assert [h.split(". ", 1)[1] for h in headings] == [
        "A linear classifier", "Logistic regression", "The triangle: three logistic regressions and a fourth",
        "MLPs", "Why nonlinearities matter", "The computational graph and its derivative graph",
        "The chain rule as a sum over paths", "Backpropagation", "Why weights must not start at zero"]
    assert "∂L/∂α: path sum" in text and ": equal." in text and "NOT equal" not in text
    assert "refused" in text  # 2^14 paths: path_sum refuses, backprop does not care
    collapse = text.split("5. Why nonlinearities matter")[1].split("<h2>")[0]
    formula = re.search(r"<code>(out = .*?)</code>", collapse).group(1)
    assert "x₁" in formula and "z₁" not in collapse  # the plots' coordinates, not the standardised ones
    assert "td:not(.text) { white-space: nowrap" in text  # a number stays on one line (9.74282e-05)
    assert "http://" not in text and "https://" not in text
    for link in re.findall(r'href="([^"]+)"', text):
        assert (lecture_page.parent / link).exists(), link


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)


PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); }, true);
var __consoleError = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' '));
                              __consoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.title = 'PROBE images=' + images.length + ' broken=' + broken + ' errors=' + window.__errors.length;
});
</script>"""


def _open_in_chromium(page: Path, tmp_path: Path) -> tuple[str, Path, str]:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium; apt-get install chromium): "
                    "the browser checks did not run")
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=15000"]
    dom = subprocess.run([browser, *flags, "--enable-logging=stderr", "--v=0", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    shot = tmp_path / f"{page.parent.name}-{page.stem}.png"
    subprocess.run([browser, *flags, "--window-size=1280,2200", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, text=True, timeout=120, check=False)
    probed.unlink()
    title = re.search(r"<title>(.*?)</title>", dom.stdout)
    return (title.group(1) if title else f"(no title; chromium said: {dom.stderr[-2000:]})"), shot, dom.stderr


@pytest.mark.slow
@pytest.mark.browser
@needs_plots
@pytest.mark.parametrize("which", ["run report", "lecture page"])
def test_the_pages_in_a_real_browser(which, triangle_run, lecture_page, tmp_path):
    page = Path(triangle_run.run_dir) / "report.html" if which == "run report" else lecture_page
    title, shot, log = _open_in_chromium(page, tmp_path)
    found = re.match(r"PROBE images=(\d+) broken=(\d+) errors=(\d+)", title)
    assert found, title
    images, broken, errors = map(int, found.groups())
    assert images >= (4 if which == "run report" else 9) and broken == 0 and errors == 0, title
    assert "Uncaught" not in log, log[-2000:]
    assert shot.exists(), "chromium wrote no screenshot"
    _not_blank(shot)


def test_the_lecture_neuron_matches_backprop_by_path_sums():
    from devgrad.lecture import one_neuron

    t = one_neuron(x1=0.3, x2=2.0, alpha=-1.2, beta=0.4)
    for leaf in ("α", "β"):
        total, paths = dg.viz.path_sum(t["L"], t[leaf])
        (g,) = dg.grad(t["L"], [t[leaf]], retain_graph=True)
        assert len(paths) == 1 and total == pytest.approx(float(g.item()), rel=1e-12)
    z = 0.3 * -1.2 + 2.0 * 0.4  # the lecture's formula: ∂L/∂α = −x₁(1 − σ(z))
    (g,) = dg.grad(t["L"], [t["α"]], retain_graph=True)
    assert float(g.item()) == pytest.approx(-0.3 * (1 - 1 / (1 + np.exp(-z))))


def test_the_lecture_runs_the_clones_specs_else_the_ones_devgrad_ships(tmp_path, monkeypatch):
    from devgrad import lecture
    from devgrad.experiment.examples import EXAMPLES

    monkeypatch.chdir(ROOT)  # a clone, where a spec may have been edited
    assert lecture._spec_path("triangle") == ROOT / "experiments" / "triangle.yaml"
    monkeypatch.chdir(tmp_path)  # anywhere else: the copy inside the package
    assert lecture._spec_path("triangle") == EXAMPLES / "triangle.yaml" and (EXAMPLES / "triangle.yaml").exists()


@pytest.mark.slow
def test_lecture_and_report_mistakes_are_clean_errors(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    result = cli("lecture", "--out", a_file)
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr and a_file.read_text() == "mine"
    result = cli("report", tmp_path / "missing")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_the_unit_history_in_the_datas_coordinates_is_each_epoch_converted_alone():
    rng = np.random.default_rng(1)
    rows = [{"epoch": e, "weight": rng.normal(size=(3, 2)).tolist(), "bias": rng.normal(size=3).tolist()}
            for e in range(1, 5)]
    for mean, std in ((None, None), (rng.normal(size=2), rng.uniform(0.5, 2.0, size=2))):
        converted = neurons.unit_history_in_input_coordinates(rows, mean, std)
        for row, out in zip(rows, converted, strict=True):
            weight, bias = neurons.input_coordinates(row["weight"], row["bias"], mean, std)
            assert out == {"epoch": row["epoch"], "weight": weight.tolist(), "bias": bias.tolist()}
    assert neurons.unit_history_in_input_coordinates([], None, None) == []


def test_a_regressions_linear_map_in_the_datas_units_gives_the_target_in_its_units(tmp_path):
    """input_text maps the data's own x to the target's own y (the model computes the
    standardised target): the map written out predicts what the trained model predicts."""
    import re

    from devgrad.experiment import load

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2)) * [2.0, 5.0] + [1.0, -3.0]
    y = 3 * X[:, 0] - 2 * X[:, 1] + 100
    data = tmp_path / "plane.csv"
    data.write_text("a,b,y\n" + "".join(f"{p!r},{q!r},{t!r}\n" for (p, q), t in zip(X.tolist(), y.tolist())))
    spec = {"name": "plane", "seed": 0, "device": "cpu", "task": "regression", "loss": "mse",
            "data": {"source": "csv", "path": str(data), "target": "y"}, "model": {"hidden": []},
            "optimizer": {"name": "adam", "lr": 0.05}, "plots": {"enabled": False}, "train": {"epochs": 3}}
    result = run(spec, out=tmp_path / "runs", quiet=True)
    text = result.summary["linear_map"]["input_text"]
    match = re.fullmatch(r"y = (−?)([\d.e+-]+)·x₁ ([+−]) ([\d.e+-]+)·x₂ ([+−]) ([\d.e+-]+)", text)
    assert match, text
    sign = {"": 1.0, "+": 1.0, "−": -1.0}
    a1, a2 = sign[match[1]] * float(match[2]), sign[match[3]] * float(match[4])
    c = sign[match[5]] * float(match[6])
    rows = np.array([[0.0, 0.0], [1.0, 2.0], [-2.0, 4.0]])
    predicted = load(result.run_dir, checkpoint="last", quiet=True).predict(rows)
    np.testing.assert_allclose(rows @ [a1, a2] + c, predicted, rtol=2e-3)
