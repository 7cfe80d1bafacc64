"""docs/layers.md is generated from the layer registry and must not drift from it."""

from pathlib import Path

import engine
from engine import docgen

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_layer_reference_is_what_the_registry_generates():
    committed = (ROOT / "docs" / "layers.md").read_text(encoding="utf-8")
    assert committed == docgen.render(), \
        "docs/layers.md is out of date: run python -m engine.docgen and commit the result"


def test_the_reference_names_every_layer_type_and_param_with_its_help():
    text = docgen.render()
    for name, cls in engine.layer_types().items():
        section = text.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert " ".join(cls.help.split()) in section
        assert "- Exports to: ONNX, PyTorch" in section  # every layer type exports today
        ops = cls.capabilities().onnx_ops
        assert "- ONNX import: from " in section  # and imports, from its own ops
        assert all(f"`{op}`" in section for op in ops), (name, ops)
        for spec in cls.param_specs:
            row = next(line for line in section.splitlines()
                       if line.startswith(f"| `{spec.name}` |"))
            assert " ".join(spec.help.split()).replace("|", "\\|") in row


def test_check_mode_fails_on_a_stale_file(tmp_path, capsys):
    out = tmp_path / "layers.md"
    assert docgen.main(["-o", str(out)]) == 0
    assert docgen.main(["--check", "-o", str(out)]) == 0
    out.write_text(out.read_text(encoding="utf-8").replace("Dense", "Dens", 1), encoding="utf-8")
    assert docgen.main(["--check", "-o", str(out)]) == 1
    assert "out of date: run python -m engine.docgen" in capsys.readouterr().err
