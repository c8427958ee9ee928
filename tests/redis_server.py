"""A real, throwaway redis-server on loopback, for the Redis tier's tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, with no persistence; restartable."""

    def __init__(self, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self._port_given = port is not None
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="cached-tts-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self._started = False

    def start(self) -> RedisServer:
        """Start, on a new free port if the first one was taken meanwhile.

        Between :func:`free_port` closing its probe and redis-server binding,
        another process (a parallel pytest worker) may take the port. A restart
        keeps the port: tests restart a server to find it where it was.
        """
        attempts = 1 if self._started or self._port_given else 5
        for attempt in range(attempts):
            try:
                self._start_once()
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()
                self.url = f"redis://127.0.0.1:{self.port}/0"
            else:
                break
        self._started = True
        return self

    def _start_once(self) -> None:
        self.process = subprocess.Popen(
            [
                str(REDIS_SERVER),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self._answers_as_ours():
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def _answers_as_ours(self) -> bool:
        """Whether the server on the port is the process started here, not another's."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
            conn.sendall(b"INFO server\r\n")
            answer = b""
            while b"process_id:" not in answer or not answer.endswith(b"\r\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                answer += chunk
        assert self.process is not None
        return f"process_id:{self.process.pid}\r\n".encode() in answer

    def kill(self) -> None:
        """SIGKILL: the server dies mid-run, as a crashed host would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None
        shutil.rmtree(self._dir, ignore_errors=True)


class SilentServer:
    """Accepts TCP connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port = int(self._socket.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # The kernel completes handshakes from the backlog without accept();
        # nothing ever reads or writes on them.

    def close(self) -> None:
        self._socket.close()


def flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushall()


def keys_of(url: str) -> list[bytes]:
    import redis

    return sorted(redis.Redis.from_url(url).keys("*"))
