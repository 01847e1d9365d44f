"""training.reporting.Reporter: what a run shows and logs, outside the loop."""
from __future__ import annotations

import re
import time

from taichi_3dgs.training.reporting import Reporter


def _eta_seconds(printed: str) -> int:
    minutes, seconds = re.findall(r"<(\d+):(\d+)", printed)[-1]
    return 60 * int(minutes) + int(seconds)


def test_the_progress_bars_eta_counts_from_the_end_of_the_first_step(tmp_path, capsys):
    """Issue 25: the first step (kernel compilation, here 2 s) does not enter the ETA of the
    1000-step run whose later steps take 20 ms: about 20 s, not the 400 s or more it would read."""
    reporter = Reporter(main=True, progress_bar=True)
    reporter.start(tmp_path / "logs", None, 1000, 0, None, [], lambda: None)
    time.sleep(2.0)
    reporter.step_done(1, 0, None, 10)
    for step in range(2, 6):
        time.sleep(0.02)
        reporter.step_done(step, 0, None, 10)
    reporter.bar.refresh()
    eta = _eta_seconds(capsys.readouterr().err)
    reporter.close()
    assert 5 <= eta < 200


def test_closing_names_the_log_folder(tmp_path, capsys):
    reporter = Reporter(main=True, progress_bar=False)
    reporter.start(tmp_path / "logs", None, 10, 0, None, [], lambda: None)
    reporter.close()
    assert f"TensorBoard logs in {tmp_path / 'logs'} (tensorboard --logdir {tmp_path / 'logs'})" in capsys.readouterr().out
