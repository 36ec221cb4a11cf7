"""Output read in a pipe or a CI log: 80 columns, not a terminal. No number and no file name
is ever cut (issue 9, defect 5). Every command's tables are checked through the CLI, with
Rich's width fixed at 80 (COLUMNS) and the output captured.

A file name counts as shown when it stands whole on one line, or when a table cell folds it
over several lines (its pieces, read down the column, spell it). A number counts as shown when
it stands whole, formatted as the table formats it. Rich marks a cut with '…': none may appear.
"""

from __future__ import annotations

import re
from types import SimpleNamespace as NS

import pytest
import torch

from suite.results.cka import CKAResult
from tests.support.event_layouts import write_ncaltech101
from tests.support.helpers import make_checkpoint

LAYERS = ["conv1"] + [f"layer{s}.{b}" for s in (1, 2, 3) for b in (0, 1, 2)] + ["act", "fc"]


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    """Rich reads COLUMNS when it lays out; check that the suite's console sees 80."""
    from suite.progress import console
    monkeypatch.setenv("COLUMNS", "80")
    assert console.width == 80


def run(runner, *args):
    from suite.cli import app
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def column_text(output: str, header: str) -> str:
    """What a table column holds, read top to bottom with its pieces joined (spaces dropped), so
    a cell that folds a long path over several lines reads whole. Works for boxed and box-less
    tables; starts at each line that holds `header` (a column title)."""
    text, start = "", None
    for line in output.splitlines():
        if re.search(rf"(?<![\w-]){re.escape(header)}(?![\w-])", line):
            start = line.index(header)
            continue
        if start is None or not line.strip():
            start = None
            continue
        if not re.search(r"[^\s━─┏┓┗┛┡┩└┘├┤┼╇┳┻┴┬╋]", line):
            continue  # a rule
        text += re.split(r"[│┃]", line[start:])[0].replace(" ", "")
    return text


def assert_uncut(output: str, numbers=(), cells=None, whole_paths=()):
    """No '…'; every number whole; every value of `cells` (column title -> values) read whole
    in its column; every path of `whole_paths` whole on one line (`store: PATH` lines)."""
    assert "…" not in output, output
    for n in numbers:
        assert re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", output), (n, output)
    for header, values in (cells or {}).items():
        column = column_text(output, header)
        for v in map(str, values):
            assert v.replace(" ", "") in column, (header, v, column, output)
    for p in map(str, whole_paths):
        assert p in output, (p, output)


def matrix(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Values that print with every width a CKA cell can have: 0.xx, 1.00 and a small negative."""
    m = torch.rand(rows, cols, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    m[0, 0], m[-1, -1], m[1, 2] = 1.0, -0.013, 0.999
    return m


def cka_result(m: torch.Tensor, compare: str = "models", layers_a=LAYERS, layers_b=LAYERS, **config) -> CKAResult:
    return CKAResult(m, list(layers_a), list(layers_b), 64, m.clone(), torch.ones(m.shape[0]),
                     torch.ones(m.shape[1]), n_batches=2, compare=compare, config=config)


def rows_of(output: str, label: str) -> list[str]:
    """The numbers printed on the lines of a matrix row (its label starts the line), in order."""
    cells = []
    for line in output.splitlines():
        if line.startswith(label + " "):
            cells += re.findall(r"-?\d+\.\d+|nan", line[len(label):])
    return cells


# ----------------------------------------------------------------------------- suite data check
def test_data_check_names_every_bad_file_in_full(runner, tmp_path):
    """The truncated file is named whole, relative to the dataset folder, before the missing ones."""
    root = tmp_path / "a-data-root-folder-with-a-long-name" / "datasets"
    paths = write_ncaltech101(root, per_class=1, n_events=20)
    base = root / "NCALTECH101"
    truncated = paths[7]
    truncated.write_bytes(truncated.read_bytes()[:-3])  # not a whole number of 5-byte events
    long_name = truncated.with_name("a-recording-renamed-with-a-file-name-far-longer-than-the-table-column-"
                                    "can-hold-0001.bin")
    paths[8].rename(long_name)
    long_name.write_bytes(long_name.read_bytes()[:-2])
    missing_class = paths[30].parent
    for p in missing_class.iterdir():
        p.unlink()
    missing_class.rmdir()

    code, out = run(runner, "data", "check", "ncaltech101", "--data-root", root)
    assert code == 2, out
    rel_truncated = truncated.relative_to(base).as_posix()
    rel_long = long_name.relative_to(base).as_posix()
    rel_missing = f"Caltech101/{missing_class.name}/*.bin"
    assert_uncut(out, cells={"file": [rel_truncated, rel_long, rel_missing]}, whole_paths=[base])
    assert str(root) not in out.replace(str(base), "")  # paths are printed relative to the dataset folder
    files = column_text(out, "file")
    assert files.index(rel_truncated) < files.index(rel_missing) and files.index(rel_long) < files.index(rel_missing)


# ----------------------------------------------------------------------------- suite cka
@pytest.mark.parametrize("time", ["mean", "each"])
def test_cka_prints_every_value(runner, tmp_path, time):
    """A real `suite cka` run: every cell of the matrix it saved, at 2 decimals, on its row,
    for 12 layers and (time each, T=2) 24 entries: wide matrices go in column blocks."""
    ckpt = make_checkpoint(tmp_path / "a-checkpoint-with-a-long-name-snn-T2.pt", "snn")
    out_dir = tmp_path / "a-reports-folder-with-a-name-long-enough-to-fold-a-line"
    code, out = run(runner, "cka", "--compare", "layers", "--model", ckpt, "--time", time, "--samples", 16,
                    "--batch-size", 8, "--out", out_dir)
    assert code == 0, out
    path = next(out_dir.glob("*.h5"))
    result = CKAResult.load(path)
    assert len(result.layers_a) == (12 if time == "mean" else 24)
    assert_uncut(out, whole_paths=[path, path.with_suffix(".png")])
    for i, name in enumerate(result.layers_a):
        expected = ["nan" if v != v else f"{v:.2f}" for v in result.matrix[i].tolist()]
        assert rows_of(out, f"A{i} {name}") == expected, (i, out)
    for j, name in enumerate(result.layers_b):  # the caption names each column
        assert re.search(rf"(?<!\d)B{j}={re.escape(name)}(?![\w.@])", out), (j, out)


# ----------------------------------------------------------------------------- suite demo
@pytest.fixture
def fake_demo(monkeypatch, tmp_path):
    """`suite demo` with its results made up (no training): long paths, every table filled."""
    import suite.demo

    out = tmp_path / "an-output-folder-whose-name-alone-takes-most-of-a-line"
    for sub in ("runs", "attacks", "reports"):
        (out / sub).mkdir(parents=True)
    trained = {kind: NS(checkpoint=out / "runs" / f"digits{'-dvs' if 'dvs' in kind else ''}-resnet20-"
                        f"{kind[:3]}-T4-w0.5-s0.pt", seconds=123.4 + k, metrics=[{"test_acc": 0.9123 + k / 100}],
                        test_accuracy=0.9123 + k / 100)
               for k, kind in enumerate(("snn", "ann", "snn-dvs"))}
    time_m = torch.rand(12, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    cka = {"SNN vs ANN": NS(result=cka_result(matrix(12, 12, 1)), path=out / "reports" / "cka-models.h5"),
           "SNN over time": NS(result=CKAResult(time_m, LAYERS, LAYERS, 64, time_m, torch.ones(12, 4),
                                                torch.ones(12, 4), compare="time"),
                               path=out / "reports" / "cka-time.h5"),
           "static (SNN) vs event (SNN-DVS)": NS(result=cka_result(matrix(12, 12, 2), compare="static-event"),
                                                 path=out / "reports" / "cka-static-event.h5")}
    rows = [dict(method=m, grad="bptt", attack_surrogate="fast_sigmoid", eps=e / 255, eps_label=f"{e}/255" if e else "0",
                 clean_acc=0.9875, robust_acc=0.8123 - 0.1 * k - 0.2 * (m == "pgd"), linf_mean=e / 255 * 0.98,
                 linf_max=e / 255, n_samples=10000) for m in ("fgsm", "pgd") for k, e in enumerate((0, 2, 8))]
    checks = [NS(name="bounds", passed=True, message="every perturbation within eps (max 0.031373 at 8/255), "
                                                     "inputs within [0, 1]"),
              NS(name="pgd >= fgsm", passed=False, message="pgd at 8/255 leaves 61.2% correct, fgsm 41.2%")]
    attacks = {label: NS(store=NS(summary=lambda: rows, config={}), checks=checks,
                         path=out / "attacks" / f"digits-resnet20-{label.lower()}-T4-w0.5-s0-fgsm-pgd-bptt.h5")
               for label in ("SNN", "ANN")}
    eps_labels = ["0", "1/255", "2/255", "4/255", "8/255", "16/255", "32/255", "64/255"]
    clean_adv = {label: [NS(result=cka_result(matrix(12, 12, 10 + k), compare="clean-adv", eps_label=e),
                            path=out / "reports" / f"cka-clean-adv-{label}-pgd-eps{e.replace('/', '_')}.h5")
                         for k, e in enumerate(eps_labels)] for label in ("SNN", "ANN")}
    summary = NS(config=suite.demo.DEMO.train, trained=trained, cka=cka, attacks=attacks, clean_adv=clean_adv,
                 seconds=61.0,
                 folders={"runs": out / "runs", "attacks": out / "attacks", "reports": out / "reports"},
                 page=out / "reports" / "demo.html")
    monkeypatch.setattr(suite.demo, "run_demo", lambda *args, **kw: summary)
    return summary


def test_demo_table_keeps_checkpoint_paths(runner, fake_demo):
    """The table's numbers whole, and each checkpoint path whole on a line of its own."""
    code, out = run(runner, "demo")
    assert code == 0, out
    numbers = [f"{r.test_accuracy:.1%}" for r in fake_demo.trained.values()]
    numbers += [f"{r.seconds:.1f} s" for r in fake_demo.trained.values()]
    assert_uncut(out, numbers=numbers, whole_paths=[r.checkpoint for r in fake_demo.trained.values()])


def test_demo_cka_matrices_print_every_value(runner, fake_demo):
    code, out = run(runner, "demo")
    assert code == 0, out
    for label in ("SNN vs ANN", "static (SNN) vs event (SNN-DVS)"):
        m = fake_demo.cka[label].result.matrix
        section = out[out.index(f"CKA {label} ("):out.index(f"CKA {label}: highlights")]
        assert_uncut(section)
        for i, name in enumerate(LAYERS):
            assert rows_of(section, f"A{i} {name}")[:12] == [f"{v:.2f}" for v in m[i].tolist()], (label, i)


def test_demo_attack_tables_keep_every_number(runner, fake_demo):
    code, out = run(runner, "demo")
    assert code == 0, out
    section = out[out.index("robustness: SNN"):out.index("robustness: ANN")]
    rows = fake_demo.attacks["SNN"].store.summary()
    numbers = [f"{r[k]:.1%}" for r in rows for k in ("clean_acc", "robust_acc")]
    numbers += [f"{r[k]:.4f}" for r in rows for k in ("linf_mean", "linf_max")] + ["10000"]
    numbers += [r["eps_label"] for r in rows]
    assert_uncut(section, numbers=numbers + ["0.031373", "61.2%", "41.2%"])
    assert column_text(section, "grad").count("bptt(fast_sigmoid)") == len(rows), section


def test_demo_clean_adv_table_keeps_every_eps_and_value(runner, fake_demo):
    code, out = run(runner, "demo")
    assert code == 0, out
    runs = fake_demo.clean_adv["SNN"]
    section = out[out.index("clean vs adv CKA: SNN"):out.index("clean vs adv CKA: ANN")]
    assert_uncut(section)
    for r in runs:
        assert f"eps {r.result.config['eps_label']}" in section, section
    for i, name in enumerate(LAYERS):
        values = rows_of(section, name)
        assert values == [f"{float(r.result.matrix[i, i]):.2f}" for r in runs], (name, section)


# ----------------------------------------------------------------------------- suite train, data list
def test_train_table_and_checkpoint_line(runner, tmp_path, monkeypatch):
    import suite.train

    ckpt = tmp_path / "a-runs-folder-with-a-name-long-enough-to-fill-a-line" / "digits-resnet20-snn-T4-w0.5-s0.pt"
    metrics = [{"epoch": e, "train_loss": 2.3456 / e, "train_acc": 0.1234 * e, "test_acc": 0.1111 * e,
                "lr": 0.1 / e} for e in (1, 2, 3)]
    monkeypatch.setattr(suite.train, "train_one",
                        lambda config, where, **kw: NS(checkpoint=ckpt, metrics=metrics, seconds=12.3,
                                                  test_accuracy=metrics[-1]["test_acc"]))
    code, out = run(runner, "train")
    assert code == 0, out
    numbers = [f"{m['train_loss']:.4f}" for m in metrics] + [f"{m['train_acc']:.3f}" for m in metrics]
    numbers += [f"{m['test_acc']:.3f}" for m in metrics] + [f"{m['lr']:.4f}" for m in metrics]
    assert_uncut(out, numbers=numbers + ["12.3 s"], whole_paths=[ckpt])


def test_data_list_keeps_names_locations_and_sizes(runner, tmp_path):
    root = tmp_path / "a-data-root-folder-with-a-name-long-enough-to-fold"
    (root / "cache" / "digits-dvs").mkdir(parents=True)
    with open(root / "cache" / "digits-dvs" / "f.pt", "wb") as f:
        f.truncate(15_000_000)  # sparse: no disk used
    code, out = run(runner, "data", "list", "--data-root", root)
    assert code == 0, out
    from suite.data import get_dataset_info, list_datasets
    infos = [get_dataset_info(name) for name in list_datasets()]
    assert_uncut(out, numbers=["14.3 MB"] + [str(i.num_classes) for i in infos], whole_paths=[root],
                 cells={"folder": [i.folder for i in infos], "name": list_datasets()})
    assert re.search(r"^digits-dvs\s+event\s+8x2x16x16\s+10\s+yes\s+14\.3 MB\s", out, re.M), out


# ----------------------------------------------------------------------------- suite attack (a real run)
def test_attack_output_at_80_columns(runner, tmp_path):
    from suite.results.attacks import read_store

    out_dir = tmp_path / "an-attacks-folder-with-a-name-long-enough-to-fold-a-line"
    ckpt = make_checkpoint(tmp_path / "snn.pt", "snn")
    code, out = run(runner, "attack", "--model", ckpt, "--method", "fgsm,pgd", "--eps", "0,2/255,8/255",
                    "--steps", 2, "--attack-surrogate", "fast_sigmoid", "--samples", 16, "--batch-size", 8,
                    "--out", out_dir)
    assert code == 0, out
    store_path = out_dir / "snn-fgsm-pgd-bptt-fast_sigmoid.h5"
    rows = read_store(store_path).summary()
    numbers = [f"{r[k]:.1%}" for r in rows for k in ("clean_acc", "robust_acc")]
    numbers += [f"{r[k]:.4f}" for r in rows for k in ("linf_mean", "linf_max")]
    assert_uncut(out, numbers=numbers, whole_paths=[store_path, store_path.with_suffix(".png")])
    assert "bptt (fast_sigmoid)" in out
