"""The findings file of an experiment (suite.results.experiment): write, read back, validate."""

import json

import pytest

from suite.errors import SuiteError
from suite.results.experiment import (Experiment, Finding, experiment_filename, read_experiment,
                                      write_experiment)
from suite.results.provenance import provenance


def finding(verdict="agrees", **measured):
    return Finding(key="deeper-more-dynamic", sentence="first 0.93 vs last 0.41: agrees",
                   measured=measured or {"first": 0.93, "last": 0.41}, claim="deeper layers change more",
                   source="Sec. 5 (section number not verified)", rule="last < first - 0.05",
                   verdict=verdict, files=[])


def experiment(tmp_path, **kw):
    result = tmp_path / "reports" / "cka-time.h5"
    return Experiment(recipe="temporal", config={"timesteps": [2, 4], "epochs": 1},
                      findings=[finding(**kw)], files={"results": [result], "figures": [],
                                                       "checkpoints": [tmp_path / "runs" / "a.pt"]},
                      provenance=provenance("cpu"))


def test_round_trip_keeps_findings_and_resolves_paths(tmp_path):
    exp = experiment(tmp_path)
    exp.findings[0].files = [tmp_path / "reports" / "cka-time.h5"]
    path = write_experiment(tmp_path, exp)
    assert path == tmp_path / experiment_filename("temporal") == tmp_path / "experiment-temporal.json"
    raw = json.loads(path.read_text())
    assert raw["files"]["results"] == ["reports/cka-time.h5"]  # relative: the folder can move
    assert raw["findings"][0]["files"] == ["reports/cka-time.h5"]
    back = read_experiment(path)
    assert back.recipe == "temporal" and back.config == {"timesteps": [2, 4], "epochs": 1}
    assert back.findings[0].measured == {"first": 0.93, "last": 0.41}
    assert back.findings[0].verdict == "agrees"
    assert back.files["results"] == [tmp_path / "reports" / "cka-time.h5"]
    assert back.files["checkpoints"] == [tmp_path / "runs" / "a.pt"]
    assert back.files["figures"] == []
    assert back.provenance["torch_version"] and back.provenance["device"] == "cpu"


def test_moved_folder_resolves_against_new_place(tmp_path):
    write_experiment(tmp_path / "a", experiment(tmp_path / "a"))
    (tmp_path / "a").rename(tmp_path / "b")
    back = read_experiment(tmp_path / "b" / "experiment-temporal.json")
    assert back.files["results"] == [tmp_path / "b" / "reports" / "cka-time.h5"]


def test_nan_is_written_as_null(tmp_path):
    path = write_experiment(tmp_path, experiment(tmp_path, first=float("nan"), last=0.5))
    assert '"first": null' in path.read_text()
    assert read_experiment(path).findings[0].measured == {"first": None, "last": 0.5}


def test_unknown_verdict_refused():
    with pytest.raises(SuiteError, match="verdict 'agree'"):
        finding(verdict="agree")


def test_non_number_measurement_refused():
    with pytest.raises(SuiteError, match="not a number"):
        finding(first="0.9")


def test_rewrite_leaves_no_temporary_files(tmp_path):
    write_experiment(tmp_path, experiment(tmp_path))
    write_experiment(tmp_path, experiment(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["experiment-temporal.json"]


@pytest.mark.parametrize("spoil, message", [
    (lambda d: "not json {", "not a JSON findings file"),
    (lambda d: json.dumps({"format": "other"}), "not a suite experiment file"),
    (lambda d: json.dumps({**d, "schema_version": 2}), "schema version 2"),
    (lambda d: json.dumps({k: v for k, v in d.items() if k != "findings"}), "lacks 'findings'"),
    (lambda d: json.dumps({**d, "findings": [{**d["findings"][0], "verdict": "maybe"}]}), "verdict 'maybe'"),
    (lambda d: json.dumps({**d, "findings": [{**d["findings"][0], "measured": {"x": "high"}}]}), "not a number"),
    (lambda d: json.dumps({**d, "provenance": {"command": "x"}}), "provenance lacks"),
    (lambda d: json.dumps({**d, "files": {"results": []}}), "lacks 'figures'"),
])
def test_bad_file_is_one_error_naming_it(tmp_path, spoil, message):
    path = write_experiment(tmp_path, experiment(tmp_path))
    path.write_text(spoil(json.loads(path.read_text())))
    with pytest.raises(SuiteError, match=message) as err:
        read_experiment(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(SuiteError, match="file not found"):
        read_experiment(tmp_path / "experiment-x.json")
