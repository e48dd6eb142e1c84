"""Writes the stdlib bundle the CPython guest imports from (format: stdlib_importer.py).

    make_stdlib_bundle.py STDLIB_DIR ZONEINFO_DIR TZ_VERSION GUEST_STDLIB_DIR OUT_FILE

Run by build.sh with the native build Python (same version, so the same bytecode and marshal
format as the guest). Bundles every module of STDLIB_DIR's packages (a directory without
``__init__.py`` is not a package and is skipped, as are ``__pycache__``, ``site-packages`` and
``lib-dynload``), each compiled with its guest path as file name, marshalled and
zlib-compressed. ZONEINFO_DIR (zic's output) becomes the package ``tzdata`` laid out as the
PyPI ``tzdata`` package that ``zoneinfo`` falls back to: one package per directory, the TZif
files as resources of ``tzdata.zoneinfo[.<area>]``, the list of keys in ``tzdata/zones``.
"""

import marshal
import os
import sys
import zlib

stdlib_dir, zoneinfo_dir, tz_version, guest_root, out_file = sys.argv[1:]

modules = {}  # name -> (is_package, relative path, start, end)
data = {}  # relative path -> (start, end)
blobs = []
offset = 0


def add_blob(payload):
    """Appends zlib(payload) and returns its (start, end) relative to the blob area."""
    global offset
    compressed = zlib.compress(payload, 9)
    blobs.append(compressed)
    offset += len(compressed)
    return offset - len(compressed), offset


def add_module(name, relative, source, is_package):
    code = compile(source, guest_root + "/" + relative, "exec", dont_inherit=True, optimize=0)
    modules[name] = (is_package, relative) + add_blob(marshal.dumps(code))


for directory, subdirectories, files in os.walk(stdlib_dir):
    relative_dir = os.path.relpath(directory, stdlib_dir).replace(os.sep, "/")
    top = relative_dir == "."
    excluded = {"__pycache__"} | ({"site-packages", "lib-dynload"} if top else set())
    subdirectories[:] = sorted(
        name
        for name in subdirectories
        if name not in excluded and os.path.isfile(os.path.join(directory, name, "__init__.py"))
    )
    package = None if top else relative_dir.replace("/", ".")
    for file_name in sorted(files):
        if not file_name.endswith(".py"):
            continue
        stem = file_name[:-3]
        relative = file_name if top else relative_dir + "/" + file_name
        with open(os.path.join(directory, file_name), "rb") as source_file:
            source = source_file.read()
        if stem == "__init__":
            add_module(package, relative, source, True)
        elif stem.isidentifier():
            add_module(stem if top else package + "." + stem, relative, source, False)

add_module("tzdata", "tzdata/__init__.py", 'IANA_VERSION = "%s"\n' % tz_version, True)
keys = []
for directory, subdirectories, files in os.walk(zoneinfo_dir):
    subdirectories.sort()
    relative_dir = os.path.relpath(directory, zoneinfo_dir).replace(os.sep, "/")
    resource_dir = "tzdata/zoneinfo" + ("" if relative_dir == "." else "/" + relative_dir)
    package = resource_dir.replace("/", ".")
    add_module(package, resource_dir + "/__init__.py", b"", True)
    for file_name in sorted(files):
        with open(os.path.join(directory, file_name), "rb") as zone_file:
            zone = zone_file.read()
        if not zone.startswith(b"TZif"):
            continue
        data[resource_dir + "/" + file_name] = add_blob(zone)
        keys.append(file_name if relative_dir == "." else relative_dir + "/" + file_name)
data["tzdata/zones"] = add_blob("".join(key + "\n" for key in sorted(keys)).encode())

# Offsets become absolute: the header precedes the blobs, and its length depends on them, so
# grow the assumed header length until it is stable.
header_length = 0
while True:
    base = 8 + header_length
    header = marshal.dumps(
        (
            {name: (pkg, rel, start + base, end + base) for name, (pkg, rel, start, end) in modules.items()},
            {rel: (start + base, end + base) for rel, (start, end) in data.items()},
        )
    )
    if len(header) == header_length:
        break
    header_length = len(header)
with open(out_file, "wb") as out:
    out.write(header_length.to_bytes(8, "little"))
    out.write(header)
    for blob in blobs:
        out.write(blob)
print("%d modules, %d tz files, %d bytes" % (len(modules), len(keys), 8 + header_length + offset))
