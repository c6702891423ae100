"""CancelToken: a blocking acquire stopped from another thread."""

import threading
import time

import pytest

import quorumkit as qk


def test_cancel_stops_a_blocked_acquire_and_withdraws_it():
    t = qk.LeaseTable()
    held = t.acquire("r", "holder", 60)
    token = qk.CancelToken()
    assert not token.cancelled
    result = {}

    def wait():
        try:
            t.acquire("r", "waiter", 60, cancel=token)
            result["got"] = "lease"
        except qk.AcquireCancelledError as e:
            result["got"] = e

    th = threading.Thread(target=wait)
    th.start()
    deadline = time.monotonic() + 5
    while t.queued("r") == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert t.queued("r") == 1
    start = time.monotonic()
    token.cancel()
    th.join(5)
    assert not th.is_alive()
    # Woken by the cancel itself, not by the 50 ms signal-check slice.
    assert time.monotonic() - start < 1.0
    assert isinstance(result["got"], qk.AcquireCancelledError)
    assert isinstance(result["got"], qk.QuorumkitError)
    assert token.cancelled
    assert t.queued("r") == 0
    t.release(held)
    # The withdrawn waiter did not get the lease: it is free now.
    assert t.try_acquire("r", "next", 60) is not None


def test_a_cancelled_token_fails_at_once_even_on_a_free_resource():
    t = qk.LeaseTable()
    token = qk.CancelToken()
    token.cancel()
    with pytest.raises(qk.AcquireCancelledError):
        t.acquire("free", "me", 1, cancel=token)
    assert t.try_acquire("free", "me", 1) is not None
    assert "cancelled=True" in repr(token)


def test_one_token_cancels_many_waiters_and_bad_tokens_are_refused():
    t = qk.LeaseTable()
    held = t.acquire("r", "holder", 60)
    token = qk.CancelToken()
    errors = []

    def wait(i):
        try:
            t.acquire("r", f"w{i}", 60, cancel=token)
        except qk.AcquireCancelledError as e:
            errors.append(e)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 5
    while t.queued("r") < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    token.cancel()
    for th in threads:
        th.join(5)
    assert len(errors) == 4
    assert t.queued("r") == 0
    t.release(held)
    with pytest.raises(TypeError, match="CancelToken"):
        t.acquire("r", "me", 1, cancel="soon")
    # None is "no token".
    assert t.acquire("r", "me", 1, cancel=None).token > held.token
