"""nginx from Debian as the load balancer in front of amphub nodes, run unprivileged.

One nginx for the whole session on a loopback port, configured in a temp dir; a test
points it at its own nodes with `front(port, ...)` (round robin over them), which
rewrites the configuration and reloads it. The proxy settings are the README's.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

NGINX = Path("/usr/sbin/nginx")
# A port where nothing listens: the upstream until a test names its nodes.
NOBODY = 9
CONFIG = """\
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

    upstream amphub {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        # Pushes and uploads are as large as a space's quota, and go to amphub as they
        # arrive (it checks quota and rate itself); answers stream back the same way.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        location / {{
            proxy_pass http://amphub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        # Which configuration answers: `front` waits for its own after a reload.
        location = /-/nginx-generation {{ return 200 "{generation}"; }}
    }}
}}
"""


class Nginx:
    """A running nginx; `url` is what clients and amphub's `base_url` use."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"http://127.0.0.1:{port}"
        self.generation = 0
        self._write([NOBODY])
        self.proc = subprocess.Popen(
            [str(NGINX), "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
            stderr=subprocess.PIPE,
        )
        self._wait_for_generation()

    def front(self, *ports: int) -> str:
        """Send every request to these amphub ports, in turn; returns the url."""
        self._write(list(ports))
        self.proc.send_signal(signal.SIGHUP)
        self._wait_for_generation()
        return self.url

    def access_log_size(self) -> int:
        """Where the access log ends now, for `access_log_since`."""
        return (self.folder / "access.log").stat().st_size

    def access_log_since(self, size: int) -> str:
        """The access log's lines written after it was `size` bytes long."""
        with open(self.folder / "access.log", "rb") as log:
            log.seek(size)
            return log.read().decode()

    def stop(self) -> None:
        """Stop nginx at once."""
        self.proc.terminate()
        self.proc.wait(30)

    def _write(self, ports: list[int]) -> None:
        self.generation += 1
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
        text = CONFIG.format(
            folder=self.folder, port=self.port, servers=servers, generation=self.generation
        )
        (self.folder / "nginx.conf").write_text(text)

    def _wait_for_generation(self) -> None:
        """Until the new configuration answers and no worker of an older one is left.

        An old worker still holds the listening socket while it shuts down, and may accept
        a new connection with the old upstreams (seen: a clone sent to the placeholder).
        """
        deadline = time.monotonic() + 30
        while not (self._answers_current() and self._workers_all_current()):
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stderr.read().decode()}")
            assert time.monotonic() < deadline, "nginx did not take its new configuration"
            time.sleep(0.02)

    def _answers_current(self) -> bool:
        try:
            url = f"{self.url}/-/nginx-generation"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read().decode() == str(self.generation)
        except OSError:
            return False

    def _workers_all_current(self) -> bool:
        """Whether the master's only children are workers of the current configuration."""
        titles = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if parent == self.proc.pid:
                    titles.append((stat.parent / "cmdline").read_bytes())
            except (OSError, IndexError, ValueError):
                continue  # a process that ended meanwhile
        return len(titles) == 1 and b"shutting down" not in titles[0]


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """nginx on a loopback port for the session; each test says which nodes it fronts."""
    if not NGINX.exists():
        pytest.fail("nginx is missing: sudo apt-get install nginx (.ci/run installs it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = Nginx(tmp_path_factory.mktemp("nginx"), port)
    try:
        yield running
    finally:
        running.stop()
