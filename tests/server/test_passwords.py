"""Password hashing with the shipped Argon2 settings, including several sign-ins at once.

The derivations run in a child process: before the gate in ``server.passwords``, two at
once hung the process for ever with the GIL held, which no in-process timeout can stop.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from server.passwords import hash_password, verify_password
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = Settings()


def test_shipped_settings_are_the_strong_ones() -> None:
    # What a deployment runs unless told otherwise (the tests elsewhere use cheap ones).
    assert (SHIPPED.argon2_lanes, SHIPPED.argon2_iterations) == (4, 3)
    assert SHIPPED.argon2_memory_kib == 64 * 1024


def test_stored_p4_hash_verifies() -> None:
    encoded = hash_password("correct horse", SHIPPED)
    assert "$argon2id$v=19$m=65536,t=3,p=4$" in encoded
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong horse", encoded)


def test_concurrent_hashes_and_verifications_finish() -> None:
    script = textwrap.dedent(
        """
        import threading
        from server.passwords import dummy_hash, hash_password, verify_password
        from server.settings import Settings

        shipped = Settings()
        stored = hash_password("pw-123456", shipped)
        out = []
        jobs = [lambda: out.append(verify_password("pw-123456", stored)),
                lambda: out.append(verify_password("nope-1234", stored)),
                lambda: out.append(verify_password("x", dummy_hash(shipped))),
                lambda: out.append(hash_password("other-pw-1", shipped).count("p=4") == 1)]
        threads = [threading.Thread(target=job) for job in jobs * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(sorted(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted([True, False, False, True] * 2))
