"""The local cloud's HTTPS endpoint itself: one client's connection cannot hold up the others."""

from __future__ import annotations

import socket
import ssl

import requests


def _port(cloud) -> int:
    return int(cloud.info["endpoint"].rsplit(":", 1)[1])


def test_a_connection_that_never_says_hello_does_not_block_other_clients(cloud):
    # a port check or a stalled client: TCP connected, no TLS ClientHello. The handshake used to run in the one
    # accepting thread, so every later client waited for this one (forever: a ReadTimeout here)
    idle = socket.create_connection(("127.0.0.1", _port(cloud)))
    try:
        answer = requests.get(cloud.info["endpoint"] + "/metadata/endpoints", params={"api-version": "2022-09-01"},
                              verify=cloud.info["ca_bundle"], timeout=5)
        assert answer.status_code == 200
        assert cloud.resources.resource_groups.check_existence("rg") is False
    finally:
        idle.close()


def test_a_client_refusing_the_certificate_leaves_no_traceback(cloud, capfd):
    refusing = ssl.create_default_context()  # the system's CAs, not the local cloud's: the handshake fails
    with socket.create_connection(("127.0.0.1", _port(cloud))) as raw:
        try:
            refusing.wrap_socket(raw, server_hostname="127.0.0.1")
        except ssl.SSLError:
            pass
    assert cloud.resources.resource_groups.check_existence("rg") is False  # still serving
    assert "Traceback" not in capfd.readouterr().err
