import torch

from generator.config import NCAConfig
from generator.rules import colour_weights, sample_rule_weights


def test_a_rule_has_686_parameters_and_zero_biases():
    nca = NCAConfig()
    w = sample_rule_weights(0, torch.arange(3), nca)
    assert nca.parameters_per_rule == 686
    sizes = [w.conv[0].numel(), w.conv_bias[0].numel(), w.hidden[0].numel(), w.hidden_bias[0].numel(),
             w.readout[0].numel(), w.readout_bias[0].numel()]
    assert sizes == [432, 4, 64, 16, 160, 10]
    assert w.conv_bias.eq(0).all() and w.hidden_bias.eq(0).all() and w.readout_bias.eq(0).all()
    assert NCAConfig(wrap_colour_channels=False).parameters_per_rule == 686 - 72


def test_lecun_normal_truncated_at_two_std_has_variance_one_over_fan_in():
    w = sample_rule_weights(7, torch.arange(2000), NCAConfig())
    # SPEC measured 0.098, 0.535 and 0.258 on a few reference rules; 1/sqrt(fan_in) is the definition.
    for tensor, fan_in in [(w.conv, 108), (w.hidden, 4), (w.readout, 16)]:
        assert abs(tensor.std().item() - fan_in**-0.5) < 0.01 * fan_in**-0.5
        assert abs(tensor.mean().item()) < 0.01 * fan_in**-0.5
        cut = 2 * fan_in**-0.5 / 0.87962566103423978
        assert tensor.abs().max().item() <= cut + 1e-6


def test_weights_depend_only_on_seed_and_rule_id():
    nca = NCAConfig()
    together = sample_rule_weights(5, torch.tensor([3, 10, 11]), nca)
    alone = sample_rule_weights(5, torch.tensor([10]), nca)
    assert torch.equal(together.conv[1], alone.conv[0]) and torch.equal(together.readout[1], alone.readout[0])
    assert not torch.equal(sample_rule_weights(6, torch.tensor([10]), nca).conv, alone.conv)


def test_colour_wrap_quirk_gives_colours_0_and_9_two_weight_sets():
    nca = NCAConfig()
    conv = torch.arange(1 * 3 * 3 * 12 * 4, dtype=torch.float32).view(1, 3, 3, 12, 4)
    table = colour_weights(conv, nca)  # (1, 9, 10, 4)
    per_offset = conv.view(1, 9, 12, 4)
    assert torch.equal(table[0, :, 4], per_offset[0, :, 5])  # colour 4 reads channel 5 only
    assert torch.equal(table[0, :, 0], per_offset[0, :, 1] + per_offset[0, :, 11])
    assert torch.equal(table[0, :, 9], per_offset[0, :, 10] + per_offset[0, :, 0])
    plain = colour_weights(torch.ones(1, 3, 3, 10, 4), NCAConfig(wrap_colour_channels=False))
    assert plain.eq(1).all()
