"""Runs one Databricks source-format notebook for the databricks-azdo workspace emulator.

Usage: python3 notebook_runner.py INPUT_JSON RESULT_JSON

INPUT_JSON holds {"notebook": path, "base_parameters": {name: value}, "sys_path": [dir, ...],
"local_folders": [[prefix, folder], ...]}.
RESULT_JSON receives {"result": value} when the notebook calls dbutils.notebook.exit(value),
{"error": "Class: message", "error_trace": traceback} when it raises, {} otherwise.

Cells are split by "# COMMAND ----------" and run in order in one namespace, like a notebook
attached to a cluster. "# MAGIC" cells: %md is skipped, %python runs, other magics fail.
There is no Spark: `spark` is simply not defined.
"""

import json
import linecache
import os
import sys
import traceback

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


class NotebookExit(BaseException):
    """Raised by dbutils.notebook.exit. A BaseException, so that a notebook's own
    `except Exception:` cannot swallow the exit."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


class InputWidgetNotDefined(Exception):
    """Named after the error Databricks raises for an unknown widget."""


class UnsupportedMagicCommand(Exception):
    pass


class _Widgets:
    def __init__(self, parameters):
        self._parameters = {str(k): str(v) for k, v in parameters.items()}
        self._defaults = {}

    def _define(self, name, defaultValue):
        self._defaults[name] = "" if defaultValue is None else str(defaultValue)

    def text(self, name, defaultValue="", label=None):
        self._define(name, defaultValue)

    def dropdown(self, name, defaultValue, choices=None, label=None):
        self._define(name, defaultValue)

    def combobox(self, name, defaultValue, choices=None, label=None):
        self._define(name, defaultValue)

    def multiselect(self, name, defaultValue, choices=None, label=None):
        self._define(name, defaultValue)

    def get(self, name):
        # A job parameter wins over the widget's default, as on Databricks.
        if name in self._parameters:
            return self._parameters[name]
        if name in self._defaults:
            return self._defaults[name]
        raise InputWidgetNotDefined("No input widget named %s is defined" % name)

    def getArgument(self, name, defaultValue=None):
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            if defaultValue is None:
                raise
            return defaultValue

    def getAll(self):
        values = dict(self._defaults)
        values.update(self._parameters)
        return values

    def remove(self, name):
        self._defaults.pop(name, None)

    def removeAll(self):
        self._defaults.clear()


class _Notebook:
    def exit(self, value):
        raise NotebookExit(value)

    def run(self, path, timeout_seconds=0, arguments=None):
        raise NotImplementedError("dbutils.notebook.run is not supported by the emulator")


class _DBUtils:
    def __init__(self, parameters):
        self.widgets = _Widgets(parameters)
        self.notebook = _Notebook()

    def __getattr__(self, name):
        raise AttributeError("dbutils.%s is not available in the emulator" % name)


def display(*values, **_options):
    print(*values)


def split_cells(source):
    lines = source.splitlines()
    if lines and lines[0].lstrip("\ufeff").strip() == HEADER:
        lines = lines[1:]
    cells, current = [], []
    for line in lines:
        if line.strip() == SEPARATOR:
            cells.append(current)
            current = []
        else:
            current.append(line)
    cells.append(current)
    return cells


def unmagic(line):
    if line.startswith(MAGIC + " "):
        return line[len(MAGIC) + 1:]
    return line[len(MAGIC):] if line.startswith(MAGIC) else line


def cell_code(lines, number):
    """The Python code of a cell, or None for a cell that does not run (empty, markdown)."""
    meaningful = [line for line in lines if line.strip()]
    if not meaningful:
        return None
    if not all(line.startswith(MAGIC) for line in meaningful):
        return "\n".join(lines) + "\n"
    lines = [unmagic(line) for line in lines]
    first = next(i for i, line in enumerate(lines) if line.strip())
    magic = lines[first].strip().split()[0]
    if magic in ("%md", "%md-sandbox"):
        return None
    if magic == "%python":
        return "\n".join(lines[first + 1:]) + "\n"
    if magic.startswith("%"):
        raise UnsupportedMagicCommand(
            "Cell %d uses %s, which the emulator cannot run: only Python cells are supported"
            % (number, magic)
        )
    return "\n".join(lines) + "\n"


def map_local_folders(folders):
    """Makes the notebook's paths on Databricks storage real local folders: the file functions
    a report writer uses (open, makedirs, exists, listdir, ...) see /Volumes/<catalog>/... (Unity
    Catalog volumes, served by the Files API) and /Workspace/... (workspace files, served by the
    workspace export API; a repo's are its checkout) as folders of the emulator. `folders` is
    [[prefix, folder], ...], longest prefix first."""
    import builtins
    import io

    def local(path):
        try:
            text = os.fspath(path)
        except TypeError:
            return path
        if isinstance(text, str):
            for prefix, folder in folders:
                if text.startswith(prefix):
                    return os.path.join(folder, text[len(prefix):])
                if text == prefix.rstrip("/"):
                    return folder
        return path

    def mapped(function):
        def call(path, *args, **kwargs):
            return function(local(path), *args, **kwargs)
        return call

    builtins.open = mapped(builtins.open)
    io.open = builtins.open
    for module, names in (
        (os, ("makedirs", "mkdir", "listdir", "remove", "unlink", "stat", "scandir")),
        (os.path, ("exists", "isfile", "isdir", "getsize")),
    ):
        for name in names:
            setattr(module, name, mapped(getattr(module, name)))


def run_notebook(path, parameters):
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    namespace = {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "dbutils": _DBUtils(parameters),
        "display": display,
        "displayHTML": display,
    }
    for number, lines in enumerate(split_cells(source), start=1):
        code = cell_code(lines, number)
        if code is None:
            continue
        # Databricks names cells like this in tracebacks; registering the source lets the
        # traceback show the failing line.
        filename = "<command-%d>" % number
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        exec(compile(code, filename, "exec"), namespace)


def describe(error):
    message = str(error)
    name = type(error).__name__
    return "%s: %s" % (name, message) if message else name


def notebook_traceback(error):
    """The traceback without the runner's own frames: the user did not write those."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if os.path.abspath(frame.filename) != os.path.abspath(__file__)
    ]
    text = "Traceback (most recent call last):\n" if frames else ""
    text += "".join(traceback.format_list(frames))
    return text + "".join(traceback.format_exception_only(type(error), error))


def main():
    input_path, result_path = sys.argv[1], sys.argv[2]
    with open(input_path, encoding="utf-8") as handle:
        job = json.load(handle)
    notebook = job["notebook"]
    sys.argv = [notebook]
    sys.path[:0] = job.get("sys_path", [])
    if job.get("local_folders"):
        map_local_folders(job["local_folders"])
    try:
        run_notebook(notebook, job.get("base_parameters", {}))
        outcome = {}
    except NotebookExit as done:
        outcome = {"result": "" if done.value is None else str(done.value)}
    except SystemExit as stop:
        if stop.code in (None, 0):
            outcome = {}
        else:
            outcome = {"error": describe(stop), "error_trace": notebook_traceback(stop)}
    except BaseException as error:  # noqa: B902 - every failure is the notebook's result
        outcome = {"error": describe(error), "error_trace": notebook_traceback(error)}
    sys.stdout.flush()
    # Write then rename: the emulator never reads half a result.
    partial = result_path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(outcome, handle)
    os.replace(partial, result_path)


if __name__ == "__main__":
    main()
