"""What `make airflow` writes before it starts the server: a password file only its owner can read."""

from __future__ import annotations

import json
import stat
import subprocess

from tests.conftest import REPO


def test_the_airflow_password_file_is_private(tmp_path):
    target = tmp_path / "airflow" / "passwords.json"
    passwords = []
    for _ in range(2):  # the second time keeps the password
        out = subprocess.run(["make", "-s", "airflow-password", f"AIRFLOW_PASSWORDS={target}"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        passwords.append(json.loads(target.read_text())["admin"])
        assert passwords[-1] not in out.stdout + out.stderr
    assert passwords[0] == passwords[1] and len(passwords[0]) >= 16
