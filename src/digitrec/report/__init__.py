"""The HTML report: ``eda`` (data analysis), ``results`` (what sections draw from), ``sections`` and
``real_world`` (the sections), ``page`` (the page and ``build_report``)."""
from .eda import eda
from .page import SECTIONS, build_report
from .results import default_models

__all__ = ["build_report", "eda", "default_models", "SECTIONS"]
