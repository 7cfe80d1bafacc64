"""Plain-numpy reference kernels, one module per family: slow, obvious, the tests' oracle."""
