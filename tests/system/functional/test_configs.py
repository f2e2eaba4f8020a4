"""`bulkhead check` against the system-file corpus: every file in tests/configs/invalid
must fail with exactly the errors its '# expect:' comments name (LINE:COL: error: text),
every file in tests/configs/valid and examples/ must pass."""
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
INVALID = sorted((ROOT / "tests" / "configs" / "invalid").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "configs" / "valid").glob("*.yaml")) + \
    sorted((ROOT / "examples").glob("*.yaml"))
EXPECT = re.compile(r"^#\s*expect:\s*(\d+):(\d+):\s*(error|warning):\s*(.+?)\s*$")
DIAG = re.compile(r"^(.*):(\d+):(\d+): (error|warning): (.*)$")


def check(bulkhead, path, *args):
    return subprocess.run([bulkhead, "check", *args, str(path)], capture_output=True,
                          text=True, timeout=30)


def expectations(path):
    out = []
    with open(path, "rb") as f:
        for raw in f:
            m = EXPECT.match(raw.decode("utf-8", "replace"))
            if m:
                out.append((int(m[1]), int(m[2]), m[3], m[4]))
    return out


def test_corpus_is_not_empty():
    assert len(INVALID) >= 30
    assert len(VALID) >= 4


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_file_reports_exactly_its_errors(bulkhead, path):
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    r = check(bulkhead, path)
    assert r.returncode == 1, r.stderr
    diags = [DIAG.match(l) for l in r.stderr.splitlines()]
    diags = [(int(m[2]), int(m[3]), m[4], m[5]) for m in diags if m]
    for line, col, sev, text in expected:
        assert any(d[:3] == (line, col, sev) and text in d[3] for d in diags), \
            f"expected {line}:{col}: {sev}: {text!r}\ngot:\n{r.stderr}"
    errors = [d for d in diags if d[2] == "error"]
    expected_errors = [e for e in expected if e[2] == "error"]
    assert len(errors) == len(expected_errors), f"unexpected errors:\n{r.stderr}"


@pytest.mark.parametrize("path", VALID, ids=[f"{p.parent.name}/{p.stem}" for p in VALID])
def test_valid_file_passes(bulkhead, inmates, path):
    r = check(bulkhead, path)
    assert r.returncode == 0, r.stderr
    assert "error:" not in r.stderr
    assert ": ok: system" in r.stdout
