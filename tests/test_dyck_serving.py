"""Dyck datasets downstream of the generator: the catalog lists and serves them with kind 'dyck', the client
downloads them verified over real HTTP, and `--stage nca` trains on them (from a folder or a catalog URL) with
no masked targets, vocabulary 128 and whole-sequence baselines, never mixing them with NCA shards."""

import hashlib
import io
import json
import logging
import math
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from generator import __version__
from generator.dyck.config import DyckConfig
from generator.dyck.format import DyckManifest, load_dyck_manifest
from generator.dyck.writer import make_dataset
from generator.format import MANIFEST_NAME
from service.app import create_app
from service.client import CatalogClient, CatalogError
from service.schemas import AnySummary, DyckSummary
from tests.service_datasets import damaged_copy, made_datasets
from tests.test_service_corpus import STDLIB_FILES
from tests.test_service_uvicorn import serving
from tests.trainer_runs import MICRO_MODEL, metrics, run_trainer
from trainer.config import resolve_config
from trainer.corpus import PrepareConfig, prepare_corpus
from trainer.data_plan import plan_data
from trainer.sources import DataError, open_dataset
from trainer.validation import validation_set

BASE_URL = "http://testserver"
SMALL_PIECE = 64 * 1024


@dataclass(frozen=True)
class Shards:
    root: Path
    """The shard folder: two Dyck datasets and a token corpus."""
    train: DyckManifest
    """1,300 rows: shard 0 holds 1,100 (two record batches), shard 1 the other 200."""
    held: DyckManifest
    """64 rows of seed 1: another dataset's sequences, for validation."""
    corpus_id: str

    def folder(self, manifest: DyckManifest) -> Path:
        return self.root / manifest.dataset_id


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Shards:
    root = tmp_path_factory.mktemp("dyck-shards")
    train = make_dataset(DyckConfig(sequences=1300, sequences_per_shard=1100), str(root), progress=False)
    held = make_dataset(DyckConfig(sequences=64, seed=1), str(root), progress=False)
    source = tmp_path_factory.mktemp("stdlib-sample")
    for name in STDLIB_FILES:
        shutil.copy(Path(sysconfig.get_paths()["stdlib"]) / name, source / name.replace("/", "_"))
    corpus = prepare_corpus(PrepareConfig(source=str(source), out=str(root), validation_fraction=0.2), progress=False)
    return Shards(root, train.manifest, held.manifest, corpus.manifest.corpus_id)


@pytest.fixture(scope="module")
def client(shards):
    return TestClient(create_app(str(shards.root)))


def rows_of(folder: Path) -> np.ndarray:
    tables = []
    for path in sorted(folder.glob("part-*.arrow")):
        with pa.memory_map(str(path)) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    return np.stack(pa.concat_tables(tables).column("tokens").to_numpy(zero_copy_only=False))


def listed(client, **params) -> list:
    response = client.get("/v1/datasets", params=params)
    assert response.status_code == 200, response.text
    return sorted((item["id"], item["kind"]) for item in response.json()["items"])


def test_dyck_datasets_are_listed_with_kind_dyck_and_the_filters_tell_the_kinds_apart(shards, caplog):
    with caplog.at_level(logging.WARNING, logger="ncaforge.catalog"):
        client = TestClient(create_app(str(shards.root)))
        everything = listed(client)
    assert caplog.records == []  # no manifest left out
    dyck = sorted([(shards.train.dataset_id, "dyck"), (shards.held.dataset_id, "dyck")])
    assert everything == sorted(dyck + [(shards.corpus_id, "token-corpus")])
    assert listed(client, kind="dyck") == dyck
    assert listed(client, kind="nca-shards") == [] and listed(client, band="high") == []  # no band: never matched
    assert listed(client, kind="dyck", min_tokens=1300 * 1025) == [(shards.train.dataset_id, "dyck")]
    assert listed(client, kind="dyck", generator_version=__version__) == dyck
    [item] = [i for i in client.get("/v1/datasets").json()["items"] if i["id"] == shards.train.dataset_id]
    assert (item["rows"], item["tokens"], item["shards"], item["bytes"], item["seed"]) == (
        1300, 1300 * 1025, 2, shards.train.totals.bytes, 0)
    assert (item["pairs"], item["max_depth"], item["p_open"]) == (64, 16, 0.5)


def test_the_summary_shard_list_and_manifest_are_the_datasets_own(client, shards):
    manifest = shards.train
    body = client.get(f"/v1/datasets/{manifest.dataset_id}").json()
    summary = AnySummary.model_validate(body).root
    assert isinstance(summary, DyckSummary) and summary.kind == "dyck"
    assert (summary.format, summary.config, summary.totals) == (manifest.format, manifest.config, manifest.totals)
    assert "band" not in body and "histogram" not in body["links"]
    items = client.get(summary.links.shards).json()["items"]
    assert [(i["name"], i["rows"], i["first_row"], i["first_sequence_id"], i["sha256"]) for i in items] == [
        ("part-00000.arrow", 1100, 0, 0, manifest.shards[0].sha256),
        ("part-00001.arrow", 200, 1100, 1100, manifest.shards[1].sha256)]
    assert client.get(summary.links.shards, params={"min_ratio": 0.5}).json()["items"] == []  # no ratios
    served = client.get(summary.links.manifest)
    data = (shards.folder(manifest) / MANIFEST_NAME).read_bytes()
    assert served.content == data and served.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'


def test_shard_bytes_are_served_whole_or_by_range_with_the_sha256_as_etag(client, shards):
    manifest = shards.train
    data = (shards.folder(manifest) / "part-00001.arrow").read_bytes()
    url = f"/v1/datasets/{manifest.dataset_id}/shards/part-00001.arrow"
    whole = client.get(url)
    assert whole.content == data and whole.headers["content-type"] == "application/vnd.apache.arrow.file"
    assert whole.headers["etag"] == f'"{manifest.shards[1].sha256}"'
    piece = client.get(url, headers={"Range": "bytes=100-1099"})
    assert piece.status_code == 206 and piece.content == data[100:1100]
    assert client.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304


def test_rows_across_record_batch_and_shard_boundaries_are_the_shard_files_rows(client, shards):
    manifest = shards.train
    expected = rows_of(shards.folder(manifest))
    for index, shard, row_in_shard in ((0, 0, 0), (1023, 0, 1023), (1024, 0, 1024), (1099, 0, 1099), (1100, 1, 0),
                                       (1299, 1, 199)):
        row = client.get(f"/v1/datasets/{manifest.dataset_id}/rows/{index}").json()
        assert (row["shard"], row["row_in_shard"], row["sequence_id"]) == (f"part-0000{shard}.arrow", row_in_shard, index)
        assert row["tokens"] == expected[index].tolist()
    past = client.get(f"/v1/datasets/{manifest.dataset_id}/rows/1300")
    assert past.status_code == 404 and "has 1300 rows" in past.json()["detail"]


def test_a_rows_preview_is_its_depth_profile_and_there_is_no_animation_or_histogram(client, shards):
    manifest = shards.train
    response = client.get(f"/v1/datasets/{manifest.dataset_id}/rows/1100/preview.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    depth = np.cumsum(np.where(rows_of(shards.folder(manifest))[1100] < 64, 1, -1))
    assert picture.shape[1] == 1025
    assert np.array_equal((picture[14:14 + 64] != 255).any(axis=2).sum(axis=0), depth * 4)
    for path, what in (("rows/0/preview.gif", "animation"), ("histogram.png", "histogram")):
        missing = client.get(f"/v1/datasets/{manifest.dataset_id}/{path}")
        assert missing.status_code == 404 and f"a Dyck dataset has no {what}" in missing.json()["detail"]


def test_the_client_downloads_a_dyck_dataset_over_real_http_and_verifies_every_shard(shards, tmp_path):
    manifest = shards.train
    with serving(shards.root, tmp_path) as server, CatalogClient(server.base_url, cache_dir=str(tmp_path / "cache")) as catalog:
        [item] = catalog.list_datasets(kind="dyck", min_tokens=100_000)  # the larger one
        paths = catalog.download_dataset(item["id"], piece_bytes=SMALL_PIECE)
        assert [Path(p).name for p in paths] == ["part-00000.arrow", "part-00001.arrow"]
        for path in paths:
            assert Path(path).read_bytes() == (shards.folder(manifest) / Path(path).name).read_bytes()
    copy = damaged_copy(shards.folder(manifest), tmp_path / "damaged", "part-00001.arrow")
    catalog = CatalogClient(BASE_URL, cache_dir=str(tmp_path / "cache2"), http=TestClient(create_app(str(copy.parent))))
    with pytest.raises(CatalogError, match=f"checksum mismatch for {manifest.dataset_id}/part-00001.arrow"):
        catalog.download_dataset(manifest.dataset_id, piece_bytes=SMALL_PIECE)


def test_a_dyck_dataset_trains_with_nothing_masked_and_holds_out_its_last_rows(shards):
    folder = str(shards.folder(shards.train))
    dataset = open_dataset(folder)
    assert (dataset.masked_targets, dataset.vocab_size, dataset.tokens_per_sequence, dataset.is_dyck) == (0, 128, 1025, True)
    config = resolve_config("tiny-cpu", [("data.train", folder), ("data.holdout_rows", "100"), ("train.eval_rows", "8")])
    plan = plan_data(config, world=1)
    assert (plan.train_rows, plan.validation_rows) == ((0, 1200), (1200, 1208))  # no rule boundary to move back to
    validation = validation_set(config, plan)
    assert validation.masked_targets == 0 and validation.frames is None
    assert tuple(validation.samples.shape) == (8, 1025)  # context 1024 + 1: a Dyck row is exactly one sample
    unigram, in_context = validation.baselines["unigram"], validation.baselines["in_context_unigram"]
    assert "per_frame" not in unigram and "per_frame" not in in_context
    assert abs(unigram["loss"] - math.log(128)) < 0.05  # brackets of 64 pairs, opening and closing about equally
    assert abs(in_context["loss"] - unigram["loss"]) < 0.01  # pairs are drawn afresh: copying earlier ones no help


def test_nca_and_dyck_datasets_are_never_mixed_in_one_run(shards, tmp_path_factory):
    nca = str(made_datasets(tmp_path_factory).mid.folder)
    dyck = str(shards.folder(shards.held))
    for train, validation, words in ((dyck, nca, "is ncaforge-nca-shards but training dataset"),
                                     (nca, dyck, "is ncaforge-dyck-shards but training dataset")):
        config = resolve_config("tiny-cpu", [("data.train", train), ("data.validation", validation),
                                             ("model.context", "128")])
        with pytest.raises(DataError, match=words):
            plan_data(config, world=1)


def test_a_trainer_run_from_the_catalog_logs_validation_loss_and_whole_sequence_baselines(shards, tmp_path):
    run = tmp_path / "run"
    with serving(shards.root, tmp_path) as server:
        result = run_trainer(0, ["--data", f"{server.base_url}/v1/datasets/{shards.train.dataset_id}",
                                 "--validation", str(shards.folder(shards.held)), "--train.run_dir", str(run),
                                 "--data.cache_dir", str(tmp_path / "cache"), *MICRO_MODEL, "--train.steps", "4",
                                 "--train.eval_every", "2", "--train.checkpoint_every", "4", "--train.eval_rows", "8",
                                 "--train.micro_batch", "2", "--data.loader_workers", "0"], tmp_path / "train.log")
    assert result.returncode == 0, result.stdout[-3000:]
    evaluations = metrics(run, "eval")
    assert [record["step"] for record in evaluations] == [0, 2, 4]
    for record in evaluations:
        assert record["validation"] == f"{shards.held.dataset_id} rows 0..7" and "per_frame" not in record
        assert math.isfinite(record["loss"]) and record["perplexity"] == pytest.approx(math.exp(record["loss"]))
        assert set(record["baselines"]) == {"unigram", "in_context_unigram"}
        assert all("per_frame" not in baseline for baseline in record["baselines"].values())
    assert evaluations[0]["loss"] == pytest.approx(math.log(128), abs=0.1)  # an untrained model: about uniform
    assert "(in-context unigram" in result.stdout  # the console line carries the baselines
    meta = json.loads((run / "step-00000004" / "meta.json").read_text())
    assert meta["vocab_size"] == 128 and meta["data"]["train"]["id"] == shards.train.dataset_id
    assert load_dyck_manifest(str(shards.folder(shards.train))).totals.rows == 1300
