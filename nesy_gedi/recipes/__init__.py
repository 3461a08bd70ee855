"""Complete training set-ups behind ``nesy-gedi train|pretrain`` and ``tasks/*.py``.

Each recipe module (:mod:`.addition`, :mod:`.gedi_pretrain`) has ``build_parser()``, ``parse_args(argv)`` (with
``--preset``/``--config`` applied), ``run(args) -> results`` and ``main(argv)``; the scripts in ``tasks/`` only
call ``run_command(main)``.  :mod:`.flags` and :mod:`.presets` are the flag vocabulary and presets they share.
"""
