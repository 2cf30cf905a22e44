"""Settings for several hosts: where --database comes from, what it accepts, the public origin."""

from __future__ import annotations

import pytest

from anvil_dev import config


def test_database_comes_from_the_option_then_the_environment_then_anvil_yaml(tmp_path) -> None:
    yaml_url = config.yaml_database({"anvil_dev": {"database": "postgresql://yaml/app"}})
    assert yaml_url == "postgresql://yaml/app"
    env = {"ANVIL_DEV_DATABASE": "postgresql://env/app"}
    assert (
        config.build(tmp_path, environ=env, yaml_database=yaml_url, database="postgresql://option/app").database
        == "postgresql://option/app"
    )
    assert config.build(tmp_path, environ=env, yaml_database=yaml_url).database == "postgresql://env/app"
    assert config.build(tmp_path, environ={}, yaml_database=yaml_url).database == "postgresql://yaml/app"
    assert config.build(tmp_path, environ={}).database is None
    assert config.yaml_database({"anvil_dev": "not a mapping"}) is None


def test_a_database_that_is_not_postgres_is_refused_with_what_to_do(tmp_path) -> None:
    with pytest.raises(config.SettingsError, match=r"'sqlite:///x' is not a postgresql:// URL \(leave it out"):
        config.build(tmp_path, environ={}, database="sqlite:///x")


def test_the_public_origin_replaces_the_bound_address(tmp_path) -> None:
    assert config.build(tmp_path, environ={}, port=3031).origin == "http://127.0.0.1:3031"
    s = config.build(tmp_path, environ={}, port=3031, public_origin="https://app.example.org/")
    assert s.origin == "https://app.example.org"
    assert config.Settings.from_json(s.to_json()).origin == "https://app.example.org"
