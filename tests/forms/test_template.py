"""Form templates: what a template file may say (and the one-line error when it says it wrong), checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from digitrec.data.render.form_pages import FORM_TEMPLATE, luhn_digit
from digitrec.errors import InputError
from digitrec.forms import load_template, luhn_valid


def _with(**change):
    t = json.loads(json.dumps(FORM_TEMPLATE))
    t["fields"][0].update(change)
    return t


def test_a_template_file_is_read_with_its_fields_in_order(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps(FORM_TEMPLATE))
    t = load_template(tmp_path / "t.json")
    assert [f.name for f in t.fields] == ["zip", "amount", "date", "account", "code_a", "code_b"]
    assert t.fields[3].cells == 8 and t.fields[3].luhn and t.fields[0].length == (5, 5)
    assert t.marks.shape == (4, 2) and t.mark_side == 5


@pytest.mark.parametrize("template, words", [
    (_with(kind="letters"), "kind must be"),
    (_with(box=[150, 90, 20, 20]), "not inside the 160 x 100 page"),
    (_with(box=[1, 2, 3]), "'box' must be 4 numbers"),
    (_with(name=""), "needs a 'name'"),
    (_with(name="amount"), "unique"),
    (_with(validate={"regex": "("}), "does not compile"),
    (_with(validate={"length": "five"}), "length must be"),
    (_with(validate={"colour": "red"}), "takes length, regex and luhn"),
    ({"page": [10, 10], "fields": []}, "non-empty list"),
    ({"page": [0, 10], "fields": [{"name": "a", "kind": "digit", "box": [0, 0, 1, 1]}]}, "positive"),
    ([1, 2], "JSON object"),
])
def test_a_wrong_template_is_one_line_naming_the_problem(template, words):
    with pytest.raises(InputError, match=words) as e:
        load_template(template)
    assert "\n" not in str(e.value)


def test_a_template_that_is_not_json_names_the_file(tmp_path):
    (tmp_path / "t.json").write_text("{page: oops")
    with pytest.raises(InputError, match="t.json: not a JSON template"):
        load_template(tmp_path / "t.json")


def test_field_checks_say_what_is_wrong():
    t = load_template(FORM_TEMPLATE)
    zip_code, account = t.fields[0], t.fields[3]
    assert zip_code.check("90210") is None and zip_code.check("9021") == "4 digits, not 5"
    good = "1234567" + str(luhn_digit("1234567"))
    assert account.check(good) is None
    assert account.check(good[:-1] + str((int(good[-1]) + 1) % 10)) == "fails the Luhn check"


def test_luhn_accepts_known_numbers_and_refuses_a_changed_digit():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710") and not luhn_valid("")


def test_a_number_with_a_digit_sized_mark_left_out_is_unsure():
    import digitrec
    from digitrec import data
    from digitrec.data.render.fields import Condition, make_field
    from digitrec.forms import read_whole

    x, y = data.load_mnist("test")
    r = digitrec.load()
    rng = np.random.default_rng(0)
    hidden = np.zeros((28, 28), np.uint8)
    hidden[4:24, 6:22] = 255  # a solid block where a digit would be: ink the reader leaves out
    field = make_field(x[:200], y[:200], Condition("f", (4, 4), (0.2, 0.3), others=1.0), rng, others=hidden[None])
    number = r.read_number(field.image)
    assert number.marks and number.text == field.text, "the block is left out, the digits read"
    assert read_whole(r, field.image, "number").unsure
    clean = make_field(x[:200], y[:200], Condition("f", (4, 4), (0.2, 0.3)), np.random.default_rng(1))
    assert not read_whole(r, clean.image, "number").unsure


def test_a_template_made_from_the_blank_form_finds_its_boxes_kinds_and_marks():
    from digitrec.data.render.form_pages import blank_form
    from digitrec.forms import make_template

    made = make_template(np.asarray(blank_form(150)), dpi=150)
    load_template(made)  # valid as it is
    want = FORM_TEMPLATE["fields"]
    assert [f["kind"] for f in made["fields"]] == ["number", "number", "number", "boxes:8", "digit", "digit"]
    assert np.allclose([f["box"] for f in made["fields"]], [f["box"] for f in want], atol=0.8)
    assert np.allclose(made["marks"]["centres"], FORM_TEMPLATE["marks"]["centres"], atol=0.5)


def test_a_page_with_no_boxes_makes_no_template():
    from digitrec.forms import make_template

    with pytest.raises(InputError, match="no printed boxes"):
        make_template(np.full((300, 400), 255, np.uint8))


def test_the_template_command_writes_a_template_that_reads_filled_forms(tmp_path, capsys):
    from digitrec import data
    from digitrec.apps import cli
    from digitrec.batch.bulk import bulk
    from digitrec.data.render.form_pages import blank_form, make_form_pages

    blank_form(150).save(tmp_path / "blank.png", dpi=(150, 150))
    assert cli.main(["template", str(tmp_path / "blank.png"), "--out", str(tmp_path / "t.json")]) == 0
    assert "6 fields written" in capsys.readouterr().out
    made = json.loads((tmp_path / "t.json").read_text())
    made["fields"][1]["kind"], made["fields"][2]["kind"] = "amount", "date"  # as the person editing it would
    (tmp_path / "t.json").write_text(json.dumps(made))
    x, y = data.load_mnist("test")
    pages = make_form_pages(x[:1000], y[:1000], 3, seed=4)
    for i, p in enumerate(pages):
        (tmp_path / f"f{i}.jpg").write_bytes(p.jpeg)
    bulk(sorted(tmp_path.glob("f*.jpg")), tmp_path / "r.jsonl", template=load_template(tmp_path / "t.json"),
         workers=1, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    names = [f["name"] for f in FORM_TEMPLATE["fields"]]
    right = [r[f"field{k + 1}"] == p.values[n] for r, p in zip(rows, pages) for k, n in enumerate(names)]
    assert np.mean(right) >= 0.9


def test_alternatives_that_pass_the_fields_check_come_first():
    from digitrec.forms import FieldReading, alternatives
    from digitrec.inference.prediction import Prediction

    def digit(d: int, second: int, p2: float) -> Prediction:
        probs = [0.0] * 10
        probs[d], probs[second] = 1 - p2, p2
        return Prediction(d, 1 - p2, tuple(probs))

    good = "1234567" + str(luhn_digit("1234567"))
    wrong = good[:4] + "9" + good[5:]       # the fifth digit misread; its second choice is the right one
    preds = [digit(int(c), (int(c) + 1) % 10, 0.01) for c in wrong]
    preds[4] = digit(9, int(good[4]), 0.05)  # a weaker second choice than the first digit's, below
    preds[0] = digit(int(wrong[0]), 7, 0.3)
    reading = FieldReading("account", wrong, 0.5, True, "fails the Luhn check", preds)
    assert alternatives(reading)[0] != good, "by likelihood alone, another digit's swap leads"
    account = load_template(FORM_TEMPLATE).fields[3]
    assert alternatives(reading, spec=account)[0] == good
