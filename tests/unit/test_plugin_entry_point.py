"""The pytest plugin is declared where pytest looks for it: setup.cfg's pytest11 entry point (and,
once anvil-dev is installed from this tree, its installed metadata)."""

from __future__ import annotations

import configparser
import importlib.metadata

from helpers import ROOT


def test_setup_cfg_declares_the_pytest11_entry_point() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [line.strip() for line in cfg["options.entry_points"]["pytest11"].splitlines() if line.strip()]
    assert "anvil_dev = anvil_dev.testing" in lines


def test_installed_metadata_points_at_the_plugin() -> None:
    dist = importlib.metadata.distribution("anvil-dev")
    declared = [ep for ep in dist.entry_points if ep.group == "pytest11"]
    if not declared:
        # Installed (editable) before the entry point existed: `pip install -e .` again picks it up.
        assert "pytest11" not in (dist.read_text("entry_points.txt") or "")
        return
    assert [(ep.name, ep.value) for ep in declared] == [("anvil_dev", "anvil_dev.testing")]
    found = importlib.metadata.entry_points(group="pytest11")
    assert any(ep.value == "anvil_dev.testing" for ep in found)
    assert found[declared[0].name].load().__name__ == "anvil_dev.testing"
