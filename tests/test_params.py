import pytest

from jupyter_mlplat.errors import UsageError
from jupyter_mlplat.params import as_metric, parse_pair, parse_pairs, parse_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", 0.1),
        ("3", 3),
        ("-2", -2),
        ("1e-3", 1e-3),
        ("True", True),
        ("False", False),
        ("None", None),
        ("'x'", "x"),
        ('"two words"', "two words"),
        ("[1, 2]", [1, 2]),
        ("{'a': 1}", {"a": 1}),
        ("baseline", "baseline"),
        ("adam-v2", "adam-v2"),
        ("", ""),
        ("__import__('os')", "__import__('os')"),
    ],
)
def test_values_are_literals_when_they_parse(text, expected):
    assert parse_value(text) == expected
    assert type(parse_value(text)) is type(expected)


def test_pairs_keep_last_value_and_allow_metric_names():
    assert parse_pairs(["lr=0.1", "lr=0.2", "val/loss=1"]) == {"lr": 0.2, "val/loss": 1}
    assert parse_pair("expr=a=b") == ("expr", "a=b")


@pytest.mark.parametrize("bad", ["lr", "=0.1", "1lr=2", " =3", "a b c"])
def test_malformed_pairs_are_one_sentence_errors(bad):
    with pytest.raises(UsageError, match=r"Could not read .* as key=value"):
        parse_pair(bad)


def test_identifier_mode_refuses_metric_style_names():
    with pytest.raises(UsageError):
        parse_pair("val/loss=1", identifier=True)
    assert parse_pair("n_estimators=10", identifier=True) == ("n_estimators", 10)


@pytest.mark.parametrize("bad", ["abc", True, None, [1], "0.1"])
def test_metrics_must_be_numbers(bad):
    with pytest.raises(UsageError, match="must be a number"):
        as_metric("loss", bad)
    assert as_metric("loss", 2) == 2.0
