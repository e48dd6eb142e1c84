// A code editor: a textarea over a highlighted copy of its text (JavaScript, Python, C,
// Rust). The textarea stays the real, accessible input; the copy behind it only colours.

const KEYWORDS = {
	javascript: 'await break case catch class const continue debugger default delete do else export extends false finally for function if import in instanceof let new null of return static super switch this throw true try typeof undefined var void while with yield async',
	python: 'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield',
	c: 'auto break case char const continue default do double else enum extern float for goto if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while bool true false NULL size_t uint8_t uint32_t int32_t int64_t uint64_t',
	rust: 'as break const continue crate else enum extern false fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait true type unsafe use where while dyn String Vec Option Some None Ok Err Result u8 u32 u64 i32 i64 usize bool str char f64',
};

/** Longest text highlighted; past it the code is shown plain (the textarea still works). */
const MAX_HIGHLIGHT_CHARS = 200000;

function tokenRegex(mode) {
	const comment = mode === 'python' ? '#[^\\n]*' : '\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?(?:\\*\\/|$)';
	const string = mode === 'python' ?
		'"""[\\s\\S]*?(?:"""|$)|\'\'\'[\\s\\S]*?(?:\'\'\'|$)|"(?:\\\\.|[^"\\\\\\n])*"?|\'(?:\\\\.|[^\'\\\\\\n])*\'?' :
		'`(?:\\\\.|[^`\\\\])*`?|"(?:\\\\.|[^"\\\\\\n])*"?|\'(?:\\\\.|[^\'\\\\\\n])*\'?';
	return new RegExp(`(${comment})|(${string})|(\\b\\d[\\d_]*(?:\\.\\d+)?\\b)|([A-Za-z_$][\\w$]*)`, 'g');
}

/** Fills `pre` with spans of `code` coloured for `mode`. */
export function highlight(pre, code, mode) {
	pre.textContent = '';
	const keywords = new Set((KEYWORDS[mode] || '').split(' '));
	if (!KEYWORDS[mode] || code.length > MAX_HIGHLIGHT_CHARS) {
		pre.textContent = code + '\n';
		return;
	}
	const re = tokenRegex(mode);
	let at = 0;
	const add = (text, cls) => {
		if (!text) {
			return;
		}
		if (cls) {
			const span = document.createElement('span');
			span.className = cls;
			span.textContent = text;
			pre.append(span);
		} else {
			pre.append(text);
		}
	};
	for (const m of code.matchAll(re)) {
		add(code.slice(at, m.index), null);
		const [text, comment, string, number, word] = m;
		const cls = comment ? 'tok-comment' : string ? 'tok-string' : number ? 'tok-number' :
			word && keywords.has(word) ? 'tok-keyword' : word && /^Z\d+(K\d+)?$/.test(word) ? 'tok-zid' : null;
		add(text, cls);
		at = m.index + text.length;
	}
	add(code.slice(at), null);
	pre.append('\n');
}

/** A code editor element; `.value`, `.mode` settable. */
export function codeEditor({ id, value = '', mode = 'javascript', label = 'Code' }) {
	const wrap = document.createElement('div');
	wrap.className = 'code-editor';
	const pre = document.createElement('pre');
	pre.setAttribute('aria-hidden', 'true');
	const area = document.createElement('textarea');
	area.id = id;
	area.spellcheck = false;
	area.setAttribute('autocapitalize', 'off');
	area.setAttribute('aria-label', label);
	area.value = value;
	wrap.append(pre, area);
	let current = mode;
	const refresh = () => {
		highlight(pre, area.value, current);
		pre.scrollTop = area.scrollTop;
		pre.scrollLeft = area.scrollLeft;
	};
	area.addEventListener('input', refresh);
	area.addEventListener('scroll', () => {
		pre.scrollTop = area.scrollTop;
		pre.scrollLeft = area.scrollLeft;
	});
	// Tab indents (Escape then Tab leaves the editor, for keyboard users).
	let escaped = false;
	area.addEventListener('keydown', (e) => {
		if (e.key === 'Escape') {
			escaped = true;
			return;
		}
		if (e.key === 'Tab' && !e.shiftKey && !escaped) {
			e.preventDefault();
			const { selectionStart: s, selectionEnd: t } = area;
			area.setRangeText('    ', s, t, 'end');
			refresh();
		}
		escaped = false;
	});
	refresh();
	return {
		element: wrap,
		textarea: area,
		get value() {
			return area.value;
		},
		set value(v) {
			area.value = v;
			refresh();
		},
		set mode(m) {
			current = m;
			refresh();
		},
	};
}
