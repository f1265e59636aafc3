"""Audio in, charts out: decoding, features, stems, notes, charting, masks, chart formats.

Depends on :mod:`chart_store` only.
"""
