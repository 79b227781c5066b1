"""Shared fixtures and the one assertion helper of the test suite."""

from __future__ import annotations

import os

import pytest
import torch

# The test problems are small: one torch thread is as fast on an idle machine, and on a loaded one
# (CI runners, parallel jobs) two threads fighting for two cores made some tests 20x slower.
torch.set_num_threads(int(os.environ.get("SKSHAPES_TEST_THREADS", "1")))

# TF32 would make float32 GPU matmuls disagree with KeOps at 1e-3; compare in full precision.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=200, deadline=None)
    settings.register_profile("dev", max_examples=30, deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # hypothesis is a dev dependency
    pass


def assert_close(actual, expected, rtol=1e-6, atol=0.0, name="value"):
    """Check shapes first, then values; report the largest difference and where it is."""
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected, dtype=actual.dtype, device=actual.device)
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    difference = (actual - expected).abs()
    bound = atol + rtol * expected.abs()
    if not bool((difference <= bound).all()):
        where = int(torch.argmax(difference - bound))
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(where), actual.shape)) if actual.ndim else ()
        raise AssertionError(
            f"{name}: max |difference| {float(difference.max()):.3e} at {index}: "
            f"actual {actual.flatten()[where].item():.10g} vs expected {expected.flatten()[where].item():.10g} "
            f"(rtol={rtol}, atol={atol})"
        )


def assert_close_f64(actual, expected, rtol=0.0, atol=0.0, name="value"):
    """Like :func:`assert_close`, but exact by default and compared in float64 after detaching.

    For tests that compare float32 results against float64 references at their own stated tolerance.
    """
    assert tuple(actual.shape) == tuple(expected.shape), f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    actual, expected = actual.detach().to(torch.float64), expected.detach().to(torch.float64)
    error = (actual - expected).abs()
    bound = atol + rtol * expected.abs()
    if (error > bound).any():
        worst = int((error - bound).argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), actual.shape)) if actual.ndim else ()
        raise AssertionError(
            f"{name}: max |difference| {error.max().item():.3e} at {index}: "
            f"{actual.reshape(-1)[worst].item()!r} vs {expected.reshape(-1)[worst].item()!r} (rtol={rtol}, atol={atol})"
        )


def assert_relative_close(actual, expected, rtol, name="value"):
    """Relative error in norm, ||actual - expected|| / ||expected|| <= rtol (for backend comparisons)."""
    actual, expected = torch.as_tensor(actual).detach(), torch.as_tensor(expected).detach()
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    error = float((actual - expected).norm() / expected.norm().clamp_min(1e-300))
    assert error <= rtol, f"{name}: relative error {error:.3e} > {rtol:.1e}"


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# The checks of sklearn.utils.estimator_checks that need no data: our estimators take shapes, landmark
# arrays or momenta, not the 2-D arrays that the data-based checks generate.
DATA_FREE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_estimator_tags_renamed",
]
