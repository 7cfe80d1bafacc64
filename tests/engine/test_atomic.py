"""Atomic saves give files the permissions a plain write would: the umask's for a new file,
the old file's own when one is replaced."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.atomic import atomic_write_text, current_umask


@pytest.fixture
def umask():
    """umask(mask) sets the process umask for the test; the old one comes back after."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)
    yield set_mask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def graph() -> engine.Graph:
    return engine.Graph.from_dict(graph_doc(
        [("in", "Input", {"shape": [3]}), ("fc", "Dense", {"units": 2}), ("out", "Output", {})],
        [("in", "fc"), ("fc", "out")]))


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    engine.save_graph(graph(), tmp_path / "m.json")
    net = engine.compile(graph())
    engine.save_bundle(tmp_path / "m.nbmodel", net)
    atomic_write_text(tmp_path / "t.txt", "x")
    for name in ("m.json", "m.nbmodel", "t.txt"):
        assert mode(tmp_path / name) == mode(plain) == 0o666 & ~mask, name


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    umask(0o022)
    p = tmp_path / "m.json"
    engine.save_graph(graph(), p)
    os.chmod(p, 0o640)
    engine.save_graph(graph(), p)
    assert mode(p) == 0o640
    b = tmp_path / "m.nbmodel"
    engine.save_bundle(b, engine.compile(graph()))
    os.chmod(b, 0o600)
    engine.save_bundle(b, engine.compile(graph()), history={"loss": [np.float32(1.0)]})
    assert mode(b) == 0o600
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.json", "m.nbmodel"]
