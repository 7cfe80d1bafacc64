"""docs/api.md states the engine's public signatures: each one quoted here must appear in
the page and match the code, so the page cannot drift from it."""

import inspect
from pathlib import Path

import pytest

import engine
from engine import carry, cost, data, export, replay, resources, testing, training
from engine.optim import Optimizer

ROOT = Path(__file__).resolve().parents[2]
API = " ".join((ROOT / "docs" / "api.md").read_text(encoding="utf-8").split())
warmup_module = __import__("sys").modules["engine.warmup"]

# (what the page writes, the callable it describes, parameters to leave out: self)
DOCUMENTED = [
    ("Graph.from_dict(doc, validate=True)", engine.Graph.from_dict),
    ("g.validate(batch_size=1)", engine.Graph.validate),
    ("g.diagnose(batch_size=1)", engine.Graph.diagnose),
    ("g.connect(src, dst, port=0)", engine.Graph.connect),
    ("engine.load_graph(path, validate=True)", engine.load_graph),
    ("engine.save_graph(graph, path)", engine.save_graph),
    ("engine.compile(graph, seed=0, fuse=True)", engine.compile),
    ("engine.Network(graph, seed=0, dtype=np.float32, fuse=True)", engine.Network),
    ("net.forward(x, train=False)", engine.Network.forward),
    ("net.backward(dout)", engine.Network.backward),
    ("net.loss(y, x=None)", engine.Network.loss),
    ("net.train_step(x, y, opt)", engine.Network.train_step),
    ("net.predict(x, batch_size=256)", engine.Network.predict),
    ("net.load_state_dict(state, strict=True)", engine.Network.load_state_dict),
    ("net.astype(dtype)", engine.Network.astype),
    ("engine.SGD(lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=0.0)",
     engine.SGD),
    ("engine.Adam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, clip_norm=0.0)",
     engine.Adam),
    ("opt.step(params, grads, flat=None, norm=None, segments=None)", Optimizer.step),
    ("g.set_training(node_id, trainable=None, lr_mult=None)", engine.Graph.set_training),
    ("net.set_training(node_id, trainable=None, lr_mult=None)", engine.Network.set_training),
    ("engine.carry.carry_over(old, new, opt=None)", carry.carry_over),
    ("plan_carry(old, new)", carry.plan_carry),
    ("replay(log, dataset=None, start=None, base_dir=None)", replay.replay),
    ("compare(expected, got)", replay.compare),
    ("branch_checkpoint(parent_graph, ck, child_graph, seed, same_optimizer=True)",
     replay.branch_checkpoint),
    ("edit(graph)", replay.RunTape.edit),
    ("Trainer.replace_network(net)", training.Trainer.replace_network),
    ("engine.cost.training_cost(net)", cost.training_cost),
    ("engine.TrainSettings.from_dict(section=None, **overrides)", engine.TrainSettings.from_dict),
    ("engine.Trainer(net, data, settings=None, callbacks=None, optimizer=None, "
     "tune_threads=False)", engine.Trainer),
    ("trainer.evaluate(ds=None)", engine.Trainer.evaluate),
    ("trainer.replace_network(net)", engine.Trainer.replace_network),
    ("engine.training.train(net, data, settings=None, callbacks=None)", training.train),
    ("engine.load_dataset(spec, base_dir=None, **params)", engine.load_dataset),
    ("engine.Dataset(arrays, name=\"data\", class_names=None, task=None, meta=None, test=None)",
     engine.Dataset),
    ("engine.data.split_dataset(ds, val_split=0.1, test_split=0.0, seed=0, stratify=True)",
     data.split_dataset),
    ("engine.data.check_dataset(ds, model)", data.check_dataset),
    ("engine.data.fit_to_model(ds, model)", data.fit_to_model),
    ("engine.save_bundle(path, model, weights=None, history=None, extra=None, **meta)",
     engine.save_bundle),
    ("engine.load_bundle(path)", engine.load_bundle),
    ("export_onnx(model, path, seed=0)", export.export_onnx),
    ("build_onnx(model, seed=0)", export.build_onnx),
    ("export_pytorch(model, path, seed=0, data=None)", export.export_pytorch),
    ("pytorch_source(model, weights_file=\"model.npz\", seed=0)", export.pytorch_source),
    ("import_onnx(source, name=None, notes=None)", export.import_onnx),
    ("import_onnx_report(source, name=None)", export.import_onnx_report),
    ("supported_ops()", export.supported_ops),
    ("net.loss_backward(grads, input_grads=False)", engine.Network.loss_backward),
    ("net.add_hook(on_forward=None, on_backward=None)", engine.Network.add_hook),
    ("engine.Example(params, in_shapes, label=\"\")", engine.Example),
    ("engine.testing.check_layer_contract(type_name, ex, tmp_path, exports=True)",
     testing.check_layer_contract),
    ("engine.gradcheck(model, batch=2, seed=0, eps=1e-6, max_elements=50)", engine.gradcheck),
    ("engine.check_layer(type_name, params, in_shapes, batch=2, seed=0, eps=1e-6, train=True, "
     "max_elements=200, inputs=None)", engine.check_layer),
    ("engine.set_num_threads(n)", engine.set_num_threads),
    ("engine.warmup(callback=None, cancelled=None, first=None, rest=True)", warmup_module.warmup),
    ("resolve_model(arg)", resources.resolve_model),
]


def _params(text: str) -> list[tuple[str, str | None]]:
    inside = text[text.index("(") + 1:text.rindex(")")].replace("\n", " ")
    out = []
    for part in filter(None, (p.strip() for p in inside.split(","))):
        name, _, default = part.partition("=")
        out.append((name.strip(), default.strip() or None))
    return out


def _same_default(documented: str, actual: object) -> bool:
    if documented == "np.float32":
        return actual is __import__("numpy").float32
    try:
        return eval(documented, {}) == actual  # literals only: numbers, strings, None, bools
    except Exception:
        return False


@pytest.mark.parametrize(("text", "fn"), DOCUMENTED, ids=[d[0].split("(")[0] for d in DOCUMENTED])
def test_the_documented_signature_is_the_code(text, fn):
    assert " ".join(text.split()) in API, f"docs/api.md no longer says {text!r}"
    actual = [p for p in inspect.signature(fn).parameters.values() if p.name not in ("self", "cls")]
    documented = _params(text)
    assert [n.lstrip("*") for n, _d in documented] == [p.name for p in actual], text
    for (name, default), p in zip(documented, actual, strict=True):
        if name.startswith("*"):
            assert p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD), text
        elif default is None:
            assert p.default is p.empty, f"{text}: {name} has a default in the code"
        else:
            assert _same_default(default, p.default), f"{text}: {name}={p.default!r} in the code"


def test_every_public_engine_name_is_in_the_api_page():
    missing = [name for name in engine.__all__ if name not in API]
    assert not missing, f"docs/api.md does not mention {missing}"


def test_the_readme_links_the_docs_and_no_missing_design_note():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/model-format.md", "docs/layers.md", "docs/api.md"):
        assert f"]({page})" in readme and (ROOT / page).is_file()
    assert "DESIGN.md" not in readme
