"""The README's usage example runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_python_example_runs_and_registers(capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    reg = namespace["reg"]
    # the example registers the template onto a skull: the loss must have dropped a lot
    assert reg.loss_ < 0.1 * reg.loss_history_["total"][0]
    assert namespace["morphed"].n_points == namespace["skulls"].template.n_points
    assert "->" in capsys.readouterr().out
