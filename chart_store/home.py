"""Where LoopJam keeps its files: ``$LOOPJAM_HOME``, else the platform's user data folder."""
from __future__ import annotations

import os
from pathlib import Path


def loopjam_home() -> Path:
    """The LoopJam data folder (config, local store, caches). Not created here."""
    env = os.environ.get("LOOPJAM_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_data_dir("loopjam", appauthor=False))
