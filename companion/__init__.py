"""The live LoopJam app: audio I/O, identification loop, sync, game, note removal, overlay, CLI.

Depends on :mod:`analyzer` and :mod:`chart_store`; nothing depends on it.
"""
