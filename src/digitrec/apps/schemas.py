"""The REST API's request and response models: what each route takes and answers, as the OpenAPI spec shows."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .limits import Limits

__all__ = ["TopDigit", "PredictionOut", "BatchItemOut", "DigitOut", "SeparatorOut", "NumberOut", "ModelOut",
           "LimitsOut", "HealthOut", "CorrectionIn", "CorrectionOut", "ImageIn", "BatchIn", "EXAMPLE_IMAGE"]


class TopDigit(BaseModel):
    digit: int = Field(ge=0, le=9)
    probability: float = Field(ge=0, le=1)


class PredictionOut(BaseModel):
    digit: int | None = Field(description="the digit read; null when there is none (a blank image, or one "
                                          "rejected as not a digit)", examples=[7])
    confidence: float = Field(ge=0, le=1, description="calibrated probability that the digit is right "
                                                      "(of the most likely digit when digit is null)")
    unsure: bool = Field(description="true when a person should check the reading: the picture looks little "
                                     "like a digit, or like more than one", examples=[False])
    probabilities: list[float] = Field(min_length=10, max_length=10, description="calibrated probability of each "
                                                                                 "digit 0-9")
    top3: list[TopDigit] = Field(description="the three most likely digits, most likely first")
    reading: str = Field("", description="the reading of the picture that won: light (as drawn), ink (cleaned), "
                                         "paper_frame, box, outlines, dark_tone, light_tone, located (a digit found "
                                         "in a large picture); empty for a blank", examples=["light"])
    input: str | None = Field(None, description="with ?include_input=true: the 28x28 image the model read, "
                                                "as a PNG data: URL")


class BatchItemOut(BaseModel):
    """One image of a batch: its name and either its reading (the fields of a single prediction) or its error."""
    file: str = Field(description="the uploaded file's name, or images[i] for JSON", examples=["scan-04.png"])
    error: str | None = Field(None, description="why this image could not be read (the others still are)")
    digit: int | None = None
    confidence: float | None = Field(None, ge=0, le=1)
    unsure: bool | None = None
    probabilities: list[float] | None = Field(None, min_length=10, max_length=10)
    top3: list[TopDigit] | None = None
    reading: str | None = None
    input: str | None = None


class DigitOut(BaseModel):
    digit: int | None = Field(description="the digit; null for an empty box (kind=boxes) or a mark that is no digit")
    confidence: float = Field(ge=0, le=1)
    unsure: bool = Field(False, description="a person should check this digit")
    probabilities: list[float] = Field(min_length=10, max_length=10)
    top3: list[TopDigit]
    box: list[int] = Field(min_length=4, max_length=4, description="x, y, width, height of the digit's ink in the "
                                                                   "uploaded image, pixels")


class SeparatorOut(BaseModel):
    char: str = Field(description="'.', ',', '-' or '/'", examples=["."])
    box: list[int] = Field(min_length=4, max_length=4, description="x, y, width, height of its ink, pixels")


class NumberOut(BaseModel):
    text: str = Field(description="the digits and separators read, left to right (a space per empty box with "
                                  "kind=boxes); empty when there are none", examples=["1,250.00"])
    confidence: float = Field(ge=0, le=1, description="the product of the digits' confidences; 0 when there are none")
    unsure: bool = Field(description="a person should check the reading: a digit or separator is doubtful, a "
                                     "digit-sized mark was left out, or the text is not shaped as the kind says")
    value: str | None = Field(None, description="kind=amount: the amount as a decimal number", examples=["1250.00"])
    digits: list[DigitOut]
    separators: list[SeparatorOut] = Field(description="the separators written into the text, with their boxes")
    marks: list[list[int]] = Field(description="boxes (x, y, width, height) of marks left out of the text: marks "
                                               "that are neither digits nor separators of this kind")


class ModelOut(BaseModel):
    arch: str = Field(description="'cnn' or 'logreg'")
    preset: str | None = Field(description="the training preset")
    parameters: int | None
    checksum: str | None = Field(None, description="SHA-256 of the model file's content: names the exact weights")


class LimitsOut(BaseModel):
    max_upload_bytes: int = Field(description="largest request body, bytes")
    max_pixels: int = Field(description="largest image, width x height")
    max_batch: int = Field(description="most images in one batch request")
    timeout_s: float = Field(description="seconds to receive a request and answer it")


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    model: ModelOut
    limits: LimitsOut
    stores_corrections: bool = Field(description="whether POST /api/v1/corrections stores what it is sent")


class CorrectionIn(BaseModel):
    image: str = Field(description="the picture that was read, in base64, optionally as a data: URL")
    correct: str = Field(min_length=1, max_length=64, description="what it really is: a digit 0-9, or a "
                                                                  "number's text", examples=["4"])
    read: str = Field("", max_length=64, description="what digitrec read ('' for nothing)", examples=["9"])
    kind: Literal["digit", "number"] = Field("digit", description="a single digit, or a number field")
    writer: str | None = Field(None, max_length=64, description="who wrote it, where known (held out together "
                                                                "when a fine-tuning is scored)")
    source: Literal["api", "page", "review"] = Field("api", description="where the correction was made")


class CorrectionOut(BaseModel):
    id: int = Field(description="the stored correction's number")
    correct: str
    kind: str


# a blank 28x28 PNG: an example a client can send as it is (it reads as no digit)
EXAMPLE_IMAGE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAFklEQVR42mP8z4AbMDGMSo5KjkpCAQCD"
                 "/gE3G98i8wAAAABJRU5ErkJggg==")


class ImageIn(BaseModel):
    image: str = Field(description="the image file's bytes in base64, optionally as a data: URL",
                       examples=[EXAMPLE_IMAGE])


class BatchIn(BaseModel):
    # maxItems documents the default limit only: a server's own (--max-batch) is checked in the handler, 413
    images: list[str] = Field(json_schema_extra={"minItems": 1, "maxItems": Limits.max_batch},
                              description="image files in base64 (or data: URLs), read in order; at most the "
                                          "server's batch limit (see /api/v1/health)")
