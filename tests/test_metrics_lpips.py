"""LPIPS (AlexNet and VGG) against the reference ``lpips`` package, and weight loading."""

import numpy as np
import pytest
from metric_fixtures import REFERENCE, load_pair, record_id

from nlc_jax.metrics.inputs import MetricInputError
from nlc_jax.metrics.lpips import (
    LpipsWeightsError,
    default_weights_path,
    load_lpips_params,
    lpips,
)


def _params(net):
    try:
        default_weights_path(net)
    except LpipsWeightsError as e:
        pytest.skip(str(e))
    return load_lpips_params(net)


@pytest.fixture(scope="module")
def alex():
    return _params("alex")


@pytest.mark.parametrize("record", REFERENCE["pairs"], ids=record_id)
def test_lpips_alex_matches_reference(alex, record):
    a, b = load_pair(record)
    assert abs(float(lpips(a, b, alex)) - record["lpips_alex"]) < 1e-3


def test_lpips_vgg_matches_reference():
    vgg = _params("vgg")
    records = [r for r in REFERENCE["pairs"] if not r["crop"]]
    a = np.stack([load_pair(r)[0] for r in records])
    b = np.stack([load_pair(r)[1] for r in records])
    np.testing.assert_allclose(np.asarray(lpips(a, b, vgg)),
                               [r["lpips_vgg"] for r in records], atol=1e-3)


def test_lpips_identity_float_input_and_errors(alex):
    a, b = load_pair(REFERENCE["pairs"][0])
    assert float(lpips(a, a, alex)) == pytest.approx(0.0, abs=1e-6)
    assert float(lpips(a / 255.0, b / 255.0, alex, max_value=1.0)) == pytest.approx(
        REFERENCE["pairs"][0]["lpips_alex"], abs=1e-3)
    with pytest.raises(MetricInputError, match="at least 32x32"):
        lpips(a[:16, :16], b[:16, :16], alex)
    with pytest.raises(MetricInputError, match="shapes differ"):
        lpips(a, b[:-1], alex)


def test_safetensors_weights_and_bad_files(alex, tmp_path):
    from safetensors.numpy import save_file
    flat = {f"AlexNet_0/Conv_{i}/kernel": np.asarray(k) for i, (k, _) in enumerate(alex.convs)}
    flat |= {f"AlexNet_0/Conv_{i}/bias": np.asarray(b) for i, (_, b) in enumerate(alex.convs)}
    flat |= {f"NetLinLayer_{i}/Conv_0/kernel": np.asarray(w).reshape(1, 1, -1, 1)
             for i, w in enumerate(alex.lins)}
    save_file(flat, str(tmp_path / "alexnet.safetensors"))
    again = load_lpips_params("alex", tmp_path / "alexnet.safetensors")
    a, b = load_pair(REFERENCE["pairs"][1])
    assert float(lpips(a, b, again)) == pytest.approx(float(lpips(a, b, alex)), abs=1e-6)

    del flat["NetLinLayer_4/Conv_0/kernel"]
    save_file(flat, str(tmp_path / "broken.safetensors"))
    with pytest.raises(LpipsWeightsError, match="missing NetLinLayer_4"):
        load_lpips_params("alex", tmp_path / "broken.safetensors")
    (tmp_path / "junk.ckpt").write_bytes(b"not a pickle")
    with pytest.raises(LpipsWeightsError, match="cannot read"):
        load_lpips_params("alex", tmp_path / "junk.ckpt")
    with pytest.raises(MetricInputError, match="unknown LPIPS network"):
        load_lpips_params("squeeze")


def test_weight_files_may_only_hold_arrays(tmp_path):
    import pickle
    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"x": print}))
    with pytest.raises(LpipsWeightsError, match="refusing to load builtins.print"):
        load_lpips_params("alex", tmp_path / "evil.ckpt")


def test_missing_weights_dir_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NLC_LPIPS_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(LpipsWeightsError, match="holds no alexnet.ckpt"):
        default_weights_path("alex")
