"""Audio in, charts out: decoding, features, stems, onsets, beats, notes, charting, masks, chart
formats.

Depends on :mod:`chart_store` only.
"""
