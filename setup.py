"""Packaging glue that pyproject.toml cannot express: the repository's top-level ``resources/``
folder (examples, built-in datasets, the stylesheet) installs as the package
``netbuilder_resources``, so a wheel carries it and ``engine.resources`` finds it through the
installed package. Everything else about the distribution is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["engine", "engine.*", "netbuilder", "netbuilder.*"]),
              "netbuilder_resources"],
    package_dir={"netbuilder_resources": "resources"},
)
