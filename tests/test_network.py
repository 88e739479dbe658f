"""The social network: generation, reductions over friends, and ties that change."""

import networkx as nx
import numpy as np
import pytest

from metricpower.population import Network, Ties, make_citizens, make_network
from metricpower.scenario import load_preset


def random_network(n=300, m=900, seed=0) -> Network:
    rng = np.random.default_rng(seed)
    return Network.from_edges(n, rng.integers(0, n, m), rng.integers(0, n, m))


def edge_set(net) -> set[tuple[int, int]]:
    owner = np.repeat(np.arange(len(net.indptr) - 1), np.diff(net.indptr))
    return {(int(a), int(b)) for a, b in zip(owner, net.indices, strict=True)}


def test_ties_are_symmetric_without_loops_or_duplicates():
    net = random_network()
    edges = edge_set(net)
    assert all((b, a) in edges for a, b in edges)
    assert all(a != b for a, b in edges)
    assert len(edges) == len(net.indices)


def test_generated_network_has_the_asked_mean_degree_and_community_structure():
    sc = load_preset("essay", {"run": {"citizens": 20000}})
    citizens = make_citizens(sc)
    net = make_network(sc, citizens)
    # Poisson(mean/2) stubs, each a tie both ways; a local tie repeats an existing one
    # with chance about homophily · mean / community_size, and repeats are dropped.
    k, h, size = sc.network.mean_degree, sc.network.homophily, sc.network.community_size
    assert abs(net.degree.mean() - k * (1 - h * k / size)) < 0.1
    owner = np.repeat(np.arange(len(citizens)), net.degree)
    same_region = (citizens.region[owner] == citizens.region[net.indices]).mean()
    # homophily of ties stay in the community, so in the region; the rest land in the
    # region by chance (share²).
    h = sc.network.homophily
    shares = np.array([r.share for r in sc.population.regions])
    assert abs(same_region - (h + (1 - h) * (shares**2).sum())) < 0.01
    # Communities are blocks of community_size within a region: near in memory.
    near = np.abs(owner - net.indices) < sc.network.community_size
    assert abs(near.mean() - h) < 0.02


def test_friend_reductions_match_a_direct_loop():
    net = random_network()
    values = np.random.default_rng(1).normal(size=300)
    rows = [net.indices[net.indptr[i]:net.indptr[i + 1]] for i in range(300)]
    assert np.allclose(net.friend_sum(values), [values[r].sum() for r in rows])
    assert np.allclose(net.friend_min(values),
                       [values[r].min() if len(r) else np.inf for r in rows])


def test_reductions_work_across_chunks(monkeypatch):
    """The NumPy path gathers a chunk of ties at a time; chunk edges must not matter."""
    monkeypatch.setenv("METRICPOWER_KERNELS", "numpy")
    net = random_network()
    values = np.arange(300, dtype=np.float64)
    whole = net.friend_sum(values)
    monkeypatch.setattr(Network, "CHUNK", 7)
    assert np.array_equal(net.friend_sum(values), whole)


def test_assortativity_matches_networkx():
    net = random_network()
    values = np.random.default_rng(2).integers(0, 5, 300).astype(float)
    g = nx.Graph()
    g.add_nodes_from(range(300))
    g.add_edges_from(edge_set(net))
    nx.set_node_attributes(g, dict(enumerate(values)), "x")
    assert abs(net.assortativity(values) - nx.numeric_assortativity_coefficient(g, "x")) < 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_changed_ties_equal_a_network_built_from_the_final_ties(seed):
    rng = np.random.default_rng(seed)
    net = random_network(seed=seed)
    ties = Ties(net)
    edges = edge_set(net)
    n = 300
    for _ in range(5):
        wanted = rng.random(n) < 0.1
        owner, friend, where = ties.friends_of(np.flatnonzero(wanted), wanted)
        # every live tie out of the wanted citizens, and only those
        assert {(int(a), int(b)) for a, b in zip(owner, friend, strict=True)} == {
            (a, b) for a, b in edges if wanted[a]}
        go = (rng.random(len(where)) < 0.5) & ~wanted[friend]
        ties.drop(owner[go], friend[go], where[go])
        for a, b in zip(owner[go], friend[go], strict=True):
            edges -= {(int(a), int(b)), (int(b), int(a))}
        a, b = rng.integers(0, n, 20), rng.integers(0, n, 20)
        fresh = [(int(x), int(y)) for x, y in zip(a, b, strict=True)
                 if x != y and (int(x), int(y)) not in edges]
        fresh = list(dict.fromkeys(tuple(sorted(e)) for e in fresh))
        ties.form(np.array([e[0] for e in fresh], np.int64),
                  np.array([e[1] for e in fresh], np.int64))
        edges |= set(fresh) | {(y, x) for x, y in fresh}
    arr = np.array(sorted(edges))
    rebuilt = Network.from_edges(n, arr[:, 0], arr[:, 1])
    values = rng.normal(size=n)
    assert np.array_equal(ties.friend_count(), rebuilt.degree)
    assert np.allclose(ties.friend_sum(values), rebuilt.friend_sum(values))
    assert np.allclose(ties.friend_min(values), rebuilt.friend_min(values))
    assert abs(ties.assortativity(values) - rebuilt.assortativity(values)) < 1e-12


def test_compiled_kernels_give_identical_results(monkeypatch):
    """The Numba kernels (the `fast` extra) against the NumPy reference: the same CSR
    arrays, and the same sums and minima of integer-valued quantities (scores, flags)."""
    from metricpower.population import kernels

    assert kernels.use_numba(), "the test environment installs the fast extra"
    rng = np.random.default_rng(5)
    n = 2000
    a, b = rng.integers(0, n, 9000), rng.integers(0, n, 9000)
    fast = Network.from_edges(n, a, b)
    values = rng.integers(-500, 1500, n).astype(np.float64)
    sums, mins = fast.friend_sum(values), fast.friend_min(values)
    monkeypatch.setenv("METRICPOWER_KERNELS", "numpy")
    assert not kernels.use_numba()
    ref = Network.from_edges(n, a, b)
    assert np.array_equal(fast.indptr, ref.indptr)
    assert np.array_equal(fast.indices, ref.indices)
    assert np.array_equal(sums, ref.friend_sum(values))
    assert np.array_equal(mins, ref.friend_min(values))


def test_compiled_scatter_add_equals_numpy(monkeypatch):
    from metricpower.engine import backend

    rng = np.random.default_rng(6)
    index = rng.integers(0, 50, 1000)
    for value in (1, -1, rng.integers(-9, 9, 1000)):
        fast, ref = np.zeros(50, np.int32), np.zeros(50, np.int32)
        backend.scatter_add(fast, index, value)
        np.add.at(ref, index, value)
        assert np.array_equal(fast, ref)


def test_compiled_partners_equal_numpy(monkeypatch):
    sc = load_preset("essay", {"run": {"citizens": 5000}})
    citizens = make_citizens(sc)
    fast = make_network(sc, citizens)
    monkeypatch.setenv("METRICPOWER_KERNELS", "numpy")
    ref = make_network(sc, citizens)
    assert np.array_equal(fast.indptr, ref.indptr)
    assert np.array_equal(fast.indices, ref.indices)


def test_compiled_rate_bands_equal_numpy():
    """Sampler bands: half an octave each, citizens grouped by band in order."""
    from metricpower.engine import backend

    rng = np.random.default_rng(7)
    rate = (rng.lognormal(-4, 1.5, 5000) * (rng.random(5000) > 0.1)).astype(np.float32)
    top = float(rate.max())
    fast = backend._bands(rate, np.float32(top), 48)
    ref = backend.bands_numpy(rate, top, 48)
    assert np.array_equal(fast[0], ref[0]) and np.array_equal(fast[1], ref[1])
    # Every rate in band j lies within (top / 2^((j+1)/2), top / 2^(j/2)].
    band = ref[0]
    live = (rate > 0) & (band < 48)
    assert (rate[live] <= top / 2 ** (band[live] / 2) * (1 + 1e-6)).all()
    assert (rate[live] > top / 2 ** ((band[live] + 1) / 2) * (1 - 1e-6)).all()
    assert (band[rate == 0] == 48).all()
