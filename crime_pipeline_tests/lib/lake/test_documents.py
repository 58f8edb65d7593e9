"""Small lake documents (the ledger, the pull state) read with bounded work: a broken one is one sentence."""

from __future__ import annotations

import pytest

from crime_pipeline.lib.lake import documents
from crime_pipeline.lib.lake.documents import read_json, update_json
from crime_pipeline.lib.lake.errors import StageError


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"files": ' + "[" * 100_000, "nests arrays or objects too deeply to be a lake document"),
        ('{"files": ', "is not valid JSON (Expecting value at line 1, column 11)"),
    ],
)
def test_a_broken_document_is_one_sentence_naming_it(tmp_path, text, problem):
    path = tmp_path / "ingested.json"
    path.write_text(text)
    for read in (lambda: read_json(path, {}), lambda: update_json(path, lambda d: d, {})):
        with pytest.raises(StageError) as info:
            read()
        assert str(info.value) == f"{path} {problem}; restore it from a backup or move it aside", info.value


def test_a_document_over_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "ingested.json"
    path.write_text('{"files": {}}')
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 5)
    with pytest.raises(StageError, match=r"ingested\.json is 13 bytes, over the 5-byte limit for a lake document"):
        read_json(path, {})
