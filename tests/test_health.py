"""How a service's HTTP probe tells slow from sick: a server that answers late is asked once
more and is healthy (the detail says it was slow); one that never answers, or refuses the
connection, is not."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from stackmagic.health import HttpCheck, from_dict, to_dict


@pytest.fixture
def server():
    """A loopback HTTP server whose answer takes ``delay`` seconds (set by the test)."""
    state = {"delay": 0.0, "requests": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["requests"] += 1
            time.sleep(state["delay"])       # the service is busy, not the test waiting
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_a_quick_answer_is_healthy_at_the_first_ask(server):
    healthy, detail = HttpCheck(server["url"], timeout=2).probe()
    assert (healthy, detail, server["requests"]) == (True, "HTTP 200", 1)


def test_a_busy_server_that_answers_late_is_healthy_and_said_to_be_slow(server):
    server["delay"] = 0.6
    healthy, detail = HttpCheck(server["url"], timeout=0.2, patience=5).probe()
    assert healthy, detail
    assert detail.startswith("HTTP 200 (slow: answered") and "0.2 s probe timed out" in detail
    assert server["requests"] == 2


def test_a_server_that_never_answers_is_unhealthy_after_its_patience(server):
    server["delay"] = 1
    healthy, detail = HttpCheck(server["url"], timeout=0.2, patience=0.4).probe()
    assert not healthy
    assert detail == f"no answer from {server['url']} (timed out)"
    assert server["requests"] == 2


def test_a_refused_connection_is_unhealthy():
    with socket.socket() as sock:            # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    healthy, detail = HttpCheck(f"http://127.0.0.1:{port}/", timeout=0.2, patience=30).probe()
    assert not healthy and "Connection refused" in detail


def test_a_check_kept_in_the_state_before_patience_existed_still_loads():
    check = from_dict({"kind": "http", "url": "http://127.0.0.1:1/", "timeout": 2.0})
    assert check == HttpCheck("http://127.0.0.1:1/")
    assert from_dict(to_dict(HttpCheck("http://x/", patience=3))).patience == 3


def test_a_command_that_misses_one_answer_is_healthy_and_one_that_always_fails_is_not(tmp_path):
    from stackmagic.health import CommandCheck

    marker = tmp_path / "asked"
    once = CommandCheck(("sh", "-c", f"test -e {marker} && echo up || {{ touch {marker}; echo busy; exit 1; }}"))
    healthy, detail = once.probe()
    assert healthy and detail == "up (answered on a second try; the first: busy)"
    assert once.probe() == (True, "up")             # answered at the first ask now
    assert CommandCheck(("sh", "-c", "echo down; exit 1")).probe() == (False, "down")
    assert CommandCheck(("/nonexistent/probe",)).probe()[0] is False
