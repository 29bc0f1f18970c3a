"""The docs' tables are what tools/paper_table.py makes of the committed results records."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import paper_table  # noqa: E402

RECORDS = os.path.join(ROOT, "docs", "records")
# record file -> (data set, table number, with its standard-FID rows): each one's table is in
# docs/results.md verbatim (``paper_table.py REC [--standard REC]``)
TABLES = {"mnist_digit-table2.json": ("mnist_digit", 2, False),
          "mnist_digit-table1.json": ("mnist_digit", 1, True)}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_results_md_carries_the_records_table(name):
    dataset, number, with_standard = TABLES[name]
    with open(os.path.join(RECORDS, name), encoding="utf-8") as f:
        record = json.load(f)
    assert record["dataset"] == dataset and not record["missing"], "a record of finished, evaluated runs"
    table = paper_table.build(dataset, number, record, record if with_standard else None)
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as f:
        assert table in f.read()


def test_every_record_is_listed():
    assert sorted(n for n in os.listdir(RECORDS) if n.endswith(".json")) == sorted(TABLES)
