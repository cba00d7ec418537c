"""README's Python tour runs as written (in a scratch folder)."""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")


def python_tour():
    text = open(README).read()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README's Python section has no python block"
    return "\n".join(blocks)


def test_readme_python_tour(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_tour(), "README.md (Python tour)", "exec"), {})
    out = capsys.readouterr().out
    assert "ArraySpec(shape=(512, 512)" in out
    assert "does not exist" in out
