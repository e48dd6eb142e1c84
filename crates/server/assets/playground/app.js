// The zeval playground: pages routed on the path, built with DOM calls only (text from the
// store is always inserted as text, never as HTML).
import { api, getObject, revisionOf, token, setToken, forget, ApiError } from './api.js';
import { items, ref, str, label, display, mapEntries, errorText, LANGUAGES, languageOf } from './zobject.js';
import { codeEditor } from './editor.js';
import { runPlan, stats as browserStats } from './browser-run.js';

const main = document.getElementById('main');

// ---- small DOM helpers ------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) {
			continue;
		}
		if (k.startsWith('on')) {
			el.addEventListener(k.slice(2), v);
		} else if (k === 'class') {
			el.className = v;
		} else {
			el.setAttribute(k, v === true ? '' : v);
		}
	}
	for (const c of children.flat()) {
		if (c !== null && c !== undefined && c !== false) {
			el.append(c instanceof Node ? c : String(c));
		}
	}
	return el;
}

function link(path, text) {
	return h('a', { href: path, onclick: (e) => navigate(e, path) }, text);
}

function navigate(event, path) {
	if (event && (event.ctrlKey || event.metaKey || event.shiftKey || event.button === 1)) {
		return;
	}
	event?.preventDefault();
	history.pushState(null, '', path);
	route();
}

/** `el`'s children become `children`, leaving out the null ones. */
function fill(el, ...children) {
	el.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

function page(title, ...children) {
	document.title = `${title} – zeval`;
	main.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
	main.focus({ preventScroll: true });
}

function errorBox(e) {
	return h('p', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e));
}

const KIND_NAMES = { Z8: 'Function', Z4: 'Type', Z14: 'Implementation', Z20: 'Tester', Z60: 'Language', Z61: 'Programming language' };

/** "label (Zn)" of a ZID, filled in when the object arrives. */
function zidLabel(zid, { href } = {}) {
	const text = h('span', {}, zid);
	const el = href === false ? h('span', { class: 'zid-label' }, text) : h('a', { class: 'zid-label', href: href || `/object/${zid}`, onclick: (e) => navigate(e, href || `/object/${zid}`) }, text);
	getObject(zid).then((z2) => {
		const l = label(z2);
		if (l) {
			text.textContent = l;
			el.append(' ', h('span', { class: 'zid' }, zid));
		}
	}, () => {});
	return el;
}

async function labelOf(zid) {
	try {
		return label(await getObject(zid)) || zid;
	} catch {
		return zid;
	}
}

// ---- sign-in ----------------------------------------------------------------------------

const dialog = document.getElementById('token-dialog');

function refreshUser() {
	const signedIn = !!token();
	document.getElementById('who').textContent = signedIn ? 'Signed in' : '';
	document.getElementById('signin').textContent = signedIn ? 'Sign out' : 'Sign in';
}

document.getElementById('signin').addEventListener('click', () => {
	if (token()) {
		setToken(null);
		refreshUser();
		route();
		return;
	}
	document.getElementById('token-error').textContent = '';
	dialog.showModal();
});
document.getElementById('token-cancel').addEventListener('click', () => dialog.close());
document.getElementById('token-form').addEventListener('submit', async (e) => {
	e.preventDefault();
	const value = document.getElementById('token-input').value.trim();
	try {
		// Any request with a wrong token is refused (401), so this checks it.
		await api('GET', '/healthz', undefined, { tokenOverride: value });
		setToken(value);
		dialog.close();
		refreshUser();
		route();
	} catch (err) {
		document.getElementById('token-error').textContent = err.status === 401 ? 'This token is not valid.' : err.message;
	}
});

// ---- search -----------------------------------------------------------------------------

const SEARCH_TYPES = [['Z8', 'Functions'], ['Z4', 'Types'], ['Z14', 'Implementations'], ['Z20', 'Testers'], ['', 'Everything']];
/** Results asked for per search (the API's own cap), and shown at a time. */
const SEARCH_LIMIT = 500;
const SHOWN_AT_A_TIME = 50;

async function searchPage(params) {
	const q = params.get('q') || '';
	const type = params.has('type') ? params.get('type') : 'Z8';
	document.getElementById('q').value = q;
	const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Kind of object' },
		SEARCH_TYPES.map(([t, name]) => {
			const p = new URLSearchParams({ q, type: t });
			return h('a', { role: 'tab', 'aria-selected': String(t === type), class: t === type ? 'tab active' : 'tab', href: `/search?${p}`, onclick: (e) => navigate(e, `/search?${p}`) }, name);
		}));
	const list = h('ul', { class: 'results', 'aria-live': 'polite' }, h('li', { class: 'muted' }, 'Searching…'));
	const newButtons = token() ? h('p', { class: 'actions' },
		link('/new/function', '+ New function'), ' ', link('/new/implementation', '+ New implementation'), ' ', link('/new/tester', '+ New tester')) : null;
	page(q ? `Search: ${q}` : 'Functions',
		h('h1', {}, q ? `Results for “${q}”` : 'Browse'),
		h('p', { class: 'muted' }, 'The functions, types, implementations and testers of this server: those written here first, then the built-in ones.'),
		tabs, newButtons, list);
	try {
		const p = new URLSearchParams({ limit: String(SEARCH_LIMIT) });
		if (q) {
			p.set('search', q);
		}
		if (type) {
			p.set('type', type);
		}
		const { objects } = await api('GET', `/v1/objects?${p}`);
		// What users wrote (Z10000 up) before the built-in catalogue.
		const number = (o) => Number(o.zid.slice(1));
		objects.sort((a, b) => (number(a) >= 10000 ? 0 : 1) - (number(b) >= 10000 ? 0 : 1) || number(a) - number(b));
		const item = (o) => {
			const path = o.type === 'Z8' ? `/function/${o.zid}` : `/object/${o.zid}`;
			return h('li', {},
				h('a', { href: path, onclick: (e) => navigate(e, path) }, h('span', { class: 'result-label' }, o.label || o.zid)),
				' ', h('span', { class: 'zid' }, o.zid),
				' ', h('span', { class: 'kind' }, KIND_NAMES[o.type] || o.type || ''),
				number(o) < 10000 ? h('span', { class: 'kind' }, 'built in') : null);
		};
		let shown = 0;
		const more = h('li', {}, h('button', { type: 'button', id: 'more' }, 'Show more'));
		const showMore = () => {
			more.remove();
			const next = objects.slice(shown, shown + SHOWN_AT_A_TIME);
			shown += next.length;
			list.append(...next.map(item));
			if (shown < objects.length) {
				list.append(more);
			} else if (objects.length === SEARCH_LIMIT) {
				list.append(h('li', { class: 'muted' }, `These are the first ${SEARCH_LIMIT}; type more to narrow the search.`));
			}
		};
		more.querySelector('button').addEventListener('click', showMore);
		list.replaceChildren();
		if (!objects.length) {
			list.append(h('li', { class: 'muted' }, 'Nothing found.'));
		}
		showMore();
	} catch (e) {
		list.replaceChildren(h('li', {}, errorBox(e)));
	}
}

// ---- the function page ------------------------------------------------------------------

function argumentsOf(z8) {
	return items(z8.Z8K1 || []).map((d) => ({ key: str(d.Z17K2) || d.Z17K2, type: d.Z17K1, label: label({ Z2K3: d.Z17K3 }) }));
}

function typeName(t) {
	const zid = ref(t);
	return zid ? zidLabel(zid) : h('code', {}, JSON.stringify(t).slice(0, 80));
}

/** An input for one argument: text for Z6, a checkbox for Z40, JSON otherwise. */
function argumentInput(arg, initial) {
	const t = ref(arg.type);
	const id = `arg-${arg.key}`;
	const title = h('label', { for: id }, arg.label || arg.key, ' ', h('span', { class: 'zid' }, arg.key), ' ', h('span', { class: 'type' }, typeName(arg.type)));
	if (t === 'Z6') {
		const input = h('input', { id, type: 'text', value: initial ?? '', autocomplete: 'off' });
		return { element: h('div', { class: 'field' }, title, input), value: () => input.value };
	}
	if (t === 'Z40') {
		const input = h('input', { id, type: 'checkbox' });
		input.checked = ['true', '1', 'Z41', 'on'].includes(String(initial ?? '').toLowerCase()) || initial === 'Z41';
		return {
			element: h('div', { class: 'field checkbox' }, input, title),
			value: () => ({ Z1K1: 'Z40', Z40K1: input.checked ? 'Z41' : 'Z42' }),
		};
	}
	const area = h('textarea', { id, rows: '3', class: 'json', spellcheck: 'false', placeholder: 'a ZObject as JSON' });
	area.value = initial ?? '';
	return {
		element: h('div', { class: 'field' }, title, area, h('small', { class: 'muted' }, 'JSON (canonical form); a plain word is taken as a string.')),
		value: () => {
			const text = area.value.trim();
			try {
				return JSON.parse(text);
			} catch {
				return text;
			}
		},
	};
}

async function functionPage(zid, params) {
	page(zid, h('p', { class: 'muted' }, 'Loading…'));
	let z2;
	try {
		z2 = await getObject(zid, { fresh: true });
	} catch (e) {
		page(zid, h('h1', {}, zid), errorBox(e));
		return;
	}
	const z8 = z2.Z2K2;
	if (!z8 || ref(z8.Z1K1) !== 'Z8') {
		history.replaceState(null, '', `/object/${zid}`);
		return objectPage(zid);
	}
	const name = label(z2) || zid;
	const args = argumentsOf(z8);
	const inputs = args.map((a) => argumentInput(a, params.get(a.key)));
	const signature = h('p', { class: 'signature' }, h('code', {}, zid), ' (',
		args.flatMap((a, i) => [i ? ', ' : '', h('span', {}, a.label || a.key, ': '), typeName(a.type)]), ') → ', typeName(z8.Z8K2));

	const whereBrowser = params.get('where') === 'browser';
	const serverRadio = h('input', { type: 'radio', name: 'where', id: 'where-server', value: 'server' });
	const browserRadio = h('input', { type: 'radio', name: 'where', id: 'where-browser', value: 'browser' });
	serverRadio.checked = !whereBrowser;
	browserRadio.checked = whereBrowser;
	const where = h('fieldset', { class: 'where' }, h('legend', {}, 'Run on'),
		h('label', { for: 'where-server' }, serverRadio, ' the server'),
		h('label', { for: 'where-browser' }, browserRadio, ' my browser'),
		h('small', { class: 'muted' }, 'JavaScript and Python run in your browser; compositions and built-ins stay on the server.'));

	const result = h('section', { class: 'result', 'aria-live': 'polite', id: 'result' });
	const runButton = h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Run');
	const form = h('form', { class: 'call', id: 'call-form' },
		h('h2', {}, 'Try it'),
		inputs.map((i) => i.element), where, h('div', { class: 'buttons' }, runButton));

	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const zobject = { Z1K1: 'Z7', Z7K1: zid };
		args.forEach((a, i) => {
			zobject[a.key] = inputs[i].value();
		});
		// The address says what ran, so it can be pasted.
		const p = new URLSearchParams();
		args.forEach((a, i) => {
			const v = inputs[i].value();
			p.set(a.key, typeof v === 'string' ? v : ref(v.Z1K1) === 'Z40' ? (ref(v.Z40K1) === 'Z41' ? 'true' : 'false') : JSON.stringify(v));
		});
		if (browserRadio.checked) {
			p.set('where', 'browser');
		}
		history.replaceState(null, '', `/function/${zid}?${p}`);
		runButton.disabled = true;
		try {
			await runCall(zobject, browserRadio.checked, result);
		} finally {
			runButton.disabled = false;
		}
	});

	const implementations = items(z8.Z8K4 || []);
	const testers = items(z8.Z8K3 || []);
	const implList = h('ul', { class: 'plain' }, implementations.map((i) => {
		const zidOf = ref(i);
		if (!zidOf) {
			return h('li', {}, '(inline implementation)');
		}
		const li = h('li', {}, zidLabel(zidOf));
		getObject(zidOf).then((impl) => {
			const lang = languageOf(impl.Z2K2);
			const kind = lang ? lang.name : impl.Z2K2?.Z14K2 ? 'composition' : impl.Z2K2?.Z14K4 ? 'built-in' : '';
			li.append(' ', h('span', { class: 'kind' }, kind));
			if (token() && !zeval_builtin(zidOf)) {
				// What approving would keep, as this page read it: the approval names its tag, so
				// a type the function names, edited since, fails it (409) too.
				const preview = api('GET', `/v1/objects/${zidOf}/approval`).catch(() => null);
				li.append(' ', h('button', { type: 'button', class: 'small', onclick: () => approve(zidOf, zid, li, preview) }, 'Approve'));
			}
		}, () => {});
		return li;
	}));
	// The order the server tries them in (the ranking) and why.
	const ranking = h('div', { class: 'ranking', id: 'ranking' });
	if (implementations.length > 1) {
		api('GET', `/v1/objects/${zid}/ranking`).then((r) => {
			if (!r || !Array.isArray(r.order) || !r.order.length) {
				return;
			}
			fill(ranking,
				h('p', { class: 'muted' }, 'The server tries them in this order:'),
				h('ol', {}, r.order.slice(0, 50).map((i) => h('li', {}, zidLabel(i)))),
				r.reason ? h('p', { class: 'muted small' }, r.reason) : null);
		}, () => {});
	}
	const testerList = h('ul', { class: 'plain' }, testers.map((t) => h('li', {}, ref(t) ? zidLabel(ref(t)) : '(inline tester)')));

	const matrix = h('div', { class: 'matrix', id: 'matrix' });
	const testButton = h('button', { type: 'button', id: 'run-tests', onclick: () => runMatrix(zid, implementations.map(ref).filter(Boolean), testers.map(ref).filter(Boolean), matrix) }, 'Run the testers');

	page(name,
		h('p', { class: 'crumbs' }, link('/', 'Functions'), ' › ', zid),
		h('h1', {}, name, ' ', h('span', { class: 'zid' }, zid)),
		signature,
		h('div', { class: 'columns' },
			h('div', {}, form, result),
			h('aside', {},
				h('h2', {}, 'Implementations'), implementations.length ? implList : h('p', { class: 'muted' }, 'None yet.'), ranking,
				token() ? h('p', {}, link(`/new/implementation?function=${zid}`, '+ Add an implementation')) : null,
				h('h2', {}, 'Testers'), testers.length ? testerList : h('p', { class: 'muted' }, 'None yet.'),
				token() ? h('p', {}, link(`/new/tester?function=${zid}`, '+ Add a tester')) : null,
				token() ? h('p', {}, link(`/edit/${zid}`, 'Edit this function')) : null)),
		h('section', { class: 'tests' }, h('h2', {}, 'Testers × implementations'),
			h('p', { class: 'muted' }, 'Each tester runs against each implementation, cell by cell.'),
			testButton, matrix));
	if (params.get('run') === '1') {
		form.requestSubmit();
	}
}

function zeval_builtin(zid) {
	const n = Number(zid.slice(1));
	return n < 10000;
}

/** Approves implementation `zid` of `functionZid` as this page showed them: the revisions it
 * read, and the tag of what the approval would keep (`preview`, read with the page), so an
 * edit of either, or of a type the function names, saved since fails the approval (409)
 * instead of being approved. */
async function approve(zid, functionZid, li, preview) {
	const revision = revisionOf(zid);
	const functionRevision = revisionOf(functionZid);
	const reviewed = await preview;
	// Without what the approval would keep, the server would pin the types as they are when
	// the click lands: refused here instead of approved with the weaker check.
	if (!reviewed || !reviewed.signature_tag) {
		li.append(errorBox(new Error('What approving would keep could not be read; reload the page and review it again.')));
		return;
	}
	const params = new URLSearchParams();
	if (functionRevision) {
		params.set('function', functionZid);
		params.set('function_revision', functionRevision);
	}
	params.set('signature', reviewed.signature_tag);
	const query = `?${params}`;
	try {
		const answer = await api('POST', `/v1/objects/${zid}/approve${query}`, undefined, {
			headers: revision ? { 'If-Match': `"${revision}"` } : {},
		});
		li.append(' ', h('span', { class: 'ok' }, `approved by ${answer.by}`));
	} catch (e) {
		li.append(errorBox(e));
	}
}

async function runCall(zobject, inBrowser, result) {
	const body = { zobject, doValidate: true };
	result.replaceChildren(h('p', { class: 'muted' }, 'Running…'));
	const started = performance.now();
	try {
		if (inBrowser) {
			const plan = await api('POST', '/v1/plan', body);
			if (plan.where === 'browser') {
				const run = await runPlan(plan);
				showBrowserResult(result, run);
				return;
			}
			const z22 = await api('POST', '/wikifunctions.org/v1/evaluate/', body);
			showServerResult(result, z22, performance.now() - started, plan.reason);
			return;
		}
		const z22 = await api('POST', '/wikifunctions.org/v1/evaluate/', body);
		showServerResult(result, z22, performance.now() - started);
	} catch (e) {
		result.replaceChildren(errorBox(e));
	}
}

function detailsTable(rows) {
	return h('table', { class: 'meta' }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
}

function showServerResult(result, z22, ms, whyServer) {
	const meta = mapEntries(z22.Z22K2);
	const errors = meta.find(([k]) => k === 'errors');
	const value = z22.Z22K1;
	const failed = value === 'Z24' || ref(value) === 'Z24' || (value && value.Z1K1 === 'Z24');
	const rows = meta.map(([k, v]) => [k, k === 'errors' ? errorText(v) : display(v)]);
	const cachedOn = meta.find(([k]) => k === 'functionCallCachedOn');
	fill(result,
		h('h2', {}, 'Result'),
		failed ? h('p', { class: 'error', id: 'result-value' }, errors ? errorText(errors[1]) : 'The call failed.') :
			h('pre', { class: 'value', id: 'result-value' }, display(value)),
		h('p', { class: 'where-ran', id: 'where-ran' }, `ran on the server, ${Math.round(ms)} ms`, whyServer ? ` (${whyServer})` : ''),
		cachedOn ? h('p', { class: 'muted' }, `Answered from the server's result cache (computed ${display(cachedOn[1])}).`) : null,
		h('details', { id: 'details' }, h('summary', {}, 'Details'), detailsTable(rows)));
}

function showBrowserResult(result, run) {
	const rows = run.metadata.map(([k, v]) => [k, v]);
	rows.push(['workersReplacedAfterTimeouts', String(browserStats.replaced)]);
	fill(result,
		h('h2', {}, 'Result'),
		run.error !== undefined ? h('p', { class: 'error', id: 'result-value' }, run.error) :
			h('pre', { class: 'value', id: 'result-value' }, display(run.result)),
		h('p', { class: 'where-ran browser', id: 'where-ran' }, `ran in your browser, ${Math.round(run.ms)} ms`),
		h('p', { class: 'muted' }, 'Computed here, not on the server: it is not stored or cached there.'),
		h('details', { id: 'details' }, h('summary', {}, 'Details'), detailsTable(rows)));
}

async function runMatrix(zid, implementations, testers, matrix) {
	if (!implementations.length || !testers.length) {
		matrix.replaceChildren(h('p', { class: 'muted' }, 'The function needs implementations and testers first.'));
		return;
	}
	const progress = h('p', { id: 'matrix-progress', 'aria-live': 'polite' }, `0 / ${implementations.length * testers.length} cells`);
	const cells = new Map();
	const table = h('table', { class: 'grid' },
		h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tester'), implementations.map((i) => h('th', { scope: 'col' }, zidLabel(i))))),
		h('tbody', {}, testers.map((t) => h('tr', {}, h('th', { scope: 'row' }, zidLabel(t)),
			implementations.map((i) => {
				const td = h('td', { class: 'pending' }, '…');
				cells.set(`${t}/${i}`, td);
				return td;
			})))));
	matrix.replaceChildren(progress, h('div', { class: 'scroll' }, table));
	let done = 0;
	let passed = 0;
	for (const t of testers) {
		for (const i of implementations) {
			const td = cells.get(`${t}/${i}`);
			td.textContent = 'running…';
			td.className = 'running';
			try {
				const m = await api('POST', '/v1/test', { function: zid, implementations: [i], testers: [t] });
				const cell = m.cells[0];
				td.className = cell.passed ? 'pass' : 'fail';
				td.replaceChildren(h('span', {}, cell.passed ? '✓ pass' : cell.not_run ? 'not run' : '✗ fail'), ' ', h('small', {}, `${cell.duration_ms.toFixed(1)} ms`));
				if (cell.error) {
					td.title = errorText(cell.error);
					td.append(h('div', { class: 'cell-error' }, errorText(cell.error).slice(0, 160)));
				}
				passed += cell.passed ? 1 : 0;
			} catch (e) {
				td.className = 'fail';
				td.textContent = e.message;
			}
			done++;
			progress.textContent = `${done} / ${cells.size} cells, ${passed} passed`;
		}
	}
	progress.textContent = `Done: ${passed} / ${cells.size} passed`;
}

// ---- any object -------------------------------------------------------------------------

async function objectPage(zid) {
	let z2;
	try {
		z2 = await getObject(zid, { fresh: true });
	} catch (e) {
		page(zid, h('h1', {}, zid), errorBox(e));
		return;
	}
	const value = z2.Z2K2 || {};
	const type = ref(value.Z1K1);
	const name = label(z2) || zid;
	const parts = [
		h('p', { class: 'crumbs' }, link('/', 'Functions'), ' › ', zid),
		h('h1', {}, name, ' ', h('span', { class: 'zid' }, zid)),
		h('p', {}, h('span', { class: 'kind' }, KIND_NAMES[type] || type || 'object')),
	];
	if (type === 'Z14' || type === 'Z20') {
		const f = ref(value.Z14K1 || value.Z20K1);
		if (f) {
			parts.push(h('p', {}, 'Of function ', zidLabel(f, { href: `/function/${f}` })));
		}
	}
	if (type === 'Z14' && value.Z14K3) {
		const lang = languageOf(value);
		const editor = codeEditor({ id: 'code-view', value: str(value.Z14K3.Z16K2) || '', mode: lang.mode, label: 'Code' });
		editor.textarea.readOnly = true;
		parts.push(h('h2', {}, `Code (${lang.name})`), editor.element);
	}
	parts.push(h('details', {}, h('summary', {}, 'The stored object (JSON)'), h('pre', { class: 'json-view' }, JSON.stringify(z2, null, 2))));
	if (token() && !zeval_builtin(zid)) {
		parts.push(h('p', { class: 'actions' }, link(`/edit/${zid}`, 'Edit')));
	}
	page(name, ...parts);
}

// ---- creating and editing ---------------------------------------------------------------

function labelObject(text) {
	return { Z1K1: 'Z12', Z12K1: ['Z11', { Z1K1: 'Z11', Z11K1: 'Z1002', Z11K2: text }] };
}

function z2Of(zid, value, text) {
	return { Z1K1: 'Z2', Z2K1: { Z1K1: 'Z6', Z6K1: zid }, Z2K2: value, Z2K3: labelObject(text) };
}

function field(id, title, input, hint) {
	return h('div', { class: 'field' }, h('label', { for: id }, title), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

function needToken() {
	return h('p', { class: 'notice' }, 'Sign in with a token to create or edit objects.');
}

/** Adds `zid` to the function's implementations (Z8K4) or testers (Z8K3). */
async function attach(functionZid, key, zid) {
	const z2 = await getObject(functionZid, { fresh: true });
	const list = Array.isArray(z2.Z2K2[key]) ? z2.Z2K2[key] : [key === 'Z8K4' ? 'Z14' : 'Z20'];
	if (!list.includes(zid)) {
		z2.Z2K2[key] = [...list, zid];
		await api('PUT', `/v1/objects/${functionZid}`, z2);
	}
	forget(functionZid);
}

function newImplementationPage(params, existing) {
	const f = params.get('function') || '';
	const value = existing?.Z2K2;
	const fn = h('input', { id: 'impl-function', value: existing ? ref(value.Z14K1) || '' : f, required: true, pattern: 'Z[1-9][0-9]*', autocomplete: 'off' });
	const name = h('input', { id: 'impl-label', value: existing ? label(existing) || '' : '', required: true });
	const lang = existing ? languageOf(value) : LANGUAGES[0];
	const select = h('select', { id: 'impl-language' }, LANGUAGES.map((l) => h('option', { value: l.zid, selected: l.zid === lang?.zid }, l.name)));
	const starter = (fz, mode) => mode === 'python' ? `def ${fz}(${fz}K1):\n    return ${fz}K1\n` :
		mode === 'javascript' ? `function ${fz}( ${fz}K1 ) {\n    return ${fz}K1;\n}\n` : '';
	const editor = codeEditor({ id: 'impl-code', value: existing ? str(value.Z14K3?.Z16K2) || '' : starter(f || 'Z0', 'javascript'), mode: lang?.mode || 'javascript', label: 'Code' });
	select.addEventListener('change', () => {
		const l = LANGUAGES.find((x) => x.zid === select.value);
		editor.mode = l.mode;
		if (!existing && (!editor.value.trim() || editor.value === starter(fn.value || 'Z0', l.mode === 'python' ? 'javascript' : 'python'))) {
			editor.value = starter(fn.value || 'Z0', l.mode);
		}
	});
	const attachBox = h('input', { type: 'checkbox', id: 'impl-attach', checked: true });
	const status = h('div', { 'aria-live': 'polite', id: 'save-status' });
	const form = h('form', { class: 'editor', id: 'impl-form' },
		field('impl-function', 'Function (ZID)', fn),
		field('impl-label', 'Label (English)', name),
		field('impl-language', 'Language', select),
		h('div', { class: 'field' }, h('label', { for: 'impl-code' }, 'Code'), editor.element,
			h('small', { class: 'muted' }, 'Define a function named by the function’s ZID; its arguments are named by their keys. Tab indents; Escape then Tab leaves the editor.')),
		existing ? null : h('div', { class: 'field checkbox' }, attachBox, h('label', { for: 'impl-attach' }, 'Add it to the function’s implementations')),
		h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', id: 'save' }, existing ? 'Save' : 'Create implementation')),
		status);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		status.replaceChildren(h('p', { class: 'muted' }, 'Saving…'));
		const z14 = { Z1K1: 'Z14', Z14K1: fn.value.trim(), Z14K3: { Z1K1: 'Z16', Z16K1: select.value, Z16K2: editor.value } };
		try {
			let zid;
			if (existing) {
				zid = str(existing.Z2K1);
				await api('PUT', `/v1/objects/${zid}`, z2Of(zid, z14, name.value));
			} else {
				zid = (await api('POST', '/v1/objects', z2Of('Z0', z14, name.value))).zid;
				if (attachBox.checked) {
					await attach(fn.value.trim(), 'Z8K4', zid);
				}
			}
			forget(zid);
			status.replaceChildren(h('p', { class: 'ok', id: 'saved' }, `Saved as ${zid}. `, link(`/function/${fn.value.trim()}`, 'Back to the function'), ' · ', link(`/object/${zid}`, 'View it')));
		} catch (err) {
			status.replaceChildren(errorBox(err));
		}
	});
	page(existing ? `Edit ${str(existing.Z2K1)}` : 'New implementation',
		h('h1', {}, existing ? `Edit implementation ${str(existing.Z2K1)}` : 'New implementation'),
		token() ? form : needToken());
}

function newFunctionPage() {
	const name = h('input', { id: 'fn-label', required: true });
	const argRows = h('div', { id: 'fn-args' });
	const addArg = () => {
		const n = argRows.children.length + 1;
		argRows.append(h('div', { class: 'arg-row' },
			field(`fn-arg-label-${n}`, `Argument ${n} label`, h('input', { id: `fn-arg-label-${n}`, value: n === 1 ? 'text' : '' })),
			field(`fn-arg-type-${n}`, 'Type (ZID)', h('input', { id: `fn-arg-type-${n}`, value: 'Z6', pattern: 'Z[1-9][0-9]*' }))));
	};
	addArg();
	const output = h('input', { id: 'fn-output', value: 'Z6', pattern: 'Z[1-9][0-9]*' });
	const status = h('div', { 'aria-live': 'polite' });
	const form = h('form', { class: 'editor' },
		field('fn-label', 'Label (English)', name), argRows,
		h('p', {}, h('button', { type: 'button', onclick: addArg }, '+ Argument')),
		field('fn-output', 'Returns (type ZID)', output),
		h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create function')), status);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const args = [...argRows.children].map((row, i) => {
			const [l, t] = row.querySelectorAll('input');
			return { Z1K1: 'Z17', Z17K1: t.value.trim(), Z17K2: `Z0K${i + 1}`, Z17K3: labelObject(l.value) };
		});
		const z8 = { Z1K1: 'Z8', Z8K1: ['Z17', ...args], Z8K2: output.value.trim(), Z8K3: ['Z20'], Z8K4: ['Z14'], Z8K5: 'Z0' };
		try {
			const { zid } = await api('POST', '/v1/objects', z2Of('Z0', z8, name.value));
			history.pushState(null, '', `/function/${zid}`);
			route();
		} catch (err) {
			status.replaceChildren(errorBox(err));
		}
	});
	page('New function', h('h1', {}, 'New function'), token() ? form : needToken());
}

function newTesterPage(params) {
	const f = params.get('function') || '';
	const fn = h('input', { id: 't-function', value: f, required: true, pattern: 'Z[1-9][0-9]*' });
	const name = h('input', { id: 't-label', required: true });
	const input = h('textarea', { id: 't-input', rows: '3', class: 'json' });
	input.value = f ? JSON.stringify({ [`${f}K1`]: 'hello' }) : '{}';
	const expected = h('input', { id: 't-expected', value: '' });
	const status = h('div', { 'aria-live': 'polite' });
	const form = h('form', { class: 'editor' },
		field('t-function', 'Function (ZID)', fn), field('t-label', 'Label (English)', name),
		field('t-input', 'Arguments (JSON object of key → value)', input),
		field('t-expected', 'Expected result (a string; checked with String equality, Z866)', expected),
		h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create tester')), status);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		try {
			const fz = fn.value.trim();
			const call = { Z1K1: 'Z7', Z7K1: fz, ...JSON.parse(input.value) };
			const z20 = { Z1K1: 'Z20', Z20K1: fz, Z20K2: call, Z20K3: { Z1K1: 'Z7', Z7K1: 'Z866', Z866K2: expected.value } };
			const { zid } = await api('POST', '/v1/objects', z2Of('Z0', z20, name.value));
			await attach(fz, 'Z8K3', zid);
			history.pushState(null, '', `/function/${fz}`);
			route();
		} catch (err) {
			status.replaceChildren(errorBox(err));
		}
	});
	page('New tester', h('h1', {}, 'New tester'), token() ? form : needToken());
}

async function editPage(zid) {
	let z2;
	try {
		z2 = await getObject(zid, { fresh: true });
	} catch (e) {
		page(zid, errorBox(e));
		return;
	}
	if (ref(z2.Z2K2?.Z1K1) === 'Z14' && z2.Z2K2.Z14K3) {
		return newImplementationPage(new URLSearchParams(), z2);
	}
	const editor = codeEditor({ id: 'json-edit', value: JSON.stringify(z2, null, 2), mode: 'javascript', label: 'The object as JSON' });
	const status = h('div', { 'aria-live': 'polite' });
	const form = h('form', { class: 'editor' },
		h('p', { class: 'muted' }, 'The whole stored object (canonical JSON). Saving makes a new revision.'),
		editor.element, h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save')), status);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		try {
			const answer = await api('PUT', `/v1/objects/${zid}`, JSON.parse(editor.value));
			forget(zid);
			status.replaceChildren(h('p', { class: 'ok' }, `Saved revision ${answer.revision}. `, link(ref(z2.Z2K2?.Z1K1) === 'Z8' ? `/function/${zid}` : `/object/${zid}`, 'View')));
		} catch (err) {
			status.replaceChildren(errorBox(err));
		}
	});
	page(`Edit ${zid}`, h('h1', {}, `Edit ${label(z2) || zid} `, h('span', { class: 'zid' }, zid)), token() ? form : needToken());
}

// ---- routing ----------------------------------------------------------------------------

function route() {
	const { pathname, search } = location;
	const params = new URLSearchParams(search);
	const zid = (p) => decodeURIComponent(pathname.slice(p.length));
	refreshUser();
	if (pathname === '/' || pathname === '/search') {
		return searchPage(params);
	}
	if (pathname.startsWith('/function/')) {
		return functionPage(zid('/function/'), params);
	}
	if (pathname.startsWith('/object/')) {
		return objectPage(zid('/object/'));
	}
	if (pathname.startsWith('/edit/')) {
		return editPage(zid('/edit/'));
	}
	if (pathname === '/new/implementation') {
		return newImplementationPage(params);
	}
	if (pathname === '/new/function') {
		return newFunctionPage();
	}
	if (pathname === '/new/tester') {
		return newTesterPage(params);
	}
	page('Not found', h('h1', {}, 'Not found'), h('p', {}, link('/', 'Back to the functions')));
}

document.querySelector('.topsearch').addEventListener('submit', (e) => {
	e.preventDefault();
	const q = document.getElementById('q').value;
	navigate(null, `/search?${new URLSearchParams({ q, type: 'Z8' })}`);
});
window.addEventListener('popstate', route);
route();
