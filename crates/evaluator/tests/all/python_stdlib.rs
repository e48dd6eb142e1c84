//! The CPython guest's standard library (issue 15): every module of `sys.stdlib_module_names`
//! imports at call time, when the guest has no file system, except the ones
//! `guests/python/README.md` lists as unsupported, each with its reason; and the C extension
//! modules and the bundled tz database work.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use zeval_evaluator::{Evaluator, EvaluatorConfig, Family};

use crate::{outcome, request};

/// The guest README, whose "Unsupported modules" table is the expected failure list.
const GUEST_README: &str = include_str!("../../../../guests/python/README.md");

/// An evaluator with the default limits (128 MiB) but a wall time that a machine busy with
/// other builds cannot exceed while one call imports the whole standard library.
fn evaluator() -> &'static Evaluator {
    static EVALUATOR: OnceLock<Evaluator> = OnceLock::new();
    EVALUATOR.get_or_init(|| {
        let mut config = EvaluatorConfig::default();
        config.limits.wall_time = Duration::from_secs(120);
        Evaluator::new(config).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Runs `code` (defining `Z1000` with string arguments) in the Python guest.
fn run_python(code: &str, args: &[&str]) -> Result<String, String> {
    outcome(&evaluator().evaluate(request(Family::Python, code, args)))
}

/// The module names in the README's table between the `unsupported-modules` markers.
fn documented_unsupported() -> BTreeSet<String> {
    let start = GUEST_README
        .find("<!-- unsupported-modules:start -->")
        .expect("the README marks the start of the unsupported-module table");
    let end = GUEST_README
        .find("<!-- unsupported-modules:end -->")
        .expect("the README marks the end of the unsupported-module table");
    let mut names = BTreeSet::new();
    for row in GUEST_README[start..end].lines() {
        let Some(first_cell) = row.strip_prefix("| ").and_then(|r| r.split(" |").next()) else {
            continue;
        };
        // A cell lists one or more modules, each in backticks.
        for (index, part) in first_cell.split('`').enumerate() {
            if index % 2 == 1 {
                names.insert(part.to_owned());
            }
        }
    }
    assert!(
        names.len() > 10,
        "the unsupported-module table looks empty: {names:?}"
    );
    names
}

const IMPORT_EVERYTHING: &str = r#"
def Z1000(Z1000K1):
    import importlib, sys
    failures = []
    for name in sorted(sys.stdlib_module_names):
        try:
            importlib.import_module(name)
        except BaseException as error:
            failures.append("%s\t%s: %s" % (name, type(error).__name__, error))
    return "\n".join(failures)
"#;

#[test]
fn every_stdlib_module_imports_except_the_documented_ones() {
    let failures = run_python(IMPORT_EVERYTHING, &["-"]).expect("the import loop ran");
    let failed: BTreeSet<String> = failures
        .lines()
        .map(|line| line.split('\t').next().unwrap_or_default().to_owned())
        .collect();
    let documented = documented_unsupported();
    let undocumented: Vec<&str> = failures
        .lines()
        .filter(|line| !documented.contains(line.split('\t').next().unwrap_or_default()))
        .collect();
    let importable_after_all: Vec<&String> = documented.difference(&failed).collect();
    assert!(
        undocumented.is_empty() && importable_after_all.is_empty(),
        "failed to import but not listed in guests/python/README.md:\n{}\n\
         listed as unsupported but imported: {importable_after_all:?}",
        undocumented.join("\n")
    );
}

const EXTENSIONS: &str = r#"
def Z1000(Z1000K1):
    import bz2, codecs, csv, datetime, decimal, hashlib, io, lzma, sqlite3, unicodedata, zlib
    import xml.etree.ElementTree as ElementTree
    from zoneinfo import ZoneInfo, available_timezones
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.executemany("insert into t values (?)", [(3,), (4,)])
    try:
        sqlite3.connect("file.db")
        opened_file = "opened"
    except sqlite3.OperationalError as error:
        opened_file = str(error)
    utc = datetime.datetime(2024, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
    return "\n".join([
        str(db.execute("select sum(x), sqrt(16) from t").fetchone()),
        opened_file,
        str(lzma.decompress(lzma.compress(b"lzma")) + bz2.decompress(bz2.compress(b"bz2"))),
        utc.astimezone(ZoneInfo("America/Argentina/Buenos_Aires")).isoformat(),
        str("Europe/Berlin" in available_timezones()),
        codecs.encode("Hello", "rot13"),
        unicodedata.name("é"),
        str(decimal.Decimal is __import__("_decimal").Decimal),
        ElementTree.fromstring("<a><b>x</b></a>").find("b").text,
        hashlib.sha3_256(b"").hexdigest()[:8],
        "|".join(next(csv.reader(io.StringIO('"a,b",c')))),
    ])
"#;

#[test]
fn c_extensions_and_the_tz_database_work() {
    let result = run_python(EXTENSIONS, &["-"]);
    assert_eq!(
        result.as_deref(),
        Ok("(7, 4.0)\n\
            unable to open database file\n\
            b'lzmabz2'\n\
            2024-06-01T09:00:00-03:00\n\
            True\n\
            Uryyb\n\
            LATIN SMALL LETTER E WITH ACUTE\n\
            True\n\
            x\n\
            a7ffc6f8\n\
            a,b|c")
    );
}
