"""Imports the standard library from memory: the guest has no file system at call time.

Run by guests/python/driver.c right after the interpreter starts, while the snapshot tool still
preopens the stdlib dir read-only. ``install(stdlib_dir)`` reads ``zeval-stdlib.bundle``
(written by make_stdlib_bundle.py) into ONE bytes object, which the snapshot keeps, and puts
an importer in ``sys.meta_path`` before the path finder. Every later import of a stdlib module
(during the snapshot and in every call) decompresses its marshalled code from that object.

Bundle layout: 8 bytes (little-endian length N), then N bytes of
``marshal.dumps((modules, data))`` with
  modules: {name: (is_package, path relative to the stdlib dir, start, end)}
  data:    {path relative to the stdlib dir: (start, end)}
and then the zlib-compressed blobs; start/end are offsets into the whole file.
Data files (the tz database under ``tzdata/``) are served through ``importlib.resources``.
"""

import marshal as _marshal
import sys as _sys
import zlib as _zlib
from _frozen_importlib import ModuleSpec as _ModuleSpec
from _frozen_importlib_external import PathFinder as _PathFinder


class StdlibImporter:
    """Meta path finder and loader of the bundled stdlib (``importlib`` protocols)."""

    def __init__(self, root, bundle):
        self._root = root
        self._bundle = bundle
        header_length = int.from_bytes(bundle[:8], "little")
        self._modules, self._data = _marshal.loads(memoryview(bundle)[8 : 8 + header_length])
        # Every directory that holds a bundled file, for Traversable.is_dir/iterdir.
        self._dirs = {}
        paths = [entry[1] for entry in self._modules.values()] + list(self._data)
        for path in paths:
            parent, _, leaf = path.rpartition("/")
            while True:
                self._dirs.setdefault(parent, set()).add(leaf)
                if not parent:
                    break
                parent, _, leaf = parent.rpartition("/")

    def _unpack(self, start, end):
        return _zlib.decompress(memoryview(self._bundle)[start:end])

    # -- finder --
    def find_spec(self, fullname, path=None, target=None):
        entry = self._modules.get(fullname)
        if entry is None:
            return None
        is_package, relative, _start, _end = entry
        spec = _ModuleSpec(fullname, self, origin=self._root + "/" + relative, is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [self._root + "/" + relative.rpartition("/")[0]]
        spec.has_location = True
        return spec

    def invalidate_caches(self):
        pass

    # -- loader --
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.get_code(module.__spec__.name), module.__dict__)

    def get_code(self, fullname):
        entry = self._modules.get(fullname)
        if entry is None:
            raise ImportError("no bundled module named %r" % fullname, name=fullname)
        return _marshal.loads(self._unpack(entry[2], entry[3]))

    def get_source(self, fullname):
        """None: sources are not bundled (tracebacks show no stdlib source lines)."""
        if fullname not in self._modules:
            raise ImportError("no bundled module named %r" % fullname, name=fullname)
        return None

    def is_package(self, fullname):
        entry = self._modules.get(fullname)
        if entry is None:
            raise ImportError("no bundled module named %r" % fullname, name=fullname)
        return entry[0]

    def get_filename(self, fullname):
        entry = self._modules.get(fullname)
        if entry is None:
            raise ImportError("no bundled module named %r" % fullname, name=fullname)
        return self._root + "/" + entry[1]

    def get_data(self, path):
        entry = self._data.get(self._relative(path))
        if entry is None:
            raise FileNotFoundError(2, "No such file in the bundled stdlib", path)
        return self._unpack(*entry)

    def get_resource_reader(self, fullname):
        entry = self._modules.get(fullname)
        if entry is None or not entry[0]:
            return None
        return _ResourceReader(_BundleTraversable(self, entry[1].rpartition("/")[0]))

    def _relative(self, path):
        prefix = self._root + "/"
        return path[len(prefix) :] if isinstance(path, str) and path.startswith(prefix) else None


class _ResourceReader:
    """``importlib.resources`` asks a package's loader for this; only ``files()`` is used."""

    def __init__(self, root):
        self._root = root

    def files(self):
        return self._root


class _BundleTraversable:
    """A file or directory of the bundle (``importlib.resources.abc.Traversable``)."""

    def __init__(self, importer, relative):
        self._importer = importer
        self._relative = relative

    @property
    def name(self):
        return self._relative.rpartition("/")[2]

    def __repr__(self):
        return "<bundled %s>" % (self._importer._root + "/" + self._relative)

    def __str__(self):
        return self._importer._root + "/" + self._relative

    def is_dir(self):
        return self._relative in self._importer._dirs

    def is_file(self):
        return self._relative in self._importer._data

    def iterdir(self):
        children = self._importer._dirs.get(self._relative)
        if children is None:
            raise NotADirectoryError(20, "Not a bundled directory", str(self))
        return iter([self._child(name) for name in sorted(children)])

    def _child(self, name):
        return _BundleTraversable(self._importer, self._relative + "/" + name if self._relative else name)

    def joinpath(self, *descendants):
        result = self
        for descendant in descendants:
            for part in str(descendant).split("/"):
                if part and part != ".":
                    result = result._child(part)
        return result

    __truediv__ = joinpath

    def read_bytes(self):
        entry = self._importer._data.get(self._relative)
        if entry is None:
            if self.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(self))
            raise FileNotFoundError(2, "No such file in the bundled stdlib", str(self))
        return self._importer._unpack(*entry)

    def read_text(self, encoding=None):
        return self.read_bytes().decode(encoding or "utf-8")

    def open(self, mode="r", *args, **kwargs):
        import io

        if mode not in ("r", "rb"):
            raise ValueError("bundled stdlib files are read-only: mode %r" % mode)
        stream = io.BytesIO(self.read_bytes())
        return stream if mode == "rb" else io.TextIOWrapper(stream, *args, **kwargs)


def install(stdlib_dir):
    """Loads the bundle and puts the importer in front of the path finder (called once)."""
    with open(stdlib_dir + "/zeval-stdlib.bundle", "rb") as bundle_file:
        bundle = bundle_file.read()
    importer = StdlibImporter(stdlib_dir, bundle)
    meta_path = _sys.meta_path
    position = meta_path.index(_PathFinder) if _PathFinder in meta_path else len(meta_path)
    meta_path.insert(position, importer)
