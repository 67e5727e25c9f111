"""The guest's JSON reader (stackmagic/guest/rootfs/lib/stackmagic/json.awk) on the kind of
meta_data.json Nova serves, run with the host's awk (the boot tests in test_guest.py run it with
the guest's busybox awk)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from stackmagic import guest

pytestmark = pytest.mark.skipif(not shutil.which("awk"), reason="no awk")

JSON_AWK = guest.ROOTFS / "lib/stackmagic/json.awk"


def flatten(document: str) -> list[tuple[str, str]]:
    out = subprocess.run(["awk", "-f", str(JSON_AWK)], input=document, capture_output=True,
                         text=True, check=True).stdout
    return [tuple(line.split("\t", 1)) for line in out.splitlines()]


def test_nova_meta_data():
    meta = {"uuid": "6f9a1c2e", "meta": {"role": "web \"front\"", "path": "C:\\x"},
            "keys": [{"name": "k1", "type": "ssh", "data": "ssh-ed25519 AAAA k1@host\n"}],
            "public_keys": {"k1": "ssh-ed25519 AAAA k1@host\n", "k2": "ssh-rsa BBBB k2"},
            "hostname": "vm-1.novalocal", "name": "vm-1", "launch_index": 0, "devices": [],
            "dedicated_cpus": [], "random_seed": "a/b+c==", "project_id": "p", "x": None,
            "flag": True, "nested": {"list": [1, [2, 3], {"deep": "yes"}]}, "empty": {}}
    rows = flatten(json.dumps(meta, indent=1))
    found = dict(rows)
    assert found["hostname"] == "vm-1.novalocal"
    assert [v for k, v in rows if k.startswith("public_keys/")] == ["ssh-ed25519 AAAA k1@host ",
                                                                    "ssh-rsa BBBB k2"]
    assert found["keys/0/data"] == "ssh-ed25519 AAAA k1@host "
    assert found["meta/role"] == 'web "front"'
    assert found["meta/path"] == "C:\\x"
    assert found["random_seed"] == "a/b+c=="           # \/ and + survive
    assert found["launch_index"] == "0" and found["flag"] == "true" and found["x"] == "null"
    assert found["nested/list/1/1"] == "3" and found["nested/list/2/deep"] == "yes"
    assert "devices" not in found and "empty" not in found


def test_compact_and_escaped_slashes():
    rows = dict(flatten('{"hostname":"a.b","public_keys":{"k":"ssh-ed25519 X y\\/z\\n"}}'))
    assert rows == {"hostname": "a.b", "public_keys/k": "ssh-ed25519 X y/z "}
