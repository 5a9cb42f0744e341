"""operator.probe_tcp, which doctor uses for the Control port: open / refused on loopback."""

from __future__ import annotations

import socket

from flwrazure.workstation import operator


def test_probe_tcp_open_and_refused():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert operator.probe_tcp("127.0.0.1", port) == "open"
    finally:
        server.close()
    assert operator.probe_tcp("127.0.0.1", port) == "refused"
