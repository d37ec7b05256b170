"""What DeepLIFT's φ sums to and what its delta measures, as the docstrings say (issue 8)."""
import numpy as np

import swiftattr as sa


def softmax_net(rng):
    return sa.Sequential([sa.Linear(rng.standard_normal((5, 4)), rng.standard_normal(5)), sa.Tanh(),
                          sa.Linear(rng.standard_normal((3, 5)), rng.standard_normal(3)), sa.Softmax()])


def centred_logit_difference(net, x, b, t):
    """(z_t(x) − z_t(x⁰)) − mean_c (z_c(x) − z_c(x⁰)), from the logits (the input of the final Softmax)."""
    dz = net.activations(x, net.num_layers - 1).astype(np.float64) - net.activations(b, net.num_layers - 1)
    return dz[np.arange(len(t)), t] - dz.mean(1)


def test_softmax_phi_sums_to_the_centred_logit_difference_and_delta_is_measured_against_it(rng):
    net = softmax_net(rng)
    x, b = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 1, 2, 0, 1, 2])
    target = centred_logit_difference(net, x, b, t)
    phi, delta = sa.deeplift(net, x, b, target=t, return_convergence_delta=True)
    total = phi.astype(np.float64).sum(1)
    # Rescale through Tanh is exact: Σφ equals the centred logit difference up to float32 rounding of
    # O(10) terms of size O(1) (a few 1e-7 relative); the probability difference is something else.
    np.testing.assert_allclose(total, target, rtol=1e-5, atol=1e-5)
    probs = (net(x) - net(b))[np.arange(6), t]
    assert np.abs(total - probs).max() > 1e-2
    # delta = Σφ − (centred logit difference): what φ sums to, not f_t(x) − f_t(x⁰) of the probabilities.
    np.testing.assert_allclose(delta, total - target, atol=2e-5)
    assert np.abs(delta).max() < 2e-5
    # With multiply_by_inputs=False the returned arrays are multipliers, and delta still measures contributions.
    _, delta_m = sa.deeplift(net, x, b, target=t, multiply_by_inputs=False, return_convergence_delta=True)
    np.testing.assert_array_equal(delta_m, delta)
    # DeepSHAP: against the mean over references of the centred logit differences.
    refs = rng.standard_normal((3, 4)).astype(np.float32)
    phi_s, delta_s = sa.deepshap(net, x, refs, target=t, return_convergence_delta=True)
    expected = np.mean([centred_logit_difference(net, x, np.tile(r, (6, 1)), t) for r in refs], axis=0)
    np.testing.assert_allclose(phi_s.astype(np.float64).sum(1), expected, rtol=1e-5, atol=1e-5)
    assert np.abs(delta_s).max() < 2e-5


def test_docstrings_say_which_rule_equals_which_library():
    doc = " ".join(sa.deeplift.__doc__.split())
    assert 'maxpool="gradient"' in doc and "Captum's DeepLift and DeepLiftShap" in doc
    assert "shap's DeepExplainer" in doc
    assert "Captum's rule" not in doc.split('"crossmax"')[1][:80]  # crossmax is no longer called Captum's
    assert "centred logit difference" in doc
    assert "delta" in doc and "what φ sums to" in doc
    shap_doc = " ".join(sa.deepshap.__doc__.split())
    assert "centred logit difference" in shap_doc and "what φ sums to" in shap_doc
