"""Model documents for tests."""
import itertools


def graph_doc(nodes, edges, **extra):
    """A model document from (id, type, params) triples and (src, dst[, port]) pairs."""
    return {
        "format": "netbuilder.graph", "version": 1, "name": extra.pop("name", "test"),
        "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
        "edges": [{"src": e[0], "dst": e[1], "port": e[2] if len(e) > 2 else 0} for e in edges],
        **extra,
    }


def chain_doc(input_shape, layers, loss="cross_entropy"):
    """Input -> layers... -> Output, each layer given as (type, params)."""
    nodes = [("in", "Input", {"shape": list(input_shape)})]
    nodes += [(f"n{i}", t, p) for i, (t, p) in enumerate(layers)]
    nodes.append(("out", "Output", {"loss": loss}))
    ids = [n[0] for n in nodes]
    return graph_doc(nodes, list(itertools.pairwise(ids)))
