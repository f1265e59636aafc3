"""The TOML config and `loopjam config`."""
import json

import pytest

from companion.cli import main
from companion.config import (
    Config, ConfigError, config_path, load_config, save_config,
)


def test_defaults_without_a_file(loopjam_home):
    cfg = load_config()
    assert cfg == Config()
    assert cfg.game.lanes == 5 and cfg.removal.mask_mode == "drop-missed"
    assert config_path() == loopjam_home / "config.toml"


def test_round_trip_through_toml(loopjam_home):
    cfg = (Config().with_value("game.lanes", "6").with_value("offsets.audio_ms", "-12.5")
           .with_value("overlay.x", "100").with_value("game.keys", "a,s,d,j,k,1")
           .with_value("store.remote_url", "https://charts.example.org"))
    save_config(cfg)
    again = load_config()
    assert again == cfg
    assert again.game.keys == ("a", "s", "d", "j", "k", "1")   # digits are keys too
    assert again.offsets.audio_ms == -12.5 and again.overlay.x == 100
    assert 'lanes = 6' in config_path().read_text()


@pytest.mark.parametrize("key, value, message", [
    ("game.lanes", "9", "game.lanes = 9: must be 4..7"),
    ("game.lanes", "five", "game.lanes = 'five'"),
    ("game.difficulty", "insane", "must be one of easy, medium, hard, expert"),
    ("removal.mask_mode", "all", "removal.mask_mode = 'all'"),
    ("offsets.video_ms", "5000", "offsets.video_ms = 5000.0: must be within"),
    ("overlay.opacity", "1.5", "overlay.opacity"),
    ("overlay.text_color", "white", "'white' is not #rrggbb"),
    ("store.remote_url", "ftp://x", "must start with http"),
    ("game.keys", "a,s,d,foo,g", "unknown key 'foo'"),        # the overlay could not map it
    ("game.keys", "a,a,d,f,g", "a key can play one lane only"),
    ("audio.backend", "jack", "must be auto, soundcard, pyaudio or null"),
    ("game.nope", "1", "game.nope: unknown key; game has difficulty, lanes"),
    ("sound.volume", "1", "unknown section 'sound'"),
])
def test_bad_values_are_named(key, value, message):
    with pytest.raises(ConfigError) as info:
        Config().with_value(key, value)
    assert message in str(info.value)


def test_bad_file_names_the_key(loopjam_home):
    config_path().parent.mkdir(parents=True)
    config_path().write_text("[game]\nlanes = 3\n")
    with pytest.raises(ConfigError, match="game.lanes = 3"):
        load_config()
    config_path().write_text("[game]\nlanes = 'x'\n")
    with pytest.raises(ConfigError, match="game.lanes"):
        load_config()
    config_path().write_text("[game\n")
    with pytest.raises(ConfigError, match="config.toml"):
        load_config()
    config_path().write_text("[colours]\n")
    with pytest.raises(ConfigError, match=r"unknown section \[colours\]"):
        load_config()


def test_cli_show_get_set_path(loopjam_home, capsys):
    assert main(["config", "set", "game.lanes", "7"]) == 0
    assert main(["config", "get", "game.lanes"]) == 0
    assert capsys.readouterr().out.strip().endswith("7")
    assert main(["config", "get", "game.lanes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"key": "game.lanes", "value": 7}
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["game"]["lanes"] == 7 and shown["overlay"]["width"] == 560
    assert main(["config", "show"]) == 0
    assert "[game]" in capsys.readouterr().out
    # The upload token is a secret: show (on stream) hides it, get tells it.
    assert main(["config", "set", "store.token", "s3cret"]) == 0
    assert "s3cret" not in capsys.readouterr().out
    for argv in (["config", "show"], ["config", "show", "--json"]):
        assert main(argv) == 0
        assert "s3cret" not in capsys.readouterr().out
    assert main(["config", "get", "store.token"]) == 0
    assert capsys.readouterr().out == "s3cret\n"
    assert main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(loopjam_home / "config.toml")
    assert main(["config", "set", "game.lanes", "12"]) == 1
    assert "game.lanes = 12: must be 4..7" in capsys.readouterr().err
    assert load_config().game.lanes == 7  # unchanged by the failed set
