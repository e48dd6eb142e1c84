//! A flat pre-scan of an Avro request that measures how deeply `Z1` records nest, without
//! recursion and without building anything, so that a hostile body is refused before the
//! (recursive) decoder sees it.

/// Scans the record of `version` in `data` and returns its deepest `Z1` nesting, or an error
/// when the data is truncated, malformed, or nests deeper than `max_depth`.
pub(super) fn check(version: &str, data: &[u8], max_depth: usize) -> Result<usize, String> {
    let mut scanner = Scanner {
        data,
        pos: 0,
        max_depth,
        deepest: 0,
    };
    match version {
        "0.0.1" => scanner.value(false)?,
        "0.0.2" => {
            scanner.skip(1)?;
            scanner.value(false)?;
        }
        "0.0.3" | "0.0.4" => {
            scanner.skip(1)?;
            if version == "0.0.4" {
                scanner.skip(8)?;
            }
            for _ in 0..3 {
                scanner.string()?;
            }
            scanner.map(false)?;
        }
        other => return Err(format!("unknown version {other}")),
    }
    Ok(scanner.deepest)
}

struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: usize,
    deepest: usize,
}

/// An open Avro map: entries left in the current block, and whether its values use the
/// inner (`valueMap`) union order.
struct OpenMap {
    remaining: u64,
    inner: bool,
}

impl Scanner<'_> {
    fn skip(&mut self, n: usize) -> Result<(), String> {
        if self.data.len() - self.pos < n {
            return Err("the data ends early".to_owned());
        }
        self.pos += n;
        Ok(())
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.pos).ok_or("the data ends early")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err("a varint is longer than 10 bytes".to_owned())
    }

    fn string(&mut self) -> Result<(), String> {
        let length = self.long()?;
        let length = usize::try_from(length).map_err(|_| "a negative string length")?;
        self.skip(length)
    }

    /// One union value; returns whether it was a `Z1` (whose map the caller must scan).
    fn branch(&mut self, inner: bool) -> Result<bool, String> {
        let index = self.long()?;
        let z1 = if inner { 0 } else { 3 };
        match index {
            0..=3 if index == z1 => Ok(true),
            0..=3 => self.string().map(|()| false),
            _ => Err(format!("union branch {index} does not exist")),
        }
    }

    fn value(&mut self, inner: bool) -> Result<(), String> {
        if self.branch(inner)? {
            self.map(true)
        } else {
            Ok(())
        }
    }

    /// A map of union values, and every `Z1` map nested in it, iteratively.
    fn map(&mut self, inner: bool) -> Result<(), String> {
        let mut open = vec![OpenMap {
            remaining: 0,
            inner,
        }];
        while let Some(current) = open.last_mut() {
            if current.remaining == 0 {
                let count = self.long()?;
                if count == 0 {
                    open.pop();
                    continue;
                }
                if count < 0 {
                    self.long()?; // the block's byte size
                }
                current.remaining = count.unsigned_abs();
            }
            current.remaining -= 1;
            let inner = current.inner;
            self.string()?;
            if self.branch(inner)? {
                // Values inside a Z1's valueMap use the inner order.
                open.push(OpenMap {
                    remaining: 0,
                    inner: true,
                });
                let depth = open.len() - 1;
                if depth > self.max_depth {
                    return Err(format!(
                        "the ZObject nests deeper than {} levels",
                        self.max_depth
                    ));
                }
                self.deepest = self.deepest.max(depth);
            }
        }
        Ok(())
    }
}
