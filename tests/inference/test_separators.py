from decimal import Decimal

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.inference.separators import amount_value, as_amount, plausible, separator

TOP, BASE = 50, 150  # the digits' rows on the line: 100 px tall


def mark(draw, size=(400, 250)):
    """The pixels (rows, cols) of what ``draw`` puts on an empty picture."""
    img = Image.new("L", size)
    draw(ImageDraw.Draw(img))
    return np.nonzero(np.asarray(img) > 127)


def test_a_small_mark_on_the_baseline_is_a_point():
    assert separator(*mark(lambda d: d.ellipse([100, 136, 114, 150], fill=255)), TOP, BASE)[0] == "."


def test_a_small_mark_with_a_tail_below_the_baseline_is_a_comma():
    rr, cc = mark(lambda d: (d.ellipse([100, 132, 114, 146], fill=255), d.line([(112, 140), (102, 172)], fill=255,
                                                                              width=8)))
    assert separator(rr, cc, TOP, BASE)[0] == ","


def test_a_short_flat_stroke_at_mid_height_is_a_hyphen():
    assert separator(*mark(lambda d: d.line([(100, 100), (150, 98)], fill=255, width=10)), TOP, BASE)[0] == "-"


def test_a_tall_stroke_leaning_right_is_a_slash():
    assert separator(*mark(lambda d: d.line([(100, 155), (140, 45)], fill=255, width=10)), TOP, BASE)[0] == "/"


def test_an_upright_stroke_and_a_digit_sized_blob_are_no_separators():
    assert separator(*mark(lambda d: d.line([(100, 150), (102, 50)], fill=255, width=10)), TOP, BASE)[0] is None
    assert separator(*mark(lambda d: d.ellipse([100, 60, 160, 150], fill=255)), TOP, BASE)[0] is None


def test_a_point_high_on_the_line_is_no_separator():
    assert separator(*mark(lambda d: d.ellipse([100, 50, 114, 64], fill=255)), TOP, BASE)[0] is None


@pytest.mark.parametrize("text, value", [("1,250.00", Decimal("1250.00")), ("12.50", Decimal("12.50")),
                                         ("12,50", Decimal("12.50")), ("1,250", Decimal("1250")),
                                         ("250", Decimal("250")), ("1.250.00", None), ("12,5,0", None),
                                         ("12-50", None), (".50", None)])
def test_an_amounts_last_separator_before_one_or_two_digits_is_its_decimal_point(text, value):
    assert amount_value(text) == value


def test_a_date_has_one_kind_of_separator_between_its_groups():
    assert plausible("07/31/2026", "date") and plausible("2026-07-31", "date") and plausible("07-31", "date")
    assert not plausible("07/31-2026", "date") and not plausible("073/1", "date") and not plausible("07//31", "date")


def test_an_amounts_points_that_group_thousands_before_a_decimal_point_are_read_as_commas():
    assert as_amount("37.010.80") == "37,010.80" and as_amount("1,250,00") == "1.250,00"
    assert as_amount("12.50") == "12.50" and as_amount("1.2.3") == "1.2.3"
