"""Settings come from four layers, each overriding the one before: defaults < TOML < WORKERHUB_* env < flags.

Unknown keys are refused in the TOML file and as flags; every refusal names the setting (or the file).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from workerhub.cli import main, serve_settings
from workerhub.config import Settings, SettingsError


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "workerhub.toml"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    settings = serve_settings([], env={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.journal_fsync, settings.auth) == ("127.0.0.1", 8008, "interval", ())


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    config = toml(tmp_path, 'port = 9001\ndefault_timeout = 30\nlog_level = "debug"\njournal_fsync = "never"\n')
    env = {"WORKERHUB_PORT": "9002", "WORKERHUB_DEFAULT_TIMEOUT": "40"}

    from_file = serve_settings(["--config", config], env={})
    assert (from_file.port, from_file.default_timeout, from_file.log_level) == (9001, 30, "debug")

    from_env = serve_settings(["--config", config], env=env)
    assert (from_env.port, from_env.default_timeout, from_env.log_level) == (9002, 40, "debug")

    from_flags = serve_settings(["--config", config, "--port", "9003"], env=env)
    assert (from_flags.port, from_flags.default_timeout, from_flags.log_level) == (9003, 40, "debug")
    # untouched by any layer above the file, so the file's value stands
    assert from_flags.journal_fsync == "never"


def test_flags_not_given_do_not_override(tmp_path: Path) -> None:
    """A boolean flag left out keeps the env's value (flags default to "not given", not to the default)."""
    assert serve_settings([], env={"WORKERHUB_PERSIST": "false"}).persist is False
    assert serve_settings(["--persist"], env={"WORKERHUB_PERSIST": "false"}).persist is True
    assert serve_settings(["--no-auto-register"], env={}).auto_register is False


def test_a_workerhub_table_is_accepted(tmp_path: Path) -> None:
    config = toml(tmp_path, '[workerhub]\nport = 9005\nauth = ["k:s:acme"]\n')
    settings = serve_settings(["--config", config], env={})
    assert (settings.port, settings.auth) == (9005, ("k:s:acme",))


def test_env_values_are_parsed_by_type() -> None:
    env = {
        "WORKERHUB_FIX_QUIRKS": "yes",
        "WORKERHUB_RAW_RETENTION": "3600",
        "WORKERHUB_AUTH": "a:b, c:d:acme",
        "WORKERHUB_MSGPACK_PORT": "",
        "WORKERHUB_DATA_DIR": "state",
    }
    settings = Settings.load(env=env)
    assert settings.fix_quirks is True
    assert settings.raw_retention == 3600.0 and isinstance(settings.raw_retention, float)
    assert settings.auth == ("a:b", "c:d:acme")
    assert settings.msgpack_port is None
    assert settings.data_dir == "state"


def test_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        serve_settings(["--config", toml(tmp_path, "prot = 9000\n")], env={})
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        serve_settings(["--config", toml(tmp_path, "[workerhub]\nprot = 9000\n")], env={})


def test_keys_beside_the_workerhub_table_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"\[workerhub\] table or none.*'port'"):
        serve_settings(["--config", toml(tmp_path, "port = 1\n[workerhub]\nhost = '127.0.0.1'\n")], env={})
    with pytest.raises(SettingsError, match=r"\[workerhub\] table"):
        serve_settings(["--config", toml(tmp_path, "workerhub = 3\n")], env={})


def test_a_file_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    config = toml(tmp_path, "port = = 1\n")
    with pytest.raises(SettingsError, match="workerhub.toml: not valid TOML"):
        serve_settings(["--config", config], env={})


def test_unknown_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        serve_settings(["--prot", "9000"], env={})
    assert exit_.value.code == 2
    assert "unrecognized arguments: --prot" in capsys.readouterr().err


def test_unknown_mapping_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        Settings.from_mapping({"prot": 1})
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        Settings().replace(prot=1)


def test_an_unknown_env_variable_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workerhub.config"):
        assert Settings.load(env={"WORKERHUB_PROT": "1"}) == Settings()
    assert "WORKERHUB_PROT" in caplog.text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKERHUB_PORT": "eighty"}, "setting 'port' has a value of the wrong type: 'eighty'"),
        ({"WORKERHUB_PERSIST": "maybe"}, "setting 'persist' has a value of the wrong type"),
        ({"WORKERHUB_RAW_RETENTION": "a day"}, "setting 'raw_retention' has a value of the wrong type"),
        ({"WORKERHUB_JOURNAL_FSYNC": "sometimes"}, "setting 'journal_fsync' must be one of always, interval, never"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load(env=env)


def test_wrong_types_in_the_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="setting 'port' has a value of the wrong type: 8.5"):
        serve_settings(["--config", toml(tmp_path, "port = 8.5\n")], env={})
    with pytest.raises(SettingsError, match="setting 'persist' has a value of the wrong type: 1"):
        serve_settings(["--config", toml(tmp_path, "persist = 1\n")], env={})


def test_the_cli_reports_a_bad_setting_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", toml(tmp_path, "prot = 1\n")]) == 2
    assert capsys.readouterr().err == "workerhub: unknown setting 'prot'\n"
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err


def test_every_setting_is_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI derives its flags from the Settings fields, so none can be forgotten."""
    import dataclasses

    with pytest.raises(SystemExit):
        serve_settings(["--help"], env={})
    shown = capsys.readouterr().out
    for f in dataclasses.fields(Settings):
        assert f"--{f.name.replace('_', '-')}" in shown, f.name
