import pytest
import torch

from generator.config import NCAConfig
from generator.reference import reference_logits
from generator.rules import build_rule_tables, sample_rule_weights
from generator.step import cell_logits, propose, sample_inverse_cdf


def random_states(rules, trajs, seed=0):
    return torch.randint(0, 10, (rules, trajs, 12, 12), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("wrap", [True, False])
def test_batched_logits_match_the_reference_convolution(wrap):
    nca = NCAConfig(wrap_colour_channels=wrap)
    weights = sample_rule_weights(0, torch.arange(6), nca)
    weights.conv_bias += 0.1  # exercise the bias folding too
    weights.readout_bias -= 0.05
    tables = build_rule_tables(weights, nca, "cpu")
    states = random_states(6, 3)
    logits = torch.stack(cell_logits(states, tables.neighbour_table, tables.hidden, tables.hidden_bias,
                                     tables.readout, tables.readout_bias, 0.0), dim=-1)
    for rule in range(6):
        expected = reference_logits(states[rule], weights, rule, nca)
        torch.testing.assert_close(logits[rule], expected, rtol=1e-5, atol=1e-5)


def test_identity_bias_adds_to_the_current_colour_only():
    nca = NCAConfig()
    tables = build_rule_tables(sample_rule_weights(0, torch.arange(2), nca), nca, "cpu")
    states = random_states(2, 1)
    args = (states, tables.neighbour_table, tables.hidden, tables.hidden_bias, tables.readout, tables.readout_bias)
    plain = torch.stack(cell_logits(*args, 0.0), -1)
    biased = torch.stack(cell_logits(*args, 0.5), -1)
    torch.testing.assert_close(biased - plain, 0.5 * torch.nn.functional.one_hot(states, 10).float())


@pytest.mark.parametrize("temperature", [1e-4, 1e-2, 1.0])
def test_argmax_shortcut_is_bitwise_the_full_inverse_cdf(temperature):
    nca = NCAConfig(temperature=temperature)
    tables = build_rule_tables(sample_rule_weights(3, torch.arange(64), nca), nca, "cpu")
    states = random_states(64, 2)
    best, contested, logits = propose(states, tables.neighbour_table, tables.hidden, tables.hidden_bias,
                                      tables.readout, tables.readout_bias, 0.0, temperature)
    u = torch.rand(states.shape, generator=torch.Generator().manual_seed(1))
    full = sample_inverse_cdf(logits, u, temperature)
    assert torch.equal(full[~contested], best[~contested])
    if temperature == 1e-4:
        assert 0 < contested.float().mean() < 0.2  # the shortcut covers most cells


def test_inverse_cdf_sampler_draws_from_the_softmax():
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0]).expand(200_000, 4)
    u = torch.rand(200_000, generator=torch.Generator().manual_seed(0))
    draws = sample_inverse_cdf(logits, u, temperature=1.0)
    expected = torch.softmax(logits[0], 0)
    observed = torch.bincount(draws, minlength=4).float() / len(draws)
    torch.testing.assert_close(observed, expected, atol=0.005, rtol=0)
    cold = sample_inverse_cdf(torch.tensor([[0.0, 1e-3, 0.0]]).expand(100_000, 3),
                              torch.rand(100_000, generator=torch.Generator().manual_seed(1)), 1e-4)
    share = torch.bincount(cold, minlength=3).float() / 100_000  # exp(10) : 1 : 1
    torch.testing.assert_close(share[1], torch.tensor(1 / (1 + 2 * torch.exp(torch.tensor(-10.0)).item())), atol=1e-3, rtol=0)
