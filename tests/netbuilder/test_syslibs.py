"""Missing system libraries for Qt's X11 (xcb) plugin: one line with the apt-get command,
printed before the QApplication exists."""

import os
import subprocess
import sys
from pathlib import Path

from netbuilder import syslibs

ROOT = Path(__file__).resolve().parents[2]

LDD_OUTPUT = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibX11.so.6 => /lib/x86_64-linux-gnu/libX11.so.6 (0x00007f)
"""


def fake_ldd(folder: Path, output: str) -> Path:
    """An ``ldd`` on PATH that prints ``output``, as the real one does for missing libraries."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ldd.out").write_text(output)
    script = folder / "ldd"
    script.write_text(f"#!/bin/sh\ncat '{folder / 'ldd.out'}'\n")
    script.chmod(0o755)
    return folder


def test_package_names_follow_the_debian_library_rule():
    assert syslibs.debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert syslibs.debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert syslibs.debian_package("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert syslibs.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert syslibs.debian_package("libX11-xcb.so.1") == "libx11-xcb1"
    assert syslibs.debian_package("libEGL.so.1") == "libegl1"
    assert syslibs.debian_package("libdbus-1.so.3") == "libdbus-1-3"
    assert syslibs.debian_package("libglib-2.0.so.0") == "libglib2.0-0"


def test_the_xcb_check_runs_only_when_qt_will_use_xcb():
    sel = syslibs.xcb_platform_selected
    assert sel({}, "linux")
    assert sel({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert sel({"QT_QPA_PLATFORM": "xcb;wayland"}, "linux")
    assert not sel({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not sel({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux")
    assert not sel({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert sel({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not sel({}, "darwin") and not sel({}, "win32")


def test_ldd_output_gives_the_missing_libraries_once_each(tmp_path, monkeypatch):
    bin_dir = fake_ldd(tmp_path / "bin", LDD_OUTPUT)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    assert syslibs.missing_xcb_libraries(plugin) == [
        "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0"]
    fake_ldd(bin_dir, "\tlibX11.so.6 => /lib/libX11.so.6 (0x1)\n")
    assert syslibs.missing_xcb_libraries(plugin) == []


def test_without_ldd_the_libraries_are_looked_up_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ldd
    absent = {"xcb-keysyms", "xcb-cursor"}
    missing = syslibs.missing_xcb_libraries(
        tmp_path / "libqxcb.so", find=lambda name: None if name in absent else f"lib{name}.so")
    assert missing == ["libxcb-cursor.so.0", "libxcb-keysyms.so.1"]


def test_the_line_is_one_line_with_the_exact_command():
    line = syslibs.install_line(["libxcb-cursor.so.0", "libxcb-icccm.so.4",
                                 "libxcb-keysyms.so.1"], root=False)
    assert "\n" not in line
    assert line.endswith(": sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1")
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libxcb-keysyms.so.1" in line
    assert syslibs.install_line(["libxcb-cursor.so.0"], root=True).endswith(
        ": apt-get install libxcb-cursor0")


def test_nothing_is_printed_when_qt_does_not_use_xcb(capsys):
    assert syslibs.check_xcb_libraries(env={"QT_QPA_PLATFORM": "offscreen"}) is None
    assert capsys.readouterr().err == ""


def test_the_app_prints_the_apt_line_before_qt_aborts_when_a_library_is_missing(tmp_path):
    """The real start-up path: ``netbuilder`` with the xcb platform, and an ``ldd`` that
    reports libxcb-cursor0 missing (Qt itself then fails: no X server here)."""
    bin_dir = fake_ldd(tmp_path / "bin", LDD_OUTPUT)
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":987",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p))
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "netbuilder", "xor_mlp", "--quit-after", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    first = proc.stderr.splitlines()[0]
    assert first.startswith("netbuilder: Qt cannot open a window"), proc.stderr[-2000:]
    assert "apt-get install libxcb-cursor0 libxcb-icccm4 libxkbcommon-x11-0" in first
    assert sum("apt-get install" in line for line in proc.stderr.splitlines()) == 1


def test_the_readme_lists_every_package_the_check_knows():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("sudo apt-get install libxcb-cursor0", 1)[1].split("```", 1)[0]
    listed = set(("libxcb-cursor0 " + block).replace("\\", " ").split())
    assert {syslibs.debian_package(s) for s in syslibs.XCB_LIBRARIES} == listed
