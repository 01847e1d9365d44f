"""The web viewer's progressive frames (taichi_3dgs/viewer/refinement.py): a full-resolution frame
is due `delay` after the last coarse one, and only once."""
import math

import pytest

from taichi_3dgs.viewer.refinement import RefinementSchedule


def test_a_refinement_is_due_delay_after_the_last_coarse_frame_and_only_once():
    schedule = RefinementSchedule(delay=0.25)
    schedule.rendered_coarse(1, now=10.0)
    schedule.rendered_coarse(1, now=10.2)  # the view changed again: the refinement moves on
    schedule.rendered_coarse(2, now=10.1)
    assert schedule.next_due() == pytest.approx(10.35)
    assert schedule.pop_due(10.4) == {2}
    assert schedule.pop_due(10.44) == set()
    assert schedule.pop_due(10.45) == {1}
    assert schedule.pop_due(100.0) == set() and schedule.next_due() == math.inf


def test_a_full_frame_or_a_closed_tab_owes_nothing():
    schedule = RefinementSchedule(delay=0.0)
    schedule.rendered_coarse(7, now=1.0)
    schedule.cancel(7)
    schedule.cancel(8)  # never scheduled: no error
    assert schedule.pop_due(2.0) == set()


def test_a_negative_delay_is_refused():
    with pytest.raises(ValueError, match="refinement delay"):
        RefinementSchedule(delay=-1.0)
