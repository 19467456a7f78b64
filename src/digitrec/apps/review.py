"""The review queue: the fields a bulk run left unsure, checked by a person at ``/review``.

``digitrec serve --review results.csv`` serves them from the run's review file (``batch.bulk.review_path``).
The page shows one field at a time, its picture, the reading and the likeliest alternatives; the person
confirms or types the right value with the keyboard. Each answer is appended to the review file (so a
restarted review goes on where it stopped) and stored as a correction for fine-tuning, where the server
stores them; the answers are merged into the results file (the value, and the field no longer unsure) in
one rewrite, not one per answer: when the last field is answered, on ``POST /api/v1/review/merge``, when
the server stops, and when a queue opens with answers a stopped server did not merge.
"""
from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import threading
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..data import private
from ..data.corrections import correction_problem
from ..data.csvcell import restore_row, text_row
from ..errors import InputError
from .limits import ApiError, ErrorOut, log
from .store import MAX_VALUE, Store, StoreError

__all__ = ["ReviewQueue", "review_router", "REVIEW_PAGE"]


class ItemOut(BaseModel):
    id: int = Field(description="the item's number in this review")
    file: str
    page: int
    field: str
    value: str = Field(description="what was read ('' for nothing)")
    alternatives: list[str] = Field(description="other likely values, likeliest first")
    problem: str | None = Field(None, description="why the value fails the template's checks, if it does")
    picture: str | None = Field(None, description="the field as a PNG data: URL")
    reviewed: str | None = Field(None, description="the value a person gave, once reviewed")


class ReviewIn(BaseModel):
    value: str = Field(max_length=MAX_VALUE, description="the right value: the reading confirmed, or corrected "
                                                          "('' for an empty field)", examples=["90210"])


class MergedOut(BaseModel):
    merged: int = Field(description="fields of the results file set from answers")


class ReviewQueue:
    """The unsure fields of one results file (CSV or JSONL) and its review file, with the answers so far."""

    def __init__(self, results: str | os.PathLike, store: Store | None = None, model_checksum: str | None = None):
        from ..batch.bulk import review_path

        self.results, self.review = Path(results), review_path(results)
        self.store, self.model_checksum = store, model_checksum
        self._lock = threading.Lock()
        if not self.results.is_file():
            raise InputError(f"{self.results}: no such results file (digitrec bulk writes one)")
        if not self.review.is_file():
            raise InputError(f"{self.review}: no review file beside the results (digitrec bulk writes it)")
        self.items: list[dict] = []
        answers: dict[tuple, str] = {}
        try:
            with open(self.review, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if "reviewed" in item:
                        answers[_key(item)] = item["reviewed"]
                    else:
                        self.items.append(item)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"{self.review}: not a review file ({e})") from None
        for item in self.items:
            item["reviewed"] = answers.get(_key(item))
        if answers:  # a server that stopped before merging them
            self.merge()

    def listed(self) -> list[dict]:
        """Every item, numbered, with its picture as a data: URL."""
        return [self._shown(i) for i in range(len(self.items))]

    def _shown(self, ident: int) -> dict:
        """Item ``ident`` as the API answers it: numbered, with its picture as a data: URL."""
        item = self.items[ident]
        return {**{k: item.get(k) for k in ("file", "page", "field", "value", "problem", "reviewed")},
                "id": ident, "alternatives": item.get("alternatives") or [],
                "picture": "data:image/png;base64," + item["picture"] if item.get("picture") else None}

    def answer(self, ident: int, value: str) -> dict:
        """Record ``value`` for item ``ident``: appended to the review file, stored in the store; merged into
        the results file once the last open item is answered. Blocking: the server calls it on a thread."""
        value = value.strip()
        if value and correction_problem("number", value):
            raise ApiError(400, f"value: digits 0-9 (and . , - /) only, not {value!r}")
        if not 0 <= ident < len(self.items):
            raise ApiError(404, f"no review item {ident}")
        item = self.items[ident]
        with self._lock:
            with open(self.review, "a", encoding="utf-8") as f:
                f.write(json.dumps({"file": item["file"], "page": item["page"], "field": item["field"],
                                    "reviewed": value}) + "\n")
            item["reviewed"] = value
        if all(i["reviewed"] is not None for i in self.items):
            self.merge()
        if self.store is not None and item.get("picture") and value:
            kind = "digit" if len(value) == 1 and len(item["value"]) <= 1 else "number"
            try:
                self.store.add(base64.b64decode(item["picture"]), value, read=item["value"], kind=kind,
                               source="review", model_checksum=self.model_checksum)
            except StoreError as e:  # the answer is in the review file; only the copy for fine-tuning is lost
                log.error("%s", e)
        return self._shown(ident)  # not the whole list: every item's picture, to answer one

    def merge(self) -> int:
        """Write every answer into the results file (replaced whole, once), then the review file with one
        answer line per item however often it was answered; return how many fields were set. The results
        are replaced first: a stop between the two leaves answers that the next merge writes again."""
        with self._lock:
            answers = {_key(i): i["reviewed"] for i in self.items if i["reviewed"] is not None}
            _write_back(self.results, answers)
            tmp = self.review.with_name(self.review.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", opener=private.opener) as f:
                for item in self.items:
                    f.write(json.dumps({k: v for k, v in item.items() if k != "reviewed"}) + "\n")
                f.writelines(json.dumps({"file": k[0], "page": k[1], "field": k[2], "reviewed": v}) + "\n"
                             for k, v in answers.items())
            os.replace(tmp, self.review)
            return len(answers)


def _key(item: dict) -> tuple:
    return item["file"], int(item["page"]), item["field"]


def _write_back(results: Path, answers: dict[tuple, str]) -> None:
    """``results`` with each answered field set and no longer unsure, replaced whole."""
    is_csv = results.suffix.lower() == ".csv"
    with open(results, newline="", encoding="utf-8") as f:
        if is_csv:
            reader = csv.DictReader(f)
            cols, rows = reader.fieldnames, [restore_row(r) for r in reader]
        else:
            rows = [json.loads(line) for line in f if line.strip()]
    fields: dict[tuple, list[tuple[str, str]]] = {}
    for (file, page, name), value in answers.items():
        fields.setdefault((file, str(page)), []).append((name, value))
    for row in rows:
        for name, value in fields.get((row["file"], str(row["page"])), ()):
            row[name] = value
            row[f"{name}_unsure"] = "False" if is_csv else False
    tmp = results.with_name(results.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8", opener=private.opener) as f:  # it becomes the results
        if is_csv:
            writer = csv.DictWriter(f, cols)
            writer.writeheader()
            writer.writerows(map(text_row, rows))
        else:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(tmp, results)


def review_router(queue: ReviewQueue | None) -> APIRouter:
    """``/api/v1/review``: the queue's items and their answers; 404 on a server that has no queue."""
    api = APIRouter(prefix="/api/v1/review")
    errors = {code: {"model": ErrorOut} for code in (400, 404, 422)}

    def _queue() -> ReviewQueue:
        if queue is None:
            raise ApiError(404, "this server has no review queue: start one with digitrec serve --review RESULTS.csv")
        return queue

    @api.get("", response_model=list[ItemOut], responses={404: errors[404]},
             summary="The fields a bulk run left unsure, and the answers so far")
    async def items():
        return _queue().listed()

    @api.post("/merge", response_model=MergedOut, responses={404: errors[404]},
              summary="Write the answers so far into the results file now (also done when the last item is "
                      "answered and when the server stops)")
    async def merge():
        return {"merged": await asyncio.to_thread(_queue().merge)}

    @api.post("/{ident}", response_model=ItemOut, responses=errors,
              summary="Answer one item: the reading confirmed, or the right value")
    async def answer(ident: int, body: ReviewIn):
        return await asyncio.to_thread(_queue().answer, ident, body.value)  # file and store work: off the loop

    return api


# One plain page, no Gradio: the queue from the API, one field at a time; Enter saves what the box holds,
# Alt+1..3 takes an alternative. Every value is written with textContent, never as HTML.
REVIEW_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>digitrec review</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
#picture { max-width: 100%; min-height: 4rem; border: 1px solid #ced4da; image-rendering: auto; }
#value { font-size: 2rem; width: 14rem; padding: .2rem .4rem; letter-spacing: .05em; }
.alts button, #save { font-size: 1.1rem; margin: .3rem .3rem 0 0; padding: .3rem .8rem; }
.where, .left { opacity: .75; } .problem { color: #c92a2a; }
</style></head><body>
<h1>Review</h1>
<p class="left" id="left" aria-live="polite"></p>
<div id="item" hidden>
  <p class="where" id="where"></p>
  <img id="picture" alt="the field as scanned">
  <p>Read: <strong id="read"></strong> <span class="problem" id="problem"></span></p>
  <label for="value">Right value (Enter saves; Alt+1, Alt+2, Alt+3 take an alternative)</label><br>
  <input id="value" autocomplete="off" inputmode="decimal" maxlength="64">
  <button id="save" type="button">Save</button>
  <div class="alts" id="alts"></div>
</div>
<script>
(() => {
  let items = [], current = null;
  const $ = id => document.getElementById(id);
  const next = () => {
    const open = items.filter(i => i.reviewed === null);
    $('left').textContent = open.length ? open.length + ' of ' + items.length + ' fields left to check'
                                        : 'All ' + items.length + ' fields are checked. The results file is updated.';
    current = open[0] || null; $('item').hidden = !current; if (!current) return;
    $('where').textContent = current.file + ', page ' + current.page + ', field ' + current.field;
    $('picture').src = current.picture || ''; $('read').textContent = current.value || '(nothing)';
    $('problem').textContent = current.problem ? '(' + current.problem + ')' : '';
    $('value').value = current.value; $('alts').replaceChildren();
    current.alternatives.forEach((a, k) => { const b = document.createElement('button'); b.type = 'button';
      b.textContent = (k + 1) + ': ' + a; b.addEventListener('click', () => { $('value').value = a; $('value').focus(); });
      $('alts').append(b); });
    $('value').focus(); $('value').select();
  };
  const save = async () => {
    if (!current) return;
    const r = await fetch('/api/v1/review/' + current.id, {method: 'POST', credentials: 'same-origin',
      headers: {'content-type': 'application/json'}, body: JSON.stringify({value: $('value').value})});
    const j = await r.json().catch(() => ({error: 'the server sent no readable answer'}));
    if (!r.ok) { $('left').textContent = 'Not saved: ' + (j.error || r.status); return; }
    items[current.id] = j; next();
  };
  $('save').addEventListener('click', save);
  $('value').addEventListener('keydown', e => {
    if (e.key === 'Enter') { e.preventDefault(); save(); }
    if (e.altKey && '123'.includes(e.key) && current && current.alternatives[+e.key - 1] !== undefined) {
      e.preventDefault(); $('value').value = current.alternatives[+e.key - 1]; }
  });
  fetch('/api/v1/review', {credentials: 'same-origin'}).then(async r => {
    const j = await r.json(); if (!r.ok) throw new Error(j.error); items = j; next(); })
    .catch(e => { $('left').textContent = 'No review queue: ' + (e.message || 'the server did not answer'); });
})();
</script></body></html>
"""
