//! Byte-level mutations: what a hostile or broken client sends instead of a good body.

use crate::rng::Rng;

/// The largest input a mutation may produce; bigger inputs are truncated. The servers cap
/// bodies at a few MiB, so larger inputs test nothing they would see.
pub const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;

/// The deepest nesting one injection adds: past the parsers' 10 000 levels
/// (`zeval_zobject::json::MAX_DEPTH`), so the limit itself is exercised.
pub const MAX_INJECTED_DEPTH: usize = 12_000;

/// The longest string one injection adds.
pub const MAX_INJECTED_STRING: usize = 100_000;

/// Tokens of ZObjects and JSON edge cases that random bytes would rarely produce.
const DICTIONARY: &[&str] = &[
    "\"Z1K1\"",
    "\"Z7\"",
    "\"Z6\"",
    "\"Z9\"",
    "\"Z22\"",
    "\"Z5\"",
    "\"Z8\"",
    "\"Z14\"",
    "\"Z881\"",
    "\"Z882\"",
    "\"Z883\"",
    "\"Z7K1\"",
    "\"Z6K1\"",
    "\"Z9K1\"",
    "\"Z8K1\"",
    "\"Z14K3\"",
    "\"Z16K2\"",
    "\"Z22K1\"",
    "\"Z22K2\"",
    "\"K1\"",
    "\"zobject\"",
    "\"reentrant\"",
    "\"remainingTime\"",
    "\"doValidate\"",
    "\"result\"",
    "\"error\"",
    "\"functionName\"",
    "\"codingLanguage\"",
    "\"functionArguments\"",
    "true",
    "false",
    "null",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "0.0000001",
    "NaN",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"\\\\\"",
    "\"\"",
    "[]",
    "{}",
    "\"Z\"",
    "\"Z0\"",
    "\"Z99999999999999999999\"",
    "\"0.0.1\"",
    "\"0.0.2\"",
    "\"0.0.3\"",
    "\"0.0.4\"",
    "\"0.0.5\"",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
];

/// Applies one to four random mutations to `input`; `corpus` supplies splice material.
pub fn mutate(input: &[u8], corpus: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(&mut data, corpus, rng);
    }
    data.truncate(MAX_INPUT_BYTES);
    data
}

fn mutate_once(data: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng) {
    let at = rng.below(data.len() + 1);
    match rng.below(10) {
        // Flip one bit.
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        // Overwrite a byte with a structural one.
        1 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = *rng.pick(b"\"{}[],:\\0\xff\n-.eE");
        }
        // Insert random bytes.
        2 => {
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        // Delete a range.
        3 if !data.is_empty() => {
            let start = rng.below(data.len());
            let end = (start + 1 + rng.below(64)).min(data.len());
            data.drain(start..end);
        }
        // Duplicate a range somewhere else.
        4 if !data.is_empty() => {
            let start = rng.below(data.len());
            let end = (start + 1 + rng.below(256)).min(data.len());
            let copy = data[start..end].to_vec();
            let at = rng.below(data.len() + 1);
            data.splice(at..at, copy);
        }
        // Splice in part of another corpus entry.
        5 if !corpus.is_empty() => {
            let other = rng.pick(corpus);
            if !other.is_empty() {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(512)).min(other.len());
                let replace_end = (at + rng.below(64)).min(data.len());
                data.splice(at..replace_end, other[start..end].iter().copied());
            }
        }
        // Deep nesting: arrays, objects, or ZObject calls, closed or not.
        6 => {
            let depth = if rng.one_in(3) {
                rng.below(MAX_INJECTED_DEPTH)
            } else {
                rng.below(200)
            };
            let (open, close): (&[u8], &[u8]) = match rng.below(3) {
                0 => (b"[", b"]"),
                1 => (b"{\"K1\":", b"}"),
                _ => (b"{\"Z1K1\":\"Z7\",\"Z7K1\":", b"}"),
            };
            let mut injected = open.repeat(depth);
            injected.extend_from_slice(b"\"Z6\"");
            if rng.below(4) != 0 {
                injected.extend(close.repeat(depth));
            }
            data.splice(at..at, injected);
        }
        // A long string, plain or full of escapes.
        7 => {
            let n = rng.below(MAX_INJECTED_STRING);
            const UNITS: [&[u8]; 4] = [b"x", b"\\u00e9", b"\\\"", "é".as_bytes()];
            let unit = *rng.pick(&UNITS);
            let mut injected = vec![b'"'];
            injected.extend(unit.repeat(n / unit.len().max(1)));
            injected.push(b'"');
            data.splice(at..at, injected);
        }
        // A dictionary token.
        8 => {
            let token = rng.pick(DICTIONARY).as_bytes();
            data.splice(at..at, token.iter().copied());
        }
        // Change a number-looking byte run or length prefix (Avro varints live here).
        _ if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = data[i].wrapping_add(rng.pick(&[1u8, 255, 16, 240, 128]).to_owned());
        }
        _ => data.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_stay_bounded() {
        let mut rng = Rng::new(7);
        let seed = br#"{"zobject":{"Z1K1":"Z7","Z7K1":"Z802"}}"#.to_vec();
        let corpus = vec![seed.clone()];
        let mut changed = 0;
        for _ in 0..500 {
            let out = mutate(&seed, &corpus, &mut rng);
            assert!(out.len() <= MAX_INPUT_BYTES);
            if out != seed {
                changed += 1;
            }
        }
        assert!(
            changed > 450,
            "only {changed} of 500 mutations changed the input"
        );
    }
}
