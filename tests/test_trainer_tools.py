"""The tools that read runs and checkpoints: trainer.compare, trainer.evaluate, trainer.generate,
trainer.weights.

The speed-up is checked against hand-computed values on synthetic curves; compare's command
line on run folders whose metrics.jsonl the test writes. evaluate and generate read a real
checkpoint that the real trainer writes (one process, the micro model, two steps) on a small
corpus prepared from standard-library files.
"""

import json
import math
import re
import shutil
import sysconfig
from pathlib import Path

import pytest
import torch

from tests.trainer_runs import MICRO_MODEL, metrics, run_trainer
from trainer import compare, evaluate, generate, weights
from trainer.checkpoint import load_states, read_meta, save_checkpoint
from trainer.compare import Curve, first_crossing, speed_up
from trainer.config import ModelConfig
from trainer.corpus import PrepareConfig, prepare_corpus
from trainer.loading import load_checkpoint
from trainer.model import Transformer
from trainer.tokenizer import EOT, VOCAB_SIZE

STDLIB_FILES = ("textwrap.py", "bisect.py", "heapq.py", "shlex.py", "fnmatch.py", "colorsys.py", "keyword.py",
                "string.py", "glob.py", "abc.py", "copy.py")
TOKENS = (0, 100, 200, 300, 400)


# --- the speed-up on synthetic curves ------------------------------------------------------------

def test_first_crossing_interpolates_between_the_two_evaluations_around_the_target():
    assert first_crossing((0, 100, 200, 300), (50, 20, 10, 8), 15) == 150  # 100 + (20-15)/(20-10) * 100
    assert first_crossing((0, 100, 200, 300), (50, 20, 10, 8), 12) == pytest.approx(180)


def test_first_crossing_at_an_evaluation_point_is_that_point():
    assert first_crossing((0, 100, 200, 300), (50, 20, 10, 8), 10) == 200


def test_first_crossing_is_none_when_the_curve_never_comes_down_to_the_target():
    assert first_crossing((0, 100, 200, 300), (50, 20, 10, 8), 7.9) is None


def test_first_crossing_is_the_first_evaluation_when_it_is_already_below_the_target():
    assert first_crossing((100, 200), (9, 8), 10) == 100


def test_first_crossing_takes_the_first_of_several_crossings():
    assert first_crossing((0, 100, 200, 300), (50, 10, 30, 10), 20) == pytest.approx(75)


def test_speed_up_matches_hand_computed_values():
    scratch = Curve(TOKENS, (100, 40, 20, 15, 12))  # reaches its final 12 at its last evaluation: 400 tokens
    faster = Curve(TOKENS, (100, 30, 14, 11, 10))  # 12 between 200 (14) and 300 (11): 200 + 2/3 * 100
    assert speed_up(scratch, faster) == pytest.approx(400 / (200 + 200 / 3))  # 1.5
    assert speed_up(scratch, faster) == pytest.approx(1.5)
    assert speed_up(scratch, scratch) == 1.0
    slower = Curve((0, 200, 400, 600, 800), (100, 40, 20, 15, 12))
    assert speed_up(scratch, slower) == 0.5


def test_speed_up_is_none_for_a_run_that_never_reaches_the_target():
    assert speed_up(Curve(TOKENS, (100, 40, 20, 15, 12)), Curve(TOKENS, (100, 50, 30, 20, 13))) is None


def test_the_reference_is_measured_where_it_first_crossed_its_final_value():
    scratch = Curve(TOKENS, (100, 20, 11, 13, 12))  # first at 12 between 100 (20) and 200 (11): 100 + 8/9 * 100
    other = Curve(TOKENS, (100, 12, 11, 10, 9))  # exactly at 100
    assert speed_up(scratch, other) == pytest.approx((100 + 800 / 9) / 100)


def test_a_run_below_the_target_at_its_first_evaluation_is_read_there():
    scratch = Curve(TOKENS, (100, 40, 20, 15, 12))
    assert speed_up(scratch, Curve((50, 150), (11, 10))) == 8.0  # 400 / 50: a lower bound
    assert math.isinf(speed_up(scratch, Curve((0, 100), (11, 10))))


# --- compare's command line on synthetic runs ----------------------------------------------------

def write_run(folder: Path, perplexities: list, tokens=TOKENS, bits=None) -> Path:
    """A run folder whose metrics.jsonl holds a start line, a train line and one eval record per point."""
    folder.mkdir(parents=True)
    lines = [{"kind": "start", "step": 0}, {"kind": "train", "step": 1, "loss": 9.0, "tokens": 50}]
    for step, (count, perplexity) in enumerate(zip(tokens, perplexities)):
        record = {"kind": "eval", "step": step, "tokens": count, "loss": math.log(perplexity), "perplexity": perplexity}
        if bits:
            record["bits_per_byte"] = bits[step]
        lines.append(record)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_compare_prints_the_table_and_writes_the_png(tmp_path, capsys):
    scratch = write_run(tmp_path / "scratch", [100, 40, 20, 15, 12], bits=[3, 2, 1.5, 1.2, 1.1])
    nca = write_run(tmp_path / "nca", [100, 30, 14, 11, 10], bits=[3, 2, 1.4, 1.1, 1.0])
    dyck = write_run(tmp_path / "dyck", [100, 50, 30, 20, 13], bits=[3, 2, 1.6, 1.3, 1.15])
    out = tmp_path / "pictures" / "curves.png"
    out.parent.mkdir()
    assert compare.main([str(scratch), str(nca), str(dyck), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["run", "evals", "tokens", "perplexity", "bits/byte", "vs", "first", "tokens", "to",
                                  "target", "speed-up"]
    assert printed[1].split() == ["scratch", "5", "400", "12.00", "1.1000", "-", "400", "1.00x"]
    assert printed[2].split() == ["nca", "5", "400", "10.00", "1.0000", "-16.7%", "267", "1.50x"]
    assert printed[3].split() == ["dyck", "5", "400", "13.00", "1.1500", "+8.3%", "-", "never", "reached"]
    assert printed[4].startswith("target: perplexity 12.00, scratch's final")
    assert len({len(line) for line in printed[:4]}) == 1  # aligned: every row as wide as the header
    assert printed[5] == f"curves: {out}"
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [path.name for path in out.parent.iterdir()] == ["curves.png"]  # no temporary left behind


def test_compare_reads_the_speed_up_on_another_metric(tmp_path, capsys):
    scratch = write_run(tmp_path / "a" / "run", [100, 40, 20, 15, 12], bits=[3, 2, 1.5, 1.2, 1.2])
    other = write_run(tmp_path / "b" / "run", [100, 30, 14, 11, 10], bits=[3, 1.2, 1.1, 1.0, 0.9])
    assert compare.main([str(scratch), str(other), "--metric", "bits_per_byte", "--out",
                         str(tmp_path / "bits.png")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[2].split()[0] == str(other)  # two folders named "run": their paths tell them apart
    assert printed[2].split()[-1] == "3.00x"  # 1.2 reached at 100 tokens, scratch at 300
    assert printed[3].startswith("target: bits_per_byte 1.2000")


@pytest.mark.parametrize("case, message", [
    ("one run", "give at least two run folders"),
    ("no metrics", "has no metrics.jsonl"),
    ("no evaluations", "has no evaluation yet"),
    ("no bits per byte", "have no bits_per_byte"),
])
def test_compare_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, message):
    scratch = write_run(tmp_path / "scratch", [100, 40, 20, 15, 12])
    empty = tmp_path / "empty"
    empty.mkdir()
    unevaluated = tmp_path / "unevaluated"
    unevaluated.mkdir()
    (unevaluated / "metrics.jsonl").write_text(json.dumps({"kind": "start", "step": 0}) + "\n")
    argv = {"one run": [str(scratch)], "no metrics": [str(scratch), str(empty)],
            "no evaluations": [str(scratch), str(unevaluated)],
            "no bits per byte": [str(scratch), str(scratch), "--metric", "bits_per_byte"]}[case]
    with pytest.raises(SystemExit) as exit_info:
        compare.main([*argv, "--out", str(tmp_path / "never.png")])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and error.count("\n") == 1
    assert not (tmp_path / "never.png").exists()


# --- evaluate and generate on a real checkpoint -------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    """Eleven standard-library modules, one document each, about a fifth of them held out for validation."""
    source = tmp_path_factory.mktemp("code")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in STDLIB_FILES:
        shutil.copyfile(stdlib / name, source / name)
    out = tmp_path_factory.mktemp("corpora")
    prepared = prepare_corpus(PrepareConfig(source=str(source), out=str(out), validation_fraction=0.2), progress=False)
    return prepared.folder


@pytest.fixture(scope="module")
def language_run(tmp_path_factory, corpus) -> Path:
    """A two-step language run of the micro model from scratch, evaluated and checkpointed at step 2."""
    run = tmp_path_factory.mktemp("language") / "run"
    result = run_trainer(0, ["--stage", "language", "--data", corpus, *MICRO_MODEL, "--train.steps", "2",
                             "--train.eval_every", "2", "--train.checkpoint_every", "2", "--train.eval_rows", "2",
                             "--train.micro_batch", "2", "--data.loader_workers", "0", "--train.run_dir", str(run)],
                         run.parent / "run.log")
    assert result.returncode == 0, result.stdout[-3000:]
    return run


@pytest.fixture(scope="module")
def nca_labelled_checkpoint(tmp_path_factory, language_run) -> Path:
    """The language checkpoint saved again as a verified checkpoint whose metadata says stage 'nca'."""
    folder = language_run / "step-00000002"
    meta = read_meta(str(folder))
    meta["stage"] = meta["config"]["stage"] = "nca"
    run = tmp_path_factory.mktemp("relabelled")
    return Path(save_checkpoint(str(run), 2, load_states(str(folder)), meta, keep=1))


def test_evaluate_reproduces_the_runs_own_final_evaluation(language_run, capsys):
    final = metrics(language_run, "eval")[-1]
    assert evaluate.main([str(language_run / "step-00000002"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["step"], record["tokens"], record["rows"], record["validation"]) == \
           (final["step"], final["tokens"], final["rows"], final["validation"])
    for key in ("loss", "perplexity", "bits_per_byte"):
        assert record[key] == pytest.approx(final[key], rel=1e-6), key


def test_evaluate_on_named_data_and_fewer_rows(language_run, corpus, capsys):
    assert evaluate.main([str(language_run / "step-00000002"), "--data", corpus, "--rows", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == ["checkpoint", "validation", "loss", "perplexity", "bits/byte"]
    assert printed[1].endswith("rows 0..0")
    single = evaluate.evaluate_checkpoint(load_checkpoint(str(language_run / "step-00000002")), corpus, rows=1)
    assert printed[2] == f"loss        {single['loss']:.4f}" and single["rows"] == 1


@pytest.mark.parametrize("case, message", [
    ("missing", "is not a folder: give a checkpoint folder"),
    ("run folder", "is a run folder: give one of its checkpoints"),
    ("not a checkpoint", "meta.json is missing or unreadable"),
    ("missing data", "is not a folder: give a corpus folder"),
    ("wrong kind of data", "does not fit a 'nca' checkpoint: give NCA shards"),
])
def test_evaluate_bad_input_is_one_line_and_exit_2(language_run, nca_labelled_checkpoint, corpus, tmp_path, capsys,
                                                    case, message):
    checkpoint = str(language_run / "step-00000002")
    argv = {"missing": [str(tmp_path / "nothing")], "run folder": [str(language_run)], "not a checkpoint": [corpus],
            "missing data": [checkpoint, "--data", str(tmp_path / "nothing")],
            "wrong kind of data": [str(nca_labelled_checkpoint), "--data", corpus]}[case]
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(argv)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and error.count("\n") == 1, error


def test_generate_is_deterministic_for_a_seed_and_starts_with_the_prompt(language_run, capsys):
    checkpoint = str(language_run / "step-00000002")
    outputs = []
    for seed in (0, 0, 1):
        assert generate.main([checkpoint, "--prompt", "def ", "--tokens", "12", "--seed", str(seed)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]
    assert all(output.startswith("def ") and len(output) > len("def \n") for output in outputs)


class EndsDocumentsAfterFourTokens(torch.nn.Module):
    """A stand-in model: token 7 is likeliest until it reads 4 tokens at once, then <|endoftext|>."""

    def __init__(self, context: int):
        super().__init__()
        self.config, self.vocab_size = ModelConfig(context=context), VOCAB_SIZE
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*tokens.shape, VOCAB_SIZE)
        logits[..., EOT if tokens.shape[1] >= 4 else 7] = 1.0
        return logits


def test_sampling_stops_at_the_end_of_a_document_and_reads_at_most_the_models_context():
    assert generate.sample_tokens(EndsDocumentsAfterFourTokens(context=8), [EOT, 5], 10, 0, 0, 0) == [7, 7]
    assert generate.sample_tokens(EndsDocumentsAfterFourTokens(context=3), [EOT, 5], 10, 0, 0, 0) == [7] * 10


def test_sampling_keeps_only_the_top_k_tokens():
    logits = torch.tensor([0.0, 3.0, 2.9, 2.8, -1.0])
    drawn = {generate.next_token(logits, 1.0, 2, torch.Generator().manual_seed(seed)) for seed in range(200)}
    assert drawn == {1, 2}


@pytest.mark.parametrize("case, message", [
    ("nca checkpoint", "is a 'nca' checkpoint: its tokens are not text"),
    ("missing", "is not a folder: give a checkpoint folder"),
    ("negative temperature", "--temperature -0.5: give 0"),
    ("negative top-k", "--top-k -1: give 0"),
])
def test_generate_bad_input_is_one_line_and_exit_2(language_run, nca_labelled_checkpoint, tmp_path, capsys, case,
                                                    message):
    checkpoint = str(language_run / "step-00000002")
    argv = {"nca checkpoint": [str(nca_labelled_checkpoint)], "missing": [str(tmp_path / "nothing")],
            "negative temperature": [checkpoint, "--temperature", "-0.5"],
            "negative top-k": [checkpoint, "--top-k", "-1"]}[case]
    with pytest.raises(SystemExit) as exit_info:
        generate.main([*argv, "--prompt", "def "])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and error.count("\n") == 1, error


# --- trainer.weights ------------------------------------------------------------------------------

def test_a_fresh_model_is_at_its_initial_scale_in_every_group():
    config = ModelConfig(layers=2, d_model=64, heads=2, mlp_hidden=128, context=32)
    model = Transformer(config, 300)
    model.init_weights(torch.Generator().manual_seed(0))
    scales = weights.weight_scales(model.state_dict(), config)
    assert scales["attention output (wo)"][1] == scales["MLP down"][1] == pytest.approx(0.02 / 2)  # 1/sqrt(2 layers)
    assert scales["attention q, k, v"][1] == scales["embedding"][1] == 0.02
    for group, (rms, initial) in scales.items():
        assert rms == pytest.approx(initial, rel=0.05), group  # 4k to 25k draws per group
    assert scales["block norms"] == scales["final norm"] == (1.0, 1.0)


def test_weights_prints_each_groups_multiple_of_its_initial_scale_per_checkpoint(language_run, tmp_path, capsys):
    """A copy of a real checkpoint with q, k and v tripled: that row triples, every other row is unchanged."""
    folder = language_run / "step-00000002"
    states = load_states(str(folder))
    for name, tensor in states["model.pt"].items():
        if name.endswith(("wq.weight", "wk.weight", "wv.weight")):
            tensor.mul_(3)
    tripled = save_checkpoint(str(tmp_path / "tripled"), 2, states, read_meta(str(folder)), keep=1)
    assert weights.main([str(folder), tripled]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["group", f"{folder} (language)", f"{tripled} (language)"]
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in lines[1:])
            if cells[0] in (*weights.BLOCK_GROUPS, *weights.TOP_GROUPS)}
    assert list(rows) == [*weights.BLOCK_GROUPS, *weights.TOP_GROUPS]

    def rms_and_multiple(cell: str) -> tuple:
        rms, multiple = cell.split()
        return float(rms), float(multiple.strip("(x)"))

    for group, (before, after) in rows.items():
        if group == "attention q, k, v":
            (rms, multiple), (tripled_rms, tripled_multiple) = rms_and_multiple(before), rms_and_multiple(after)
            assert tripled_rms == pytest.approx(3 * rms, abs=2e-4)
            assert tripled_multiple == pytest.approx(3 * multiple, abs=0.02)
        else:
            assert after == before, group


@pytest.mark.parametrize("case, message", [
    ("missing", "is not a folder: give a checkpoint folder RUN/step-NNNNNNNN"),
    ("run folder", "is a run folder: give one of its checkpoints, e.g."),
    ("truncated", "model.pt is missing, truncated or corrupt"),
    ("no checkpoint", "the following arguments are required: CHECKPOINT"),
])
def test_weights_bad_input_is_one_line_and_exit_2(language_run, tmp_path, capsys, case, message):
    argv = {"missing": [str(tmp_path / "nothing")], "run folder": [str(language_run)],
            "truncated": [str(tmp_path / "step-00000002")], "no checkpoint": []}[case]
    if case == "truncated":
        shutil.copytree(language_run / "step-00000002", tmp_path / "step-00000002")
        with open(tmp_path / "step-00000002" / "model.pt", "r+b") as model_file:
            model_file.truncate(100)
    with pytest.raises(SystemExit) as exit_info:
        weights.main(argv)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and error.count("\n") == 1, error
