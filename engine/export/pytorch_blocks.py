"""The PyTorch script of a model with blocks: each block becomes an ``nn.Module`` class
(blocks whose code comes out the same share one class) and the model holds one instance per
Block node, so ``state_dict`` keys nest: ``"res1.conv1.weight"`` for NetBuilder's
``"res1-conv1.weight"`` (``PytorchContext.state_keys`` maps them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..blocks import Block, Edge, Node, derived_id
from .common import py_identifier

if TYPE_CHECKING:
    from .common import ModelView
    from .pytorch_export import PytorchContext


def _order(nodes: dict[str, Node], edges: list[Edge]) -> list[str]:
    """Node ids, each after the nodes that feed it (file order breaks ties)."""
    indeg = dict.fromkeys(nodes, 0)
    succ: dict[str, list[str]] = {}
    for e in edges:
        if e.src in nodes and e.dst in nodes:
            indeg[e.dst] += 1
            succ.setdefault(e.src, []).append(e.dst)
    rank = {n: i for i, n in enumerate(nodes)}
    ready = sorted((n for n, d in indeg.items() if d == 0), key=rank.__getitem__)
    out: list[str] = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for m in succ.get(n, []):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
                ready.sort(key=rank.__getitem__)
    return out


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(d) for d in shape) + ")"


class BlockWriter:
    """Writes the block classes of one script into ``classes`` (name -> source)."""

    def __init__(self, ctx: PytorchContext, view: ModelView, module_attrs: frozenset[str],
                 class_name: Callable[[str], str], doc_text: Callable[[str], str]) -> None:
        self.ctx = ctx
        self.view = view
        self.module_attrs = module_attrs
        self.class_name = class_name
        self.doc_text = doc_text
        self.classes: dict[str, str] = {}
        self._by_text: dict[str, str] = {}

    def scope_lines(self, prefix: str, path: str, nodes: dict[str, Node], edges: list[Edge],
                    locals_: dict[str, str]) -> tuple[list[str], list[str]]:
        """``__init__`` and ``forward`` lines for ``nodes`` (flat ids ``prefix-<id>``, or the
        ids themselves at the top); ``path``: the module path of this scope ("" or
        "res1."); ``locals_``: variable names of the scope's inputs and nodes."""
        init: list[str] = []
        fwd: list[str] = []
        taken_mod: set[str] = set()
        for nid in _order(nodes, edges):
            node = nodes[nid]
            fid = derived_id(prefix, nid) if prefix else nid
            xs = [locals_[e.src] for e in sorted((e for e in edges if e.dst == nid),
                                                 key=lambda e: e.port)]
            name = nid if nid not in self.module_attrs and not nid.startswith("_") else nid + "_"
            name = py_identifier(name, taken_mod)
            if node.block is not None:
                cls = self.block_class(fid, f"{path}{name}.", node.block)
                init.append(f"self.{name} = {cls}()")
                fwd.append(f"{locals_[nid]} = self.{name}({', '.join(xs)})")
                continue
            layer = self.view.layers[fid]
            if prefix:
                self.ctx.module_path[fid] = f"{path}{name}"
                self.ctx.scope_name[fid] = name
            i, f = layer.to_pytorch(self.ctx, xs, locals_[nid])
            if f and layer.type_name != "Output":
                fwd.append(f"# {nid}: {layer.type_name} -> {_shape_text(self.view.shapes[fid])}")
            init += i
            fwd += f
        return init, fwd

    def block_class(self, fid: str, path: str, block: Block) -> str:
        """The name of the class of block node ``fid`` (written once per distinct code)."""
        taken = {"self", "torch", "nn", "F", "np", "math"}
        locals_ = {p: py_identifier(p, taken) for p in block.inputs}
        locals_.update({nid: py_identifier(nid, taken) for nid in block.nodes})
        init, fwd = self.scope_lines(fid, path, block.nodes, block.edges, locals_)
        args = ", ".join(f"{locals_[p]}: torch.Tensor" for p in block.inputs)
        body = ["    def __init__(self) -> None:", "        super().__init__()"]
        body += ["        " + ln for ln in init]
        body += ["", f"    def forward(self, {args}) -> torch.Tensor:"]
        body += ["        " + ln for ln in fwd]
        body += [f"        return {locals_[block.output]}"]
        text = "\n".join(body)
        if text in self._by_text:
            return self._by_text[text]
        base = self.class_name(block.name) if block.name else "Block"
        cname, k = base, 2
        while cname in self.classes or cname == self.class_name(self.view.name):
            cname, k = f"{base}{k}", k + 1
        n = block.layer_count()
        head = [f"class {cname}(nn.Module):",
                f'    """Block {self.doc_text(block.name)}: {n} layer{"s" if n != 1 else ""}."""',
                ""]
        self.classes[cname] = "\n".join(head) + "\n" + text
        self._by_text[text] = cname
        return cname
