// Running planned calls in this browser: the guest module (the server's own snapshot) is
// compiled once per page, and each call runs in a fresh instance inside one of a pool of
// module Workers. A call past its deadline has its Worker terminated and replaced: a
// Worker that timed out is never used again (its thread may still be spinning).

/** Workers in the pool (each holds a thread while it runs). */
// At most 3, so that the requests that hold each call's deadline (below) leave the browser
// connections to the server for everything else.
const POOL_SIZE = Math.max(1, Math.min(3, (navigator.hardwareConcurrency || 2) - 1));
/** Calls that may wait for a Worker; past it a call is refused at once. */
const MAX_QUEUED = 100;

const modules = new Map();

/** The compiled guest at `url`, compiled once per page. */
export function guestModule(url) {
	if (!modules.has(url)) {
		const p = WebAssembly.compileStreaming(fetch(url)).catch(async () => {
			// Servers that send the wrong type still work, through a slower path.
			const bytes = await (await fetch(url)).arrayBuffer();
			return WebAssembly.compile(bytes);
		});
		modules.set(url, p);
		p.catch(() => modules.delete(url));
	}
	return modules.get(url);
}

class Slot {
	constructor() {
		this.fresh();
	}
	fresh() {
		this.worker = new Worker('/playground/worker.js', { type: 'module' });
		this.generation = (this.generation || 0) + 1;
		this.busy = false;
	}
}

const slots = [];
const queue = [];
let nextId = 1;
/** How many Workers were replaced after a timeout (shown in Details, read by tests). */
export const stats = { replaced: 0, calls: 0 };

function freeSlot() {
	if (slots.length < POOL_SIZE) {
		const s = new Slot();
		slots.push(s);
		return s;
	}
	return slots.find((s) => !s.busy);
}

function pump() {
	while (queue.length) {
		const slot = freeSlot();
		if (!slot) {
			return;
		}
		start(slot, queue.shift());
	}
}

function start(slot, job) {
	slot.busy = true;
	const id = nextId++;
	const worker = slot.worker;
	const generation = slot.generation;
	let timer = null;
	let done = (outcome) => {
		clearTimeout(timer);
		worker.onmessage = null;
		worker.onerror = null;
		if (slot.generation === generation) {
			slot.busy = false;
		}
		job.resolve(outcome);
		pump();
	};
	worker.onmessage = (e) => {
		if (e.data.id === id) {
			done(e.data);
		}
	};
	worker.onerror = (e) => {
		e.preventDefault?.();
		worker.terminate();
		stats.replaced++;
		slot.fresh();
		done({ ok: false, message: `The worker failed: ${e.message || 'unknown error'}` });
	};
	let expired = false;
	const expire = () => {
		if (expired || slot.generation !== generation || !slot.busy) {
			return;
		}
		expired = true;
		// The only way to stop wasm that does not return: end its thread.
		worker.terminate();
		stats.replaced++;
		slot.fresh();
		done({ ok: false, timeout: true, message: 'Function call timed out', ms: job.wallTimeMs });
	};
	timer = setTimeout(expire, job.wallTimeMs);
	// The same deadline by the server's clock: a chain of short requests the server holds
	// open (10 ms, doubling up to 250 ms), until the call ends or they add up to the
	// deadline. Where the page's clocks are virtual (headless Chromium's
	// --virtual-time-budget jumps to the next timer while a Worker computes), an open
	// request pauses them, and the Worker's answer is read between two requests; elsewhere
	// the timer above and the Worker's answer come first, and this costs one request.
	const holding = new AbortController();
	let heldMs = 0;
	let holdMs = 10;
	const nextHold = () => {
		if (expired || holding.signal.aborted) {
			return;
		}
		const ms = Math.min(holdMs, job.wallTimeMs - heldMs);
		if (ms <= 0) {
			expire();
			return;
		}
		fetch(`/playground/hold?ms=${ms}`, { signal: holding.signal, cache: 'no-store' }).then((r) => {
			if (!r.ok) {
				return;
			}
			heldMs += ms;
			holdMs = Math.min(holdMs * 2, 250);
			setTimeout(nextHold, 0);
		}, () => {});
	};
	nextHold();
	const finish = done;
	done = (outcome) => {
		holding.abort();
		finish(outcome);
	};
	worker.postMessage({ id, module: job.module, input: job.input, maxOutputBytes: job.maxOutputBytes, memoryBytes: job.memoryBytes });
}

/**
 * Runs `input` in a fresh instance of `module` in a pooled Worker, within `wallTimeMs`,
 * `maxOutputBytes` of output and (checked when it ends) `memoryBytes` of linear memory.
 */
export function runInWorker(module, input, wallTimeMs, maxOutputBytes, memoryBytes) {
	stats.calls++;
	if (queue.length >= MAX_QUEUED) {
		return Promise.resolve({ ok: false, message: `More than ${MAX_QUEUED} calls are waiting in this page` });
	}
	return new Promise((resolve) => {
		queue.push({ module, input, wallTimeMs, maxOutputBytes, memoryBytes, resolve });
		pump();
	});
}

/** The runner's input: the evaluator request without its routing fields. */
function runnerInput(request) {
	const input = {};
	if (request.functionName !== undefined) {
		input.functionName = request.functionName;
	}
	if (request.codeString !== undefined) {
		input.codeString = request.codeString;
	}
	input.functionArguments = request.functionArguments || {};
	return JSON.stringify(input);
}

/**
 * Runs a plan (`where: browser`) and answers `{result | error, metadata}` where metadata is
 * a list of [key, text] pairs for Details.
 */
export async function runPlan(plan) {
	const started = performance.now();
	const module = await guestModule(plan.guest.url);
	const compiled = performance.now();
	const out = await runInWorker(module, runnerInput(plan.request), plan.limits.wallTimeMs, plan.limits.maxOutputBytes, plan.limits.memoryBytes);
	const total = performance.now() - started;
	const metadata = [
		['ranIn', 'your browser (WebAssembly in a module Worker)'],
		['implementationId', plan.implementation || '(inline)'],
		['implementationType', 'Evaluated'],
		['programmingLanguage', plan.language],
		['programmingLanguageVersion', `${plan.guest.version} (${navigator.userAgent.match(/(Chrome|Firefox|Safari)\/[\d.]+/)?.[0] || 'browser'} WebAssembly)`],
		['executionDuration', `${(out.ms ?? 0).toFixed(2)} ms`],
		['evaluationDuration', `${total.toFixed(2)} ms`],
		['guestCompileWait', `${(compiled - started).toFixed(2)} ms`],
		['executionPeakLinearMemory', out.peakMemoryBytes ? `${out.peakMemoryBytes} bytes` : 'n/a'],
		['deadline', `${plan.limits.wallTimeMs} ms`],
	];
	if (!out.ok) {
		return { error: out.message, timeout: !!out.timeout, ms: total, metadata };
	}
	let answer;
	try {
		answer = JSON.parse(out.stdout);
	} catch {
		return { error: out.stdout.trim() ? `Executor returned some nonsense: ${out.stdout.slice(0, 200)}.` : 'Executor returned an empty response.', ms: total, metadata };
	}
	if (answer && typeof answer === 'object' && 'result' in answer) {
		return { result: answer.result, ms: total, metadata };
	}
	if (answer && typeof answer.error === 'string') {
		return { error: answer.error, ms: total, metadata };
	}
	return { error: `Executor returned some nonsense: ${out.stdout.slice(0, 200)}.`, ms: total, metadata };
}
