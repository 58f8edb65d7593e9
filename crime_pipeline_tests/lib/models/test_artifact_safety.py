"""`crime-pipeline predict` with hostile input: formula cells escaped, tampered model files refused in a sentence."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from crime_pipeline.cli import main as cli_main
from crime_pipeline.lib.lake.layout import LakeLayout
from crime_pipeline.lib.models.artifacts import ArtifactError, load_model
from crime_pipeline.lib.models.metadata import seal_metadata
from crime_pipeline.lib.models.scoring import probability_column

FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "-1+1", "@SUM(A1)", "\t=1+2", "\r=1+3", '=HYPERLINK("http://x")']


def small_input(trained_lake: LakeLayout, target: Path, rows: int = 40, case_numbers: list[str] = ()) -> Path:
    """The first `rows` incidents of the trained lake's export, the first case numbers replaced."""
    reader = csv.reader(io.StringIO(next(trained_lake.incoming.iterdir()).read_text(encoding="utf-8")))
    header = next(reader)
    body = [row for _, row in zip(range(rows), reader)]
    column = header.index("Case Number")
    for row, value in zip(body, case_numbers):
        row[column] = value
    with open(target, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *body])
    return target


def test_formula_like_text_is_escaped_and_numbers_stay_numbers(trained, tmp_path, monkeypatch, capsys):
    lake, _, _ = trained
    source = small_input(lake, tmp_path / "in.csv", case_numbers=FORMULAS)
    out = tmp_path / "scored.csv"
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(lake.root))
    assert cli_main(["predict", "--model", "baseline", "--input", str(source), "--out", str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_line = {int(r["source_line"]): r for r in rows}
    # Line 2 holds the first replaced case number; cells are trimmed on reading, then escaped.
    escaped = [by_line[2 + i]["case_number"] for i in range(len(FORMULAS)) if 2 + i in by_line]
    assert escaped == ["'" + f.strip() for f in FORMULAS][: len(escaped)] and len(escaped) >= 6
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), (column, value)
        assert float(row["longitude"]) < 0 and not row["longitude"].startswith("'")  # -78.8: a number, unescaped
        assert not row["case_number"].startswith("-")
        meta = json.loads((lake.models / "baseline.json").read_text())
        assert abs(sum(float(row[probability_column(c)]) for c in meta["classes"]) - 1) < 1e-6


def _rewrite(meta_path: Path, change) -> None:
    """Edit the metadata as a forger would: fixing its seal too (an unsealed edit is refused first)."""
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(seal_metadata(meta)))


def _drop_last_feature(meta: dict) -> None:
    meta["features"] = meta["features"][:-1]
    meta["scaler"].pop(list(meta["scaler"])[-1])


def _rename_a_feature(meta: dict) -> None:
    meta["features"][0] = "secret_sauce"
    meta["scaler"] = {("secret_sauce" if k == list(meta["scaler"])[0] else k): v for k, v in meta["scaler"].items()}


def _weights_name_a_directory(meta_path: Path) -> None:
    (meta_path.parent / "evil").mkdir()
    _rewrite(meta_path, lambda m: m.update(weights_file="evil"))


def _metadata_is_a_directory(meta_path: Path) -> None:
    meta_path.unlink()
    meta_path.mkdir()


# (kind, tampering, the sentence's tail after the file name)
TAMPERED = {
    "invalid_json": (
        "baseline",
        lambda p: p.write_text('{"weights_file": '),
        r"is not valid JSON \(Expecting value at line 1, column 18\)",
    ),
    "json_array": ("baseline", lambda p: p.write_text("[1, 2]"), "holds a JSON array, not an object"),
    "json_null": ("gbdt", lambda p: p.write_text("null"), "holds a JSON null, not an object"),
    "not_utf8": ("baseline", lambda p: p.write_bytes(b'{"a": "\xff\xfe"}'), r"is not UTF-8 text \(byte 7\)"),
    "metadata_is_a_directory": ("baseline", _metadata_is_a_directory, "is not a regular file"),
    "no_sha256": (
        "baseline",
        lambda p: _rewrite(p, lambda m: m.pop("weights_sha256")),
        "has no 'weights_sha256' entry",
    ),
    "sha256_a_number": (
        "mlp",
        lambda p: _rewrite(p, lambda m: m.update(weights_sha256=12)),
        "has an invalid 'weights_sha256' entry \\('12'\\)",
    ),
    "no_weights_file": ("gbdt", lambda p: _rewrite(p, lambda m: m.pop("weights_file")), "has no 'weights_file' entry"),
    "weights_file_empty": (
        "baseline",
        lambda p: _rewrite(p, lambda m: m.update(weights_file="")),
        "has an invalid 'weights_file' entry \\(''\\)",
    ),
    "classes_a_string": (
        "baseline",
        lambda p: _rewrite(p, lambda m: m.update(classes="Theft")),
        "has an invalid 'classes' entry \\('Theft'\\)",
    ),
    "scaler_missing_a_column": (
        "baseline",
        lambda p: _rewrite(p, lambda m: m["scaler"].popitem()),
        "has a 'scaler' whose columns are not its 'features'",
    ),
    "other_kind": (
        "baseline",
        lambda p: _rewrite(p, lambda m: m.update(kind="gbdt")),
        "describes a 'gbdt' model, not 'baseline'",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED) + ["weights_name_a_directory", "fewer_features", "unknown_feature"])
def test_a_tampered_model_file_is_one_sentence_and_exit_1(case, trained, tmp_path, monkeypatch, capsys):
    lake, _, _ = trained
    tampered = LakeLayout(tmp_path / "lake")
    shutil.copytree(lake.models, tampered.models)
    source = small_input(lake, tmp_path / "in.csv")
    if case in TAMPERED:
        kind, tamper, problem = TAMPERED[case]
        named = tampered.models / f"{kind}.json"
        tamper(named)
        expected = f"{re.escape(str(named))} {problem}; retrain with the {kind}_model asset or restore the file"
        with pytest.raises(ArtifactError):
            load_model(tampered.models, kind)
    elif case == "weights_name_a_directory":
        kind = "gbdt"
        _weights_name_a_directory(tampered.models / "gbdt.json")
        expected = f"{re.escape(str(tampered.models / 'evil'))} \\(named by gbdt.json\\) is not a regular file"
    elif case == "fewer_features":
        kind = "gbdt"
        _rewrite(tampered.models / "gbdt.json", _drop_last_feature)
        expected = (
            r"gbdt-[0-9a-f]{12}\.skops has (\d+) features and class ids up to 8, "
            r"but its metadata lists \d+ features and 9 classes"
        )
    else:
        kind = "baseline"
        _rewrite(tampered.models / "baseline.json", _rename_a_feature)
        expected = (
            f"{re.escape(str(tampered.models / 'baseline.json'))} names features this version does not "
            "compute: secret_sauce"
        )
    monkeypatch.setenv("CRIME_PIPELINE_LAKE", str(tampered.root))
    capsys.readouterr()
    code = cli_main(["predict", "--model", kind, "--input", str(source), "--out", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 1
    assert re.fullmatch(f"error: {expected}\n", err), err
    assert not (tmp_path / "out.csv").exists()
