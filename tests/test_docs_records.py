"""The docs' tables are what tools/paper_table.py makes of the committed results records."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import paper_table  # noqa: E402
import study_table  # noqa: E402

RECORDS = os.path.join(ROOT, "docs", "records")
# record file -> (data set, table number, with its standard-FID rows): each one's table is in
# docs/results.md verbatim (``paper_table.py REC [--standard REC]``)
TABLES = {"mnist_digit-table2.json": ("mnist_digit", 2, False),
          "mnist_digit-table1.json": ("mnist_digit", 1, True),
          "mnist_fashion-original-table1-seed0.json": ("mnist_fashion", 1, True),
          "mnist_fashion-original-table2-dt16-seed0.json": ("mnist_fashion", 2, True)}
# the sample-quality study's rows (label, record), in the order of its table in docs/results.md
# (``study_table.py --prior ladder --network fid-inception LABEL=REC ...``)
STUDY = [("paper config, 30 epochs", "mnist_fashion-study-base.json"),
         ("100 epochs", "mnist_fashion-study-e100.json"),
         ("no sigma floor", "mnist_fashion-study-nofloor.json"),
         ("d_z 32", "mnist_fashion-study-dz32.json"),
         ("fused block updates", "mnist_fashion-study-fused.json"),
         ("deeper networks (large)", "mnist_fashion-study-large.json"),
         ("authors' Fashion networks", "mnist_fashion-study-original-act.json")]
# the quality config's table (label, record, prior column), in the README and docs/results.md
# (``study_table.py LABEL=REC#PRIOR ...``)
QUALITY = [("LaDDer, seed 0", "mnist_fashion-quality-ladder-seed0.json", "ladder"),
           ("LaDDer, seed 1", "mnist_fashion-quality-ladder-seed1.json", "ladder"),
           ("normal prior, seed 0", "mnist_fashion-quality-normal-seed0.json", "normal"),
           ("GMM prior, seed 0", "mnist_fashion-quality-gmm-seed0.json", "gmm"),
           ("LaDDer, paper config (30 epochs)", "mnist_fashion-study-base.json", "ladder")]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_results_md_carries_the_records_table(name):
    dataset, number, with_standard = TABLES[name]
    with open(os.path.join(RECORDS, name), encoding="utf-8") as f:
        record = json.load(f)
    assert record["dataset"] == dataset and not record["missing"], "a record of finished, evaluated runs"
    table = paper_table.build(dataset, number, record, record if with_standard else None)
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as f:
        assert table in f.read()


def study_markdown(rows: list[tuple[str, str, str]]) -> str:
    """study_table's table of (label, record, prior) rows, each record one of finished runs."""
    out = []
    for label, name, prior in rows:
        record = study_table.read_results(os.path.join(RECORDS, name))
        assert record["dataset"] == "mnist_fashion" and not record["missing"], name
        out.append(study_table.study_row(label, record, prior, "fid-inception"))
    return study_table.markdown(out, "fid-inception")


@pytest.mark.parametrize("page", ["README.md", os.path.join("docs", "results.md")])
def test_pages_carry_the_study_and_quality_tables(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    assert study_markdown([(label, name, "ladder") for label, name in STUDY]) in text
    assert study_markdown(QUALITY) in text


def test_every_record_is_listed():
    listed = sorted(set(TABLES) | {name for _, name in STUDY} | {name for _, name, _ in QUALITY})
    assert sorted(n for n in os.listdir(RECORDS) if n.endswith(".json")) == listed


def results_md_means(section: str, label: str) -> dict[str, str]:
    """The means of row LABEL of the first table under heading SECTION of docs/results.md, per
    prior ('100.37 ± 11.37' -> '100.37')."""
    with open(os.path.join(ROOT, "docs", "results.md"), encoding="utf-8") as f:
        text = f.read()
    body = text[text.index(f"\n## {section}\n"):]
    body = body[:body.index("\n## ", 1)]
    line = next(l for l in body.splitlines() if l.startswith(f"| {label} |"))
    cells = [c.strip().split(" ±")[0] for c in line.strip().strip("|").split("|")[1:]]
    return dict(zip(paper_table.PRIORS, cells))


def test_readme_brief_table1_is_results_md_s():
    """The README's Fashion-MNIST Table 1 in brief holds the means of docs/results.md's tables."""
    section = "Table 1 reproduced on Fashion-MNIST (30 epochs, seeds 0 and 1)"
    columns = []
    for heading, network in (("paper's text, classifier-FID", "classifier-FID"),
                             ("paper's text, standard FID (seed 0)", "standard FID")):
        gen = results_md_means(section, f"Generation, {network} (this package)")
        diff = results_md_means(section, f"Difference, {network} (this package)")
        columns.append((heading, {p: f"{gen[p]} / {diff[p]}" for p in paper_table.PRIORS}))
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert paper_table.brief("mnist_fashion", columns) in f.read()
