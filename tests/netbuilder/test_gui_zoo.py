"""File ▸ New from Template, driven through the real menu."""

from __future__ import annotations

from guidocs import small_doc
from PySide6.QtCore import QPointF

from engine.zoo import TEMPLATES
from netbuilder.canvas.block_item import BlockItem


def test_new_from_template_menu_opens_resnet20_with_collapsed_blocks(make_window):
    drv = make_window(small_doc([("in", "Input", {"shape": [4]})], []))
    w = drv.w
    acts = w.file_menu.actions()
    i = acts.index(w.act_new)
    assert acts[i + 1].menu() is w.templates.menu
    titles = [a.text() for a in w.templates.menu.actions()]
    assert titles == [t.title for t in TEMPLATES.values()]
    drv.drop("Dense", QPointF(300, 300))  # an unsaved change: the user is asked first
    drv.answer = "cancel"
    w.templates.actions["resnet20_cifar10"].trigger()
    assert set(drv.graph.nodes) == {"in", "dense1"}
    drv.answer = "discard"
    w.templates.actions["resnet20_cifar10"].trigger()
    assert len(drv.graph.nodes) == 16
    blocks = [it for it in w.scene.nodes.values() if isinstance(it, BlockItem)]
    assert len(blocks) == 9
    assert all(it.info.error is None for it in w.scene.nodes.values())
    assert w.scene.nodes["s3b3"].info.out_shape == (64, 8, 8)
    assert w.document.path is None and not w.isWindowModified()
    assert w.undo_stack.count() == 0
    assert "ResNet-20" in w.status_message.text()
