"""`vla record` and signals (issue 20's untested claims): SIGINT or SIGTERM during the save of an
episode (a critical section) lets the save finish and interrupts right after it; outside a save it
interrupts at once; the previous handlers come back afterwards. Real signals, sent to this process."""

import os
import signal

import pytest

from vla.data.record import _DeferInterrupts


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_save_waits_for_the_save_then_interrupts(sig):
    defer, steps = _DeferInterrupts(), []
    with defer.installed(), pytest.raises(KeyboardInterrupt):
        with defer.section():
            os.kill(os.getpid(), sig)  # Python runs the handler before the next line
            steps.append("saved")  # the rest of the save still runs
        steps.append("after the save")  # never reached: the interrupt comes as the section ends
    assert steps == ["saved"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_outside_a_save_interrupts_at_once_and_handlers_are_restored(sig):
    before = signal.getsignal(sig)
    defer, steps = _DeferInterrupts(), []
    with defer.installed(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), sig)
        steps.append("went on")
    assert steps == []
    assert signal.getsignal(sig) is before
    with defer.installed():
        with defer.section():
            steps.append("a save with no signal")
        steps.append("goes on")
    assert steps == ["a save with no signal", "goes on"]


def test_a_deferred_interrupt_is_delivered_once():
    defer = _DeferInterrupts()
    with defer.installed():
        with pytest.raises(KeyboardInterrupt):
            with defer.section():
                os.kill(os.getpid(), signal.SIGINT)
        with defer.section():  # a caller that caught it and saves on: no second interrupt
            pass
