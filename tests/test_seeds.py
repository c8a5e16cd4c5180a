"""Known answers for the counter-based seeds: every dataset's bytes depend on them, so a change to the
scheme that is consistent with itself must still fail here. The reference below is written from the
scheme's text in seeds.SCHEME with plain Python integers, not from the module's code."""

import torch

from generator.seeds import PROBE_STREAM, SCHEME, fold_seed, mix32, stream_keys, uniforms

MOD = 2**32


def reference_mix32(x: int) -> int:
    """SCHEME['hash']: two rounds of x = ((x >> 16) ^ x) * 0x45D9F3B mod 2^32, then (x >> 16) ^ x."""
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) % MOD
    return (x >> 16) ^ x


def reference_fold_seed(seed: int) -> int:
    return reference_mix32(reference_mix32((seed % MOD) ^ 0x6E636166) ^ (seed >> 32))


def reference_stream_key(seed: int, rule: int, stream: int, purpose: int) -> int:
    key = reference_mix32((rule % MOD) ^ reference_fold_seed(seed))
    return reference_mix32(reference_mix32(reference_mix32(key ^ (rule >> 32)) ^ stream) ^ purpose)


def reference_uniform_bits(key: int, counter: int) -> int:
    """SCHEME['uniform'] before the division by 2^24: the top 24 bits of the hash."""
    return reference_mix32(key ^ reference_mix32((counter * 0x9E3779B1) % MOD)) >> 8


def test_the_scheme_text_is_the_one_the_reference_implements():
    assert SCHEME["hash"] == "mix32(x) = two rounds of x = ((x >> 16) ^ x) * 0x45D9F3B mod 2^32, then (x >> 16) ^ x"
    assert SCHEME["dataset_seed"] == "fold_seed(seed) = mix32(mix32((seed mod 2^32) ^ 0x6E636166) ^ (seed >> 32))"
    assert SCHEME["stream_key"] == "mix32(mix32(mix32(mix32(rule_id ^ fold_seed(seed)) ^ (rule_id >> 32)) ^ stream) ^ purpose)"
    assert SCHEME["uniform"] == "top 24 bits of mix32(key ^ mix32(counter * 0x9E3779B1 mod 2^32)) / 2^24"
    assert SCHEME["purposes"] == {"rule_weights": 1, "initial_colour_logits": 2, "initial_cells": 3, "cell_updates": 4}
    assert PROBE_STREAM == 2**32 - 1


def test_hand_pinned_values_of_the_hash_the_seed_fold_and_the_keys():
    assert mix32(0) == 0 and mix32(1) == 824515495 and mix32(0xDEADBEEF) == 1398006505
    assert fold_seed(0) == 3857346443 and fold_seed(2**40 + 7) == 676021075
    assert stream_keys(0, torch.tensor([0]), torch.tensor([0]), 1).tolist() == [1655911753]
    assert stream_keys(5, torch.tensor([2**33 + 9]), torch.tensor([PROBE_STREAM]), 4).tolist() == [2955064649]
    key = stream_keys(0, torch.tensor([123]), torch.tensor([0]), 4)
    assert key.tolist() == [2694440953]
    bits = (uniforms(key.view(1, 1), torch.tensor([[0, 1, 143]])) * 2**24).to(torch.int64)
    assert bits.tolist() == [[2988934, 857658, 2881989]]


def test_the_torch_code_matches_the_plain_integer_reference_over_many_coordinates():
    rng = torch.Generator().manual_seed(0)
    values = torch.randint(0, 2**62, (64,), generator=rng).tolist() + [0, 1, MOD - 1, MOD, 2**63 - 1]
    assert [mix32(v % MOD) for v in values] == [reference_mix32(v % MOD) for v in values]
    assert [int(mix32(torch.tensor(v % MOD))) for v in values] == [reference_mix32(v % MOD) for v in values]
    for seed in (0, 7, MOD + 3, 2**64 - 1):
        assert fold_seed(seed) == reference_fold_seed(seed)
        rules = torch.tensor([0, 1, 99_999, MOD - 1, MOD, 2**40 + 5])
        streams = torch.tensor([[0], [3], [PROBE_STREAM]])
        for purpose in (1, 2, 3, 4):
            keys = stream_keys(seed, rules, streams, purpose)
            expected = [[reference_stream_key(seed, r, s, purpose) for r in rules.tolist()] for s in streams.view(-1).tolist()]
            assert keys.tolist() == expected
    counters = torch.arange(0, 5000, 37)
    drawn = uniforms(keys.view(-1, 1), counters.view(1, -1)) * 2**24
    expected = [[reference_uniform_bits(k, c) for c in counters.tolist()] for k in keys.view(-1).tolist()]
    assert drawn.to(torch.int64).tolist() == expected
