// A minimal WASI preview 1 for the zeval guests (quickjs.wasm, python.wasm), in the browser.
//
// The guests are pre-initialised snapshots: the host calls `_start` once per fresh instance
// with the call's JSON on stdin and reads the answer from stdout (see
// crates/sandbox/src/guest.rs and the runners' protocol in guests/*/runner.*). They need no
// files at call time, so this gives them what zeval's sandbox gives them: argv[0] only, no
// environment, no preopened directories, stdin from memory, stdout and stderr captured up to
// a cap, the real clocks, and crypto randomness. Everything else answers ENOSYS or EBADF.
//
// The `zeval` imports (host calls: code calling other functions through the server) answer
// "no host" (-1), as for a call the server runs without one.
//
// Written for these guests (their imports were listed with WebAssembly.Module.imports);
// not a general WASI implementation.

const ESUCCESS = 0;
const EBADF = 8;
const EINVAL = 28;
const ENOSYS = 52;
const ESPIPE = 70;

/** proc_exit unwinds the wasm stack with this. */
export class Exit {
	constructor(code) {
		this.code = code;
	}
}

/** Output past this many bytes is an error, as in the server's sandbox. */
export class OutputLimit extends Error {}

/**
 * The imports of one instance. `stdin` is a Uint8Array; output is collected until
 * `maxOutputBytes` (each of stdout and stderr). Call `bind(instance)` once instantiated.
 */
export function wasiImports(stdin, maxOutputBytes) {
	let memory = null;
	let stdinOffset = 0;
	const out = { 1: [], 2: [] };
	const outBytes = { 1: 0, 2: 0 };
	const view = () => new DataView(memory.buffer);
	const bytes = () => new Uint8Array(memory.buffer);
	const argv0 = new TextEncoder().encode('zeval\0');

	const ns = {
		args_sizes_get(argc, bufSize) {
			view().setUint32(argc, 1, true);
			view().setUint32(bufSize, argv0.length, true);
			return ESUCCESS;
		},
		args_get(argv, buf) {
			view().setUint32(argv, buf, true);
			bytes().set(argv0, buf);
			return ESUCCESS;
		},
		environ_sizes_get(count, size) {
			view().setUint32(count, 0, true);
			view().setUint32(size, 0, true);
			return ESUCCESS;
		},
		environ_get() {
			return ESUCCESS;
		},
		clock_res_get(id, resolution) {
			view().setBigUint64(resolution, 1000n, true);
			return ESUCCESS;
		},
		clock_time_get(id, precision, time) {
			// 0 realtime, 1 monotonic, 2/3 process/thread CPU time (approximated by monotonic).
			const ns = id === 0 ?
				BigInt(Date.now()) * 1000000n :
				BigInt(Math.round(performance.now() * 1e6));
			view().setBigUint64(time, ns, true);
			return ESUCCESS;
		},
		random_get(buf, len) {
			// getRandomValues fills at most 65536 bytes at a time.
			for (let off = 0; off < len; off += 65536) {
				crypto.getRandomValues(new Uint8Array(memory.buffer, buf + off, Math.min(65536, len - off)));
			}
			return ESUCCESS;
		},
		fd_read(fd, iovs, iovsLen, nread) {
			if (fd !== 0) {
				return EBADF;
			}
			let total = 0;
			for (let i = 0; i < iovsLen; i++) {
				const ptr = view().getUint32(iovs + i * 8, true);
				const len = view().getUint32(iovs + i * 8 + 4, true);
				const chunk = stdin.subarray(stdinOffset, stdinOffset + len);
				bytes().set(chunk, ptr);
				stdinOffset += chunk.length;
				total += chunk.length;
				if (chunk.length < len) {
					break;
				}
			}
			view().setUint32(nread, total, true);
			return ESUCCESS;
		},
		fd_write(fd, iovs, iovsLen, nwritten) {
			if (fd !== 1 && fd !== 2) {
				return EBADF;
			}
			let total = 0;
			for (let i = 0; i < iovsLen; i++) {
				const ptr = view().getUint32(iovs + i * 8, true);
				const len = view().getUint32(iovs + i * 8 + 4, true);
				outBytes[fd] += len;
				if (outBytes[fd] > maxOutputBytes) {
					throw new OutputLimit(`Function call exceeded the output limit of ${maxOutputBytes} bytes`);
				}
				out[fd].push(bytes().slice(ptr, ptr + len));
				total += len;
			}
			view().setUint32(nwritten, total, true);
			return ESUCCESS;
		},
		fd_fdstat_get(fd, stat) {
			if (fd > 2) {
				return EBADF;
			}
			// filetype 2 = character device; no flags; every right.
			const v = view();
			v.setUint8(stat, 2);
			v.setUint16(stat + 2, 0, true);
			v.setBigUint64(stat + 8, 0xffffffffn, true);
			v.setBigUint64(stat + 16, 0xffffffffn, true);
			return ESUCCESS;
		},
		fd_filestat_get(fd, stat) {
			if (fd > 2) {
				return EBADF;
			}
			bytes().fill(0, stat, stat + 64);
			view().setUint8(stat + 16, 2);
			return ESUCCESS;
		},
		fd_seek(fd) {
			return fd <= 2 ? ESPIPE : EBADF;
		},
		fd_tell(fd) {
			return fd <= 2 ? ESPIPE : EBADF;
		},
		fd_close(fd) {
			return fd <= 2 ? ESUCCESS : EBADF;
		},
		// No preopened directories: libc stops listing them at the first EBADF.
		fd_prestat_get() {
			return EBADF;
		},
		fd_prestat_dir_name() {
			return EBADF;
		},
		fd_fdstat_set_flags(fd) {
			return fd <= 2 ? ESUCCESS : EBADF;
		},
		sched_yield() {
			return ESUCCESS;
		},
		proc_exit(code) {
			throw new Exit(code);
		},
	};
	const handler = {
		get(target, name) {
			if (name in target) {
				return target[name];
			}
			// Files, sockets, polling: the guests have none at call time.
			return () => (String(name).startsWith('fd_') ? EBADF : ENOSYS);
		},
	};
	const decoder = new TextDecoder();
	const joined = (fd) => {
		const all = new Uint8Array(outBytes[fd] > maxOutputBytes ? 0 : outBytes[fd]);
		let at = 0;
		for (const part of out[fd]) {
			all.set(part, at);
			at += part.length;
		}
		return decoder.decode(all);
	};
	// The sandbox's host calls (a function calling another function through the server):
	// a browser has no host to call, which the guests are built to be told (-1).
	const zeval = {
		call: () => -1,
		answer: () => 0,
	};
	return {
		imports: { wasi_snapshot_preview1: new Proxy(ns, handler), zeval },
		bind(instance) {
			memory = instance.exports.memory;
		},
		stdout: () => joined(1),
		stderr: () => joined(2),
		EINVAL,
	};
}

/**
 * Runs `_start` of a fresh instance of `module` with `input` (text) on stdin. Returns
 * `{stdout, stderr, exitCode, peakMemoryBytes}`; throws what the guest trapped with.
 */
export function runGuest(module, input, maxOutputBytes) {
	const wasi = wasiImports(new TextEncoder().encode(input), maxOutputBytes);
	const instance = new WebAssembly.Instance(module, wasi.imports);
	wasi.bind(instance);
	let exitCode = 0;
	try {
		instance.exports._start();
	} catch (e) {
		if (e instanceof Exit) {
			exitCode = e.code;
		} else {
			throw e;
		}
	}
	return {
		stdout: wasi.stdout(),
		stderr: wasi.stderr(),
		exitCode,
		peakMemoryBytes: instance.exports.memory.buffer.byteLength,
	};
}
