"""Complete training set-ups (argument parser + run) behind ``tasks/*.py`` and ``benchmarks/*.py``.

Each module has ``build_parser()``, ``run(args) -> results`` and ``main(argv)``;
the scripts in ``tasks/`` only call ``run_command(main)``.
"""
