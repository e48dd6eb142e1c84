"""The Python runner of the zeval evaluator, loaded into the CPython guest's snapshot.

Contract with the guest (guests/python/driver.c): ``__zeval_run(input_text: str, compiled:
bytes | None) -> str | (str, bytes)`` receives the call's stdin up to its first NUL (the JSON
below) and what follows the NUL (or None), and returns the text written to stdout, or that text
and the compiled code to write after it and a NUL.

Protocol with the host (crates/evaluator/src/runner.rs):
  input  {"functionName"?: "Z1000", "codeString"?: "...", "functionArguments": {key: ZObject}}
         (the original executor's request; ZObjects in normal form)
  output {"result": <normal ZObject>} or {"error": "<message>", "nestedError"?: n}
  code cache (zeval_sandbox::code_cache): the input {"compileOnly": <output limit>,
         "codeString"} runs no code: the answer {"compiled": true} is followed by a NUL and
         the code string's code object (``marshal``, raw bytes), when the two fit the limit;
         a later call's input may carry those bytes after its JSON and a NUL, and they are
         run instead of compiling the code string again.
  host calls (W.Call, through driver.c's _zeval_host_call and the sandbox's zeval.call):
         request {"function": "Z10000", "arguments": {key: ZObject}}
         answer  {"result": ZObject} or {"error": Z5, "message": "...", "index": n}

Behaviour follows the original Python executor (spec §3.3, §3.4): the code string is run with
``exec`` (globals ``ZPair``, ``ZObject``, ``W``), the function is called with keyword arguments
named by their full keys, values are (de)serialized by type as in the original's
serialization.py, and any exception becomes {"error": e.args[0]}.
Every call runs in a fresh instance of the snapshot, so nothing here needs resetting.
"""

import json as _json
import marshal as _marshal


class ZPair:
    """A typed pair (Z882): ``K1``, ``K2`` and the original ``Z1K1`` (None for a new pair)."""

    def __init__(self, K1, K2, Z1K1=None):
        self.K1 = K1
        self.K2 = K2
        self.Z1K1 = Z1K1

    def __eq__(self, other):
        return isinstance(other, ZPair) and (self.K1, self.K2) == (other.K1, other.K2)

    def __hash__(self):
        return hash((ZPair, _hashable(self.K1), _hashable(self.K2)))

    def __repr__(self):
        return "ZPair(%r, %r)" % (self.K1, self.K2)


class ZObject:
    """Any other ZObject: ``Z1K1`` kept as given, every other key an attribute."""

    def __init__(self, Z1K1=None, **kwargs):
        self.Z1K1 = Z1K1
        self._keys = sorted(kwargs)
        for key in self._keys:
            setattr(self, key, kwargs[key])

    def keys(self):
        return list(self._keys)

    def items(self):
        return [(key, getattr(self, key)) for key in self._keys]

    def __eq__(self, other):
        return isinstance(other, ZObject) and self.items() == other.items()

    def __hash__(self):
        return hash(tuple((key, _hashable(value)) for key, value in self.items()))

    def __repr__(self):
        inner = ", ".join("%s=%r" % item for item in self.items())
        return "ZObject(%s)" % inner


def _hashable(value):
    try:
        hash(value)
        return value
    except TypeError:
        return id(value)


class ZError(Exception):
    """A nested call (``W.Call``) answered with an error: ``args[0]`` is a one-line description,
    ``z5`` the error itself (a normal Z5, as a dict). Uncaught, it becomes the error of this
    call (the host substitutes the Z5 it gave, by ``index``)."""

    def __init__(self, message, z5, index):
        super().__init__(message)
        self.z5 = z5
        self.index = index


class _Reentrance:
    """``W.Call(zid, **kwargs)``: calls function ``zid`` through the orchestrator, as the
    original's reentrant executor (executors/python3/wikifunctions.py). The arguments are
    serialized like return values, the result deserialized like arguments. The request
    goes to the host through ``_zeval_host_call`` (guests/python/driver.c), which returns
    None when the host takes no calls: then this fails as the original's non-reentrant
    mode does."""

    Error = ZError

    @staticmethod
    def Call(function_name, **kwargs):  # noqa: N802 - the original's name
        if not isinstance(function_name, str):
            raise TypeError("W.Call: the function must be a ZID string, not %r" % (function_name,))
        request = {
            "function": function_name,
            "arguments": {key: serialize(value) for key, value in kwargs.items()},
        }
        answer_text = _zeval_host_call(_json.dumps(request))  # noqa: F821 - set by driver.c
        if answer_text is None:
            raise RuntimeError("Non-reentrant executor tried to call back to the orchestrator")
        answer = _json.loads(answer_text)
        if "result" in answer:
            return deserialize(answer["result"])
        raise ZError(answer.get("message", "W.Call failed"), answer.get("error"), answer.get("index"))


W = _Reentrance()


# ---- deserialization: normal ZObject -> Python ----------------------------------------------


def _get_zid(ztype):
    """The ZID naming a type: follows references, calls, Z4s and Z8s."""
    for _ in range(1000):
        if isinstance(ztype, str):
            return ztype
        if not isinstance(ztype, dict):
            break
        kind = ztype.get("Z1K1")
        kind_zid = kind if isinstance(kind, str) else (kind or {}).get("Z9K1") if isinstance(kind, dict) else None
        if kind_zid == "Z8":
            ztype = ztype.get("Z8K5")
        elif kind == "Z9" and isinstance(ztype.get("Z9K1"), str):
            return ztype["Z9K1"]
        elif kind_zid == "Z7":
            ztype = ztype.get("Z7K1")
        elif kind_zid == "Z4":
            ztype = ztype.get("Z4K1")
        else:
            break
    raise ValueError("Could not determine type for %s" % (ztype,))


def _deserialize_list(zlist):
    result = []
    cell = zlist
    while isinstance(cell, dict) and "K1" in cell:
        result.append(deserialize(cell["K1"]))
        cell = cell.get("K2")
    return result


def deserialize(zobject):
    # Bare strings only occur as the values of Z6K1/Z9K1 in normal form.
    if not isinstance(zobject, dict):
        return zobject
    zid = _get_zid(zobject.get("Z1K1"))
    if zid == "Z6":
        return zobject["Z6K1"]
    if zid == "Z21":
        return None
    if zid == "Z40":
        value = zobject.get("Z40K1")
        return (value if isinstance(value, str) else (value or {}).get("Z9K1")) == "Z41"
    if zid == "Z881":
        return _deserialize_list(zobject)
    if zid == "Z882":
        return ZPair(deserialize(zobject.get("K1")), deserialize(zobject.get("K2")), zobject["Z1K1"])
    if zid == "Z883":
        return {pair.K1: pair.K2 for pair in deserialize(zobject.get("K1"))}
    kwargs = {key: deserialize(value) for key, value in zobject.items() if key != "Z1K1"}
    return ZObject(zobject["Z1K1"], **kwargs)


# ---- serialization: Python -> normal ZObject ------------------------------------------------


def _ref(zid):
    return {"Z1K1": "Z9", "Z9K1": zid}


def _soup_up(ztype):
    return _ref(ztype) if isinstance(ztype, str) else ztype


def _list_type(item_type):
    return {"Z1K1": _ref("Z7"), "Z7K1": _ref("Z881"), "Z881K1": item_type}


def _pair_type(first, second):
    return {"Z1K1": _ref("Z7"), "Z7K1": _ref("Z882"), "Z882K1": first, "Z882K2": second}


def _map_type(key, value):
    return {"Z1K1": _ref("Z7"), "Z7K1": _ref("Z883"), "Z883K1": key, "Z883K2": value}


def _typed_list(item_type, elements):
    ztype = _list_type(item_type)
    zlist = {"Z1K1": ztype}
    for element in reversed(elements):
        zlist = {"Z1K1": ztype, "K1": element, "K2": zlist}
    return zlist


def _common_item_type(elements):
    if not elements:
        return _ref("Z1")
    first = elements[0].get("Z1K1")
    if all(element.get("Z1K1") == first for element in elements):
        return _soup_up(first)
    return _ref("Z1")


def _serialize_pair(pair):
    first = serialize(pair.K1)
    second = serialize(pair.K2)
    ztype = pair.Z1K1
    if ztype is None:
        ztype = _pair_type(_soup_up(first["Z1K1"]), _soup_up(second["Z1K1"]))
    return {"Z1K1": ztype, "K1": first, "K2": second}


def _serialize_map(mapping):
    pairs = [_serialize_pair(ZPair(key, value)) for key, value in mapping.items()]
    key_type = value_type = _ref("Z1")
    if pairs:
        key_type = _soup_up(pairs[0]["K1"]["Z1K1"])
        value_type = _soup_up(pairs[0]["K2"]["Z1K1"])
    return {
        "Z1K1": _map_type(key_type, value_type),
        "K1": _typed_list(_pair_type(key_type, value_type), pairs),
    }


def _serialize_generic(zobject):
    result = {"Z1K1": zobject.Z1K1}
    for key, value in zobject.items():
        # Z6K1/Z9K1 hold bare strings in normal form (deserialize kept them bare).
        if key in ("Z6K1", "Z9K1") and isinstance(value, str):
            result[key] = value
        else:
            result[key] = serialize(value)
    return result


def serialize(value):
    if isinstance(value, str):
        return {"Z1K1": "Z6", "Z6K1": value}
    if value is None:
        return {"Z1K1": _ref("Z21")}
    if isinstance(value, bool):
        return {"Z1K1": _ref("Z40"), "Z40K1": _ref("Z41" if value else "Z42")}
    if isinstance(value, ZPair):
        return _serialize_pair(value)
    if isinstance(value, dict):
        return _serialize_map(value)
    if isinstance(value, ZObject):
        return _serialize_generic(value)
    try:
        iterator = iter(value)
    except TypeError:
        iterator = None
    if iterator is not None:
        elements = [serialize(item) for item in iterator]
        return _typed_list(_common_item_type(elements), elements)
    raise ValueError("Could not serialize input Python object: %r" % (value,))


# ---- the call --------------------------------------------------------------------------------


def _execute(request, compiled):
    function_name = request.get("functionName")
    if function_name is None:
        raise ValueError("Function call did not provide functionName.")
    code_string = request.get("codeString")
    if code_string is None and compiled is None:
        raise ValueError("Function call did not provide codeString.")
    arguments = request.get("functionArguments") or {}
    kwargs = {key: deserialize(value) for key, value in arguments.items()}
    scope = {"__name__": "__main__", "ZPair": ZPair, "ZObject": ZObject, "W": W, "ZError": ZError}
    if compiled is not None:
        # What a compile-only run (_compile_only) handed back for this same code string.
        code = _marshal.loads(compiled)
    else:
        # What exec(code_string, scope) compiles: the same file name, mode and flags.
        code = compile(code_string, "<string>", "exec")
    exec(code, scope)  # noqa: S102 - running user code is the point; the sandbox bounds it
    if function_name not in scope:
        raise NameError("name '%s' is not defined" % (function_name,))
    return serialize(scope[function_name](**kwargs))


def _message(error):
    # The original reports e.args[0]; an exception without arguments crashed it (which the
    # service then reported as an empty response), so name the exception instead.
    if error.args:
        first = error.args[0]
        return first if isinstance(first, str) else str(first)
    return type(error).__name__


def _compile_only(request, limit):
    """The code string compiled and not run (``{"compileOnly": limit}``): the answer
    ``{"compiled": true}`` and the code object (``marshal``) to write after it, when the two
    fit in ``limit`` bytes. The code cache's entries (zeval_sandbox::code_cache) come only from
    such a request, in an instance where no user code runs: a call's own run could not be
    trusted with them, as its code reaches this runner's frames."""
    code_string = request.get("codeString")
    if not isinstance(code_string, str) or type(limit) is not int:
        return _json.dumps({"error": "compileOnly needs codeString."})
    try:
        # What exec(code_string, scope) compiles: the same file name, mode and flags.
        compiled = _marshal.dumps(compile(code_string, "<string>", "exec"))
    except BaseException as error:  # noqa: BLE001 - not cached; the call reports it
        return _json.dumps({"error": _message(error)})
    text = _json.dumps({"compiled": True})
    if len(text) + 1 + len(compiled) > limit:
        return text
    return (text, compiled)


def __zeval_run(input_text, compiled=None):
    try:
        request = _json.loads(input_text)
    except ValueError as error:
        return _json.dumps({"error": "The request is not JSON: %s" % (error,)})
    if type(request) is dict and request.get("compileOnly") is not None:
        return _compile_only(request, request["compileOnly"])
    # Looked up before the user's code runs, which may replace json.dumps.
    dumps = _json.dumps
    try:
        return dumps({"result": _execute(request, compiled)}, ensure_ascii=False)
    except BaseException as error:  # noqa: BLE001 - every failure is reported to the caller
        try:
            answer = {"error": _message(error)}
            if isinstance(error, ZError) and isinstance(error.index, int):
                answer["nestedError"] = error.index
            return dumps(answer, ensure_ascii=False)
        except BaseException:  # noqa: BLE001
            return dumps({"error": "The error could not be described."})


def __zeval_warmup():
    """Called once by the guest's snapshot step (guests/python/driver.c), never per call: runs a
    representative call so the snapshot holds specialised bytecode and warm caches."""
    request = {
        "functionName": "Z1000",
        "codeString": "def Z1000(Z1000K1, Z1000K2):\n    return str(int(Z1000K1) + int(Z1000K2))",
        "functionArguments": {
            "Z1000K1": {"Z1K1": "Z6", "Z6K1": "2"},
            "Z1000K2": {"Z1K1": "Z6", "Z6K1": "3"},
        },
    }
    for _ in range(3):
        __zeval_run(_json.dumps(request))
    # The code cache's two paths: compiling only and handing back, then running that.
    compile_only = {key: request[key] for key in ("functionName", "codeString")}
    compile_only["compileOnly"] = 1 << 20
    _, compiled = __zeval_run(_json.dumps(compile_only))
    for _ in range(3):
        __zeval_run(_json.dumps(request), compiled)
