"""Human chart formats: import Frets on Fire / Clone Hero / YARG songs, export charts to them.

API
---
- :func:`~analyzer.formats.folder.import_song` — a song folder → :class:`ImportedSong` (the
  chart, its stem files and their audio); :func:`~analyzer.formats.folder.find_song_folders`,
  :func:`~analyzer.formats.folder.is_song_folder`, :func:`~analyzer.formats.folder.read_song_folder`
  (parse only, no audio).
- :func:`~analyzer.formats.folder.export_chart` — a chart → ``fof``, ``clonehero``,
  ``stepmania`` or ``osu`` files.
- :mod:`~analyzer.formats.midi` (``notes.mid`` read/write), :mod:`~analyzer.formats.chart_text`
  (``notes.chart`` read), :mod:`~analyzer.formats.songini`, :mod:`~analyzer.formats.stepmania`,
  :mod:`~analyzer.formats.osu`, :mod:`~analyzer.formats.tempo` (ticks ↔ seconds).
- :class:`~analyzer.formats.common.FormatError` — every unreadable or unwritable song file.

The parsers are pure (bytes in, notes out); only :func:`import_song` decodes audio.
"""
from .common import FormatError, HumanChart
from .folder import (EXPORT_FORMATS, ImportedSong, SongFolder, export_chart, find_song_folders,
                     import_song, is_song_folder, read_song_folder)

__all__ = ["FormatError", "HumanChart", "EXPORT_FORMATS", "ImportedSong", "SongFolder",
           "export_chart", "find_song_folders", "import_song", "is_song_folder",
           "read_song_folder"]
