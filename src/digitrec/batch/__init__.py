"""Bulk jobs: ``bulk`` (pages -> a CSV or JSONL of rows in worker processes, resume, the review file),
``ray_engine`` (the same on Ray Data), ``rows`` (a page -> its row and its review items)."""
