"""The GitHub Actions workflows cannot run here, so actionlint checks them (syntax, expressions, action inputs)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from rrgkit.paths import project_root

REPO_ROOT = project_root()

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, files)], capture_output=True, text=True, cwd=REPO_ROOT)


def test_the_workflows_pass_actionlint():
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_on_a_malformed_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "book.yml"
    broken.parent.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".github" / "workflows" / "book.yml", broken)
    text = broken.read_text()
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    step:", 1)
                      .replace("${{ steps.deployment.outputs.page_url }}", "${{ steps.deployment.outputs.page_url }"))
    result = lint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'unexpected key "step"' in result.stdout and "unexpected EOF while lexing end marker" in result.stdout, result.stdout


def test_actions_are_pinned_by_version():
    used = [(w.name, m.group(1)) for w in WORKFLOWS for m in re.finditer(r"uses:\s*(\S+)", w.read_text())]
    assert used
    unpinned = [f"{name}: {action}" for name, action in used if not re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", action)]
    assert not unpinned, f"actions not pinned to a version tag or commit: {unpinned}"
