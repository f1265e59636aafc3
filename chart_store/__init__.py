"""Charts and where they live: the chart model and file format, fingerprints and their index,
the local SQLite store, the shared chart server and its HTTP client.

Depends on nothing else in LoopJam.
"""
__version__ = "0.1.0"
