"""Forms: ``template`` (the schema of a form template and its loading), ``make`` (a template from a blank
form), ``page`` (a scanned page read field by field)."""
from .make import make_template
from .page import FieldReading, FormReading, alternatives, read_form, read_whole
from .template import NUMBER_KINDS, WHOLE_PAGE_KINDS, FieldSpec, Template, load_template, luhn_valid

__all__ = ["Template", "FieldSpec", "FieldReading", "FormReading", "load_template", "make_template", "read_form",
           "read_whole", "alternatives", "luhn_valid", "NUMBER_KINDS", "WHOLE_PAGE_KINDS"]
