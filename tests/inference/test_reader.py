import json
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

import digitrec
from digitrec import InputError, NumberReading, data
from digitrec.inference.reader import read_number

HEIGHT = 110  # px: digit height in the fields below, as written on an 800x200 field


@pytest.fixture(scope="module")
def bundled():
    return digitrec.load()


# per digit, an MNIST test image (among the first 300) a recognizer reads very confidently alone: the earlier
# bundled model's most confident ones, pinned so that retraining the recognizer leaves these fields as they are
EXEMPLARS = {0: 25, 1: 94, 2: 236, 3: 213, 4: 24, 5: 45, 6: 100, 7: 114, 8: 266, 9: 274}


def _ink(img):
    """A test image as ink: cropped to its ink box, HEIGHT px tall, float in [0, 1]."""
    rows, cols = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
    crop = Image.fromarray(img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    w = round(crop.width * HEIGHT / crop.height)
    return np.asarray(crop.resize((w, HEIGHT), Image.Resampling.BILINEAR)) / 255.0


@pytest.fixture(scope="module")
def digit_ink():
    """digit -> ink of its exemplar; with digits the classifier reads surely, the tests below test the reading
    of the line, not the classifier."""
    x, y = data.load_mnist("test")
    assert all(y[i] == d for d, i in EXEMPLARS.items())
    return {d: _ink(x[i]) for d, i in EXEMPLARS.items()}


def field(digit_ink, text, gap, size=(800, 200), left=60):
    """Dark ink on white: the digits of ``text`` side by side, ``gap`` px between ink boxes (negative: overlap).

    Returns the uint8 image and each digit's ink box (x, y, width, height).
    """
    ink = np.zeros(size[::-1], np.float32)
    top = (size[1] - HEIGHT) // 2
    boxes = []
    for ch in text:
        d = digit_ink[int(ch)]
        region = ink[top:top + HEIGHT, left:left + d.shape[1]]
        np.maximum(region, d, out=region)
        boxes.append((left, top, d.shape[1], HEIGHT))
        left += d.shape[1] + gap
    return (255 - ink * 255).astype(np.uint8), boxes


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_reads_spaced_digits_left_to_right(bundled, digit_ink):
    img, _ = field(digit_ink, "90210", gap=25)
    n = bundled.read_number(img)
    assert isinstance(n, NumberReading)
    assert n.text == "90210" and [p.digit for p in n.digits] == [9, 0, 2, 1, 0]


def test_splits_touching_digits(bundled, digit_ink):
    # move the digits together until their ink is one blob: connected components alone cannot split that
    for gap in range(0, -HEIGHT // 4, -2):
        img, _ = field(digit_ink, "2803", gap)
        if ndimage.label(img < 128, structure=np.ones((3, 3)))[1] == 1:
            break
    else:
        pytest.fail("the digits never touched")
    assert bundled.read_number(img).text == "2803"


def test_empty_field_reads_as_empty_string(bundled):
    n = bundled.read_number(np.full((200, 800), 255, np.uint8))
    assert n.text == "" and n.digits == [] and n.confidence == 0.0


@pytest.mark.xfail(reason="known limit of the line model: with these exemplars of 2 and 0 (test images 221 and "
                          "297), from an overlap of 15 % of the digit height the 0 is lost", strict=True)
def test_splits_touching_digits_of_other_writers(bundled, digit_ink):
    x, _ = data.load_mnist("test")
    ink = {**digit_ink, 0: _ink(x[297]), 2: _ink(x[221])}
    assert all(bundled.read_number(field(ink, "2803", gap)[0]).text == "2803" for gap in range(0, -26, -4))


def hyphenated(digit_ink):
    """'12-34' drawn with a hyphen between the groups, and the hyphen's left and right ends."""
    left, lbox = field(digit_ink, "12", gap=25)
    right, rbox = field(digit_ink, "34", gap=25, left=0)
    img = np.full((200, 800), 255, np.uint8)
    x0 = lbox[-1][0] + lbox[-1][2] + 60  # the hyphen sits between the groups
    img[:, :x0] = left[:, :x0]
    img[:, x0 + 60:] = right[:, :800 - x0 - 60]
    pil = Image.fromarray(img)
    ImageDraw.Draw(pil).line([(x0 - 40, 100), (x0 + 15, 98)], fill=0, width=10)
    return pil, x0


def test_leaves_a_hyphen_out_of_the_number_of_digits(bundled, digit_ink):
    pil, x0 = hyphenated(digit_ink)
    n = read_number(bundled, pil, kind="digits")
    assert n.text == "1234"
    assert len(n.marks) == 1
    mx, my, mw, mh = n.marks[0]
    assert mx <= x0 - 40 and x0 + 15 <= mx + mw and my <= 98 <= my + mh


def test_reads_a_hyphen_into_the_text_of_any_field(bundled, digit_ink):
    pil, x0 = hyphenated(digit_ink)
    n = bundled.read_number(pil)
    assert n.text == "12-34" and [p.digit for p in n.digits] == [1, 2, 3, 4]
    assert [c for c, _ in n.separators] == ["-"] and n.separators[0][1][0] <= x0 - 40


def spaced_with(digit_ink, text, at, draw, gap=60):
    """The digits of ``text`` ``gap`` px apart; ``draw(d, x, base)`` draws a separator in the gap after digit ``at``
    (x: the gap's left edge, base: the baseline row)."""
    img, boxes = field(digit_ink, text, gap=gap)
    pil = Image.fromarray(img)
    x, y, w, h = boxes[at]
    draw(ImageDraw.Draw(pil), x + w, y + h)
    return pil


def point(d, x, base):
    d.ellipse([x + 22, base - 14, x + 36, base], fill=0)


def test_an_amount_keeps_its_decimal_point_and_gives_its_value(bundled, digit_ink):
    n = read_number(bundled, spaced_with(digit_ink, "1250", 1, point), kind="amount")
    assert n.text == "12.50" and n.value == Decimal("12.50")
    assert n.to_dict()["value"] == "12.50" and n.to_dict()["separators"][0]["char"] == "."


def test_an_amount_reads_a_comma_by_its_tail(bundled, digit_ink):
    def comma(d, x, base):
        d.ellipse([x + 22, base - 16, x + 36, base - 2], fill=0)
        d.line([(x + 34, base - 8), (x + 24, base + 24)], fill=0, width=8)
    n = read_number(bundled, spaced_with(digit_ink, "1250", 0, comma), kind="amount")
    assert n.text == "1,250" and n.value == Decimal("1250")


def test_a_date_keeps_a_slash_the_line_model_reads_as_a_one(bundled, digit_ink):
    def slash(d, x, base):
        d.line([(x + 8, base + 8), (x + 52, base - 112)], fill=0, width=10)
    n = read_number(bundled, spaced_with(digit_ink, "1225", 1, slash), kind="date")
    assert n.text == "12/25" and [p.digit for p in n.digits] == [1, 2, 2, 5]


def test_a_field_of_digits_leaves_a_point_out(bundled, digit_ink):
    n = read_number(bundled, spaced_with(digit_ink, "1250", 1, point), kind="digits")
    assert n.text == "1250" and n.separators == [] and n.value is None


def test_an_unknown_kind_is_an_input_error(bundled, digit_ink):
    with pytest.raises(InputError, match="kind"):
        read_number(bundled, field(digit_ink, "12", gap=20)[0], kind="zip")


def test_a_clean_field_is_sure_and_one_with_a_scribble_left_out_is_not(bundled, digit_ink):
    assert not bundled.read_number(field(digit_ink, "90210", gap=25)[0]).unsure
    img, boxes = field(digit_ink, "12", gap=200)
    pil = Image.fromarray(img)
    x0 = boxes[0][0] + boxes[0][2] + 50
    ImageDraw.Draw(pil).line([(x0 + i * 8, 100 + 30 * np.sin(i)) for i in range(14)], fill=0, width=10)
    assert bundled.read_number(pil).unsure


def boxed(digit_ink, text, side=130, line=3):
    """A row of printed boxes ``side`` px apart, the digits of ``text`` in them (a space: the box left empty)."""
    img = Image.new("L", (len(text) * side + 80, 200), 255)
    d = ImageDraw.Draw(img)
    for i, ch in enumerate(text):
        x0 = 40 + i * side
        d.rectangle([x0, 35, x0 + side, 35 + side], outline=0, width=line)
        if ch != " ":
            ink = digit_ink[int(ch)]
            left = x0 + (side - ink.shape[1]) // 2
            patch = Image.fromarray((255 - ink * 255).astype(np.uint8))
            img.paste(patch, (left, 45), Image.fromarray((ink * 255).astype(np.uint8)))
    return img


def test_boxes_read_one_entry_per_box_empty_ones_too(bundled, digit_ink):
    n = read_number(bundled, boxed(digit_ink, "40 96"), kind="boxes")
    assert n.text == "40 96" and len(n.digits) == 5
    assert [p.digit for p in n.digits] == [4, 0, None, 9, 6]
    assert all(n.digits[i].box[0] < n.digits[i + 1].box[0] for i in range(4))


def test_boxes_kind_without_boxes_reads_the_line_and_is_unsure(bundled, digit_ink):
    n = read_number(bundled, field(digit_ink, "407", gap=25)[0], kind="boxes")
    assert n.text == "407" and n.unsure


def test_leaves_a_digit_sized_scribble_out_of_the_number(bundled, digit_ink):
    img, boxes = field(digit_ink, "12", gap=200)
    pil = Image.fromarray(img)
    x0 = boxes[0][0] + boxes[0][2] + 50
    ImageDraw.Draw(pil).line([(x0 + i * 8, 100 + 30 * np.sin(i)) for i in range(14)], fill=0, width=10)
    n = bundled.read_number(pil)
    assert n.text == "12"
    assert len(n.marks) == 1 and n.marks[0][0] <= x0 + 5 and x0 + 100 <= n.marks[0][0] + n.marks[0][2]


def test_marks_the_recognizer_rejects_as_not_digits_are_left_out(digit_ink):
    img, boxes = field(digit_ink, "56", gap=30)
    n = digitrec.load(reject_threshold=float("inf")).read_number(img)  # a recognizer that rejects everything
    assert n.text == "" and n.digits == [] and n.confidence == 0.0
    assert len(n.marks) == 2 and all(iou(m, b) > 0.8 for m, b in zip(n.marks, boxes))


def test_boxes_are_in_input_coordinates(bundled, digit_ink):
    img, boxes = field(digit_ink, "3827", gap=30)
    big = np.asarray(Image.fromarray(img).resize((2400, 600), Image.Resampling.BILINEAR))
    n = bundled.read_number(big)
    assert n.text == "3827"
    for p, (x, y, w, h) in zip(n.digits, boxes):
        assert iou(p.box, (3 * x, 3 * y, 3 * w, 3 * h)) > 0.8


def test_reads_light_ink_on_dark_paper(bundled, digit_ink):
    img, _ = field(digit_ink, "5061", gap=15)
    assert bundled.read_number(255 - img).text == "5061"


def test_confidence_is_the_product_of_the_digits(bundled, digit_ink):
    img, _ = field(digit_ink, "764", gap=20)
    n = bundled.read_number(img)
    assert 0 < n.confidence <= 1 and n.confidence == pytest.approx(np.prod([p.confidence for p in n.digits]))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "digitrec.apps.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_cli_reads_numbers_as_text_and_json(tmp_path, digit_ink):
    img, boxes = field(digit_ink, "4096", gap=20)
    path = tmp_path / "zip.png"
    Image.fromarray(img).save(path)
    blank = tmp_path / "blank.png"
    Image.new("L", (800, 200), 255).save(blank)
    r = run_cli("read", path, blank)
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 2
    assert f"{path}: 4096" in r.stdout and f"{blank}: no digits found" in r.stdout
    r = run_cli("read", "--json", path)
    row = json.loads(r.stdout)
    assert row["file"] == str(path) and row["text"] == "4096"
    assert [d["digit"] for d in row["digits"]] == [4, 0, 9, 6]
    assert all(iou(d["box"], b) > 0.8 for d, b in zip(row["digits"], boxes))


def test_cli_bad_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    r = run_cli("read", bad)
    assert r.returncode == 2 and "bad.png" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
