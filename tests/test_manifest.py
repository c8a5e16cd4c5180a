"""The typed manifest: a manifest written before the model existed still parses and gives back its exact
bytes; a new one round-trips; bad versions, missing fields, inconsistent totals and unsafe shard names
are refused with one line naming the problem."""

import json
import os
import subprocess
import sys

import pytest

from generator.config import DatasetConfig, GeneratorConfig
from generator.format import DeviceRecord, ManifestError, load_manifest, parse_manifest
from generator.manifest import build_manifest
from tests.test_journal import WORKER, entry_for

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "manifest-format1-v0.1.0.json")
"""manifest.json of `python -m generator.pipeline --sequences 3000`, made by ncaforge 0.1.0 at commit 6b87151."""


def golden_bytes() -> bytes:
    with open(GOLDEN, "rb") as f:
        return f.read()


def golden_document() -> dict:
    return json.loads(golden_bytes())


def test_a_manifest_made_before_the_model_parses_and_round_trips_to_identical_bytes():
    manifest = parse_manifest(golden_bytes(), GOLDEN)
    assert manifest.dataset_id == "high-3000-3892b4eb6d1b" and manifest.totals.rows == 3000
    assert manifest.environment.workers is None and manifest.band.name == "high"
    assert manifest.dataset_config().generator.seed == 0 and manifest.row_starts() == [0]
    assert manifest.to_json_bytes() == golden_bytes()


def test_a_new_manifest_round_trips_with_its_workers(tmp_path):
    config = DatasetConfig(sequences=4, candidates_per_shard=1024, generator=GeneratorConfig(band="high"))
    entries = [entry_for(tmp_path, 0, b"first"), entry_for(tmp_path, 1, b"second")]
    device = DeviceRecord(**WORKER.model_dump(include=set(DeviceRecord.model_fields)))
    manifest = build_manifest("high-4-000000000000", config, device, entries)
    assert manifest.environment.workers == [WORKER]  # two shards, one worker environment
    assert manifest.totals.rows == 4 and manifest.acceptance.histogram.counts == [2] * 20
    (tmp_path / "manifest.json").write_bytes(manifest.to_json_bytes())
    again = load_manifest(str(tmp_path))
    assert again == manifest and again.to_json_bytes() == manifest.to_json_bytes()


def damaged(change) -> bytes:
    document = golden_document()
    change(document)
    return json.dumps(document).encode()


def test_an_unknown_format_version_is_refused_naming_the_version():
    with pytest.raises(ManifestError, match=r"format version 7 is not one this ncaforge reads \(1\): use the ncaforge "
                                            r"release that made the dataset"):
        parse_manifest(damaged(lambda d: d["format"].update(version=7)))


def test_another_format_name_is_refused():
    with pytest.raises(ManifestError, match="is not 'ncaforge-nca-shards': this is not an ncaforge dataset"):
        parse_manifest(damaged(lambda d: d["format"].update(name="parquet")))


@pytest.mark.parametrize("path", [("totals",), ("shards", 0, "sha256"), ("environment", "device", "kind")])
def test_a_missing_field_is_refused_naming_the_field(path):
    def remove(document):
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]

    with pytest.raises(ManifestError, match=rf"field {'.'.join(map(str, path))}: Field required") as error:
        parse_manifest(damaged(remove))
    assert "\n" not in str(error.value)


def test_totals_inconsistent_with_the_shards_are_refused():
    with pytest.raises(ManifestError, match="totals.rows is 3001 but the shards add up to 3000"):
        parse_manifest(damaged(lambda d: d["totals"].update(rows=3001)))


@pytest.mark.parametrize("name", ["../part-00000.arrow", "part-00000.arrow/../../x", "manifest.json"])
def test_a_shard_name_that_could_leave_the_folder_is_refused(name):
    with pytest.raises(ManifestError, match=r"field shards\.0\.name"):
        parse_manifest(damaged(lambda d: d["shards"][0].update(name=name)))


def test_a_folder_without_a_manifest_or_with_broken_json_gets_one_line_naming_the_fix(tmp_path):
    with pytest.raises(ManifestError, match="has no manifest.json: give a finished dataset folder"):
        load_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_bytes(golden_bytes()[:100])
    with pytest.raises(ManifestError, match="not valid JSON .* the dataset is damaged or still being written"):
        load_manifest(str(tmp_path))


def test_reading_manifests_and_configs_does_not_load_torch():
    code = "import sys, generator.config, generator.format, generator.journal; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
