"""sqltrack's benchmarks: ``python -m benchmarks [NAME ...]`` from the repository root.

Each module here that does not start with ``_`` and defines ``run(args) -> list[dict]``
is a benchmark; :mod:`benchmarks.__main__` finds and runs them and prints every figure
beside an anchor measured in the same run. Shared helpers live in
:mod:`benchmarks._common`.
"""
