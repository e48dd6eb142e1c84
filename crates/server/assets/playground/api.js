// The HTTP APIs of zeval, with the signed-in user's token when there is one.

const TOKEN_KEY = 'zeval-token';

export function token() {
	return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
	if (value) {
		localStorage.setItem(TOKEN_KEY, value);
	} else {
		localStorage.removeItem(TOKEN_KEY);
	}
}

export class ApiError extends Error {
	constructor(status, body) {
		super(describeError(status, body));
		this.status = status;
		this.body = body;
	}
}

function describeError(status, body) {
	if (body && typeof body === 'object') {
		const z5 = body.error || body;
		if (typeof z5 === 'string') {
			return `${status}: ${z5}`;
		}
		if (body.detail || body.title) {
			return `${status}: ${body.detail || body.title}`;
		}
		return `${status}: ${JSON.stringify(z5).slice(0, 400)}`;
	}
	return `${status}: ${String(body).slice(0, 400)}`;
}

/** fetch + JSON; `withToken` false sends no token even when signed in; `onResponse` sees the
 * response's headers. */
export async function api(method, path, body, { withToken = true, tokenOverride, headers: extra = {}, onResponse } = {}) {
	const headers = { Accept: 'application/json', ...extra };
	const t = tokenOverride || (withToken ? token() : null);
	if (t) {
		headers.Authorization = `Bearer ${t}`;
	}
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
	}
	const response = await fetch(path, {
		method,
		headers,
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await response.text();
	let parsed = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		// Not JSON: keep the text.
	}
	if (!response.ok) {
		throw new ApiError(response.status, parsed);
	}
	if (onResponse) {
		onResponse(response);
	}
	return parsed;
}

/** Objects by ZID, fetched once per page. */
const objects = new Map();
/** The revision (`ETag`) of each object as this page read it: an approval names what the
 * admin was shown, and the server refuses it (409) when either changed since. */
const revisions = new Map();

export function revisionOf(zid) {
	return revisions.get(zid);
}
/** At most this many objects are fetched per page for labels and signatures. */
const MAX_FETCHED = 500;

export function getObject(zid, { fresh = false } = {}) {
	if (!fresh && objects.has(zid)) {
		return objects.get(zid);
	}
	if (objects.size >= MAX_FETCHED) {
		objects.clear();
	}
	const p = api('GET', `/v1/objects/${encodeURIComponent(zid)}`, undefined, {
		onResponse: (response) => {
			const tag = (response.headers.get('ETag') || '').replace(/^W\//, '').replace(/"/g, '');
			if (/^[0-9]+$/.test(tag)) {
				revisions.set(zid, tag);
			}
		},
	});
	objects.set(zid, p);
	p.catch(() => objects.delete(zid));
	return p;
}

export function forget(zid) {
	objects.delete(zid);
}
