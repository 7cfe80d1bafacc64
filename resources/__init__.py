"""NetBuilder's shipped files: example models (``examples/*.json``), built-in datasets
(``datasets/``) and the application's stylesheet (``style.qss``). Installed as the package
``netbuilder_resources``; ``engine.resources`` finds this folder (no code lives here)."""
