"""Before Qt opens a window on X11: are the system libraries its xcb platform plugin needs
installed? On a minimal Debian/Ubuntu some are not (libxcb-cursor0, libxcb-icccm4,
libxcb-keysyms1, …), and Qt then aborts with a message that names the wrong library. This
module finds the missing ones and prints one line with the ``apt-get install`` command.

No Qt import here: the check runs before the QApplication exists.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TextIO

# What Qt's xcb plugin (and the Qt libraries under it) link against, beyond what every Linux
# has; the same list as the README's "Set up" section.
XCB_LIBRARIES = (
    "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0",
    "libxcb-render-util.so.0", "libxcb-randr.so.0", "libxcb-shape.so.0", "libxcb-shm.so.0",
    "libxcb-sync.so.1", "libxcb-xfixes.so.0", "libxcb-xkb.so.1", "libxcb-util.so.1",
    "libxcb.so.1", "libxkbcommon.so.0", "libxkbcommon-x11.so.0", "libX11-xcb.so.1",
    "libX11.so.6", "libEGL.so.1", "libGL.so.1", "libfontconfig.so.1", "libfreetype.so.6",
    "libdbus-1.so.3", "libglib-2.0.so.0",
)
# Debian package names that do not follow the soname rule (``debian_package``).
PACKAGE_EXCEPTIONS = {"libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0"}
_SONAME = re.compile(r"^(lib[\w.+-]+?)\.so\.(\d+)")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` by the library packaging rule:
    ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``, ``libxkbcommon-x11.so.0`` ->
    ``libxkbcommon-x11-0`` (a dash when the name ends in a digit)."""
    if soname in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[soname]
    m = _SONAME.match(soname)
    if m is None:
        return soname.lower()
    name, version = m.group(1).lower(), m.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def xcb_platform_selected(env: Mapping[str, str] | None = None,
                          platform: str | None = None) -> bool:
    """True when Qt will load its xcb (X11) platform plugin: on Linux, QT_QPA_PLATFORM names
    xcb first, or is unset outside a Wayland session."""
    env = os.environ if env is None else env
    if not (platform or sys.platform).startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip() == "xcb"
    return not (env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland")


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so``, or None when it is not there."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if p.is_file():
            return p
    return None


def missing_by_ldd(library: Path, ldd: str) -> list[str]:
    """Sonames the dynamic loader cannot find for ``library`` or anything it pulls in."""
    out = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=20,
                         check=False, stdin=subprocess.DEVNULL)
    return list(dict.fromkeys(_NOT_FOUND.findall(out.stdout)))


def missing_by_name(sonames: Iterable[str],
                    find: Callable[[str], str | None] = ctypes.util.find_library) -> list[str]:
    """The sonames among ``sonames`` that ``find`` (ctypes.util.find_library, which asks
    ldconfig) does not know."""
    missing = []
    for soname in sonames:
        m = _SONAME.match(soname)
        short = m.group(1)[3:] if m else soname
        if find(short) is None:
            missing.append(soname)
    return missing


def missing_xcb_libraries(plugin: Path | None = None,
                          find: Callable[[str], str | None] = ctypes.util.find_library
                          ) -> list[str]:
    """Sonames the xcb plugin needs and the system lacks: from ``ldd`` on the plugin (exact,
    includes what the Qt libraries under it need), or by name when ldd or the plugin is
    not there."""
    plugin = plugin if plugin is not None else xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is not None and ldd is not None:
        try:
            return missing_by_ldd(plugin, ldd)
        except (OSError, subprocess.SubprocessError):
            pass
    return missing_by_name(XCB_LIBRARIES, find)


def install_line(missing: list[str], root: bool | None = None) -> str:
    """The one line that says what is missing and the command that installs it."""
    root = (os.geteuid() == 0) if root is None and hasattr(os, "geteuid") else bool(root)
    packages = " ".join(dict.fromkeys(debian_package(s) for s in missing))
    sudo = "" if root else "sudo "
    return (f"netbuilder: Qt cannot open a window: its X11 (xcb) plugin needs system libraries "
            f"that are missing ({', '.join(missing)}); on Debian/Ubuntu install them with: "
            f"{sudo}apt-get install {packages}")


def check_xcb_libraries(stream: TextIO | None = None,
                        env: Mapping[str, str] | None = None) -> str | None:
    """When Qt is about to use xcb and libraries it needs are missing, print one line with
    the install command to ``stream`` (stderr) and return it; else return None. Never
    raises: a check that cannot run says nothing and lets Qt try."""
    if not xcb_platform_selected(env):
        return None
    try:
        missing = missing_xcb_libraries()
    except Exception:
        return None
    if not missing:
        return None
    line = install_line(missing)
    print(line, file=stream or sys.stderr, flush=True)
    return line
