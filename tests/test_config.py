import pytest

from fedbandwidth.checks import ConfigError
from fedbandwidth.simulation import SimulationConfig, check_lesson_parameters


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"supernodes": 0}, "supernodes must be >= 1, got 0"),
        ({"supernodes": 2.5}, "supernodes must be a whole number"),
        ({"supernodes": True}, "supernodes must be a whole number"),
        ({"rounds": -1}, "rounds must be >= 1"),
        ({"fraction": 0.0}, r"fraction must lie in \(0, 1\]"),
        ({"fraction": 1.5}, r"fraction must lie in \(0, 1\]"),
        ({"fraction": float("nan")}, "fraction must lie"),
        ({"fraction_evaluate": -0.1}, r"fraction_evaluate must lie in \[0, 1\]"),
        ({"api": "grpc"}, "api must be one of legacy, message"),
        ({"model": "gpt2"}, "model 'gpt2' is not a shipped model"),
    ],
)
def test_bad_values_name_the_parameter(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SimulationConfig(**kwargs)


def test_min_nodes_never_exceeds_the_nodes():
    assert SimulationConfig(supernodes=1).min_nodes == 1
    assert SimulationConfig(supernodes=50).min_nodes == 2


def test_lesson_parameters_use_the_notebook_names():
    assert check_lesson_parameters(3, 2, 0.5) == SimulationConfig(3, 2, 0.5)
    with pytest.raises(ConfigError, match="num_supernodes must be >= 1"):
        check_lesson_parameters(0, 1, 1.0)
    with pytest.raises(ConfigError, match="fraction_fit must lie"):
        check_lesson_parameters(2, 1, 2.0)
    with pytest.raises(ConfigError, match="num_rounds must be a whole number"):
        check_lesson_parameters(2, "1", 1.0)
