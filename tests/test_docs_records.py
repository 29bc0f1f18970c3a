"""The docs' tables are what tools/paper_table.py makes of the committed results records."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import paper_table  # noqa: E402

RECORDS = os.path.join(ROOT, "docs", "records")
# record file -> (data set, table number): each one's table is in docs/results.md verbatim
TABLES = {"mnist_digit-table2.json": ("mnist_digit", 2)}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_results_md_carries_the_records_table(name):
    dataset, number = TABLES[name]
    with open(os.path.join(RECORDS, name), encoding="utf-8") as f:
        record = json.load(f)
    assert record["dataset"] == dataset and not record["missing"], "a record of finished, evaluated runs"
    table = paper_table.build(dataset, number, record, None)
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as f:
        assert table in f.read()


def test_every_record_is_listed():
    assert sorted(n for n in os.listdir(RECORDS) if n.endswith(".json")) == sorted(TABLES)
