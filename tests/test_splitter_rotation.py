"""Rotation utilities against a dense reference and the properties of a rotation."""

import pytest
import torch

from t2vlab.models.splitter.rotation import rotate, rotation_matrix, soft_rotate

D = 24


def vectors(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randn(n, D, generator=g), torch.randn(n, D, generator=g)


def test_matches_the_dense_rotation_and_handles_token_axes():
    v1, v2, x = vectors()
    R = rotation_matrix(v1, v2)
    torch.testing.assert_close(rotate(x, v1, v2), (R @ x[..., None]).squeeze(-1), atol=1e-5, rtol=1e-5)
    tokens = torch.randn(5, 7, D)
    torch.testing.assert_close(rotate(tokens, v1, v2), torch.einsum("bij,blj->bli", R, tokens), atol=1e-5, rtol=1e-5)


def test_is_a_rotation_taking_v1_to_v2s_direction():
    v1, v2, x = vectors(seed=1)
    R = rotation_matrix(v1, v2)
    eye = torch.eye(D).expand(5, -1, -1)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye, atol=1e-5, rtol=1e-5)  # orthogonal
    assert torch.allclose(torch.linalg.det(R), torch.ones(5), atol=1e-4)  # proper: det +1
    turned = rotate(v1, v1, v2)
    unit = lambda v: v / v.norm(dim=-1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(unit(turned), unit(v2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rotate(x, v1, v2).norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)
    # not the transpose (the reference's bug turned vectors away from the target)
    wrong = (R.transpose(1, 2) @ v1[..., None]).squeeze(-1)
    assert (torch.nn.functional.cosine_similarity(wrong, v2) < torch.nn.functional.cosine_similarity(turned, v2)).all()


def test_parallel_vectors_give_the_identity():
    v1, _, x = vectors(seed=2)
    torch.testing.assert_close(rotate(x, v1, 3 * v1), x)
    torch.testing.assert_close(rotation_matrix(v1, 2 * v1), torch.eye(D).expand(5, -1, -1))


@pytest.mark.parametrize("c,power", [(0.0, 1.0), (1.0, 1.0), (0.5, 2.0), (-0.7, 1.0), (1.8, 1.0)])
def test_soft_rotation_blends_with_the_cosine_clipped_to_unit_range(c, power):
    v1, v2, x = vectors(seed=3)
    w = min(max(c, 0.0), 1.0) ** power
    expected = (1 - w) * x + w * rotate(x, v1, v2)
    torch.testing.assert_close(soft_rotate(x, v1, v2, c, power), expected)
    per_item = torch.tensor([c, 0.0, 1.0, 0.3, 0.9])
    out = soft_rotate(x, v1, v2, per_item, power)
    for i, ci in enumerate(per_item.tolist()):
        wi = min(max(ci, 0.0), 1.0) ** power
        torch.testing.assert_close(out[i], (1 - wi) * x[i] + wi * rotate(x, v1, v2)[i])


def test_gradients_flow_through_the_rotation():
    v1, v2, x = vectors(seed=4)
    v2.requires_grad_(True)
    rotate(x, v1, v2).sum().backward()
    assert torch.isfinite(v2.grad).all() and v2.grad.abs().sum() > 0


def test_rotated_text_equals_rotating_every_copy_and_its_token_maps():
    from t2vlab.models.splitter.text_tokens import RotatedText

    g = torch.Generator().manual_seed(5)
    text = torch.randn(2, 7, D, generator=g)
    v1, v2 = torch.randn(2, 3, D, generator=g), torch.randn(2, 3, D, generator=g)
    weight = torch.rand(2, 3, generator=g)
    rt = RotatedText(text, v1, v2, weight)
    expected = torch.stack([soft_rotate(text, v1[:, j], v2[:, j], weight[:, j]) for j in range(3)], dim=1)
    torch.testing.assert_close(rt.tokens(), expected, atol=1e-5, rtol=1e-5)
    token_map = torch.randn(5, 7, generator=g)  # (O, L)
    base, left, right = rt.token_parts(torch.nn.Identity(), token_map)
    torch.testing.assert_close(base + left @ right, torch.einsum("bjld,ol->bjdo", expected, token_map),
                               atol=1e-4, rtol=1e-4)