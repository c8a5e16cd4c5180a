import pytest
import torch

from generator.config import NCAConfig
from generator.reference import reference_logits
from generator.rules import LANES, build_rule_tables, from_lanes, sample_rule_weights, to_lanes
from generator.step import cell_logits, sample_colours


def random_states(rules, trajs, seed=0):
    return torch.randint(0, 10, (rules, trajs, 12, 12), generator=torch.Generator().manual_seed(seed))


def logits_per_rule(states, tables, identity_bias=0.0):
    """(R, B, H, W, num_colours) logits of (R, B, H, W) states through the lane-layout step."""
    logits = cell_logits(to_lanes(states.to(torch.int32)), tables.colour_table, tables.hidden, tables.hidden_bias,
                         tables.readout, tables.readout_bias, identity_bias)
    return torch.stack([from_lanes(logit) for logit in logits], dim=-1)


def test_lanes_round_trip_and_put_rules_innermost():
    x = torch.arange(2 * LANES * 3).view(2 * LANES, 3)
    lanes = to_lanes(x)
    assert lanes.shape == (2, 3, LANES) and lanes[1, 2, 5] == x[LANES + 5, 2]
    assert torch.equal(from_lanes(lanes), x)


@pytest.mark.parametrize("wrap", [True, False])
def test_batched_logits_match_the_reference_convolution(wrap):
    nca = NCAConfig(wrap_colour_channels=wrap)
    weights = sample_rule_weights(0, torch.arange(LANES), nca)
    weights.conv_bias += 0.1  # exercise the bias folding too
    weights.readout_bias -= 0.05
    tables = build_rule_tables(weights, nca, "cpu")
    states = random_states(LANES, 3)
    logits = logits_per_rule(states, tables)
    for rule in range(LANES):
        expected = reference_logits(states[rule], weights, rule, nca)
        torch.testing.assert_close(logits[rule], expected, rtol=1e-5, atol=1e-5)


def test_identity_bias_adds_to_the_current_colour_only():
    nca = NCAConfig()
    tables = build_rule_tables(sample_rule_weights(0, torch.arange(LANES), nca), nca, "cpu")
    states = random_states(LANES, 1)
    plain, biased = logits_per_rule(states, tables), logits_per_rule(states, tables, 0.5)
    torch.testing.assert_close(biased - plain, 0.5 * torch.nn.functional.one_hot(states, 10).float())


def as_list(logits: torch.Tensor) -> list:
    return list(logits.unbind(-1))


def test_cold_sampling_takes_the_argmax_when_the_runner_up_is_far_behind():
    nca = NCAConfig()
    tables = build_rule_tables(sample_rule_weights(3, torch.arange(4 * LANES), nca), nca, "cpu")
    stacked = logits_per_rule(random_states(4 * LANES, 2), tables)
    top2 = stacked.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 64 * 1e-4
    assert 0.5 < clear.float().mean() < 1.0  # most cells, not all: the rest are real coin flips
    for seed in range(3):
        u = torch.rand(clear.shape, generator=torch.Generator().manual_seed(seed))
        drawn = sample_colours(as_list(stacked), u, 1e-4)
        assert torch.equal(drawn[clear], stacked.argmax(-1).to(torch.int32)[clear])


def test_inverse_cdf_sampler_draws_from_the_softmax():
    n = 200_000
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0]).expand(n, 4)
    u = torch.rand(n, generator=torch.Generator().manual_seed(0))
    draws = sample_colours(as_list(logits), u, temperature=1.0).long()
    observed = torch.bincount(draws, minlength=4).float() / n
    torch.testing.assert_close(observed, torch.softmax(logits[0], 0), atol=0.005, rtol=0)
    # T = 1e-4 and a 1e-3 lead: probabilities e^10 : 1 : 1
    cold = torch.tensor([0.0, 1e-3, 0.0]).expand(n, 3)
    draws = sample_colours(as_list(cold), torch.rand(n, generator=torch.Generator().manual_seed(1)), 1e-4).long()
    share = torch.bincount(draws, minlength=3).float() / n
    expected = torch.softmax(cold[0].double() / 1e-4, 0).float()
    torch.testing.assert_close(share, expected, atol=1.5e-3, rtol=0)
