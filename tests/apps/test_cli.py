import argparse
import json
import re
import subprocess
import sys

import pytest

from digitrec.apps import cli

COMMANDS = ["data", "train", "calibrate", "evaluate", "predict", "read", "serve", "export", "report", "bulk", "template",
            "corrections stats", "corrections export", "corrections import", "corrections purge", "finetune"]


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "digitrec.apps.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every runnable command of ``parser``: its subcommands, their verbs, and so on."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix.strip()]
    return [c for name, p in subs[0].choices.items() for c in _commands(p, f"{prefix}{name} ")]


def test_the_commands_tested_here_are_all_the_clis_commands():
    assert sorted(_commands(cli.build_parser())) == sorted(COMMANDS)


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: digitrec")
    for command in {c.split()[0] for c in COMMANDS}:
        assert re.search(rf"^    {command}\b", r.stdout, re.M), command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*command.split(), "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"usage: digitrec {command}")
    assert "options:" in out and "--help" in out


# the cheap commands, run in this process (the subprocess tests below cover the module entry point)

def test_data_reports_the_mnist_splits(capsys):
    assert cli.main(["data", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["images"] == 60_000 and info["test"]["images"] == 10_000
    assert info["test"]["shape"] == [28, 28] and sum(info["test"]["label_counts"]) == 10_000


def test_predict_reads_the_example_seven(capsys):
    assert cli.main(["predict", "examples/seven.png"]) == 0
    assert capsys.readouterr().out.startswith("examples/seven.png: 7  (confidence")


def test_read_reads_the_example_seven_as_the_number_7(capsys):
    assert cli.main(["read", "--json", "examples/seven.png"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["file"] == "examples/seven.png" and row["text"] == "7" and [d["digit"] for d in row["digits"]] == [7]


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


@pytest.mark.slow
def test_evaluate_json_reports_the_bundled_models_accuracy():
    r = run("evaluate", "--json")
    s = json.loads(r.stdout)
    assert r.returncode == 0 and s["n"] == 10_000 and s["accuracy"] >= 0.997
    assert {"macro_f1", "roc_auc_ovr", "rmse", "per_class"} <= set(s)


@pytest.mark.slow
def test_train_cli_writes_a_checkpoint(tmp_path):
    r = run("train", "--model", "logreg", "--train-subset", 2000, "--out", tmp_path)
    assert r.returncode == 0 and (tmp_path / "model.pt").exists() and "test accuracy" in r.stdout


@pytest.mark.parametrize("argv", [["train", "--preset", "huge"], ["evaluate", "--split", "dev"], []])
def test_bad_arguments_exit_2(argv):
    assert run(*argv).returncode == 2


@pytest.mark.slow
def test_library_warnings_stay_off_the_cli_stderr(tmp_path):
    # scikit-learn warns that L-BFGS stopped early on a subset; torch warns of deprecations
    r = run("train", "--model", "logreg", "--train-subset", "600", "--test-subset", "100", "--out", tmp_path)
    assert r.returncode == 0 and "Warning" not in r.stderr
    r = run("predict", "examples/seven.png")
    assert r.returncode == 0 and r.stderr == ""
