"""The README's test command is what CI runs, word for word."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Test", 1)[1].split("```")[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert section in ci
