"""The report: one self-contained page plus metrics.json, with numbers that scikit-learn confirms."""
import json
import re
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import digitrec
from digitrec import data
from digitrec.apps import cli
from digitrec.evaluation import robustness
from digitrec.evaluation.corruptions import CORRUPTIONS
from digitrec.report import build_report, eda
from digitrec.training import train

LIMIT = 600    # test images scored: every digit present, a few seconds per model
SAMPLE = 300   # training images in the embeddings
ROBUST = 50    # test images, and images per not-a-digit set, in the robustness table
slow = pytest.mark.slow  # the module's report: two models scored, embedded and rendered (about 30 s here)
HEADINGS = ["Data (EDA)", "Training", "Scores", "Model comparison", "Errors", "ROC and calibration",
            "Real-world input"]


@pytest.fixture(scope="module")
def models(small_model, tmp_path_factory):
    """The shared small CNN and a logistic-regression baseline fitted on 2,000 images."""
    root = tmp_path_factory.mktemp("models")
    # OpenBLAS threads busy-wait: on a shared machine one thread fits this tiny baseline ~10x cheaper;
    # 100 L-BFGS iterations do not converge on 2,000 images, which is fine for a stand-in baseline
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        train("logreg", "fast", root / "logreg", train_subset=2000, test_subset=500)
    return [small_model, root / "logreg" / "model.pt"]


@pytest.fixture(scope="module")
def report(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    metrics = build_report(models, out, limit=LIMIT, sample=SAMPLE, speed_images=200, robustness_images=ROBUST,
                           cache=out / "cache", progress=False)
    return out, metrics


@slow
def test_writes_a_self_contained_page_with_every_section(report):
    out, _ = report
    page = (out / "report.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == [h.replace("&", "&amp;") for h in HEADINGS]
    images = re.findall(r'<img src="([^"]{0,30})', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"https?://|<script|<link|url\(", page)


@slow
def test_metrics_match_scikit_learn_on_the_same_predictions(report, models):
    out, _ = report
    written = json.loads((out / "metrics.json").read_text())
    page = (out / "report.html").read_text()
    x, y = data.load_mnist("test")
    x, y = x[:LIMIT], y[:LIMIT]
    for path, m in zip(models, written["models"]):
        preds = digitrec.load(path).predict_batch(x)
        probs = np.array([p.probabilities for p in preds], dtype=np.float64)
        probs /= probs.sum(1, keepdims=True)
        predicted = np.array([-1 if p.digit is None else p.digit for p in preds])  # -1: "not a digit"
        digits = list(range(10))
        s = m["scores"]
        assert s["n"] == LIMIT
        assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-12)
        assert s["macro_f1"] == pytest.approx(skm.f1_score(y, predicted, labels=digits, average="macro"), rel=1e-9)
        assert s["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"), rel=1e-9)
        assert s["log_loss"] == pytest.approx(skm.log_loss(y, probs), rel=1e-6)
        assert s["confusion"] == skm.confusion_matrix(y, predicted, labels=digits).tolist()
        assert m["roc_auc_per_digit"][3] == pytest.approx(skm.roc_auc_score(y == 3, probs[:, 3]), rel=1e-9)
        assert f"{100 * s['accuracy']:.2f}&nbsp;%" in page
        assert f"{s['macro_f1']:.4f}" in page


@slow
def test_compares_the_models_side_by_side(report, models):
    out, metrics = report
    page = (out / "report.html").read_text()
    comparison = page.split("<h2>Model comparison</h2>")[1].split("</section>")[0]
    for path, m in zip(models, metrics["models"]):
        ckpt = digitrec.load(path).checkpoint
        assert m["name"] in comparison
        assert f"{ckpt.parameters:,}" in comparison
        assert m["file_bytes"] == path.stat().st_size
        assert m["train_seconds"] == ckpt.train_seconds
        assert m["speed"]["model"] > 0 and m["speed"]["end_to_end"] > 0
    assert [m["name"] for m in metrics["models"]] == ["CNN (fast preset)", "Logistic regression (baseline)"]


@slow
def test_lists_the_most_confident_mistakes_first(report):
    _, metrics = report
    _, y = data.load_mnist("test")
    for m in metrics["models"]:
        wrong = m["confident_errors"]
        assert wrong, "small models make mistakes"
        assert all(w["true"] == y[w["index"]] != w["predicted"] for w in wrong)
        confidences = [w["confidence"] for w in wrong]
        assert confidences == sorted(confidences, reverse=True)
        confusion = np.array(m["scores"]["confusion"])
        assert all(c["count"] == confusion[c["true"], c["predicted"]] for c in m["top_confusions"])
        counts = [c["count"] for c in m["top_confusions"]]
        assert counts == sorted(counts, reverse=True)


@slow
def test_reliability_bins_hold_every_test_image(report):
    _, metrics = report
    for m in metrics["models"]:
        assert sum(m["reliability"]["count"]) == LIMIT


@slow
def test_data_analysis_describes_the_data_and_is_cached(report):
    out, metrics = report
    x_train, y_train = data.load_mnist("train")
    x_test, y_test = data.load_mnist("test")
    table = metrics["data-eda"]
    assert table["counts_train"] == np.bincount(y_train).tolist()
    assert table["counts_test"] == np.bincount(y_test).tolist()
    assert (table["train_images"], table["test_images"], table["embedding_sample"]) == (60_000, 10_000, SAMPLE)
    cached = list((out / "cache").glob("report-eda-*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = eda(x_train, y_train, x_test, y_test, sample=SAMPLE, cache=out / "cache")
    assert cached[0].stat().st_mtime_ns == stamp
    assert again["summary"]["duplicates_train"] == table["duplicates_train"]
    assert np.bincount(again["sample_labels"]).tolist() == [SAMPLE // 10] * 10


@slow
def test_real_world_input_shows_each_corruption_and_not_a_digit_set(report):
    out, _ = report
    section = (out / "report.html").read_text().split("<h2>Real-world input</h2>")[1].split("</section>")[0]
    assert 'data-figure="preprocessing-before-after"' in section and 'data-figure="robustness"' in section
    rows = re.findall(r"<tr><td>(.*?)</td>", section)
    sets = list(robustness.not_a_digit_sets(ROBUST))
    assert rows == ["<b>clean</b>", *CORRUPTIONS, "<b>mean of the corruptions</b>", *sets]
    assert f"first {ROBUST:,} test images" in section and "python benchmarks/robustness.py --n 10000" in section


@slow
def test_real_world_input_numbers_are_the_robustness_table_of_the_same_images(report, models):
    out, _ = report
    written = json.loads((out / "metrics.json").read_text())["real-world-input"]
    assert written["robustness_images"] == ROBUST
    x, y = data.load_mnist("test")
    sets = robustness.not_a_digit_sets(ROBUST)
    for path, m in zip(models, written["models"]):
        expected = robustness.robustness(digitrec.load(path), x[:ROBUST], y[:ROBUST], sets)
        assert m["n"] == ROBUST and m["clean"] == pytest.approx(expected["clean"])
        for name, row in expected["corruptions"].items():
            assert m["corruptions"][name] == pytest.approx(row)
        accuracies = [c["accuracy"] for c in m["corruptions"].values()]
        assert all(0 <= a <= 1 for a in accuracies)
        assert m["mean_corruption_accuracy"] == pytest.approx(np.mean(accuracies))
        assert list(m["not_a_digit"]) == list(sets)
        for name, row in expected["not_a_digit"].items():
            assert m["not_a_digit"][name] == pytest.approx(row)


def test_too_few_robustness_images_is_a_one_line_error_with_exit_2(tmp_path, capsys):
    assert cli.main(["report", "--robust-n", "5", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--robust-n" in err


@pytest.mark.parametrize("content", [None, b"not a checkpoint"], ids=["missing", "garbage"])
def test_bad_model_file_is_a_one_line_error_with_exit_2(tmp_path, capsys, content):
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["report", "--model", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert not (tmp_path / "out" / "report.html").exists()
