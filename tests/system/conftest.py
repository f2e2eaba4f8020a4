"""Shared fixtures for bulkhead's system tests: where the binary, the inmates and the
repository are. BULKHEAD_BIN selects another binary (the sanitizer build, say)."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BULKHEAD = pathlib.Path(os.environ.get("BULKHEAD_BIN", ROOT / "build" / "bulkhead")).resolve()
INMATES = ROOT / "build" / "inmates"


@pytest.fixture(scope="session")
def bulkhead():
    assert BULKHEAD.exists(), f"{BULKHEAD} is missing: run 'make' first"
    return str(BULKHEAD)


@pytest.fixture(scope="session")
def inmates():
    assert (INMATES / "hello.elf").exists(), f"{INMATES} has no inmates: run 'make' first"
    return INMATES


@pytest.fixture(scope="session")
def root():
    return ROOT
