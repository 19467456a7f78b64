import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import digitrec
from digitrec import InputError, checkpoint, data, export
from digitrec.inference import bundled_model_path
from digitrec.inference.backends import OnnxDigits

pytestmark = pytest.mark.slow  # the module exports and quantizes a model, scoring each file on 10,000 images


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "digitrec.apps.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def exported(small_model, tmp_path_factory):
    """``digitrec export --int8 --json`` of the small model: (report, output directory)."""
    out = tmp_path_factory.mktemp("onnx")
    r = run("export", "--model", small_model, "--out", out, "--int8", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), out


def test_export_writes_fp32_and_int8_files_named_after_the_checkpoint(exported):
    report, out = exported
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model.int8.onnx"}
    for precision in ("fp32", "int8"):
        onnx.checker.check_model(report[precision]["path"], full_check=True)


def test_fp32_onnx_has_pytorchs_logits_and_test_accuracy(exported, small_model):
    # (export itself refuses a file whose digits differ from PyTorch's: a report with one is never printed)
    fp32 = exported[0]["fp32"]
    assert fp32["parity_images"] == 1000 and fp32["max_abs_logit_diff"] < 1e-3
    x, y = data.load_mnist("test")
    torch_accuracy = np.mean(digitrec.load(small_model).probabilities(x / 255.0).argmax(1) == y)
    assert abs(fp32["test_accuracy"] - torch_accuracy) <= 2e-4 and fp32["test_accuracy"] > 0.9


def test_the_parity_check_catches_an_export_that_reads_other_digits(exported, small_model, tmp_path):
    model = onnx.load(exported[0]["fp32"]["path"])
    bias = next(t for t in reversed(model.graph.initializer) if list(t.dims) == [10])  # the last layer's
    shifted = numpy_helper.to_array(bias).copy()
    shifted[3] += 50  # every image now scores highest as a 3
    bias.CopyFrom(numpy_helper.from_array(shifted, bias.name))
    export.write_signed(model, tmp_path / "wrong.onnx")  # signed again: only the parity check can tell
    x = data.load_mnist("test")[0][:200].astype(np.float32) / 255
    parity = export.check(tmp_path / "wrong.onnx", checkpoint.load(small_model), x)
    assert parity["argmax_agreement"] < 0.2 and parity["max_abs_logit_diff"] > 10


def test_int8_is_much_smaller_and_reads_almost_the_same_digits(exported):
    report = exported[0]
    # a 25k-parameter model: fixed per-file overhead keeps the ratio under the bundled model's
    assert report["int8"]["size_ratio"] > 2.5
    assert report["int8"]["argmax_agreement"] >= 0.98 and report["int8"]["accuracy_drop_pp"] <= 0.5


def test_batch_axis_is_dynamic(exported):
    m = OnnxDigits(exported[0]["fp32"]["path"])
    x = data.load_mnist("test")[0][:300].astype(np.float32) / 255
    assert m.logits(x[:1]).shape == (1, 10) and m.logits(x).shape == (300, 10)


def _both_backends(exported, small_model, x, precision):
    backend = "onnx-int8" if precision == "int8" else "onnx"
    return (digitrec.load(exported[0][precision]["path"], backend=backend).predict_batch(x),
            digitrec.load(small_model).predict_batch(x))


def test_onnx_backend_gives_the_torch_backends_predictions(exported, small_model, mnist_test_small):
    onnx_preds, torch_preds = _both_backends(exported, small_model, mnist_test_small[0][:200], "fp32")
    assert all(p.digit == q.digit for p, q in zip(onnx_preds, torch_preds))
    assert max(abs(p.confidence - q.confidence) for p, q in zip(onnx_preds, torch_preds)) < 1e-4


def test_int8_backend_reads_almost_the_same_digits(exported, small_model, mnist_test_small):
    int8_preds, torch_preds = _both_backends(exported, small_model, mnist_test_small[0][:200], "int8")
    assert np.mean([p.digit == q.digit for p, q in zip(int8_preds, torch_preds)]) >= 0.98


def test_onnx_model_carries_the_checkpoints_metadata(exported, small_model):
    r = digitrec.load(exported[0]["fp32"]["path"], backend="onnx")
    ckpt = digitrec.load(small_model).checkpoint
    assert r.checkpoint.data_hash == ckpt.data_hash and r.temperature == ckpt.temperature
    assert r.backend.precision == "fp32"


def _truncated(exported, tmp_path):
    raw = open(exported[0]["fp32"]["path"], "rb").read()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(raw[: len(raw) // 3])
    return path


def _garbage(exported, tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x07 this is not a protobuf" * 10)
    return path


@pytest.mark.parametrize("make", [_truncated, _garbage])
def test_damaged_onnx_file_is_a_one_line_input_error(exported, tmp_path, make):
    path = make(exported, tmp_path)
    with pytest.raises(InputError, match=path.name) as e:
        digitrec.load(path, backend="onnx")
    assert "\n" not in str(e.value)


def test_an_onnx_file_altered_after_export_is_refused(exported, tmp_path):
    raw = bytearray(Path(exported[0]["fp32"]["path"]).read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit of a weight: still a valid ONNX model, no longer the one exported
    path = tmp_path / "altered.onnx"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="does not match its checksum"):
        digitrec.load(path, backend="onnx")


def test_an_onnx_model_not_made_by_digitrec_is_an_input_error(tmp_path):
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 28, 28])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1, 28, 28])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["logits"])], "foreign", [image], [logits])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "foreign.onnx")
    with pytest.raises(InputError, match="not a digitrec ONNX model"):
        digitrec.load(tmp_path / "foreign.onnx", backend="onnx")


def test_backend_and_file_must_match(exported, small_model):
    with pytest.raises(InputError, match="export"):
        digitrec.load(small_model, backend="onnx")
    with pytest.raises(InputError, match="backend 'onnx'"):
        digitrec.load(exported[0]["fp32"]["path"], backend="torch")
    with pytest.raises(InputError, match="backend must be one of"):
        digitrec.load(small_model, backend="tensorrt")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_cli_predict_runs_on_onnx_runtime(exported, small_model, drawn_png, precision):
    png = drawn_png(7)
    backend = "onnx-int8" if precision == "int8" else "onnx"
    r = run("predict", "--json", "--backend", backend, "--model", exported[0][precision]["path"], png)
    assert r.returncode == 0 and json.loads(r.stdout)["digit"] == digitrec.load(small_model).predict(png).digit


def test_cli_damaged_onnx_file_gives_one_line_and_exit_2(exported, tmp_path, drawn_png):
    r = run("predict", "--backend", "onnx", "--model", _truncated(exported, tmp_path), drawn_png(1))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "truncated.onnx" in r.stderr
    assert "Traceback" not in r.stderr


bundled = pytest.mark.skipif(not bundled_model_path("onnx-int8").exists(), reason="bundled ONNX files not built")


@bundled
def test_bundled_onnx_files_are_exports_of_the_bundled_checkpoint():
    x = data.load_mnist("test")[0][:500]
    r_torch, r_onnx = digitrec.load(), digitrec.load(backend="onnx")
    assert r_onnx.backend.source_checksum == r_torch.checkpoint.checksum
    gap = np.abs(r_onnx.probabilities(x / 255.0) - r_torch.probabilities(x / 255.0)).max()
    assert gap < 1e-4, "regenerate: digitrec export --model src/digitrec/weights/default.pt --out src/digitrec/weights --int8"


@bundled
def test_bundled_int8_model_is_3x_smaller_and_loses_at_most_a_tenth_of_a_point():
    x, y = data.load_mnist("test")
    x = x.astype(np.float32) / 255
    acc = {b: np.mean(digitrec.load(backend=b).probabilities(x).argmax(1) == y) for b in ("onnx", "onnx-int8")}
    ratio = bundled_model_path("onnx").stat().st_size / bundled_model_path("onnx-int8").stat().st_size
    assert ratio >= 3 and acc["onnx"] - acc["onnx-int8"] <= 0.0010
