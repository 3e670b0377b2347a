"""Plücker geometry: antisymmetry, Lagrange identity, Grassmann–Plücker relations, basis invariance."""

import math

import pytest
import torch

from gflow_lite.geometry import (
    grassmann_plucker_residual,
    n_plucker,
    normalize_plucker,
    pair_angle,
    plucker,
    plucker_norm,
    plucker_to_matrix,
    principal_angles,
)

DT = torch.float64


def test_coordinates_by_hand_and_order():
    u = torch.tensor([1.0, 2.0, 3.0], dtype=DT)
    v = torch.tensor([4.0, 5.0, 6.0], dtype=DT)
    # (0,1), (0,2), (1,2): row-major upper triangle
    expected = torch.tensor([1 * 5 - 2 * 4, 1 * 6 - 3 * 4, 2 * 6 - 3 * 5], dtype=DT)
    torch.testing.assert_close(plucker(u, v), expected)
    assert n_plucker(32) == 496 and plucker(torch.randn(32), torch.randn(32)).shape == (496,)


def test_r3_is_cross_product_up_to_order_and_sign():
    u, v = torch.randn(7, 3, dtype=DT), torch.randn(7, 3, dtype=DT)
    p, c = plucker(u, v), torch.linalg.cross(u, v)
    torch.testing.assert_close(p, torch.stack([c[:, 2], -c[:, 1], c[:, 0]], -1))


def test_antisymmetry_and_self_pair_is_zero():
    u, v = torch.randn(5, 8, dtype=DT), torch.randn(5, 8, dtype=DT)
    torch.testing.assert_close(plucker(v, u), -plucker(u, v))
    assert torch.count_nonzero(plucker(u, u)) == 0


def test_lagrange_identity():
    u, v = torch.randn(100, 16, dtype=DT), torch.randn(100, 16, dtype=DT)
    direct = plucker(u, v).norm(dim=-1)
    torch.testing.assert_close(plucker_norm(u, v), direct, rtol=1e-10, atol=1e-12)
    lhs = direct.square()
    rhs = u.square().sum(-1) * v.square().sum(-1) - (u * v).sum(-1).square()
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("r", [4, 6, 9])
def test_grassmann_plucker_relations_hold_for_wedges_only(r):
    u, v = torch.randn(10, r, dtype=DT), torch.randn(10, r, dtype=DT)
    res = grassmann_plucker_residual(plucker(u, v), r)
    assert res.shape[-1] == math.comb(r, 4)
    assert res.abs().max() < 1e-12
    # a generic bivector (sum of two wedges) is not a point of Gr(2, r)
    w, x = torch.randn(10, r, dtype=DT), torch.randn(10, r, dtype=DT)
    assert grassmann_plucker_residual(plucker(u, v) + plucker(w, x), r).abs().amax(-1).min() > 1e-3


def test_change_of_basis_scales_by_determinant():
    u, v = torch.randn(20, 10, dtype=DT), torch.randn(20, 10, dtype=DT)
    a, b, c, d = torch.randn(4, 20, 1, dtype=DT)
    lhs = plucker(a * u + b * v, c * u + d * v)
    torch.testing.assert_close(lhs, (a * d - b * c) * plucker(u, v), rtol=1e-10, atol=1e-10)


def test_normalised_coordinates_forget_positive_basis_change_and_scale():
    u, v = torch.randn(20, 10, dtype=DT), torch.randn(20, 10, dtype=DT)
    a, b, c, d = torch.randn(4, 20, 1, dtype=DT)
    det = a * d - b * c
    d = torch.where(det < 0, d - 2 * (a * d - b * c) / a, d)  # flip det sign to positive
    assert ((a * d - b * c) > 0).all()
    p_hat = normalize_plucker(plucker(u, v))
    q_hat = normalize_plucker(plucker(a * u + b * v, c * u + d * v))
    torch.testing.assert_close(q_hat, p_hat, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(normalize_plucker(plucker(3 * u, 0.5 * v)), p_hat, rtol=1e-9, atol=1e-9)


def test_matrix_form_is_antisymmetric_outer_difference():
    u, v = torch.randn(6, dtype=DT), torch.randn(6, dtype=DT)
    m = plucker_to_matrix(plucker(u, v), 6)
    torch.testing.assert_close(m, torch.outer(u, v) - torch.outer(v, u))


def test_angles():
    e = torch.eye(4, dtype=DT)
    assert abs(float(pair_angle(e[0], e[1])) - math.pi / 2) < 1e-12
    assert abs(float(pair_angle(e[0], 3 * e[0]))) < 1e-7
    plane1 = torch.stack([e[0], e[1]], -1)
    plane2 = torch.stack([e[0], math.cos(0.3) * e[1] + math.sin(0.3) * e[2]], -1)
    torch.testing.assert_close(principal_angles(plane1, plane2), torch.tensor([0.0, 0.3], dtype=DT))


def test_bad_input():
    with pytest.raises(ValueError, match="one length"):
        plucker(torch.randn(3), torch.randn(4))
    with pytest.raises(ValueError, match="r=1"):
        plucker(torch.randn(1), torch.randn(1))
