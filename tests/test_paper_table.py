"""tools/paper_table.py: results next to the paper's rows, pooled and per seed, read back exactly."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import paper_table  # noqa: E402


def summary(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values), "values": [float(v) for v in values]}


def fid(features, columns, seeds, gen):
    """gen: {column: (seeds x repeats) values}; reconstruction = gen - 1, real = 0.1."""
    rows = {"generation": {}, "reconstruction": {}, "difference": {}, "real": {}}
    for c in columns:
        g = np.asarray(gen[c], float).ravel()
        rows["generation"][c], rows["reconstruction"][c] = summary(g), summary(g - 1.0)
        rows["difference"][c], rows["real"][c] = summary(np.ones_like(g)), summary(np.full_like(g, 0.1))
    return {"protocol": {"features": features}, "seeds_evaluated": {c: list(seeds) for c in columns},
            "rows": rows}


def results(tmp_path, name, number, columns, fids, elbo):
    table = {"columns": columns, "fid": fids, "runs": {},
             "elbo": {c: {"-ELBO (nats/image)": summary(elbo[c]),
                          "-cross-entropy -E_q[log p(z)]": summary([5.0] * len(elbo[c]))} for c in columns}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"tables": {f"table{number}": table}}))
    return str(path)


def parse(text):
    return {line.split("|")[1].strip(): [c.strip() for c in line.strip().strip("|").split("|")[1:]]
            for line in text.splitlines()[2:]}


def test_table1_pooled_per_seed_paper_and_standard_rows(tmp_path, capsys):
    cols = ["normal", "ladder"]
    gen = {"normal": [[100.0, 102.0, 104.0], [80.0, 82.0, 84.0]], "ladder": [[6.0, 6.5, 7.0], [5.0, 5.0, 5.0]]}
    clf = results(tmp_path, "clf", 1, cols, [fid("classifier", cols, [0, 1], gen)],
                  {"normal": [-900.0, -910.0], "ladder": [-905.0, -925.0]})
    std_gen = {"normal": [[60.0], [70.0]], "ladder": [[40.0], [42.0]]}
    std = results(tmp_path, "std", 1, cols, [fid("fid-inception", cols, [0, 1], std_gen)],
                  {"normal": [0.0, 0.0], "ladder": [0.0, 0.0]})
    assert paper_table.main(["--dataset", "mnist_digit", clf[:-5] + ".md", "--standard", std]) == 0
    rows = parse(capsys.readouterr().out)
    flat = np.ravel(gen["normal"])
    assert rows["Generation, classifier-FID (this package)"][0] == f"{flat.mean():.2f} ± {flat.std(ddof=1):.2f}"
    text = paper_table.build("mnist_digit", 1, json.load(open(clf)), json.load(open(std)))
    lines = text.splitlines()
    gen_seed = lines[lines.index(next(l for l in lines if l.startswith("| Generation, classifier"))) + 1]
    assert gen_seed.split("|")[2].strip() == f"{np.mean(gen['normal'][0]):.2f} / {np.mean(gen['normal'][1]):.2f}"
    assert gen_seed.split("|")[3].strip() == "6.50 / 5.00"
    assert rows["Generation, Inception FID (paper, Table 1)"] == ["401.4 ± 4.4", "6.4 ± 1.3"]
    assert rows["Real image, Inception FID (paper, Table 1)"] == ["2.3 ± 0.4", "2.3 ± 0.4"]
    assert rows["Generation, standard FID (this package)"] == [f"65.00 ± {np.std([60, 70], ddof=1):.2f}",
                                                              f"41.00 ± {np.std([40, 42], ddof=1):.2f}"]
    assert rows["test -ELBO (nats/image)"][1] == f"-915.00 ± {np.std([-905, -925], ddof=1):.2f}"
    data = json.load(open(clf))
    data["tables"]["table1"]["runs"] = {c: [{"seed": 0, "finished": True}, {"seed": 1, "finished": True}]
                                        for c in cols}
    lines = paper_table.build("mnist_digit", 1, data, None).splitlines()
    elbo_seed = lines[lines.index(next(l for l in lines if l.startswith("| test -ELBO"))) + 1]
    assert [c.strip() for c in elbo_seed.strip("|").split("|")] == [
        "per seed (0 / 1)", "-900.00 / -910.00", "-905.00 / -925.00"]


def test_table2_columns_get_the_papers_d_t_row(tmp_path, capsys):
    cols = ["d_t = 2", "d_t = 8"]
    path = results(tmp_path, "dt", 2, cols, [fid("classifier", cols, [0], {"d_t = 2": [[40.0]], "d_t = 8": [[20.0]]})],
                   {c: [-900.0] for c in cols})
    assert paper_table.main(["--dataset", "mnist_fashion", "--table", "2", path]) == 0
    rows = parse(capsys.readouterr().out)
    assert rows["Generation, Inception FID (paper, Table 2)"] == ["25.3 ± 1.6", "5.5 ± 0.7"]
    assert rows["Generation, classifier-FID (this package)"] == ["40.00", "20.00"]
    assert "per seed (0)" not in rows


def test_a_wrong_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    for args in (["--dataset", "mnist_digit", str(bad)], ["--dataset", "mnist_digit", str(tmp_path / "none.json")]):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "paper_table.py"), *args],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_brief_table_has_generation_and_difference_means_per_prior(tmp_path, capsys):
    cols = ["normal", "ladder"]
    gen = {"normal": [[100.0, 102.0], [80.0, 90.0]], "ladder": [[6.0, 6.5], [5.0, 5.5]]}
    clf = results(tmp_path, "clf", 1, cols, [fid("classifier", cols, [0, 1], gen)], {c: [-900.0] * 2 for c in cols})
    std = results(tmp_path, "std", 1, cols, [fid("fid-inception", cols, [0], {"normal": [[60.0]], "ladder": [[41.0]]})],
                  {c: [0.0] for c in cols})
    assert paper_table.main(["--dataset", "mnist_fashion", "--brief", "authors' code", clf, "--standard", std]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == ("| prior | paper, Inception FID | authors' code, classifier-FID "
                                    "| authors' code, standard FID |")
    rows = parse(text)
    # fid() makes every difference 1.0; priors without runs get '-'
    assert rows["normal"] == ["266.1 / 262.9", f"{np.mean(gen['normal']):.2f} / 1.00", "60.00 / 1.00"]
    assert rows["ladder"] == ["5.2 / 4.2", "5.75 / 1.00", "41.00 / 1.00"]
    assert rows["gmm"] == ["6.0 / 3.1", "-", "-"]
    assert list(rows) == list(paper_table.PRIORS)
    both = json.load(open(clf))
    both["tables"]["table1"]["fid"] += json.load(open(std))["tables"]["table1"]["fid"]
    assert [h for h, _ in paper_table.brief_columns("c", both, both)] == ["c, classifier-FID", "c, standard FID"]
    with pytest.raises(SystemExit) as exit_info:
        paper_table.main(["--dataset", "mnist_fashion", "--brief", "x", "--table", "2", clf])
    assert exit_info.value.code == 2
