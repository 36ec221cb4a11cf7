"""A finding on the HTML page, read at a glance: the verdict and the claim first, then d with its
interval and seeds, then what d is, then one table row per measure and protocol with the
two-model reference points; the sentence as printed stays, folded, below."""

from __future__ import annotations

import html
import re

from suite.report.page import write_page
from suite.report.sections import experiment_section
from suite.results.experiment import Experiment, Finding, read_experiment, write_experiment
from suite.results.provenance import provenance


def estimate(protocol, measure, mean, lo, hi, verdict, headline=None, ceiling=None, floor=None):
    return {"protocol": protocol, "measure": measure, "verdict": verdict, "values": {},
            "interval": {"per_seed": [mean - 0.01, mean, mean + 0.01], "mean": mean, "lo": lo, "hi": hi,
                         "how": "t over 3 seeds"},
            "headline": headline, "ceiling": ceiling or {}, "floor": floor}


def experiment(tmp_path) -> Experiment:
    finding = Finding(
        key="pair-finding", sentence="SNN vs ANN ...: d = -0.06 [95% CI -0.06, -0.0496] over seeds 0, 3, 7; "
        "the paper (Sec. 4) says the twins differ: inconclusive",
        measured={"d": -0.0553}, claim="says the twins differ", source="Sec. 4", rule="below: ...",
        verdict="inconclusive", what="SNN-vs-ANN CKA 0.61 vs its ceiling (d = pair - ceiling)", margin=0.05,
        estimates=[
            estimate("suite", "linear-cka", -0.0553, -0.0612, -0.0496, "inconclusive", 0.61,
                     {"SNN-vs-SNN'": 0.83, "ANN-vs-ANN'": 0.91}, 0.12),
            estimate("suite", "procrustes", -0.21, -0.30, -0.12, "agrees", 0.55, {"SNN-vs-SNN'": 0.77}, 0.2),
            estimate("snncka", "linear-cka", 0.031, -0.01, 0.07, "inconclusive", 0.66, {}, None),
        ])
    exp = Experiment(recipe="pair", config={"seeds": [0, 3, 7]}, findings=[finding], files={},
                     provenance=provenance("cpu"))
    write_experiment(tmp_path, exp)
    return read_experiment(tmp_path / "experiment-pair.json")  # what the page reads: the file


def shown(page) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_a_finding_leads_with_verdict_claim_and_d_then_a_table_per_measure_and_protocol(tmp_path):
    exp = experiment(tmp_path)
    page = write_page(tmp_path / "p.html", [experiment_section(exp)], []).read_text()
    (article,) = re.findall(r'<article class="finding">(.*?)</article>', page, re.S)
    paragraphs = [shown(p).strip() for p in re.findall(r"<p[^>]*>(.*?)</p>", article, re.S)]
    assert paragraphs[0] == "inconclusive the paper (Sec. 4) says the twins differ"
    # -0.0496 beside a margin of 0.05: two decimals would print -0.05 and hide which side it is on
    assert paragraphs[1] == "d = -0.06 [-0.06, -0.0496] over seeds 0, 3, 7 (linear-cka, suite protocol)"
    assert paragraphs[2].startswith("SNN-vs-ANN CKA 0.61 vs its ceiling")
    rows = [[shown(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
            for r in re.findall(r"<tr>(.*?)</tr>", article, re.S)]
    assert rows == [
        ["measure", "protocol", "d", "95% interval", "verdict", "two-model similarity", "ceiling", "floor"],
        ["linear-cka", "suite", "-0.06", "[-0.06, -0.0496]", "inconclusive", "0.61",
         "SNN-vs-SNN' 0.83, ANN-vs-ANN' 0.91", "0.12"],
        ["procrustes", "suite", "-0.21", "[-0.30, -0.12]", "agrees", "0.55", "SNN-vs-SNN' 0.77", "0.20"],
        ["linear-cka", "snncka", "+0.03", "[-0.01, +0.07]", "inconclusive", "0.66", "-", "-"],
    ]
    # the order a reader meets them: claim and verdict, d, what d is, the table, the sentence as printed
    text = shown(article)
    places = [text.index(s) for s in ("says the twins differ", "d = -0.06", "SNN-vs-ANN CKA 0.61", "95% interval",
                                      "as printed")]
    assert places == sorted(places)
    assert exp.findings[0].sentence in text  # the whole sentence is still on the page, folded


def test_a_findings_file_without_estimates_still_shows_its_claim_and_verdict(tmp_path):
    exp = experiment(tmp_path)
    exp.findings[0].estimates, exp.findings[0].what = [], ""
    page = shown(write_page(tmp_path / "p.html", [experiment_section(exp)], []).read_text())
    assert "inconclusive the paper (Sec. 4) says the twins differ" in page and "95% interval" not in page
