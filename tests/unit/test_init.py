"""`anvil-dev init` in-process through Click's CliRunner: the layout it makes, and what it refuses."""

from __future__ import annotations

from click.testing import CliRunner

from anvil_dev.cli import cli


def test_init_scaffolds_anvil_layout(tmp_path, cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(cli, ["init", str(tmp_path / "MyApp")])
    assert result.exit_code == 0, result.output
    app = tmp_path / "MyApp"
    yaml_text = (app / "anvil.yaml").read_text()
    assert "package_name: MyApp" in yaml_text and "server_persist: false" in yaml_text and "version: 2" in yaml_text
    assert (app / "server_code" / "ServerModule1.py").is_file()
    assert (app / "client_code" / "Shapes.py").is_file()
    assert (app / "theme" / "assets").is_dir()
    assert ".anvil-dev/" in (app / ".gitignore").read_text()


def test_init_refuses_a_non_empty_directory(tmp_path, cli_runner: CliRunner) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = cli_runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 1
    assert "already exists and is not empty" in result.output
    assert (target / "keep.txt").read_text() == "mine"
