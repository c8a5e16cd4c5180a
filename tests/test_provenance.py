"""Worker provenance without Ray: the refusal names the node and the difference, the manifest's worker
list does not depend on scheduling, and the test hook fakes versions in a worker only."""

import re

import pytest

from generator.errors import PipelineError
from generator.provenance import check_same_versions, distinct_workers, driver_versions, fake_versions
from tests.test_journal import WORKER

DRIVER = {"ncaforge": "0.1.0", "torch": "2.13.0+cpu", "numpy": "2.4.6", "zlib": "1.2.13", "python": "3.11.7", "kind": "cpu"}


def test_a_worker_with_the_driver_versions_passes_whatever_its_node_and_device_name():
    check_same_versions(WORKER.model_copy(update={"node": "10.0.0.9", "name": "Intel Xeon"}), DRIVER, "worker runs")


@pytest.mark.parametrize("field, value, label", [("torch", "2.12.0", "torch"), ("zlib", "1.3.1", "zlib"),
                                                 ("python", "3.12.1", "python"), ("ncaforge", "0.2.0", "ncaforge"),
                                                 ("numpy", "2.0.0", "numpy"), ("kind", "cuda", "device kind")])
def test_any_difference_that_changes_the_rows_is_refused_in_one_line_naming_the_node(field, value, label):
    worker = WORKER.model_copy(update={field: value})
    with pytest.raises(PipelineError, match=re.escape(f"worker on node 10.0.0.2 runs {label} {value} but the driver "
                                                      f"runs {DRIVER[field]}: install the same versions everywhere")):
        check_same_versions(worker, DRIVER, f"worker on node {worker.node} runs")


def test_the_worker_list_is_the_sorted_set_of_environments_whatever_made_which_shard():
    other_node = WORKER.model_copy(update={"node": "10.0.0.1"})
    made_by = [WORKER, other_node, WORKER, None, other_node]  # None: an entry journalled before workers were recorded
    assert distinct_workers(made_by) == distinct_workers(reversed(made_by)) == [other_node, WORKER]


def test_the_fake_versions_hook_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("NCAFORGE_TEST_FAKE_VERSIONS", "torch=0.0,zlib=9.9")
    assert fake_versions() == {"torch": "0.0", "zlib": "9.9"}
    assert driver_versions("cpu")["torch"] != "0.0"  # the driver never fakes
