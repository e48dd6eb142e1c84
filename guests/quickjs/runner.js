// The JavaScript runner of the zeval evaluator, loaded into the QuickJS guest's snapshot.
//
// Contract with the guest (guests/quickjs/src/main.rs): `globalThis.__zeval_run(inputText,
// withBytecode)` receives the call's stdin up to its first NUL (the JSON below) and returns
// the text written to stdout. A request whose arguments are all strings main.rs reads
// itself, and gives to `__zeval_run_strings` (below) instead.
//
// Protocol with the host (crates/evaluator/src/evaluator.rs):
//   input  {"functionName"?: "Z1000", "codeString"?: "...", "functionArguments": {key: ZObject}}
//          (the original executor's request; ZObjects in normal form); with bytecode after
//          it (below), "codeNewlines": n (how many "\n" the code string holds) instead of the
//          code string, whose text nothing then needs: the guest's JSON.parse costs about a
//          hundred wasm instructions a byte, on every call
//   output {"result": <normal ZObject>} or {"error": "<message>", "nestedError"?: n}
//   code cache (zeval_sandbox::code_cache): the input {"compileOnly": <output limit>,
//          "functionName", "codeString"} runs no code: the answer {"compiled":true} is
//          followed by a NUL and the QuickJS bytecode of the code's wrapper (raw bytes,
//          written by main.rs), when the two fit the limit; a later call's input may carry
//          that bytecode after its JSON and a NUL (`withBytecode`), and it is run instead of
//          compiling the code string again.
//   host calls (W.Call, through main.rs's __zeval_host_call and the sandbox's zeval.call):
//          request {"function": "Z10000", "arguments": {key: ZObject}}
//          answer  {"result": ZObject} or {"error": Z5, "message": "...", "index": n}
//
// Behaviour follows the original JavaScript executor (spec §3.3, §3.4):
// - the code string runs in strict mode inside a wrapper function, as the original's
//   eval inside its async wrapper; the function is then called synchronously;
// - arguments are sorted by key as strings and passed positionally;
// - values are (de)serialized by type as in the original's serialization.js;
// - any exception becomes {"error": e.message}.
// Every call runs in a fresh instance of the snapshot, so nothing here needs resetting.
'use strict';

(function () {
	const hasOwn = Object.prototype.hasOwnProperty;

	class ZPair {
		constructor(K1, K2, originalZ1K1 = null) {
			this.K1 = K1;
			this.K2 = K2;
			// Not enumerable, so that user code iterating a pair sees K1 and K2 only.
			Object.defineProperty(this, 'Z1K1_', { value: originalZ1K1, writable: true });
		}
	}

	class ZObject {
		// kwargs: a Map (as in the original) or a plain object of keys to values.
		constructor(kwargs = new Map(), originalZ1K1 = null) {
			this.Z1K1 = originalZ1K1;
			const entries = kwargs instanceof Map ? kwargs.entries() : Object.entries(kwargs);
			for (const [key, value] of entries) {
				this[key] = value;
			}
		}
	}

	// ---- inspect: the subset of node's util.inspect that error messages show ----------------

	function inspect(value, depth = 0) {
		if (value === null) {
			return 'null';
		}
		switch (typeof value) {
			case 'undefined':
				return 'undefined';
			case 'string':
				return depth === 0 ? value : "'" + value.replace(/'/g, "\\'") + "'";
			case 'number':
				return Object.is(value, -0) ? '-0' : String(value);
			case 'bigint':
				return String(value) + 'n';
			case 'boolean':
				return String(value);
			case 'symbol':
				return value.toString();
			case 'function': {
				const name = value.name ? ': ' + value.name : ' (anonymous)';
				const kind = /^class\b/.test(Function.prototype.toString.call(value)) ?
					'[class' : '[Function';
				return kind + name + ']';
			}
			default:
				return inspectObject(value, depth);
		}
	}

	function inspectObject(value, depth) {
		if (depth > 2) {
			return Array.isArray(value) ? '[Array]' : '[Object]';
		}
		if (value instanceof Promise) {
			return 'Promise { <pending> }';
		}
		if (value instanceof Error) {
			return value.stack ? String(value.stack).trim() || String(value) : String(value);
		}
		if (Array.isArray(value)) {
			const items = value.map((item) => inspect(item, depth + 1));
			return items.length === 0 ? '[]' : '[ ' + items.join(', ') + ' ]';
		}
		if (value instanceof Map) {
			const items = [...value.entries()].map(
				([k, v]) => inspect(k, depth + 1) + ' => ' + inspect(v, depth + 1));
			return 'Map(' + value.size + ') ' + (items.length ? '{ ' + items.join(', ') + ' }' : '{}');
		}
		if (value instanceof Set) {
			const items = [...value].map((item) => inspect(item, depth + 1));
			return 'Set(' + value.size + ') ' + (items.length ? '{ ' + items.join(', ') + ' }' : '{}');
		}
		if (value instanceof Date) {
			return isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
		}
		if (value instanceof RegExp) {
			return String(value);
		}
		const proto = Object.getPrototypeOf(value);
		let prefix = '';
		if (proto === null) {
			prefix = '[Object: null prototype] ';
		} else if (proto !== Object.prototype) {
			const ctor = proto.constructor;
			prefix = (ctor && ctor.name ? ctor.name : 'Object') + ' ';
		}
		const fields = Object.keys(value).map((key) => {
			const shown = /^[A-Za-z_$][\w$]*$/.test(key) ? key : "'" + key + "'";
			return shown + ': ' + inspect(value[key], depth + 1);
		});
		return prefix + (fields.length ? '{ ' + fields.join(', ') + ' }' : '{}');
	}

	// ---- deserialization: normal ZObject -> JavaScript ----------------------------------------

	function isString(value) {
		return typeof value === 'string' || value instanceof String;
	}

	function typeOfType(Z1K1) {
		return Z1K1 !== null && typeof Z1K1 === 'object' ? Z1K1.Z1K1 : undefined;
	}

	// The ZID that names a type: follows references, calls, Z4s and Z8s (the original's getZID).
	function getZID(type) {
		for (let hops = 0; hops < 1000; hops++) {
			if (isString(type)) {
				return String(type);
			}
			const kind = typeOfType(type);
			const kindZID = isString(kind) ? kind : (kind && kind.Z9K1);
			if (kindZID === 'Z8') {
				type = type.Z8K5;
			} else if (kind === 'Z9' && isString(type.Z9K1)) {
				return String(type.Z9K1);
			} else if (kindZID === 'Z7') {
				type = type.Z7K1;
			} else if (kindZID === 'Z4') {
				type = type.Z4K1;
			} else {
				break;
			}
		}
		throw new Error('Could not determine type for ' + inspect(type));
	}

	function deserializeList(list) {
		const result = [];
		let cell = list;
		while (cell !== null && typeof cell === 'object' && cell.K1 !== undefined) {
			result.push(deserialize(cell.K1));
			cell = cell.K2;
		}
		return result;
	}

	function deserializeMap(map) {
		const result = new Map();
		for (const pair of deserialize(map.K1)) {
			result.set(pair.K1, pair.K2);
		}
		return result;
	}

	function deserializeGeneric(object) {
		const kwargs = new Map();
		for (const key of Object.keys(object)) {
			if (key !== 'Z1K1') {
				kwargs.set(key, deserialize(object[key]));
			}
		}
		return new ZObject(kwargs, object.Z1K1);
	}

	function deserialize(object) {
		// Bare strings only occur as the values of Z6K1/Z9K1 in normal form.
		if (object === null || typeof object !== 'object') {
			return object;
		}
		switch (getZID(object.Z1K1)) {
			case 'Z6':
				return object.Z6K1;
			case 'Z21':
				return null;
			case 'Z40': {
				const value = object.Z40K1;
				return (isString(value) ? value : value && value.Z9K1) === 'Z41';
			}
			case 'Z881':
				return deserializeList(object);
			case 'Z882':
				return new ZPair(deserialize(object.K1), deserialize(object.K2), object.Z1K1);
			case 'Z883':
				return deserializeMap(object);
			default:
				return deserializeGeneric(object);
		}
	}

	// ---- serialization: JavaScript -> normal ZObject -------------------------------------------

	function ref(zid) {
		return { Z1K1: 'Z9', Z9K1: zid };
	}

	// A type as it appears in a Z1K1 slot of a generic: bare ZIDs become references.
	function soupUp(type) {
		return isString(type) ? ref(String(type)) : type;
	}

	function listType(itemType) {
		return { Z1K1: ref('Z7'), Z7K1: ref('Z881'), Z881K1: itemType };
	}

	function pairType(first, second) {
		return { Z1K1: ref('Z7'), Z7K1: ref('Z882'), Z882K1: first, Z882K2: second };
	}

	function mapType(key, value) {
		return { Z1K1: ref('Z7'), Z7K1: ref('Z883'), Z883K1: key, Z883K2: value };
	}

	function stableStringify(value) {
		if (value === null || typeof value !== 'object') {
			return JSON.stringify(value);
		}
		if (Array.isArray(value)) {
			return '[' + value.map(stableStringify).join(',') + ']';
		}
		return '{' + Object.keys(value).sort().map(
			(key) => JSON.stringify(key) + ':' + stableStringify(value[key])).join(',') + '}';
	}

	// The key that decides whether list elements share a type (function-schemata's rule):
	// references and calls that are still unresolved (Z9, Z7, Z18) never give a common type.
	function typeKey(Z1K1) {
		if (isString(Z1K1)) {
			return String(Z1K1);
		}
		if (Z1K1 && Z1K1.Z1K1 === 'Z9' && isString(Z1K1.Z9K1)) {
			return String(Z1K1.Z9K1);
		}
		return stableStringify(Z1K1);
	}

	function commonItemType(elements) {
		if (elements.length === 0) {
			return ref('Z1');
		}
		const first = typeKey(elements[0].Z1K1);
		if (first === 'Z9' || first === 'Z7' || first === 'Z18') {
			return ref('Z1');
		}
		for (const element of elements) {
			if (typeKey(element.Z1K1) !== first) {
				return ref('Z1');
			}
		}
		return soupUp(elements[0].Z1K1);
	}

	function typedList(itemType, elements) {
		const type = listType(itemType);
		let list = { Z1K1: type };
		for (let i = elements.length - 1; i >= 0; i--) {
			list = { Z1K1: type, K1: elements[i], K2: list };
		}
		return list;
	}

	function serializeList(array) {
		const elements = [];
		for (const item of array) {
			elements.push(serialize(item));
		}
		return typedList(commonItemType(elements), elements);
	}

	function serializePair(pair) {
		const K1 = serialize(pair.K1);
		const K2 = serialize(pair.K2);
		const Z1K1 = pair.Z1K1_ !== null && pair.Z1K1_ !== undefined ?
			pair.Z1K1_ : pairType(soupUp(K1.Z1K1), soupUp(K2.Z1K1));
		return { Z1K1, K1, K2 };
	}

	function serializeMap(map) {
		const pairs = [];
		for (const [key, value] of map.entries()) {
			pairs.push(serializePair(new ZPair(key, value)));
		}
		let keyType = ref('Z1');
		let valueType = ref('Z1');
		if (pairs.length > 0) {
			keyType = soupUp(pairs[0].K1.Z1K1);
			valueType = soupUp(pairs[0].K2.Z1K1);
		}
		return {
			Z1K1: mapType(keyType, valueType),
			K1: typedList(pairType(keyType, valueType), pairs)
		};
	}

	function serializeGeneric(object) {
		const result = { Z1K1: object.Z1K1 };
		for (const key of Object.keys(object)) {
			if (key === 'Z1K1') {
				continue;
			}
			const value = object[key];
			// Z6K1/Z9K1 hold bare strings in normal form (deserialize kept them bare).
			result[key] = (key === 'Z6K1' || key === 'Z9K1') && isString(value) ?
				String(value) : serialize(value);
		}
		return result;
	}

	function serialize(value) {
		if (isString(value)) {
			return { Z1K1: 'Z6', Z6K1: String(value) };
		}
		if (value === null) {
			return { Z1K1: ref('Z21') };
		}
		if (typeof value === 'boolean') {
			return { Z1K1: ref('Z40'), Z40K1: ref(value ? 'Z41' : 'Z42') };
		}
		if (Array.isArray(value)) {
			return serializeList(value);
		}
		if (value instanceof ZPair) {
			return serializePair(value);
		}
		if (value instanceof Map) {
			return serializeMap(value);
		}
		if (value instanceof ZObject ||
			(value !== undefined && typeof value === 'object' && hasOwn.call(value, 'Z1K1'))) {
			return serializeGeneric(value);
		}
		throw new Error('Could not serialize input JS object: ' + inspect(value));
	}

	// ---- the call ------------------------------------------------------------------------------

	// What was last given to eval, so that a syntax error can tell whether it is at the end
	// (`lastSourceLines()`): the function name, and the code string or, with bytecode, how
	// many newlines it holds.
	let lastFunctionName;
	let lastCodeString;
	let lastCodeNewlines;

	function remember(functionName, codeString, codeNewlines) {
		lastFunctionName = functionName;
		lastCodeString = codeString;
		lastCodeNewlines = codeNewlines;
	}

	// How many lines `wrapperSource` made of the last code (`split('\n').length` of its
	// text): the code's and the name's newlines, the wrapper's two, plus one.
	function lastSourceLines() {
		const codeNewlines = lastCodeString !== undefined ?
			lastCodeString.split('\n').length - 1 : lastCodeNewlines;
		if (lastFunctionName === undefined || typeof codeNewlines !== 'number') {
			return undefined;
		}
		return codeNewlines + lastFunctionName.split('\n').length + 2;
	}

	// Indirect eval of a function declaration: the code sees only globals, and runs in
	// strict mode as in the original (whose executor module is strict). Bytecode of the same
	// declaration, compiled as a script, declares the same function.
	function wrapperSource(codeString, functionName) {
		return 'function __zeval_wrapper(ZPair, ZObject) {\'use strict\';\n' + codeString +
			'\nreturn ' + functionName + ';}';
	}

	function compile(functionName, codeString, codeNewlines, withBytecode) {
		if (withBytecode) {
			remember(functionName, undefined, codeNewlines);
			runBytecode();
		} else {
			codeString = String(codeString);
			remember(functionName, codeString, undefined);
			(0, eval)(wrapperSource(codeString, functionName));
		}
		// eslint-disable-next-line no-undef
		const wrapper = globalThis.__zeval_wrapper;
		// A script's declaration cannot be deleted (eval's can): no error either way.
		Reflect.deleteProperty(globalThis, '__zeval_wrapper');
		return wrapper(ZPair, ZObject);
	}

	const bytecodeOf = globalThis.__zeval_bytecode;
	const runBytecode = globalThis.__zeval_run_bytecode;
	delete globalThis.__zeval_bytecode;
	delete globalThis.__zeval_run_bytecode;

	function execute(request, withBytecode) {
		const functionName = request.functionName;
		if (functionName === undefined || functionName === null) {
			throw new Error('Function call did not provide functionName.');
		}
		const codeString = request.codeString;
		if (!withBytecode && (codeString === undefined || codeString === null)) {
			throw new Error('Function call did not provide codeString.');
		}
		const argumentsByKey = request.functionArguments || {};
		const keys = Object.keys(argumentsByKey).sort();
		const args = keys.map((key) => deserialize(argumentsByKey[key]));
		const fn = compile(String(functionName), codeString, request.codeNewlines, withBytecode);
		return serialize(fn.apply(null, args));
	}

	// The code cache's entries (zeval_sandbox::code_cache) come only from a request like
	// this, in an instance where no user code runs: the code string's wrapper compiled to
	// bytecode and not run, which main.rs writes after the answer when the two fit
	// `compileOnly` bytes. A call's own run could not be trusted with it: its code could
	// call __zeval_run again and have other bytecode handed back for later calls of the same
	// code string. A source QuickJS cannot compile as a script (a NUL in it) is not cached.
	function compileOnly(request) {
		const functionName = request.functionName;
		const codeString = request.codeString;
		if (!isString(functionName) || !isString(codeString)) {
			throw new Error('compileOnly needs functionName and codeString.');
		}
		remember(functionName, codeString, undefined);
		bytecodeOf(wrapperSource(codeString, functionName), request.compileOnly);
		return stringify({ compiled: true });
	}

	// QuickJS names the token a syntax error stopped at; at the end of the input that token
	// is empty ("unexpected token in expression: ''", "expecting '}'" at EOF). V8, which the
	// original ran, says "Unexpected end of input" for all of these.
	function syntaxMessage(error, sourceLines) {
		const message = String(error.message);
		const atEnd = /: ''$/.test(message) ||
			(typeof error.lineNumber === 'number' && sourceLines !== undefined &&
				error.lineNumber >= sourceLines && /^expecting /.test(message));
		return atEnd ? 'Unexpected end of input' : message;
	}

	function messageOf(error, sourceLines) {
		if (error instanceof SyntaxError) {
			return syntaxMessage(error, sourceLines);
		}
		// QuickJS's InternalError "stack overflow" is V8's RangeError with this message.
		if (error !== null && typeof error === 'object' && error.name === 'InternalError' &&
			/stack overflow/.test(String(error.message))) {
			return 'Maximum call stack size exceeded';
		}
		if (error !== null && typeof error === 'object' && 'message' in error) {
			return String(error.message);
		}
		// A thrown non-Error has no message; node prints it, so show what it was.
		return inspect(error);
	}

	const stringify = JSON.stringify;
	const parse = JSON.parse;

	// The answer to an error a call threw.
	function errorAnswer(e) {
		try {
			const answer = { error: messageOf(e, lastSourceLines()) };
			if (e instanceof ZError && Number.isInteger(e.index)) {
				answer.nestedError = e.index;
			}
			return stringify(answer);
		} catch (inner) {
			return stringify({ error: 'The error could not be described.' });
		}
	}

	// ---- W.Call: calls back to the orchestrator ------------------------------------------------

	// A nested call answered with an error: `message` describes it, `z5` is the error (a
	// normal Z5). Uncaught, it becomes the error of this call (the host substitutes the Z5
	// it gave, by `index`).
	class ZError extends Error {
		constructor(message, z5, index) {
			super(message);
			this.name = 'ZError';
			this.z5 = z5;
			this.index = index;
		}
	}

	const hostCall = globalThis.__zeval_host_call;
	delete globalThis.__zeval_host_call;

	// W.Call('Z10000', {Z10000K1: 'abc'}): the Python runner's W.Call, with the arguments as
	// one object. Arguments are serialized like return values, the result deserialized like
	// arguments.
	const W = Object.freeze({
		Error: ZError,
		Call(functionName, args = {}) {
			if (!isString(functionName)) {
				throw new TypeError('W.Call: the function must be a ZID string, not ' +
					inspect(functionName));
			}
			const functionArguments = {};
			for (const key of Object.keys(args === null || args === undefined ? {} : args)) {
				functionArguments[key] = serialize(args[key]);
			}
			const answerText = typeof hostCall === 'function' ?
				hostCall(stringify({ function: String(functionName), arguments: functionArguments })) :
				null;
			if (answerText === null || answerText === undefined) {
				throw new Error('Non-reentrant executor tried to call back to the orchestrator');
			}
			const answer = parse(answerText);
			if (hasOwn.call(answer, 'result')) {
				return deserialize(answer.result);
			}
			throw new ZError(answer.message || 'W.Call failed', answer.error, answer.index);
		}
	});

	globalThis.__zeval_run = function (inputText, withBytecode) {
		let request;
		try {
			request = parse(inputText);
		} catch (e) {
			return stringify({ error: 'The request is not JSON: ' + messageOf(e) });
		}
		try {
			if (request !== null && typeof request === 'object' &&
				typeof request.compileOnly === 'number') {
				return compileOnly(request);
			}
			return stringify({ result: execute(request, withBytecode === true) });
		} catch (e) {
			return errorAnswer(e);
		}
	};

	// main.rs's entry for a request it read itself: one whose arguments are all strings
	// (Z6), the usual shape, given here already sorted by key. QuickJS's JSON.parse and
	// JSON.stringify cost thousands of wasm instructions for even a tiny request; Rust's
	// serde_json, a few hundred. A string result is returned as it is, and main.rs writes
	// its answer (`{"result": {"Z1K1": "Z6", "Z6K1": value}}`); anything else comes back as
	// `[answerText]`, the answer `__zeval_run` would give.
	globalThis.__zeval_run_strings = function (functionName, codeString, codeNewlines,
		withBytecode, args) {
		let value;
		try {
			value = compile(functionName, codeString, codeNewlines, withBytecode)
				.apply(null, args);
		} catch (e) {
			return [errorAnswer(e)];
		}
		return typeof value === 'string' ? value : [resultAnswer(value)];
	};

	// The answer of a call that returned `value`; main.rs's too, for a string it cannot
	// write as UTF-8 (one with a lone surrogate, which JSON escapes).
	function resultAnswer(value) {
		try {
			return stringify({ result: serialize(value) });
		} catch (e) {
			return errorAnswer(e);
		}
	}
	globalThis.__zeval_result_answer = resultAnswer;
	globalThis.ZPair = ZPair;
	globalThis.ZObject = ZObject;
	globalThis.ZError = ZError;
	globalThis.W = W;
	// Output from user code has nowhere to go (stdout carries the protocol); accept and drop.
	if (typeof globalThis.console === 'undefined') {
		const ignore = function () {};
		globalThis.console = {
			log: ignore, info: ignore, warn: ignore, error: ignore, debug: ignore, trace: ignore
		};
	}
}());
