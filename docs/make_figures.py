"""Redraw the documentation's figures (docs/img/) from a folder where the tutorials ran.

    SUITE_DOC_TRANSCRIPTS=/tmp/transcripts pytest -m slow tests/docs/test_tutorials.py --basetemp=/tmp/tut
    python docs/make_figures.py /tmp/tut/reader0 [NAME ...]

NAMEs (default: all) pick figures, for a workspace that holds only some pages' files: tutorial 2
rewrites the demo's CKA results with its own (the same names), so the first-look figures and
demo.png come from a folder where only the demo ran (`pytest ... -k first-look`).

Every figure is the suite's own report figure (`suite.report.make_report(..., figures=DIR)`) of
the files a tutorial wrote, copied under the name a page shows it by; demo.png, the README's
figure, sets the demo's SNN-vs-ANN CKA heatmap beside its robustness curves. The page views are
headless Chromium screenshots of the HTML pages the tutorials wrote (Chromium on PATH as
`chromium`; without it they are left as they are, saying so).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.image as mpimg
from matplotlib.figure import Figure

from suite.report.make import make_report

IMG = Path(__file__).resolve().parent / "img"

# docs/img name: (the files it is drawn from, relative to the workspace; the report figure's stem)
DEMO_SNN, DEMO_ANN = "digits-resnet20-snn-T4-w0.5-s0", "digits-resnet20-ann-w0.5-s0"
PAIR_CLEAN_ADV = f"reports/cka-clean-adv-{DEMO_SNN}-sa-pgd-assg-sa-pgd"
EVENT_SNN = "attacks/digits-dvs-resnet20-snn-T4-w0.5-s0"
FIGURES = {
    "first-look-robustness": ([f"attacks/{DEMO_SNN}-fgsm-pgd-sa-pgd-assg.h5",
                               f"attacks/{DEMO_ANN}-fgsm-pgd-sa-pgd-bptt.h5"], "robustness-digits"),
    "first-look-cka": ([f"reports/cka-models-{DEMO_SNN}-vs-{DEMO_ANN}.h5"], f"cka-models-{DEMO_SNN}-vs-{DEMO_ANN}"),
    "first-look-time": ([f"reports/cka-time-{DEMO_SNN}.h5"], f"cka-time-{DEMO_SNN}"),
    "model-pair-clean-adv": ([f"{PAIR_CLEAN_ADV}-eps{e}.h5" for e in ("0", "4_255", "8_255")],
                             PAIR_CLEAN_ADV.removeprefix("reports/")),
    "event-attacks-robustness": ([f"{EVENT_SNN}-event-pgd-event-sparse-event-random-assg.h5",
                                  f"{EVENT_SNN}-event-retime-event-random-retime-assg.h5"],
                                 "robustness-digits-dvs-events"),
}
# docs/img name: (HTML page, relative to the workspace; window width and height in pixels)
PAGES = {
    "first-look-page": ("reports/demo.html", 1100, 1400),
    "findings-page": ("reports/experiments/temporal/experiment-temporal.html", 1100, 1450),
    "findings-residual-page": ("reports/experiments/residual/experiment-residual.html", 1100, 1000),
}


ALL = [*FIGURES, "demo", *PAGES]  # demo.png is drawn from the first-look figures


def report_figure(workspace: Path, files: list[str], stem: str, out: Path) -> None:
    """The report figure `stem` drawn from `files` alone, written to `out`."""
    with tempfile.TemporaryDirectory() as tmp:
        written = make_report([workspace / f for f in files], figures=tmp).figures
        match = [p for p in written if p.stem == stem]
        if not match:
            raise SystemExit(f"{stem}: not among the figures of {files}: {[p.stem for p in written]}")
        shutil.copyfile(match[0], out)


def side_by_side(left: Path, right: Path, out: Path) -> None:
    """Two PNGs on one canvas, at their own resolution (the README's figure)."""
    a, b = mpimg.imread(left), mpimg.imread(right)
    height = max(a.shape[0], b.shape[0])
    dpi = 150
    fig = Figure(figsize=((a.shape[1] + b.shape[1]) / dpi, height / dpi), dpi=dpi)
    width = a.shape[1] + b.shape[1]
    for k, (img, x0) in enumerate(((a, 0), (b, a.shape[1]))):
        ax = fig.add_axes((x0 / width, (height - img.shape[0]) / height / 2, img.shape[1] / width,
                           img.shape[0] / height))
        ax.imshow(img)
        ax.set_axis_off()
    fig.savefig(out, dpi=dpi, metadata={"Software": None})


def screenshot(page: Path, out: Path, width: int, height: int) -> bool:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print(f"{out.name}: no chromium on PATH, left as it is")
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--screenshot={out}", f"--window-size={width},{height}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path, help="the folder the tutorial tests ran in")
    parser.add_argument("names", nargs="*", help=f"figures to draw (default all): {', '.join(ALL)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ALL))
    if unknown:
        parser.error(f"no figure {', '.join(unknown)}; the figures are {', '.join(ALL)}")
    names = args.names or ALL
    IMG.mkdir(exist_ok=True)
    for name in names:
        out = IMG / f"{name}.png"
        if name in FIGURES:
            report_figure(args.workspace, *FIGURES[name], out)
        elif name == "demo":
            side_by_side(IMG / "first-look-cka.png", IMG / "first-look-robustness.png", out)
        elif not screenshot(args.workspace / PAGES[name][0], out, *PAGES[name][1:]):
            continue
        print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
