"""Hot reload tells a save's events that came in two batches (the watcher's thread ran late) from a
save of its own: a batch whose files hold what they held at a reload under a second ago is not
reloaded again, so the terminal and the console say a save's reload, or its syntax error, once."""

from __future__ import annotations

from pathlib import Path

from anvil_dev.host.reload import REPEAT_WITHIN_S, SaveRepeats


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_same_contents_soon_again_are_a_repeat(tmp_path: Path) -> None:
    clock = _Clock()
    repeats = SaveRepeats(clock)
    module = tmp_path / "Broken.py"
    module.write_text("def oops(:\n")
    assert not repeats.repeated([str(module)])  # first seen: reloaded
    clock.now += 0.2
    assert repeats.repeated([str(module)])  # the same save's late events
    module.write_text("def oops():\n    pass\n")
    clock.now += 0.1
    assert not repeats.repeated([str(module)])  # changed: reloaded


def test_a_resave_after_a_while_reloads_and_so_does_a_deletion(tmp_path: Path) -> None:
    clock = _Clock()
    repeats = SaveRepeats(clock)
    module, other = tmp_path / "A.py", tmp_path / "B.py"
    module.write_text("x = 1\n")
    other.write_text("y = 1\n")
    assert not repeats.repeated([str(module)])
    clock.now += REPEAT_WITHIN_S + 0.1
    assert not repeats.repeated([str(module)])  # saved again on purpose, to reload
    clock.now += 0.1
    assert not repeats.repeated([str(module), str(other)])  # one of them not seen before
    module.unlink()
    clock.now += 0.1
    assert not repeats.repeated([str(module)])  # its deletion
    clock.now += 0.1
    assert repeats.repeated([str(module)])  # and the deletion's late events
