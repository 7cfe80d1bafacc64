"""Segmentation in the app, through the real widgets: the Data panel lists seg_shapes, and
choosing it previews each image beside its class mask laid over it and counts pixels per
class; the unet_shapes example opens with a shape on every wire and its data fits; File ▸
New from Template lists the MobileNet, U-Net and transformer templates and opens one."""

from __future__ import annotations

import numpy as np
from monitorkit import click_tab, example, open_model
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from engine.data import load_dataset
from engine.zoo import TEMPLATES
from netbuilder.panels.data_preview import classes_in, is_segmentation, mask_overlay
from netbuilder.session.probes import class_color


def choose(qtbot, box, data) -> None:
    """Pick the item with ``data`` as a user does: open the list, click the item."""
    i = box.findData(data)
    assert i >= 0
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    view = box.view()
    qtbot.waitUntil(view.isVisible, timeout=2_000)
    qtbot.wait(400)  # a combo ignores a release that comes right after its popup opened
    rect = view.visualRect(box.model().index(i, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=2_000)
    assert box.currentIndex() == i


def test_the_mask_overlay_colours_each_class_and_leaves_background():
    rgb = np.full((2, 3, 3), 100, np.uint8)
    mask = np.array([[0, 1, 2], [3, 0, 1]])
    out = mask_overlay(rgb, mask, alpha=1.0)
    assert (out[0, 0] == 100).all() and (out[1, 1] == 100).all()
    for (r, c), k in np.ndenumerate(mask):
        if k:
            assert tuple(out[r, c]) == class_color(k)
    half = mask_overlay(rgb, mask, alpha=0.5)
    assert tuple(half[0, 1]) == tuple(np.rint(50 + 0.5 * np.array(class_color(1))).astype(int))


def test_the_data_panel_previews_seg_shapes_as_images_and_masks(make_window, qtbot):
    drv, tc = open_model(make_window, example("lenet5"))
    click_tab(qtbot, drv.w, "Data")
    dp = tc.data
    choose(qtbot, dp.source, "seg_shapes")
    assert drv.graph.training["dataset"] == "seg_shapes"
    assert dp.wait_loaded(30) and dp.dataset.name == "seg_shapes"
    assert is_segmentation(dp.dataset)
    grid = dp.preview_grid
    cells = [grid.itemAt(i).widget() for i in range(grid.count())]
    assert len(cells) == 12 and all(c.objectName() == "maskSample" for c in cells)
    ds = load_dataset("seg_shapes")  # what the panel loaded: the same by its seed
    for i, cell in enumerate(cells):
        pics = [lab for lab in cell.findChildren(QLabel) if not lab.pixmap().isNull()]
        assert len(pics) == 2  # the image and the image under its mask
        assert cell.toolTip() == classes_in(ds, i) and cell.toolTip() != "background"
        plain, masked = (p.pixmap().toImage() for p in pics)
        assert plain != masked  # the mask colours the shapes
    assert dp.counts_plot.isVisible()
    assert dp.preview.counts_title == "pixels per class"
    heights = dp.count_bars.opts["width"]
    assert list(heights) == list(ds.class_counts())
    # a LeNet cannot learn it: the panel says its Output would need pixel cross-entropy
    assert dp.problem_label.isVisible()
    assert "a label per pixel" in dp.problem_label.text()
    assert "pixel_cross_entropy" in dp.problem_label.text()


def test_the_unet_example_opens_with_shapes_and_its_data_fits(make_window, qtbot):
    drv, tc = open_model(make_window, example("unet_shapes"))
    w = drv.w
    assert all(it.info.error is None for it in w.scene.nodes.values())
    assert w.scene.nodes["head"].info.out_shape == (4, 32, 32)
    assert w.scene.nodes["skip1"].info.out_shape == (32, 32, 32)
    assert tc.data.dataset.name == "seg_shapes"
    assert not tc.data.problem_label.isVisible()
    assert tc.panel.start_button.isEnabled()


def test_new_from_template_lists_the_modern_templates_and_opens_the_unet(make_window):
    from guidocs import small_doc
    drv = make_window(small_doc([("in", "Input", {"shape": [4]})], []))
    w = drv.w
    titles = [a.text() for a in w.templates.menu.actions()]
    for name in ("mobilenet_shapes", "unet_shapes", "transformer_sort"):
        assert TEMPLATES[name].title in titles
        assert TEMPLATES[name].summary in w.templates.actions[name].toolTip()
    w.templates.actions["unet_shapes"].trigger()
    assert set(drv.graph.nodes) == set(TEMPLATES["unet_shapes"].graph().nodes)
    assert drv.graph.training["dataset"] == "seg_shapes"
    assert w.scene.nodes["out"].info.error is None
    assert w.document.path is None and not w.isWindowModified()
    assert "U-Net" in w.status_message.text()


def test_training_the_unet_shows_pixel_accuracy_and_mean_iou(make_window, qtbot):
    from monitorkit import click, wait_idle
    drv, tc = open_model(make_window, example("unet_shapes", epochs=2, limit=160,
                                              batch_size=32))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc, timeout=600_000)
    curves = tc.curves
    _, iou = curves.iou_val.getData()
    _, acc = curves.acc_val.getData()
    assert len(iou) == 2 and len(acc) == 2
    assert all(0.0 <= v <= 1.0 for v in iou) and iou[-1] < acc[-1]  # IoU is the harder score
    assert curves.segmentation and "Pixel accuracy" in curves.acc_plot.titleLabel.text
    assert "mean IoU" in curves.acc_plot.titleLabel.text
    assert "val mIoU" in curves.info.text() and "val pixel acc" in curves.info.text()
    assert "mean IoU" in drv.w.status_message.text()
    header, rows = curves.csv_table()
    assert header[-2:] == ["train_iou", "val_iou"] and rows[-1][-1] == iou[-1]
