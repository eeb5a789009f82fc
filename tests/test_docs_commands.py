"""Every command in README.md and docs/*.md still works as written (issue #28, item 6).

Commands are the lines of fenced ```bash / ```sh / ```shell / ```console blocks (backslash
continuations joined, comments dropped, ``VAR=value`` prefixes set aside, ``&&``, ``;`` and ``|``
split into separate commands) and inline code spans that start with ``python -m``, ``pytest``,
``pip install``, ``bash`` or ``torchrun``. Each is checked by a cheap rule:

* ``python -m MODULE ARGS``: ``python -m MODULE --help`` exits 0, every flag of ARGS appears in its
  output (for a module without argparse help, in its source), and the value of a flag with fixed
  choices is one of them; ``python -m ganops_models.train ARGS`` that names no file (no --data,
  --resume, ...) also runs with ``-n`` (dry run: resolves the options, starts nothing).
* ``pytest ARGS``: the paths exist and the flags appear in ``pytest --help``.
* ``pip install ARGS``: the flags appear in ``pip install --help``; a local path exists and the extras
  it names (``.[dev]``, ``ganops[curation]``) are in pyproject.toml; other requirements parse.
* ``bash FILE``: FILE exists and passes ``bash -n``.
* ``torchrun ... -m MODULE ARGS``: as ``python -m MODULE ARGS``.
* ``cd``, ``export`` and a few coreutils are skipped; any other program must be on PATH.

The imports of ```python blocks run in one subprocess. Runs in ~30 s (the ``--help`` calls run in
parallel, each module once).
"""
import ast
import concurrent.futures
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_LANGS = {"bash", "sh", "shell", "console"}
OPERATORS = {"|", "||", "&&", ";", "&"}
SKIPPED_PROGRAMS = {"cd", "export", "source", ".", "echo", "mkdir", "rm", "ls", "cat", "head", "tail", "tee",
                    "grep", "true", "time", "env"}
INLINE_STARTS = ("python -m ", "python3 -m ", "pytest", "pip install ", "bash ", "torchrun ")
# Flags whose value names a file or a run: a train command with one of them is not dry-run here.
TRAIN_NEEDS_FILES = {"--data", "--resume", "--inception", "--lpips", "--gpus", "--device", "--outdir"}
# pytest flags that take the next token as their value.
PYTEST_VALUE_FLAGS = {"-k", "-m", "-p", "-c", "-o", "-W", "--rootdir", "--durations", "--deselect", "--ignore",
                      "--benchmark-json", "--maxfail", "--tb", "-r"}
PIP_VALUE_FLAGS = {"-r", "--requirement", "-c", "--constraint", "-t", "--target", "-i", "--index-url",
                   "--extra-index-url", "-f", "--find-links", "--config-settings", "-C"}
TIMEOUT = 180


@dataclass
class Command:
    where: str                    # file:line
    text: str                     # as written (one logical line)
    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)

    def __str__(self):
        return f"{self.where}: {self.text}"


# --- collecting -----------------------------------------------------------------------------------

def doc_files() -> List[str]:
    docs = os.path.join(ROOT, "docs")
    names = sorted(os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md")) if os.path.isdir(docs) else []
    return [os.path.join(ROOT, "README.md")] + names


def fenced_blocks(text: str):
    """(language, first line number of the body, body lines) of each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if m:
            fence, lang = m.group(1), m.group(2).lower()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence):
                j += 1
            yield lang, i + 2, lines[i + 1:j]
            i = j + 1
        else:
            i += 1


def without_fenced_blocks(text: str) -> List[Tuple[int, str]]:
    """(line number, line) of the lines outside fenced blocks."""
    out, inside, fence = [], False, ""
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m and (not inside or line.strip().startswith(fence)):
            inside, fence = (not inside), m.group(1)
            continue
        if not inside:
            out.append((n, line))
    return out


def logical_lines(lang: str, start: int, body: List[str]):
    """(line number, text) of the commands of one shell block: continuations joined, console prompts
    kept only (their output lines dropped)."""
    current, first = "", None
    for n, raw in enumerate(body, start):
        line = raw.rstrip()
        if lang == "console" and first is None:
            if not line.lstrip().startswith("$ "):
                continue
            line = line.lstrip()[2:]
        if first is None:
            first = n
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):
            yield first, current.strip()
        current, first = "", None
    if current.strip():
        yield first, current.strip()


def split_commands(where: str, line: str) -> List[Command]:
    """One Command per simple command of ``line`` (split at |, ||, &&, ;, &), env prefixes set aside."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    commands, argv = [], []
    for tok in tokens + [";"]:
        if tok in OPERATORS:
            if argv:
                env = {}
                while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
                    key, value = argv.pop(0).split("=", 1)
                    env[key] = value
                if argv:
                    commands.append(Command(where, line, argv, env))
            argv = []
        else:
            argv.append(tok)
    return commands


def inline_spans(path: str, text: str) -> List[Command]:
    """Inline code spans that are commands (e.g. the README's table), outside fenced blocks. Spans
    written as a pattern (``<tool>``, ``a|b``, ``[--json]``) are not commands."""
    out = []
    rel = os.path.relpath(path, ROOT)
    for n, line in without_fenced_blocks(text):
        for span in re.findall(r"`([^`\n]+)`", line):
            span = span.strip()
            if span.startswith(INLINE_STARTS) and not re.search(r"[<>|\[\]{}…]", span.replace(".[", "")):
                out.extend(split_commands(f"{rel}:{n}", span))
    return out


def collect(paths: Optional[List[str]] = None) -> Tuple[List[Command], List[Tuple[str, str]]]:
    """(shell commands, (where, python source) of python blocks) of the given markdown files."""
    commands, python_blocks = [], []
    for path in paths or doc_files():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        rel = os.path.relpath(path, ROOT)
        for lang, start, body in fenced_blocks(text):
            if lang in SHELL_LANGS:
                for n, line in logical_lines(lang, start, body):
                    commands.extend(split_commands(f"{rel}:{n}", line))
            elif lang in ("python", "py"):
                python_blocks.append((f"{rel}:{start}", "\n".join(body)))
        commands.extend(inline_spans(path, text))
    return commands, python_blocks


# --- running (cached: each help text once per session) -------------------------------------------

def _env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("GANOPS_IMPL", None)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


def _run(argv: List[str], cwd: str = ROOT, env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    try:
        proc = subprocess.run(argv, cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT} s"
    return proc.returncode, proc.stdout + proc.stderr


# Runs `python -m MODULE ARGS` for several (module, args, cwd) jobs in one interpreter, so torch is
# imported once per batch instead of once per command; each job's exit status and output is caught.
BATCH = r"""
import contextlib, io, json, os, runpy, sys, traceback
jobs, result_file = json.loads(sys.argv[1]), sys.argv[2]
results, home = [], os.getcwd()
for module, args, cwd in jobs:
    buf, rc = io.StringIO(), 0
    sys.argv = [module] + args
    os.chdir(cwd)
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc(file=buf)
            rc = 1
    os.chdir(home)
    results.append([rc, buf.getvalue()])
with open(result_file, "w") as f:
    json.dump(results, f)
"""
_results: Dict[Tuple, Tuple[int, str]] = {}   # (module, args, cwd-kind, env) -> (exit status, output)


def _run_batch(jobs: List[Tuple[str, Tuple[str, ...], str, Tuple[Tuple[str, str], ...]]]) -> None:
    """Run jobs (module, args, 'root' or 'scratch', env) that share one env in one interpreter."""
    if not jobs:
        return
    with tempfile.TemporaryDirectory() as scratch:
        result_file = os.path.join(scratch, "results.json")
        spec = [[m, list(a), ROOT if kind == "root" else scratch] for m, a, kind, _ in jobs]
        rc, out = _run([sys.executable, "-c", BATCH, json.dumps(spec), result_file], env=dict(jobs[0][3]))
        if rc != 0 or not os.path.exists(result_file):
            for job in jobs:   # the interpreter itself failed: say so for every job in it
                _results[job] = (rc or 1, f"batch run failed: {out.strip()[-400:]}")
            return
        with open(result_file) as f:
            for job, (code, text) in zip(jobs, json.load(f)):
                _results[job] = (code, text)


def _module_run(module: str, args: Tuple[str, ...], kind: str = "root", env=()) -> Tuple[int, str]:
    job = (module, tuple(args), kind, tuple(env))
    if job not in _results:
        _run_batch([job])
    return _results[job]


def module_help(module: str) -> Tuple[int, str]:
    return _module_run(module, ("--help",))


def train_dry_run(args: Tuple[str, ...], env: Tuple[Tuple[str, str], ...]) -> Tuple[int, str]:
    """``python -m ganops_models.train ARGS -n`` in a scratch folder (-n writes nothing all the same)."""
    return _module_run("ganops_models.train", tuple(args) + ("-n",), "scratch", env)


@functools.lru_cache(maxsize=None)
def pytest_help() -> Tuple[int, str]:
    return _run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"])


@functools.lru_cache(maxsize=None)
def pip_help() -> Tuple[int, str]:
    return _run([sys.executable, "-m", "pip", "install", "--help"])


def module_source(module: str) -> str:
    """The source of MODULE (its __main__ for a package), for modules whose --help is not argparse's."""
    base = os.path.join(ROOT, *module.split("."))
    text = ""
    for path in (base + ".py", os.path.join(base, "__main__.py"), os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                text += f.read()
    return text


# --- checking -------------------------------------------------------------------------------------

def _is_flag(tok: str) -> bool:
    return tok.startswith("-") and tok not in ("-", "--") and not re.match(r"^-\d", tok)


def _mentions(text: str, flag: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", text) is not None


def _choices(help_text: str) -> Dict[str, Tuple[set, bool]]:
    """flag -> (choices, several values allowed) from argparse's '--flag {a,b,c}'."""
    out = {}
    for m in re.finditer(r"(?<![\w-])(--?[A-Za-z][\w-]*)[ =]\{([^{}\s]+)\}( \[\{[^{}\s]+\} \.\.\.\])?", help_text):
        out[m.group(1)] = (set(m.group(2).split(",")), bool(m.group(3)))
    return out


def _dry_run_env(cmd: Command) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in cmd.env.items() if "$(" not in v and "`" not in v))


def _missing_local_module(module: str) -> bool:
    """MODULE belongs to this repository (ganops, ganops_models, benchmarks) but has no file to run."""
    base = os.path.join(ROOT, *module.split("."))
    if not os.path.isdir(os.path.join(ROOT, module.split(".")[0])):
        return False
    return not (os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__main__.py")))


def check_module(cmd: Command, module: str, args: List[str]) -> List[str]:
    if "<" in module or module.endswith("."):
        return []
    if _missing_local_module(module):
        return [f"{cmd}: no module {module} to run (python -m {module})"]
    rc, out = module_help(module)
    if rc != 0:
        return [f"{cmd}: `python -m {module} --help` exits {rc}: {out.strip()[-400:]}"]
    reference = out if "usage:" in out else module_source(module)
    problems = []
    choices = _choices(out)
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "...":
            i += 1
            continue
        if _is_flag(tok):
            flag, _, inline_value = tok.partition("=")
            if not _mentions(reference, flag):
                problems.append(f"{cmd}: `python -m {module}` has no option {flag} (not in its --help)")
            elif flag in choices:
                allowed, several = choices[flag]
                values = [inline_value] if inline_value else []
                j = i + 1
                while not inline_value and j < len(args) and not _is_flag(args[j]) and args[j] != "...":
                    values.append(args[j])
                    j += 1
                    if not several:
                        break
                for value in values:
                    if value not in allowed:
                        problems.append(f"{cmd}: {flag} {value}: not one of {sorted(allowed)}")
        i += 1
    if not problems and _needs_dry_run(module, args):
        rc, out = train_dry_run(tuple(args), _dry_run_env(cmd))
        if rc != 0:
            problems.append(f"{cmd}: the dry run (-n) exits {rc}: {out.strip()[-400:]}")
    return problems


def check_pytest(cmd: Command, args: List[str]) -> List[str]:
    rc, out = pytest_help()
    if rc != 0:
        return [f"{cmd}: `pytest --help` exits {rc}: {out.strip()[-400:]}"]
    problems = []
    i = 0
    while i < len(args):
        tok = args[i]
        if _is_flag(tok):
            flag = tok.partition("=")[0]
            if not _mentions(out, flag):
                problems.append(f"{cmd}: pytest has no option {flag}")
            if flag in PYTEST_VALUE_FLAGS and "=" not in tok:
                i += 1
        else:
            path = tok.split("::")[0]
            if not os.path.exists(os.path.join(ROOT, path)):
                problems.append(f"{cmd}: no such test path {path}")
        i += 1
    return problems


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def check_pip(cmd: Command, args: List[str]) -> List[str]:
    if not args or args[0] != "install":
        rc, out = _run([sys.executable, "-m", "pip", *(args[:1] or ["--version"]), "--help"])
        return [] if rc == 0 else [f"{cmd}: `pip {args[:1]} --help` exits {rc}"]
    rc, out = pip_help()
    if rc != 0:
        return [f"{cmd}: `pip install --help` exits {rc}: {out.strip()[-400:]}"]
    project = _pyproject()
    extras_known = set(project.get("optional-dependencies", {}))
    problems = []
    args = args[1:]
    i = 0
    while i < len(args):
        tok = args[i]
        if _is_flag(tok):
            flag = tok.partition("=")[0]
            if not _mentions(out, flag):
                problems.append(f"{cmd}: pip install has no option {flag}")
            if flag in PIP_VALUE_FLAGS and "=" not in tok:
                i += 1
        else:
            m = re.match(r"^([^\[\]]+?)(?:\[([^\]]*)\])?$", tok)
            target, extras = (m.group(1), m.group(2)) if m else (tok, None)
            if target.startswith((".", "/")):
                if not os.path.exists(os.path.join(ROOT, target)):
                    problems.append(f"{cmd}: no such path {target}")
            elif re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", target) is None:
                try:
                    from packaging.requirements import Requirement
                    Requirement(tok)
                except ImportError:
                    pass
                except Exception as e:  # InvalidRequirement
                    problems.append(f"{cmd}: {tok!r} is not a requirement: {e}")
            if extras is not None and (target.startswith((".", "/")) or target.lower() == project["name"]):
                for extra in (e.strip() for e in extras.split(",") if e.strip()):
                    if extra not in extras_known:
                        problems.append(f"{cmd}: pyproject.toml has no extra {extra!r} ({sorted(extras_known)})")
        i += 1
    return problems


def check_command(cmd: Command) -> List[str]:
    argv = cmd.argv
    prog = os.path.basename(argv[0])
    if prog in SKIPPED_PROGRAMS:
        return []
    if re.match(r"^python(3(\.\d+)?)?$", prog):
        if len(argv) >= 3 and argv[1] == "-m":
            module, args = argv[2], argv[3:]
            if module == "pip":
                return check_pip(cmd, args)
            if module == "pytest":
                return check_pytest(cmd, args)
            return check_module(cmd, module, args)
        if len(argv) >= 2 and not argv[1].startswith("-"):
            return [] if os.path.isfile(os.path.join(ROOT, argv[1])) else [f"{cmd}: no such script {argv[1]}"]
        return []
    if prog in ("pip", "pip3"):
        return check_pip(cmd, argv[1:])
    if prog == "pytest":
        return check_pytest(cmd, argv[1:])
    if prog in ("bash", "sh"):
        scripts = [a for a in argv[1:] if not a.startswith("-")][:1]
        if not scripts:
            return []
        path = os.path.join(ROOT, scripts[0])
        if not os.path.isfile(path):
            return [f"{cmd}: no such script {scripts[0]}"]
        rc, out = _run(["bash", "-n", path])
        return [] if rc == 0 else [f"{cmd}: bash -n {scripts[0]}: {out.strip()[-400:]}"]
    if prog == "torchrun":
        if "-m" in argv:
            k = argv.index("-m")
            if k + 1 < len(argv):
                return check_module(cmd, argv[k + 1], argv[k + 2:])
        return []
    return [] if shutil.which(prog) else [f"{cmd}: {prog} is not on PATH"]


def _module_of(argv: List[str]) -> Optional[Tuple[str, List[str]]]:
    """(module, args) of `python -m MODULE ARGS` or `torchrun ... -m MODULE ARGS`, else None."""
    prog = os.path.basename(argv[0])
    if re.match(r"^python(3(\.\d+)?)?$", prog) and len(argv) >= 3 and argv[1] == "-m":
        return argv[2], argv[3:]
    if prog == "torchrun" and "-m" in argv and argv.index("-m") + 1 < len(argv):
        k = argv.index("-m")
        return argv[k + 1], argv[k + 2:]
    return None


def _needs_dry_run(module: str, args: List[str]) -> bool:
    return (module == "ganops_models.train" and "..." not in args
            and not any(_is_flag(a) and a.partition("=")[0] in TRAIN_NEEDS_FILES | {"-h", "--help"} for a in args))


def _prefetch(commands: List[Command]) -> None:
    """Run what the checks need in a few parallel processes: the --help of every module (two
    batches), the train dry runs (one batch per env), pytest --help and pip install --help."""
    modules, dry, others = set(), {}, set()
    for cmd in commands:
        found = _module_of(cmd.argv)
        prog = os.path.basename(cmd.argv[0])
        if found and found[0] in ("pip", "pytest"):
            others.add(found[0])
        elif found and "<" not in found[0] and not _missing_local_module(found[0]):
            modules.add(found[0])
            if _needs_dry_run(*found):
                env = _dry_run_env(cmd)
                dry.setdefault(env, set()).add(("ganops_models.train", tuple(found[1]) + ("-n",), "scratch", env))
        elif prog == "pytest":
            others.add("pytest")
        elif prog in ("pip", "pip3"):
            others.add("pip")
    helps = [(m, ("--help",), "root", ()) for m in sorted(modules) if (m, ("--help",), "root", ()) not in _results]
    batches = [helps[0::2], helps[1::2]] + [sorted(j - _results.keys()) for j in dry.values()]
    tasks = [functools.partial(_run_batch, b) for b in batches if b]
    tasks += [{"pytest": pytest_help, "pip": pip_help}[o] for o in sorted(others)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda task: task(), tasks))


def check_all(commands: List[Command]) -> List[str]:
    _prefetch(commands)
    return [p for cmd in commands for p in check_command(cmd)]


def check_python_imports(blocks: List[Tuple[str, str]]) -> List[str]:
    """Each top-level import statement of the python blocks runs (with ROOT on sys.path)."""
    statements = []
    for where, source in blocks:
        try:
            tree = ast.parse(source)
        except SyntaxError as e:
            return [f"{where}: python block does not parse: {e}"]
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statements.append((where, ast.unparse(node)))
    if not statements:
        return []
    code = ("import json, traceback\nfailed = []\n"
            + "".join(f"try:\n    exec({s!r}, {{}})\nexcept Exception as e:\n    failed.append([{w!r}, {s!r}, repr(e)])\n"
                      for w, s in statements)
            + "print(json.dumps(failed))\n")
    rc, out = _run([sys.executable, "-c", code])
    if rc != 0:
        return [f"python imports of the docs: exit {rc}: {out.strip()[-400:]}"]
    return [f"{w}: `{s}` fails: {e}" for w, s, e in json.loads(out.strip().splitlines()[-1])]


# --- tests ----------------------------------------------------------------------------------------

def test_every_documented_command_works():
    commands, _ = collect()
    problems = check_all(commands)
    assert not problems, "documented commands that do not work as written:\n" + "\n".join(problems)


def test_python_examples_import():
    _, blocks = collect()
    problems = check_python_imports(blocks)
    assert not problems, "\n".join(problems)


def test_docs_list_every_tool():
    """The README's command table names every tool, and the collector finds the documented commands."""
    commands, blocks = collect()
    modules = {c.argv[2] for c in commands if len(c.argv) > 2 and c.argv[1] == "-m"}
    readme = {c.argv[2] for c in commands if c.where.startswith("README.md") and len(c.argv) > 2 and c.argv[1] == "-m"}
    tools = {"train", "generate", "video", "project", "style_mixing", "metrics", "convert", "dataset_tool", "cluster"}
    assert {f"ganops_models.{t}" for t in tools} | {"ganops"} <= readme, sorted(readme)
    assert {"benchmarks.resources", "benchmarks.report", "benchmarks.jit_variants"} <= modules
    assert any(c.argv[0] == "pytest" for c in commands)
    assert blocks


def test_parsing():
    text = "\n".join([
        "Some prose with `python -m ganops_models.train --kimg 5` and `python -m ganops_models.<tool>`.",
        "```bash",
        "# a comment line",
        "CUDA_HOME=/usr/local/cuda pip install --no-build-isolation -e \".[dev]\"   # trailing comment",
        "python -m ganops_models.train --data ~/x.zip \\",
        "    --cfg paper256 --mirror",
        "cd /tmp && pytest tests -k cuda | tail -3",
        "```",
        "```console",
        "$ python -m ganops --json",
        "{\"output\": 1}",
        "```",
        "```python",
        "import os",
        "```",
    ])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fake.md")
        with open(path, "w") as f:
            f.write(text)
        commands, blocks = collect([path])
    got = [(c.env, c.argv) for c in commands]
    assert got == [
        ({"CUDA_HOME": "/usr/local/cuda"}, ["pip", "install", "--no-build-isolation", "-e", ".[dev]"]),
        ({}, ["python", "-m", "ganops_models.train", "--data", "~/x.zip", "--cfg", "paper256", "--mirror"]),
        ({}, ["cd", "/tmp"]),
        ({}, ["pytest", "tests", "-k", "cuda"]),
        ({}, ["tail", "-3"]),
        ({}, ["python", "-m", "ganops", "--json"]),
        ({}, ["python", "-m", "ganops_models.train", "--kimg", "5"]),
    ], got
    assert [src for _, src in blocks] == ["import os"]


def test_a_broken_doc_fails():
    """A renamed flag, a wrong choice, a missing module, test path, extra or script are all caught."""
    text = "\n".join([
        "```bash",
        "python -m ganops_models.train --kimg 1 --no-such-flag 3",
        "python -m ganops_models.train --cfg no-such-preset",
        "python -m ganops_models.no_such_tool --seeds 0",
        "pytest tests/test_no_such_file.py --no-such-pytest-flag",
        "pip install --no-build-isolation -e \".[no-such-extra]\"",
        "bash benchmarks/no_such_script.sh",
        "python -m ganops --no-such-diagnostics-flag",
        "python -m ganops_models.train --cfg progan-lite",
        "```",
        "```python",
        "from ganops.compat.stylegan2_ada import no_such_op",
        "```",
    ])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fake.md")
        with open(path, "w") as f:
            f.write(text)
        commands, blocks = collect([path])
    problems = check_all(commands)
    joined = "\n".join(problems)
    for needle in ("--no-such-flag", "no-such-preset", "no_such_tool", "test_no_such_file.py",
                   "--no-such-pytest-flag", "no-such-extra", "no_such_script.sh", "--no-such-diagnostics-flag"):
        assert needle in joined, f"{needle} not reported:\n{joined}"
    assert not any("fake.md:9" in p for p in problems), joined   # the good command passes
    assert len(problems) == 8, joined
    assert "no_such_op" in "\n".join(check_python_imports(blocks))
