// One module Worker of the pool: runs one guest call at a time, each in a fresh instance.
import { runGuest, OutputLimit } from './wasi.js';

self.onmessage = (event) => {
	const { id, module, input, maxOutputBytes, memoryBytes } = event.data;
	const started = performance.now();
	try {
		const out = runGuest(module, input, maxOutputBytes);
		const ms = performance.now() - started;
		// A browser cannot cap a module's memory while it runs; the server's limit is
		// checked afterwards, so that an answer the server would refuse is refused here too.
		if (memoryBytes && out.peakMemoryBytes > memoryBytes) {
			const mib = Math.round(memoryBytes / 1048576);
			self.postMessage({ id, ok: false, limit: true, message: `Function call exceeded the memory limit of ${mib} MiB`, ms });
			return;
		}
		self.postMessage({ id, ok: true, ...out, ms });
	} catch (e) {
		const limit = e instanceof OutputLimit;
		self.postMessage({
			id,
			ok: false,
			limit,
			message: limit ? e.message : `The guest stopped: ${e && e.message ? e.message : String(e)}`,
			ms: performance.now() - started,
		});
	}
};
