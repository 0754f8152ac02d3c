"""The grouping factors as the blocked engine sees them: amalgamation, order, the pair product."""

import numpy as np
from dense_reference import SHAPES, small_crossed_data
from scipy import sparse

from lmmflow.engine.blocked_factors import PairProduct, design_factors
from lmmflow.model.design import build_design


def test_the_factor_with_the_most_random_effects_comes_first():
    small_crossed = small_crossed_data()
    design = build_design(SHAPES["vector in the dense block, interaction first"], small_crossed)
    factors = design_factors(design)
    assert [(f.name, f.q) for f in factors] == [("g1:f", 1), ("g1", 1), ("g2", 2)]  # then lme4 order
    amalgamated = design_factors(build_design(SHAPES["double bar on both"], small_crossed))
    # g2's 7 levels x (1 + 3 dummies) outnumber g1's 12 x (1 + x): g2 first although lme4 lists g1 first
    assert [(f.name, f.q, f.blocks) for f in amalgamated] == [("g2", 4, (2, 3)), ("g1", 2, (0, 1))]


def test_pair_product_is_g_h_g_transposed():
    """One sparse matrix-vector product gives the lower triangle of G blockdiag(H_j) G' at its positions."""
    rng = np.random.default_rng(2)
    q, n_levels, q2 = 2, 6, 9
    G = sparse.random(q2, n_levels * q, density=0.4, random_state=3, format="csc")
    H = rng.normal(size=(n_levels, q, q))
    H = H @ H.transpose(0, 2, 1)
    expected = G @ sparse.block_diag(list(H)) @ G.T
    diagonal = np.arange(q2) * (q2 + 1)  # positions the caller also needs
    product = PairProduct(G, q, n_levels, diagonal)
    assert set(diagonal) <= set(product.positions)
    lower = product.scatter(product.matrix @ H.ravel())
    np.testing.assert_allclose(lower, np.tril(expected.toarray()), atol=1e-12)
    P = rng.normal(size=(q2, q2))
    P = P + P.T
    blocks = product.diagonal_blocks(P, q)
    for j in range(n_levels):
        G_j = G[:, j * q : (j + 1) * q].toarray()
        np.testing.assert_allclose(blocks[j], G_j.T @ P @ G_j, atol=1e-12)
