"""The game: judging a player's inputs against a chart's notes, independent of any UI.

- :mod:`companion.game.engine` — :class:`~companion.game.engine.GameEngine`, driven from outside
  (``queue_input(lane, pressed, time)`` then ``update(time)``), judgement windows, chords,
  sustains, combo, score, accuracy, results;
- :mod:`companion.game.players` — where inputs come from: keyboard (the overlay's key events),
  autoplay, miss-all, replay of a recorded input file, and the recorder that writes one;
- :mod:`companion.game.calibration` — audio/video/input offsets and the tap-test calibration;
- :mod:`companion.game.highscores` — best results per chart and difficulty, kept locally.

Times are seconds on the chart clock everywhere (the live engine maps stream time to it).
"""
