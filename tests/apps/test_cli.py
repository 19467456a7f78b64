import json
import subprocess
import sys

import pytest


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "digitrec.apps.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_every_command():
    out = run("--help").stdout
    for verb in ("data", "train", "evaluate", "predict"):
        assert verb in out


def test_predict_prints_digit_confidence_and_top3(drawn_png):
    r = run("predict", drawn_png(7))
    assert r.returncode == 0 and ": 7" in r.stdout and "top-3" in r.stdout


def test_predict_json_gives_one_object_per_file(drawn_png):
    r = run("predict", "--json", drawn_png(7), drawn_png(1, "light"))
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["digit"] for row in rows] == [7, 1] and len(rows[0]["top3"]) == 3


def test_bad_file_gets_one_line_and_exit_2_while_others_are_read(tmp_path, drawn_png):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not really a png")
    r = run("predict", bad, drawn_png(1))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "bad.png" in r.stderr and "Traceback" not in r.stderr
    assert ": 1" in r.stdout


def test_missing_model_file_is_one_line_exit_2(tmp_path, drawn_png):
    r = run("predict", "--model", tmp_path / "nope.pt", drawn_png(1))
    assert r.returncode == 2 and "nope.pt" in r.stderr and "Traceback" not in r.stderr


def test_blank_image_reports_no_digit(tmp_path):
    from PIL import Image
    Image.new("L", (100, 100), 255).save(tmp_path / "blank.png")
    r = run("predict", tmp_path / "blank.png")
    assert r.returncode == 0 and "no digit found" in r.stdout


def test_evaluate_json_reports_the_bundled_models_accuracy():
    r = run("evaluate", "--json")
    s = json.loads(r.stdout)
    assert r.returncode == 0 and s["n"] == 10_000 and s["accuracy"] >= 0.997
    assert {"macro_f1", "roc_auc_ovr", "rmse", "per_class"} <= set(s)


def test_train_cli_writes_a_checkpoint(tmp_path):
    r = run("train", "--model", "logreg", "--train-subset", 2000, "--out", tmp_path)
    assert r.returncode == 0 and (tmp_path / "model.pt").exists() and "test accuracy" in r.stdout


@pytest.mark.parametrize("argv", [["train", "--preset", "huge"], ["evaluate", "--split", "dev"], []])
def test_bad_arguments_exit_2(argv):
    assert run(*argv).returncode == 2


def test_library_warnings_stay_off_the_cli_stderr(tmp_path):
    # scikit-learn warns that L-BFGS stopped early on a subset; torch warns of deprecations
    r = run("train", "--model", "logreg", "--train-subset", "600", "--test-subset", "100", "--out", tmp_path)
    assert r.returncode == 0 and "Warning" not in r.stderr
    r = run("predict", "examples/seven.png")
    assert r.returncode == 0 and r.stderr == ""
