"""The benchmark's side of Redis: a minimal RESP client (enough for DEL,
INFO, PUBSUB, XINFO, BLPOP) and the private redis-server every run talks to."""
import os
import socket
import subprocess

from .certs import make_certs
from .procs import free_port, wait_until

OBUF_LOG_TEXT = "output buffer limits"  # Redis logs one such line per client it cuts off


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed by redis-server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisError("connection closed by redis-server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")

    def cmd(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
        self.sock.sendall(b"".join(out))
        reply = self._reply()
        if isinstance(reply, RedisError):
            raise reply
        return reply


class RedisServer:
    def __init__(self, workdir, tls=False):
        self.port = free_port()
        self.log = os.path.join(workdir, "redis.log")
        tls_args = []
        self.tls_port, self.ca_file = None, None
        if tls:
            # A TLS port beside the plaintext one: evhost connects over TLS;
            # the load generator and the checks keep plaintext.
            self.tls_port = free_port()
            self.ca_file, cert, key = make_certs(workdir)
            tls_args = ["--tls-port", str(self.tls_port), "--tls-cert-file", cert, "--tls-key-file", key,
                        "--tls-ca-cert-file", self.ca_file, "--tls-auth-clients", "no"]
        # Redis's defaults, written out: a Pub/Sub subscriber more than 32 MB
        # behind (or 8 MB for 60 s) is disconnected.
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", workdir, "--logfile", self.log, "--client-output-buffer-limit", "pubsub 32mb 8mb 60", *tls_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                Redis(self.port, timeout=1).cmd("PING")
                return True
            except OSError:
                return False

        wait_until("redis-server", up, 10, self.proc)
        self.r = Redis(self.port)

    def version(self):
        for line in self.r.cmd("INFO", "server").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1]
        return "?"

    def obuf_disconnects(self):
        """Output-buffer disconnects so far: INFO stats's counter where Redis
        has one (7.2+), else the lines of its log (7.0 has no counter)."""
        for line in self.r.cmd("INFO", "stats").splitlines():
            if line.startswith("client_output_buffer_limit_disconnections:"):
                return int(line.split(":", 1)[1])
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if OBUF_LOG_TEXT in line)

    def stop(self):
        self.r.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)
