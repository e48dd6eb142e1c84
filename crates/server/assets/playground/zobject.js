// Reading ZObjects (canonical or normal) for display.

/** The items of a canonical benjamin array or a normal typed list. */
export function items(list) {
	if (Array.isArray(list)) {
		return list.slice(1);
	}
	const out = [];
	let node = list;
	// Normal typed lists nest: bounded by their length.
	for (let i = 0; node && typeof node === 'object' && 'K1' in node && i < 100000; i++) {
		out.push(node.K1);
		node = node.K2;
	}
	return out;
}

/** The ZID of a reference, canonical ("Z6") or normal ({Z1K1: Z9, Z9K1}). */
export function ref(v) {
	if (typeof v === 'string' && /^Z[1-9]\d*$/.test(v)) {
		return v;
	}
	if (v && typeof v === 'object' && v.Z1K1 === 'Z9') {
		return v.Z9K1;
	}
	return null;
}

/** A string value: canonical "x" or {Z1K1: Z6, Z6K1: x}. */
export function str(v) {
	if (typeof v === 'string') {
		return v;
	}
	if (v && typeof v === 'object' && (v.Z1K1 === 'Z6' || v.Z1K1?.Z9K1 === 'Z6')) {
		return str(v.Z6K1);
	}
	return null;
}

/** The English label (Z1002) of a Z2, else its first label, else null. */
export function label(z2) {
	const labels = items(z2?.Z2K3?.Z12K1 || []);
	const english = labels.find((m) => ref(m.Z11K1) === 'Z1002');
	const chosen = english || labels[0];
	return chosen ? str(chosen.Z11K2) : null;
}

/** The type of a value, as a ZID when it is a reference. */
export function typeOf(v) {
	if (typeof v === 'string') {
		return 'Z6';
	}
	if (Array.isArray(v)) {
		return 'list';
	}
	return v && typeof v === 'object' ? ref(v.Z1K1) : null;
}

/** Text to show for a result value. */
export function display(v) {
	const s = str(v);
	if (s !== null) {
		return s;
	}
	if (v && typeof v === 'object') {
		const t = ref(v.Z1K1);
		if (t === 'Z40') {
			const b = ref(v.Z40K1);
			return b === 'Z41' ? 'true' : b === 'Z42' ? 'false' : JSON.stringify(v);
		}
		if (t === 'Z9') {
			return v.Z9K1;
		}
		if (t === 'Z24') {
			return 'void';
		}
	}
	return JSON.stringify(v, null, 2);
}

/** The entries of a metadata map (Z883), canonical or normal, as [key, value]. */
export function mapEntries(map) {
	if (!map || typeof map !== 'object') {
		return [];
	}
	return items(map.K1 || []).map((pair) => [str(pair.K1) ?? JSON.stringify(pair.K1), pair.K2]);
}

/** The message of an error (Z5), as text. */
export function errorText(z5) {
	if (!z5 || typeof z5 !== 'object') {
		return String(z5);
	}
	const code = ref(z5.Z5K1) || (z5.Z5K1 && ref(z5.Z5K1.Z50K1)) || 'error';
	const parts = [];
	const walk = (v, depth) => {
		if (depth > 6 || parts.length > 4) {
			return;
		}
		const s = str(v);
		if (s !== null && typeof v !== 'string') {
			parts.push(s);
			return;
		}
		if (v && typeof v === 'object') {
			for (const [k, x] of Object.entries(v)) {
				if (k !== 'Z1K1' && k !== 'Z5K1') {
					if (typeof x === 'string' && !/^Z\d+$/.test(x)) {
						parts.push(x);
					} else {
						walk(x, depth + 1);
					}
				}
			}
		}
	};
	walk(z5.Z5K2, 0);
	return `${code}: ${parts.join(' — ') || JSON.stringify(z5.Z5K2 ?? z5).slice(0, 300)}`;
}

/** The languages a code implementation may be written in (Z61 ZIDs). */
export const LANGUAGES = [
	{ zid: 'Z600', name: 'JavaScript', mode: 'javascript' },
	{ zid: 'Z610', name: 'Python', mode: 'python' },
	{ zid: 'Z630', name: 'C', mode: 'c' },
	{ zid: 'Z640', name: 'Rust', mode: 'rust' },
];

export function languageOf(z14) {
	const z16 = z14?.Z14K3;
	if (!z16) {
		return null;
	}
	const l = z16.Z16K1;
	const zid = ref(l);
	if (zid) {
		return LANGUAGES.find((x) => x.zid === zid) || { zid, name: zid, mode: 'plain' };
	}
	const code = str(l?.Z61K1) || '';
	const mode = code.startsWith('python') ? 'python' : code.startsWith('javascript') ? 'javascript' :
		code.startsWith('rust') ? 'rust' : code.startsWith('c1') || code === 'c' ? 'c' : 'plain';
	return { zid: null, name: code || 'code', mode };
}
