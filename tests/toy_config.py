"""Config of the toy codec (``tests/toy_codec.py``) for CLI tests."""

from ml_collections import config_dict


def get_config(preset: str = "default") -> config_dict.ConfigDict:
    del preset
    c = config_dict.ConfigDict()
    c.codec = "toy"
    c.lmbda = 0.001
    c.steps = 20
    return c
