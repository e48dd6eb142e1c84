"""A stand-in for `zeval worker` that misbehaves on purpose (see hostile_worker.rs).

It reads the spec frame, answers a valid Hello, then for each request frame behaves as the
first argument says: ok | huge | trickle | garbage | die | silent | slow (starts in 1.5 s,
answers in 1 s) | host_call (asks its host "ping" and answers with the host's answer as stdout)
| host_call_huge (asks its host 64 KiB) | modules (runs compiled modules, holding only the
last one it was sent, and answers with what it was sent: "bytes <key>" or "key <key>") |
not_loaded (answers every module request "not loaded", even one that carries the module) |
affinity (answers with the CPUs it may run on, after sleeping 1 s when its input is "wait";
with a second argument "unrestorable" it reports that it cannot restore priorities) |
start_once (the second argument names a file: the first stand-in creates it and dies in its
first call; any stand-in started once it exists fails to start) | given (answers with the wall
time it was given, in microseconds, after sleeping all of it when its input is "loop", as an
endless loop stopped at its deadline would) | twice_heavy (answers, then, as a worker that
escaped its sandbox might: touches 512 MiB, which its exit must give back, lowers itself to
SCHED_IDLE, answers again out of turn, and then creates the file its second argument names).
"""
import json
import os
import struct
import sys
import time

MODE = sys.argv[1]
sock = os.fdopen(0, "r+b", buffering=0)


def read_frame():
    header = b""
    while len(header) < 4:
        chunk = sock.read(4 - len(header))
        if not chunk:
            sys.exit(0)
        header += chunk
    (length,) = struct.unpack("<I", header)
    data = b""
    while len(data) < length:
        chunk = sock.read(length - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def write_frame(payload):
    sock.write(struct.pack("<I", len(payload)) + payload)


def feature(state, detail):
    return {"state": state, "detail": detail}


read_frame()
if MODE == "start_once":
    try:
        open(sys.argv[2], "x").close()
    except FileExistsError:
        sys.exit(1)
    MODE = "die"
if MODE == "slow":
    time.sleep(1.5)
hello = {
    "Ready": {
        "confinement": {
            "seccomp": feature("unavailable", "a test stand-in"),
            "landlock": feature("unavailable", "a test stand-in"),
            "no_new_privs": False,
            "user": feature("unavailable", "a test stand-in"),
            "rlimits": feature("unavailable", "a test stand-in"),
            "memory_cgroup": feature("unavailable", "a test stand-in"),
        },
        # The thread the parent binds to its caller's CPU: this one, the main thread.
        "serving_thread": os.getpid(),
    }
}
if MODE == "affinity" and sys.argv[2:] == ["unrestorable"]:
    # A worker that could not raise a lowered thread back, so lowers none.
    hello["Ready"]["confinement"]["priority_restorable"] = False
write_frame(json.dumps(hello).encode())

def ran(stdout):
    return (
        b"\x00"
        + struct.pack("<QQQQ", 2**64 - 1, 4096, 1000, 1000)
        + struct.pack("<I", len(stdout))
        + stdout
    )


RUN_MODULE, RUN_LOADED_MODULE, MODULE_NOT_LOADED = 3, 6, b"\x03"
held = None

while True:
    request = read_frame()
    if MODE in ("modules", "not_loaded"):
        key = request[2 : 2 + request[1]]
        if MODE == "not_loaded":
            write_frame(MODULE_NOT_LOADED)
        elif request[0] == RUN_MODULE:
            held = key
            write_frame(ran(b"bytes " + key))
        elif request[0] == RUN_LOADED_MODULE and key == held:
            write_frame(ran(b"key " + key))
        else:
            write_frame(MODULE_NOT_LOADED)
        continue
    stdin = request[1 + 4 + 5 * 8:]
    # A successful answer: fuel none, peak memory, duration, cpu, stdout length, stdout.
    ok = (
        b"\x00"
        + struct.pack("<QQQQ", 2**64 - 1, 4096, 1000, 1000)
        + struct.pack("<I", len(stdin))
        + stdin
    )
    if MODE == "ok":
        write_frame(ok)
    elif MODE == "overflow":
        # More stdout than the call's output limit (4096 in the tests), within the frame's.
        write_frame(ran(b"x" * 5000))
    elif MODE == "twice":
        # A second answer, for whoever's call comes next.
        write_frame(ok)
        time.sleep(0.05)
        write_frame(ran(b"forged"))
    elif MODE == "twice_heavy":
        write_frame(ok)
        ballast = bytearray(512 << 20)
        for page in range(0, len(ballast), 4096):
            ballast[page] = 1
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        write_frame(ran(b"forged"))
        open(sys.argv[2], "w").close()
        time.sleep(3600)
    elif MODE == "affinity":
        if stdin == b"wait":
            time.sleep(1.0)
        cpus = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
        write_frame(ran(cpus.encode()))
    elif MODE == "given":
        (wall_time_us,) = struct.unpack("<Q", request[5:13])
        if stdin == b"loop":
            time.sleep(wall_time_us / 1e6)
        write_frame(ran(str(wall_time_us).encode()))
    elif MODE == "slow":
        time.sleep(1.0)
        write_frame(ok)
    elif MODE == "huge":
        sock.write(struct.pack("<I", 2**32 - 1))
        time.sleep(30)
    elif MODE == "trickle":
        frame = struct.pack("<I", len(ok)) + ok
        for byte in frame:
            sock.write(bytes([byte]))
            time.sleep(0.2)
    elif MODE == "garbage":
        write_frame(b"\x07nonsense")
    elif MODE == "die":
        os._exit(9)
    elif MODE == "silent":
        time.sleep(60)
    elif MODE in ("host_call", "host_call_huge"):
        write_frame(b"\x02" + (b"ping" if MODE == "host_call" else b"x" * 65536))
        answer = read_frame()
        assert answer[:1] == b"\x05", answer[:1]
        payload = answer[1:]
        write_frame(
            b"\x00"
            + struct.pack("<QQQQ", 2**64 - 1, 4096, 1000, 1000)
            + struct.pack("<I", len(payload))
            + payload
        )
