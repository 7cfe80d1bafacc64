"""Persistent preferences (QSettings, INI format): window geometry, recent files, toggles.

Tests point QSettings at a temporary folder with ``QSettings.setPath``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

ORGANIZATION = "NetBuilder"
APPLICATION = "NetBuilder"
MAX_RECENT = 10


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                     ORGANIZATION, APPLICATION)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v]
    return []


def recent_files() -> list[str]:
    """Most recent first; files that no longer exist are dropped."""
    return [p for p in _as_list(settings().value("recent_files")) if Path(p).is_file()]


def add_recent_file(path: str | Path) -> list[str]:
    p = str(Path(path).resolve())
    files = [p] + [f for f in recent_files() if f != p]
    files = files[:MAX_RECENT]
    settings().setValue("recent_files", files)
    return files


def clear_recent_files() -> None:
    settings().setValue("recent_files", [])


def get_bool(key: str, default: bool) -> bool:
    v = settings().value(key, default)
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes")
    return bool(v)


def set_value(key: str, value: object) -> None:
    settings().setValue(key, value)


def get_value(key: str, default: object = None) -> object:
    return settings().value(key, default)


def save_folder(model_path: str | Path | None = None) -> Path:
    """Where a save or export dialog starts: the folder of the model's file, else the
    user's documents folder (else home), never the folder the app was started from."""
    if model_path is not None and Path(model_path).parent.is_dir():
        return Path(model_path).resolve().parent
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if docs and Path(docs).is_dir():
        return Path(docs)
    return Path.home()


def remove(key: str) -> None:
    settings().remove(key)
