import pytest

from generator.bands import parse_band
from generator.errors import ConfigError


@pytest.mark.parametrize(
    "text, lo, hi",
    [("high", 0.5, 1.0), ("upper", 0.4, 0.5), ("mid", 0.3, 0.4), ("low", 0.2, 0.3),
     ("web", 0.5, 1.0), ("math", 0.5, 1.0), ("code", 0.3, 0.4), ("0.35-0.6", 0.35, 0.6)],
)
def test_named_aliased_and_custom_bands(text, lo, hi):
    band = parse_band(text)
    assert (band.lo, band.hi) == (lo, hi)


def test_bounds_are_strict_on_both_sides():
    band = parse_band("mid")
    assert not band.accepts(0.3) and not band.accepts(0.4)
    assert band.accepts(0.30001) and band.accepts(0.39999)


@pytest.mark.parametrize(
    "text, words",
    [("huge", "unknown band"), ("0.5-0.3", "LO >= HI"), ("0.4-0.4", "LO >= HI"), ("0.5-1.5", "outside [0, 1]"),
     ("-0.1-0.3", "unknown band"), ("a-b", "unknown band")],
)
def test_bad_bands_name_the_valid_choices(text, words):
    with pytest.raises(ConfigError) as error:
        parse_band(text)
    message = str(error.value)
    assert words in message and "\n" not in message
    assert "0.35-0.6" in message  # every message shows a valid example
