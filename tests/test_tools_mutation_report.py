"""tools/mutation_report.py on hand-written mutmut results: counts, equivalents, stale lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from odflow.errors import OdflowError
from tests.support.scripts import REPO, load_script

TOOL = REPO / "tools" / "mutation_report.py"
mutation_report = load_script("tools/mutation_report.py")

M = "odflow.model.matcher.xǁArgMaxMatcherǁmatch__mutmut_"
RESULTS = "\n".join([
    f"    {M}1: killed", f"    {M}2: killed", f"    {M}3: killed", f"    {M}4: killed",
    f"    {M}5: survived", f"    {M}6: survived", f"    {M}7: timeout", f"    {M}8: no tests",
    f"    {M}9: not checked",
]) + "\n"


def _diff(number: int, status: str) -> str:
    return (f"# {M}{number}: {status}\n--- odflow/model/matcher.py\n+++ odflow/model/matcher.py\n"
            f"@@ -1 +1 @@\n-    a = {number}\n+    a = -{number}\n")


def _write_run(tmp_path: Path, equivalents: str | None) -> tuple[Path, Path, Path]:
    results, equivalent_dir = tmp_path / "build", tmp_path / "equivalent"
    results.mkdir()
    equivalent_dir.mkdir()
    (results / "matcher.results").write_text(RESULTS)
    (results / "matcher.survivors.diff").write_text(
        _diff(5, "survived") + _diff(6, "survived") + _diff(7, "timeout") + _diff(8, "no tests"))
    (results / "matcher.json").write_text(json.dumps(
        {"module": "matcher", "source": "odflow/model/matcher.py",
         "tests": "tests/test_model_matcher.py", "seconds": 42}))
    if equivalents is not None:
        (equivalent_dir / "matcher.txt").write_text(equivalents)
    return results, tmp_path / "mutation.md", equivalent_dir


def test_counts_score_and_accounted_with_an_equivalent(tmp_path):
    results, output, equivalents = _write_run(
        tmp_path, f"# comment\n\n{M}6: x < 0 never holds here | so < and <= agree\n")
    assert mutation_report.main([str(results), str(output), str(equivalents)]) == 0
    text = output.read_text()
    # 8 checked mutants: 4 killed, 1 unexplained survivor, 1 no tests, 1 timeout, 1 equivalent.
    assert ("| matcher | 8 | 4 | 1 | 1 | 1 | 1 | 50.0 % | 62.5 % | 42 s "
            "(stopped: 1 not checked) |") in text
    assert "| **all run** | 8 | 4 | 1 | 1 | 1 | 1 | 50.0 % | 62.5 % |  |" in text
    assert "| anchors | not run | | | | | | | | |\n" in text
    survivors, equivalent_table = text.split("### matcher: 1 equivalent")
    assert f"# {M}5: survived" in survivors and f"{M}6" not in survivors
    assert f"# {M}7: timeout" in survivors and f"# {M}8: no tests" in survivors
    assert f"| `{M}6` | x < 0 never holds here \\| so < and <= agree |" in equivalent_table


def test_module_without_equivalents_file(tmp_path):
    results, output, equivalents = _write_run(tmp_path, None)
    mutation_report.main([str(results), str(output), str(equivalents)])
    text = output.read_text()
    assert "| matcher | 8 | 4 | 2 | 1 | 1 | 0 | 50.0 % | 50.0 % |" in text
    assert "equivalent\n\nFrom" not in text


def test_hand_written_part_is_kept(tmp_path):
    results, output, equivalents = _write_run(tmp_path, None)
    output.write_text(f"old table\n{mutation_report.MARKER}\nkept notes\n")
    mutation_report.main([str(results), str(output), str(equivalents)])
    text = output.read_text()
    assert "old table" not in text and text.endswith(f"{mutation_report.MARKER}\nkept notes\n")


@pytest.mark.parametrize("line, message", [
    (f"{M}4: looks equivalent", "line 2: .*__mutmut_4 is 'killed', not a surviving mutant"),
    (f"{M}99: gone", "line 2: .*__mutmut_99 is not a mutant of the results"),
    (f"{M}8: never run", "line 2: .*__mutmut_8 is 'no tests'"),
    (f"{M}5", "line 2: expected '<mutant name>: <reason>'"),
])
def test_stale_or_malformed_list_names_file_and_line(tmp_path, line, message):
    results, output, equivalents = _write_run(tmp_path, f"{M}6: fine\n{line}\n")
    with pytest.raises(OdflowError, match=message) as error:
        mutation_report.main([str(results), str(output), str(equivalents)])
    assert str(equivalents / "matcher.txt") in str(error.value)
    assert not output.exists()


def test_duplicate_line_and_cli_exit(tmp_path):
    results, output, equivalents = _write_run(tmp_path, f"{M}6: a\n{M}6: b\n")
    run = subprocess.run([sys.executable, str(TOOL), str(results), str(output), str(equivalents)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "matcher.txt, line 2" in run.stderr and "listed twice" in run.stderr
    assert "Traceback" not in run.stderr
