"""qk.RedisLeaseTable against a redis-server this test starts on a free
loopback port in a temp dir (the `server` fixture of conftest.py), and
stops by its PID."""

import threading
import time

import pytest

import quorumkit as qk


def test_tokens_fifo_and_owner_checks(server):
    t = qk.RedisLeaseTable(server.url, namespace="test", command_timeout=2.0)
    t.ping()
    a = t.acquire("db", "a", 30)
    assert isinstance(a, qk.RedisLease) and not a.lost
    assert t.try_acquire("db", "x", 30) is None
    got = []

    def wait(owner):
        lease = t.acquire("db", owner, 30, timeout=10)
        got.append((owner, lease.token))
        t.release(lease)

    b = threading.Thread(target=wait, args=("b",))
    b.start()
    deadline = time.monotonic() + 5
    while t.queued("db") < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    c = threading.Thread(target=wait, args=("c",))
    c.start()
    while t.queued("db") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    t.release(a)
    b.join(10)
    c.join(10)
    assert [o for o, _ in got] == ["b", "c"]
    assert a.token < got[0][1] < got[1][1]
    assert a.lost
    with pytest.raises(qk.NotHolderError):
        t.release(a)
    fence = qk.Fence()
    fence.check("db", got[1][1])
    with pytest.raises(qk.StaleTokenError):
        fence.check("db", a.token)
    # Nothing is left behind once every lease is released (expired-lease
    # memory aside, which carries a TTL).
    assert t.holders("db") == []


def test_expired_and_not_holder_are_told_apart(server):
    t = qk.RedisLeaseTable(server.url)
    lease = t.acquire("r", "me", 0.1)
    time.sleep(0.25)
    with pytest.raises(qk.LeaseExpiredError):
        t.renew(lease, 1)
    other = t.acquire("r", "other", 5)
    with pytest.raises(qk.NotHolderError):
        t.release(lease)
    renewed = t.renew(other, 10)
    assert renewed.token == other.token and renewed.expires_at > other.expires_at
    t.release(renewed)
    with pytest.raises(qk.LockTimeoutError):
        t.acquire("busy", "a", 5) and t.acquire("busy", "b", 5, timeout=0.05)


def test_bad_input_gets_typed_errors(server):
    with pytest.raises(qk.QuorumkitError):
        qk.RedisLeaseTable("http://nope")
    t = qk.RedisLeaseTable(server.url)
    with pytest.raises(qk.InvalidArgumentError):
        t.acquire("", "me", 1)
    with pytest.raises(qk.InvalidArgumentError):
        t.acquire("r", "me", float("nan"))
    with pytest.raises(TypeError):
        t.acquire("r", "me", "1s")
    with pytest.raises(TypeError):
        t.release("not a lease")


def test_redis_down_is_a_clean_error_within_the_timeout(server):
    t = qk.RedisLeaseTable(server.url, connect_timeout=0.5, command_timeout=0.5)
    lease = t.acquire("r", "me", 30)
    server.stop()
    start = time.monotonic()
    with pytest.raises(qk.BackendUnavailableError) as e:
        t.renew(lease, 30)
    assert isinstance(e.value, ConnectionError)
    assert time.monotonic() - start < 3
    with pytest.raises(qk.BackendUnavailableError):
        t.try_acquire("r", "other", 1)


def _keys(server):
    """Every key on the server (SCAN), via a raw RESP connection."""
    import socket

    def cmd(sock, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        sock.sendall(out)
        return sock.makefile("rb")

    keys, cursor = [], b"0"
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
        f = None
        while True:
            f = cmd(s, "SCAN", cursor, "COUNT", "1000")
            assert f.readline() == b"*2\r\n"
            f.readline()
            cursor = f.readline().strip()
            n = int(f.readline()[1:])
            for _ in range(n):
                f.readline()
                keys.append(f.readline().strip().decode())
            if cursor == b"0":
                return keys


def test_no_keys_are_left_after_release(server):
    t = qk.RedisLeaseTable(server.url, namespace="scan")
    a = t.acquire("db", "a", 30)
    got = []
    w = threading.Thread(target=lambda: got.append(t.acquire("db", "b", 30, timeout=10)))
    w.start()
    deadline = time.monotonic() + 5
    while t.queued("db") < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _keys(server), "keys while held and queued"
    t.release(a)
    w.join(10)
    t.release(got[0])
    with t.lock("other", owner="me", ttl=0.3):
        time.sleep(0.25)
    assert _keys(server) == []


def test_bad_urls_and_namespaces_are_invalid_arguments():
    for url in ["http://nope", "redis://127.0.0.1:notaport", "", "not a url"]:
        with pytest.raises(qk.InvalidArgumentError):
            qk.RedisLeaseTable(url)
    with pytest.raises(qk.InvalidArgumentError):
        qk.RedisLeaseTable("redis://127.0.0.1:1", namespace="a:b")
    with pytest.raises(TypeError):
        qk.RedisLeaseTable(b"redis://127.0.0.1:1")
    with pytest.raises(qk.InvalidArgumentError):
        qk.RedisLeaseTable("redis://127.0.0.1:1", command_timeout=-1)


def test_nothing_listening_is_backend_unavailable_within_the_timeout():
    from conftest import free_port

    t = qk.RedisLeaseTable(f"redis://127.0.0.1:{free_port()}", connect_timeout=0.3, command_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(qk.BackendUnavailableError) as e:
        t.acquire("r", "me", 1, timeout=5)
    assert isinstance(e.value, ConnectionError) and isinstance(e.value, qk.QuorumkitError)
    assert time.monotonic() - start < 2


def test_a_cancel_token_stops_a_blocked_acquire_promptly(server):
    t = qk.RedisLeaseTable(server.url)
    a = t.acquire("r", "a", 30)
    tok = qk.CancelToken()
    threading.Timer(0.2, tok.cancel).start()
    start = time.monotonic()
    with pytest.raises(qk.AcquireCancelledError):
        t.acquire("r", "b", 30, cancel=tok)
    assert time.monotonic() - start < 0.5
    assert t.queued("r") == 0
    t.release(a)


def test_lock_renews_in_the_background_and_releases(server):
    t = qk.RedisLeaseTable(server.url, command_timeout=1.0)
    with t.lock("job", owner="me", ttl=0.3) as lease:
        assert isinstance(lease, qk.RedisLease)
        first = lease.expires_at
        time.sleep(0.9)  # three TTLs: only renewals keep it
        assert not lease.lost
        assert lease.expires_at > first
        assert t.holders("job") == [lease.token]
        assert t.try_acquire("job", "other", 1) is None
        assert lease.wait_lost(0.05) is False
    assert lease.lost
    assert t.holders("job") == []
    other = t.acquire("job", "other", 1, timeout=1)
    assert other.token > lease.token
    t.release(other)


def test_a_lost_lock_is_reported_and_leaving_the_block_raises(server):
    t = qk.RedisLeaseTable(server.url, command_timeout=1.0)
    with pytest.raises(qk.NotHolderError):
        with t.lock("job", owner="me", ttl=0.3) as lease:
            # Someone else ends it behind the renewer's back.
            t2 = qk.RedisLeaseTable(server.url)
            t2.release(t2.renew(lease, 0.3))
            assert lease.wait_lost(2) is True
            assert lease.lost
    # An exception leaving the block wins over the loss.
    with pytest.raises(KeyError):
        with t.lock("job2", owner="me", ttl=0.3) as lease:
            t.release(t.renew(lease, 0.3))
            lease.wait_lost(2)
            raise KeyError("mine")


def test_lock_reports_a_loss_when_redis_stops(server):
    t = qk.RedisLeaseTable(server.url, connect_timeout=0.2, command_timeout=0.2)
    ctx = t.lock("job", owner="me", ttl=0.6)
    lease = ctx.__enter__()
    server.stop()
    start = time.monotonic()
    assert lease.wait_lost(3) is True
    assert time.monotonic() - start < 1.0  # by the local expiry
    with pytest.raises(qk.BackendUnavailableError):
        ctx.__exit__(None, None, None)


def test_one_renewer_thread_for_many_locks(server):
    import contextlib

    t = qk.RedisLeaseTable(server.url)

    def renewers():
        import os

        n = 0
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/comm") as f:
                n += f.read().startswith("quorumkit-redis")
        return n

    with contextlib.ExitStack() as stack:
        leases = [stack.enter_context(t.lock(f"r{i}", owner="me", ttl=0.3)) for i in range(10)]
        time.sleep(0.5)
        assert renewers() == 1
        assert not any(lease.lost for lease in leases)


def test_asyncio_acquire_hands_off_and_cancels(server):
    import asyncio

    t = qk.RedisLeaseTable(server.url)

    async def main():
        first = await t.acquire_async("a", "one", 30)
        waiter = asyncio.ensure_future(t.acquire_async("a", "two", 30))
        cancelled = asyncio.ensure_future(t.acquire_async("a", "three", 30))
        for _ in range(500):
            if t.queued("a") == 2:
                break
            await asyncio.sleep(0.005)
        assert t.queued("a") == 2
        # The event loop keeps running while both wait.
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        t.release(first)
        second = await asyncio.wait_for(waiter, 5)
        assert second.owner == "two" and second.token > first.token
        assert t.queued("a") == 0, "the cancelled waiter left the queue"
        t.release(second)
        async with t.lock_async("b", owner="me", ttl=0.3) as lease:
            await asyncio.sleep(1.0)  # renewed in the background
            assert not lease.lost
        assert t.holders("b") == []
        with pytest.raises(qk.LockTimeoutError):
            held = t.acquire("c", "x", 30)
            try:
                await t.acquire_async("c", "y", 30, timeout=0.05)
            finally:
                t.release(held)
        with pytest.raises(qk.InvalidArgumentError):
            await t.acquire_async("", "y", 1)
        with pytest.raises(TypeError):
            t.acquire_async("r", "y", "1s")  # refused at the call

    asyncio.run(main())


def test_on_lost_callback_and_asyncio_event_fire_once_on_a_loss(server, monkeypatch):
    import asyncio

    t = qk.RedisLeaseTable(server.url, command_timeout=1.0)
    calls = []
    seen = threading.Event()

    def told(lease, error):
        calls.append((lease.token, type(error), threading.current_thread() is threading.main_thread()))
        seen.set()

    with pytest.raises(qk.NotHolderError):
        with t.lock("job", owner="me", ttl=0.3, on_lost=told) as lease:
            time.sleep(0.5)  # renewed, not lost: no call yet
            assert calls == []
            t.release(t.renew(lease, 0.3))  # ended behind the renewer's back
            assert seen.wait(2)
            assert lease.lost
            # Registered after the loss: called at once, on this thread.
            late = []
            lease.on_lost(lambda lz, e: late.append(type(e)))
            assert late == [qk.NotHolderError]
    assert calls == [(lease.token, qk.NotHolderError, False)]

    async def main():
        async with t.lock_async("job3", owner="me", ttl=0.3) as lease:
            event = lease.lost_event()
            await asyncio.sleep(0.5)
            assert not event.is_set()
            t.release(t.renew(lease, 0.3))
            await asyncio.wait_for(event.wait(), 2)
            assert lease.lost

    with pytest.raises(qk.NotHolderError):
        asyncio.run(main())

    # A callback that raises is reported as unraisable and does not stop
    # the renewer of other leases.
    import sys

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_type))
    with t.lock("keep", owner="me", ttl=0.3) as kept:
        with pytest.raises(qk.NotHolderError):
            with t.lock("boom", owner="me", ttl=0.3, on_lost=lambda lz, e: 1 / 0) as lease:
                t.release(t.renew(lease, 0.3))
                assert lease.wait_lost(2)
        time.sleep(0.7)
        assert not kept.lost
    assert reported == [ZeroDivisionError]


def test_on_lost_bad_input(server):
    t = qk.RedisLeaseTable(server.url)
    with pytest.raises(TypeError):
        t.lock("job", owner="me", ttl=1, on_lost=42)
    with pytest.raises(ValueError):
        t.lock("job", owner="me", ttl=1, auto_renew=False, on_lost=print)
    lease = t.acquire("job", "me", 1)
    with pytest.raises(ValueError):
        lease.on_lost(print)  # no background renewal to tell of a loss
    with t.lock("job2", owner="me", ttl=1) as held:
        with pytest.raises(TypeError):
            held.on_lost("not callable")
    t.release(lease)


def test_tls_and_unix_socket_urls(tmp_path):
    """rediss:// to a self-signed server (refused unless the URL ends in
    #insecure) and redis+unix:// with a database number."""
    import os
    import shutil
    import subprocess

    from conftest import REDIS, free_port

    if not os.path.exists(REDIS) or shutil.which("openssl") is None:
        pytest.skip("redis-server or openssl is not installed (make sysdeps installs them)")
    cert, key, sock = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "redis.sock"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    tls_port = free_port()
    proc = subprocess.Popen(
        [REDIS, "--port", "0", "--tls-port", str(tls_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--unixsocket", str(sock), "--unixsocketperm", "700"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        for url in (f"rediss://127.0.0.1:{tls_port}/#insecure", f"redis+unix://{sock}?db=3"):
            t = qk.RedisLeaseTable(url, connect_timeout=1, command_timeout=1)
            for _ in range(200):  # the TLS port may open a moment after the socket
                try:
                    t.ping()
                    break
                except qk.BackendUnavailableError:
                    time.sleep(0.01)
            lease = t.acquire("r", "me", 5)
            assert t.try_acquire("r", "other", 5) is None
            t.release(lease)
        strict = qk.RedisLeaseTable(f"rediss://127.0.0.1:{tls_port}", connect_timeout=1, command_timeout=1)
        with pytest.raises(qk.BackendUnavailableError, match="(?i)cert"):
            strict.ping()
    finally:
        proc.kill()
        proc.wait(5)
