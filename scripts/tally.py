#!/usr/bin/python3
"""Adds up every test case run by 'make check' and prints one closing line,
'N passed, N failed' (', N skipped' when some were). Reads meson's testlog.json files
(cmocka prints its own PASSED/FAILED counts; an executable that crashed before printing
them counts as one failure) and pytest's JUnit XML files. Exit status 1 when anything
failed or nothing ran."""
import json
import re
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    if path.endswith(".json"):
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                out = (t.get("stdout") or "") + (t.get("stderr") or "")
                p = re.search(r"\[  PASSED  \] (\d+) test", out)
                fl = re.search(r"\[  FAILED  \] (\d+) test", out)
                n_p = int(p[1]) if p else 0
                n_f = int(fl[1]) if fl else 0
                if t.get("result") not in ("OK", "EXPECTEDFAIL") and n_f == 0:
                    n_f = 1
                passed += n_p
                failed += n_f
    else:
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        for s in suites:
            tests = int(s.get("tests", 0))
            bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
            skip = int(s.get("skipped", 0))
            passed += tests - bad - skip
            failed += bad
            skipped += skip

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
