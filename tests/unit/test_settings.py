"""Loading settings: config files, overlays, TESK_* environment variables, command-line flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tesk.settings import DEFAULT_CONFIG, ConfigError, Overrides, load_settings


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(env={})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.config_files == (DEFAULT_CONFIG,)
    assert settings.custom.data_dir == Path(".tesk")
    assert settings.custom.backend == "local"
    assert settings.custom.local.runtime == "auto"
    assert settings.foca.custom is settings.custom  # type: ignore[attr-defined]
    specs = {spec.name: spec for spec in settings.foca.api.specs}
    assert specs["tes"].connexion is not None
    assert specs["tes_v1"].connexion is not None
    assert specs["tes"].connexion.base_path == "/ga4gh/tes/v1"
    assert specs["tes_v1"].connexion.base_path == "/v1"
    assert specs["tes"].connexion.strict_validation is True
    assert specs["tes_v1"].connexion.strict_validation is True
    assert specs["tes"].path == specs["tes_v1"].path
    assert settings.foca.exceptions.logging.value == "minimal"


def test_overlay_files_merge_in_order(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "a.yaml",
        "server: {port: 9000}\ncustom: {local: {max_concurrent_tasks: 8, network: none}}\n",
    )
    second = write(tmp_path, "b.yaml", "custom: {local: {max_concurrent_tasks: 2}}\n")
    settings = load_settings(Overrides(config_files=(first, second)), env={})
    assert settings.port == 9000
    assert settings.custom.local.max_concurrent_tasks == 2
    assert settings.custom.local.network == "none"
    assert settings.config_files == (DEFAULT_CONFIG, first, second)


def test_environment_overrides(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", "custom: {store: {url: 'sqlite:///from-file.db'}}\n")
    env = {
        "TESK_HOST": "0.0.0.0",
        "TESK_PORT": "8181",
        "TESK_DATA_DIR": str(tmp_path / "data"),
        "TESK_BACKEND": "kubernetes",
        "TESK_RUNTIME": "bwrap",
        "TESK_STORE_URL": "postgresql+psycopg://u@127.0.0.1/tesk",
        "TESK_FILE_ROOTS": os.pathsep.join(["/srv/a", "/srv/b"]),
        "TESK_CONFIG": str(overlay),
    }
    settings = load_settings(env=env)
    assert (settings.host, settings.port) == ("0.0.0.0", 8181)
    custom = settings.custom
    assert custom.data_dir == tmp_path / "data"
    assert custom.backend == "kubernetes"
    assert custom.local.runtime == "bwrap"
    assert custom.store.url == "postgresql+psycopg://u@127.0.0.1/tesk"  # env beats the file
    assert custom.filer.file_roots == [Path("/srv/a"), Path("/srv/b")]
    assert settings.config_files == (DEFAULT_CONFIG, overlay)


def test_command_line_beats_environment(tmp_path: Path) -> None:
    env = {"TESK_PORT": "8181", "TESK_RUNTIME": "bwrap", "TESK_FILE_ROOTS": "/srv/a"}
    cli = Overrides(port=9999, runtime="podman", file_roots=(tmp_path,))
    settings = load_settings(cli, env=env)
    assert settings.port == 9999
    assert settings.custom.local.runtime == "podman"
    assert settings.custom.filer.file_roots == [tmp_path]


def test_foca_overlay_variable_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = write(tmp_path, "foca.yaml", "custom: {limits: {max_tags: 7}}\n")
    monkeypatch.setenv("FOCA_CONFIG_OVERLAY", str(overlay))
    assert load_settings(env={}).custom.limits.max_tags == 7


def test_overrides_travel_through_the_environment(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", "{}\n")
    overrides = Overrides(
        host="::1",
        port=8123,
        data_dir=tmp_path / "d",
        backend="local",
        runtime="bwrap",
        store_url="sqlite:////tmp/x.db",
        file_roots=(tmp_path / "a", tmp_path / "b"),
        config_files=(overlay,),
    )
    assert Overrides.from_env(overrides.to_env()) == overrides
    assert Overrides.from_env({}) == Overrides()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "custom: {local: {runtim: bwrap}}\n",
            "custom.local.runtim: Extra inputs are not permitted",
        ),
        ("custom: {local: {runtime: lxc}}\n", "custom.local.runtime"),
        ("custom: {limits: {max_body_bytes: 10}}\n", "custom.limits.max_body_bytes"),
        ("custom: [1, 2]\n", "'custom' must be a mapping"),
        ("servr: {port: 1}\n", "unknown section(s) servr"),
        ("server: {port: many}\n", "server.port"),
        ("server: [unclosed\n", "not valid YAML"),
        ("- a list\n", "not a YAML mapping"),
    ],
)
def test_bad_config_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    overlay = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(Overrides(config_files=(overlay,)), env={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"TESK_CONFIG": str(tmp_path / "nope.yaml")})


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_bad_port_in_environment(port: str) -> None:
    with pytest.raises(ConfigError, match="TESK_PORT must be a port number"):
        load_settings(env={"TESK_PORT": port})


def test_bad_backend_in_environment() -> None:
    with pytest.raises(ConfigError, match=r"custom\.backend"):
        load_settings(env={"TESK_BACKEND": "slurm"})


def test_an_overlay_can_stop_serving_v1(tmp_path: Path) -> None:
    overlay = write(tmp_path, "no-v1.yaml", "api:\n  specs:\n    tes_v1: null\n")
    settings = load_settings(Overrides(config_files=(overlay,)), env={})
    assert [spec.name for spec in settings.foca.api.specs] == ["tes"]
