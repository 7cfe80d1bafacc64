"""The main window's jobs beside ``netbuilder.mainwindow``, one per module: ``actions``
(actions, menus, toolbar, docks, status bar), ``editing`` (edits, the lock, the clipboard),
``files`` (New, Open, Save, recent files, examples) and ``recovery`` (autosave, restore)."""
