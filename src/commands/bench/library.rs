//! `zeval bench library`: a library of 16 realistic functions, every tester on every
//! implementation, over HTTP, one check per request (issue 12's "library" row).
//!
//! Ten functions have a JavaScript and a Python implementation; six are compositions of
//! built-ins and of those functions. Each has two testers. A check is one `POST /v1/test`
//! naming one function, one implementation and one tester: the tester's call narrowed to that
//! implementation, then its validator, as the original runs a tester against an
//! implementation. The server is a real `zeval serve` (SQLite store, default limits and
//! isolation, result cache off so that every check computes), driven over one keep-alive
//! connection. Every round runs every check; the first round is not timed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::result_cache::{Client, percentile, start};
use super::{z2, z17};

/// Time every check of the library.
#[derive(clap::Args)]
pub(crate) struct LibraryBench {
    /// Timed rounds over every check (after one untimed round).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

/// A code function: ZID, argument types, return type, JavaScript and Python bodies (each
/// receives the arguments `a` and `b` by the function's keys), and two testers as (arguments,
/// expected result).
struct CodeFunction {
    zid: &'static str,
    arguments: &'static [&'static str],
    returns: &'static str,
    javascript: &'static str,
    python: &'static str,
    testers: [(&'static [&'static str], &'static str); 2],
}

const CODE_FUNCTIONS: &[CodeFunction] = &[
    CodeFunction {
        zid: "Z11001",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return Array.from(a).reverse().join('');",
        python: "return a[::-1]",
        testers: [(&["abc"], "cba"), (&["héllo wörld"], "dlröw olléh")],
    },
    CodeFunction {
        zid: "Z11002",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return a.toUpperCase();",
        python: "return a.upper()",
        testers: [(&["abc"], "ABC"), (&["straße"], "STRASSE")],
    },
    CodeFunction {
        zid: "Z11003",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return String((a.match(/[aeiou]/gi) || []).length);",
        python: "return str(sum(1 for c in a if c in 'aeiouAEIOU'))",
        testers: [(&["Wikifunctions"], "5"), (&["rhythm"], "0")],
    },
    CodeFunction {
        zid: "Z11004",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return String(a.split(/\\s+/).filter((w) => w.length > 0).length);",
        python: "return str(len(a.split()))",
        testers: [(&["the quick  brown fox"], "4"), (&[""], "0")],
    },
    CodeFunction {
        zid: "Z11005",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return a.split(' ').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ');",
        python: "return ' '.join(w[:1].upper() + w[1:] for w in a.split(' '))",
        testers: [(&["hello big world"], "Hello Big World"), (&["a"], "A")],
    },
    CodeFunction {
        zid: "Z11006",
        arguments: &["Z6"],
        returns: "Z40",
        javascript: "const t = a.toLowerCase().replace(/[^a-z0-9]/g, ''); return t === Array.from(t).reverse().join('');",
        python: "t = ''.join(c for c in a.lower() if c.isalnum())\n    return t == t[::-1]",
        testers: [
            (&["A man, a plan, a canal: Panama"], "Z41"),
            (&["Wikifunctions"], "Z42"),
        ],
    },
    CodeFunction {
        zid: "Z11007",
        arguments: &["Z6", "Z6"],
        returns: "Z6",
        javascript: "return a.repeat(Number(b));",
        python: "return a * int(b)",
        testers: [(&["ab", "3"], "ababab"), (&["x", "0"], "")],
    },
    CodeFunction {
        zid: "Z11008",
        arguments: &["Z6", "Z6"],
        returns: "Z6",
        javascript: "return String(BigInt(a) + BigInt(b));",
        python: "return str(int(a) + int(b))",
        testers: [
            (&["5", "8"], "13"),
            (&["99999999999999999999", "1"], "100000000000000000000"),
        ],
    },
    CodeFunction {
        zid: "Z11009",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return a.replace(/[a-z]/g, (c) => String.fromCharCode((c.charCodeAt(0) - 97 + 3) % 26 + 97));",
        python: "return ''.join(chr((ord(c) - 97 + 3) % 26 + 97) if 'a' <= c <= 'z' else c for c in a)",
        testers: [(&["xyz abc"], "abc def"), (&["Hello"], "Hhoor")],
    },
    CodeFunction {
        zid: "Z11010",
        arguments: &["Z6"],
        returns: "Z6",
        javascript: "return Array.from(a).sort().join('');",
        python: "return ''.join(sorted(a))",
        testers: [(&["banana"], "aaabnn"), (&["zeval"], "aelvz")],
    },
];

/// A composition: ZID, argument types, return type, body (a Z7 whose `Z18` references name
/// the composition's own keys), and two testers as (arguments, expected result).
struct Composition {
    zid: &'static str,
    arguments: &'static [&'static str],
    returns: &'static str,
    body: fn(&str) -> Value,
    testers: [(&'static [&'static str], &'static str); 2],
}

fn argument(zid: &str, index: usize) -> Value {
    json!({"Z1K1": "Z18", "Z18K1": format!("{zid}K{index}")})
}

const COMPOSITIONS: &[Composition] = &[
    // Is the text empty: String equality with "".
    Composition {
        zid: "Z11011",
        arguments: &["Z6"],
        returns: "Z40",
        body: |zid| json!({"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": argument(zid, 1), "Z866K2": ""}),
        testers: [(&[""], "Z41"), (&["a"], "Z42")],
    },
    // Not: If(x, false, true).
    Composition {
        zid: "Z11012",
        arguments: &["Z40"],
        returns: "Z40",
        body: |zid| json!({"Z1K1": "Z7", "Z7K1": "Z802", "Z802K1": argument(zid, 1), "Z802K2": "Z42", "Z802K3": "Z41"}),
        testers: [(&["Z41"], "Z42"), (&["Z42"], "Z41")],
    },
    // Is it the same backwards: String equality of the text and its reverse (Z11001).
    Composition {
        zid: "Z11013",
        arguments: &["Z6"],
        returns: "Z40",
        body: |zid| {
            json!({"Z1K1": "Z7", "Z7K1": "Z866", "Z866K1": argument(zid, 1),
                   "Z866K2": {"Z1K1": "Z7", "Z7K1": "Z11001", "Z11001K1": argument(zid, 1)}})
        },
        testers: [(&["level"], "Z41"), (&["levels"], "Z42")],
    },
    // Shout backwards: the upper case (Z11002) of the reverse (Z11001).
    Composition {
        zid: "Z11014",
        arguments: &["Z6"],
        returns: "Z6",
        body: |zid| {
            json!({"Z1K1": "Z7", "Z7K1": "Z11002",
                   "Z11002K1": {"Z1K1": "Z7", "Z7K1": "Z11001", "Z11001K1": argument(zid, 1)}})
        },
        testers: [(&["abc"], "CBA"), (&["wiki"], "IKIW")],
    },
    // Equal ignoring case: String equality of both upper cases (Z11002).
    Composition {
        zid: "Z11015",
        arguments: &["Z6", "Z6"],
        returns: "Z40",
        body: |zid| {
            json!({"Z1K1": "Z7", "Z7K1": "Z866",
                   "Z866K1": {"Z1K1": "Z7", "Z7K1": "Z11002", "Z11002K1": argument(zid, 1)},
                   "Z866K2": {"Z1K1": "Z7", "Z7K1": "Z11002", "Z11002K1": argument(zid, 2)}})
        },
        testers: [(&["Wiki", "wIKI"], "Z41"), (&["Wiki", "Wika"], "Z42")],
    },
    // Double the vowel count: the sum (Z11008) of the vowel count (Z11003) with itself.
    Composition {
        zid: "Z11016",
        arguments: &["Z6"],
        returns: "Z6",
        body: |zid| {
            let count = json!({"Z1K1": "Z7", "Z7K1": "Z11003", "Z11003K1": argument(zid, 1)});
            json!({"Z1K1": "Z7", "Z7K1": "Z11008", "Z11008K1": count, "Z11008K2": count})
        },
        testers: [(&["banana"], "6"), (&["xyz"], "0")],
    },
];

fn function(
    zid: &str,
    arguments: &[&str],
    returns: &str,
    testers: &[String],
    implementations: &[String],
) -> Value {
    let mut declared = vec![json!("Z17")];
    declared.extend(
        arguments
            .iter()
            .enumerate()
            .map(|(i, ty)| z17(zid, i + 1, json!(ty))),
    );
    let mut tester_list = vec![json!("Z20")];
    tester_list.extend(testers.iter().map(|t| json!(t)));
    let mut implementation_list = vec![json!("Z14")];
    implementation_list.extend(implementations.iter().map(|i| json!(i)));
    z2(
        zid,
        json!({"Z1K1": "Z8", "Z8K1": declared, "Z8K2": returns, "Z8K3": tester_list,
               "Z8K4": implementation_list, "Z8K5": zid}),
    )
}

fn tester(zid: &str, function: &str, returns: &str, arguments: &[&str], expected: &str) -> Value {
    let mut call = json!({"Z1K1": "Z7", "Z7K1": function});
    for (i, value) in arguments.iter().enumerate() {
        call[format!("{function}K{}", i + 1)] = json!(value);
    }
    let validator = if returns == "Z40" {
        json!({"Z1K1": "Z7", "Z7K1": "Z844", "Z844K2": expected})
    } else {
        json!({"Z1K1": "Z7", "Z7K1": "Z866", "Z866K2": expected})
    };
    z2(
        zid,
        json!({"Z1K1": "Z20", "Z20K1": function, "Z20K2": call, "Z20K3": validator}),
    )
}

/// One check: a function, one of its implementations, one of its testers, and the kind of
/// implementation.
struct Check {
    function: &'static str,
    implementation: String,
    tester: String,
    kind: &'static str,
}

/// The library's objects, in an order the store accepts (a function's implementations and
/// testers before it), and its checks.
fn library() -> (Vec<(String, Value)>, Vec<Check>) {
    let mut objects = Vec::new();
    let mut checks = Vec::new();
    let add_testers = |zid: &'static str,
                       returns: &str,
                       cases: &[(&[&str], &str); 2],
                       objects: &mut Vec<(String, Value)>| {
        // Tester ZIDs: the function's with 50 and 51 appended, e.g. Z1100150.
        let ids: Vec<String> = (0..2).map(|n| format!("{zid}5{n}")).collect();
        for (id, (arguments, expected)) in ids.iter().zip(cases) {
            objects.push((id.clone(), tester(id, zid, returns, arguments, expected)));
        }
        ids
    };
    for f in CODE_FUNCTIONS {
        let testers = add_testers(f.zid, f.returns, &f.testers, &mut objects);
        let keys: Vec<String> = (1..=f.arguments.len())
            .map(|i| format!("{}K{i}", f.zid))
            .collect();
        let names = ["a", "b"];
        let js_params = keys.join(", ");
        let js_binds: String = keys
            .iter()
            .zip(names)
            .map(|(key, name)| format!("const {name} = {key}; "))
            .collect();
        let py_binds: String = keys
            .iter()
            .zip(names)
            .map(|(key, name)| format!("    {name} = {key}\n"))
            .collect();
        let javascript = format!(
            "function {}( {js_params} ) {{ {js_binds}{} }}",
            f.zid, f.javascript
        );
        let python = format!("def {}({js_params}):\n{py_binds}    {}", f.zid, f.python);
        let mut implementations = Vec::new();
        for (suffix, language, code, kind) in [
            ("60", "Z600", javascript, "JavaScript"),
            ("61", "Z610", python, "Python"),
        ] {
            let id = format!("{}{suffix}", f.zid);
            objects.push((
                id.clone(),
                z2(
                    &id,
                    json!({"Z1K1": "Z14", "Z14K1": f.zid,
                           "Z14K3": {"Z1K1": "Z16", "Z16K1": language, "Z16K2": code}}),
                ),
            ));
            for tester in &testers {
                checks.push(Check {
                    function: f.zid,
                    implementation: id.clone(),
                    tester: tester.clone(),
                    kind,
                });
            }
            implementations.push(id);
        }
        objects.push((
            f.zid.to_owned(),
            function(f.zid, f.arguments, f.returns, &testers, &implementations),
        ));
    }
    for c in COMPOSITIONS {
        let testers = add_testers(c.zid, c.returns, &c.testers, &mut objects);
        let id = format!("{}62", c.zid);
        objects.push((
            id.clone(),
            z2(
                &id,
                json!({"Z1K1": "Z14", "Z14K1": c.zid, "Z14K2": (c.body)(c.zid)}),
            ),
        ));
        for tester in &testers {
            checks.push(Check {
                function: c.zid,
                implementation: id.clone(),
                tester: tester.clone(),
                kind: "composition",
            });
        }
        objects.push((
            c.zid.to_owned(),
            function(c.zid, c.arguments, c.returns, &testers, &[id]),
        ));
    }
    (objects, checks)
}

impl LibraryBench {
    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let rounds = self.rounds.max(1);
        let data = tempfile::tempdir()?;
        let exe = std::env::current_exe()?;
        let token = super::result_cache::add_editor(&exe, data.path())?;
        let served = start(&exe, data.path(), None, false)?;
        let mut client = Client::connect(&served.address)?;
        let (objects, checks) = library();
        client.put_all(&token, &objects)?;
        // (kind, the HTTP round trip, the cell's own time as the server measured it: the
        // tester's call and its validator, without the route's recording of the result)
        let mut times: Vec<(&'static str, Duration, Duration)> = Vec::new();
        for round in 0..=rounds {
            for check in &checks {
                let body = json!({"function": check.function,
                                  "implementations": [check.implementation],
                                  "testers": [check.tester]})
                .to_string();
                let started = Instant::now();
                let (status, answer) = client.send("POST", "/v1/test", Some(&token), &body)?;
                let elapsed = started.elapsed();
                let matrix: Value = serde_json::from_slice(&answer).with_context(|| {
                    format!("{status}: not JSON: {}", String::from_utf8_lossy(&answer))
                })?;
                if status != 200 || matrix["passed"] != 1 || matrix["total"] != 1 {
                    bail!(
                        "{} on {}: {status} {matrix}",
                        check.tester,
                        check.implementation
                    );
                }
                if round > 0 {
                    let cell_ms = matrix["cells"][0]["duration_ms"].as_f64().unwrap_or(0.0);
                    times.push((check.kind, elapsed, Duration::from_secs_f64(cell_ms / 1e3)));
                }
            }
        }
        drop(served);
        println!(
            "zeval bench library: {} functions, {} checks (tester × implementation), {rounds} timed rounds, one POST /v1/test per check over one keep-alive connection",
            CODE_FUNCTIONS.len() + COMPOSITIONS.len(),
            checks.len()
        );
        println!(
            "| checks | count | over HTTP p50 / p90 | the cell alone (tester's call and validator, server's figure) p50 / p90 | the rest (round trip − cell, per check) p50 |"
        );
        println!("|---|---|---|---|---|");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for kind in ["all", "JavaScript", "Python", "composition"] {
            let selected = times.iter().filter(|(k, _, _)| kind == "all" || *k == kind);
            let mut http: Vec<Duration> = selected.clone().map(|(_, t, _)| *t).collect();
            let mut cell: Vec<Duration> = selected.clone().map(|(_, _, t)| *t).collect();
            // What the route, HTTP and the client add to a check, without the guest's and
            // the orchestrator's spread: the part of the round trip this server's own code
            // decides.
            let mut rest: Vec<Duration> = selected.map(|(_, t, c)| t.saturating_sub(*c)).collect();
            http.sort();
            cell.sort();
            rest.sort();
            println!(
                "| {kind} | {} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.3} ms |",
                http.len(),
                ms(percentile(&http, 0.5)),
                ms(percentile(&http, 0.9)),
                ms(percentile(&cell, 0.5)),
                ms(percentile(&cell, 0.9)),
                ms(percentile(&rest, 0.5))
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
