"""Ctrl-C during an update takes effect only once the update is complete."""

from __future__ import annotations

import os
import signal

import pytest

from photokit.interrupts import deferred_interrupt


def test_ctrl_c_inside_the_block_is_raised_after_it():
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("rest of the update")
    assert done == ["rest of the update"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_no_ctrl_c_no_exception():
    with deferred_interrupt():
        value = 1
    assert value == 1 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
