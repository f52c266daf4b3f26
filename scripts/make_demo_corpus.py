"""Build the demo corpus from documentation that ships with Python itself.

Each document is one public function, class or method docstring of a set of standard-library
modules, plus the pydoc topic pages: a few thousand real technical texts, no download needed.

Usage: python scripts/make_demo_corpus.py data/demo/python_docs.jsonl
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path

MODULES = [
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "bz2",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "collections.abc",
    "concurrent.futures",
    "configparser",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "email",
    "email.message",
    "enum",
    "filecmp",
    "fnmatch",
    "fractions",
    "ftplib",
    "functools",
    "gc",
    "getpass",
    "gettext",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "html.parser",
    "http.client",
    "http.cookies",
    "http.server",
    "imaplib",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "linecache",
    "locale",
    "logging",
    "logging.handlers",
    "lzma",
    "mailbox",
    "math",
    "mimetypes",
    "multiprocessing",
    "operator",
    "os",
    "os.path",
    "pathlib",
    "pickle",
    "pkgutil",
    "platform",
    "plistlib",
    "poplib",
    "pprint",
    "queue",
    "quopri",
    "random",
    "re",
    "reprlib",
    "sched",
    "secrets",
    "select",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "smtplib",
    "socket",
    "socketserver",
    "sqlite3",
    "ssl",
    "stat",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sys",
    "sysconfig",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "token",
    "tokenize",
    "trace",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "unittest.mock",
    "urllib.parse",
    "urllib.request",
    "uuid",
    "warnings",
    "weakref",
    "xml.dom.minidom",
    "xml.etree.ElementTree",
    "xml.sax",
    "zipfile",
    "zlib",
    "zoneinfo",
    "builtins",
    "doctest",
    "pdb",
    "cProfile",
    "pstats",
    "dis",
    "code",
    "codeop",
    "compileall",
    "py_compile",
    "runpy",
    "graphlib",
    "numbers",
    "binascii",
    "colorsys",
    "wave",
    "optparse",
    "netrc",
    "tomllib",
    "asyncio.events",
    "asyncio.streams",
    "asyncio.tasks",
    "asyncio.queues",
    "asyncio.locks",
    "email.utils",
    "email.policy",
    "json.decoder",
    "json.encoder",
    "multiprocessing.pool",
    "multiprocessing.managers",
    "xml.etree.ElementPath",
    "wsgiref.simple_server",
    "xmlrpc.client",
    "ctypes",
    "curses.ascii",
    "sqlite3.dbapi2",
    "concurrent.futures.thread",
    "concurrent.futures.process",
]
MIN_CHARS = 80


def _documents():
    seen: set[str] = set()
    seen_objects: set[int] = set()
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        members = [(module_name, module)]
        for name, obj in inspect.getmembers(module):
            owner = getattr(obj, "__module__", None) or module_name
            if name.startswith("_") or not owner.startswith(module_name.split(".")[0]):
                continue
            if inspect.isclass(obj) or inspect.isroutine(obj):
                members.append((f"{module_name}.{name}", obj))
                if inspect.isclass(obj):
                    for attr, value in vars(obj).items():
                        if not attr.startswith("_") and inspect.isroutine(value):
                            members.append((f"{module_name}.{name}.{attr}", value))
        for qualified, obj in members:
            doc = inspect.getdoc(obj)
            if not doc or len(doc) < MIN_CHARS or qualified in seen or id(obj) in seen_objects:
                continue
            seen.add(qualified)
            seen_objects.add(id(obj))
            yield {"id": qualified, "title": qualified, "text": doc}
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for name, text in sorted(topics.items()):
        if len(text) >= MIN_CHARS:
            yield {"id": f"topic:{name}", "title": name, "text": text.strip()}


def main(target: str) -> None:
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for doc in _documents():
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    print(f"wrote {count} documents to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/demo/python_docs.jsonl")
