//! The CANONICAL-form schemas of the built-in types (spec §1.3, §4.3).
//!
//! Same naming as [`super::normal`]; typed lists are benjamin arrays, `LIST_of_Zn`.

use super::dsl::{all_of, any_of, k, not, of_type, one_of, r, string_enum, string_pattern};
use super::engine::{JsonType, Node, Registry};
use super::normal::{any_quoted, implementation_literal};
use super::patterns::Pattern;

/// A canonical reference to exactly one of `zids`.
fn type_ref(zids: &[&'static str]) -> Node {
    all_of([r("Z9"), string_enum(zids)])
}

fn literal(zid: &'static str, keys: Vec<(&'static str, Node)>, required: &[&'static str]) -> Node {
    k().closed()
        .prop("Z1K1", type_ref(&[zid]))
        .props(keys)
        .required(required)
        .object()
        .node()
}

fn literal_or(literal_name: &'static str, resolver: &'static str) -> Node {
    any_of([r(literal_name), r(resolver)])
}

/// `LIST_of_Zn` and its item-type helpers `TYPE_is_Zn`, `TYPE_ref_Zn`, `TYPE_literal_Zn`.
fn insert_list_of(d: &mut Registry, item: &'static str, names: [&'static str; 4]) {
    let [list, is, reference, literal] = names;
    d.insert(
        list,
        any_of([
            r("RESOLVER"),
            k().reference("LIST_literal")
                .ty(JsonType::Array)
                .min_items(1)
                .tuple_items([r(is)])
                .additional_items(r(item))
                .node(),
        ]),
    );
    d.insert(reference, type_ref(&[item]));
    d.insert(
        literal,
        all_of([r("Z4_literal"), k().object().prop("Z4K1", r(is)).node()]),
    );
    d.insert(
        is,
        one_of([r(reference), r(literal), r("RESOLVER_without_Z9")]),
    );
}

macro_rules! list_of {
    ($d:expr, $item:literal) => {
        insert_list_of(
            $d,
            $item,
            [
                concat!("LIST_of_", $item),
                concat!("TYPE_is_", $item),
                concat!("TYPE_ref_", $item),
                concat!("TYPE_literal_", $item),
            ],
        )
    };
}

/// Builds the CANONICAL registry.
pub(crate) fn registry() -> Registry {
    let mut d = Registry::default();
    d.insert("RESOLVER", any_of([r("Z9"), r("Z18"), r("Z7")]));
    d.insert(
        "RESOLVER_without_Z9",
        any_of([r("Z18"), r("Z7_without_Z9")]),
    );
    d.insert("RESOLVER_without_Z7", any_of([r("Z18"), r("Z9")]));
    d.insert("RESOLVER_without_Z7_Z9", any_of([r("Z18")]));

    d.insert("LIST", literal_or("LIST_literal", "RESOLVER"));
    d.insert(
        "LIST_literal",
        k().ty(JsonType::Array)
            .additional_items(r("Z1"))
            .min_items(1)
            .tuple_items([r("Z4")])
            .node(),
    );

    d.insert("Z1", literal_or("Z1_literal", "RESOLVER"));
    d.insert(
        "Z1_literal",
        any_of([r("Z1_terminal"), r("Z1_nonterminal"), r("Z99_literal")]),
    );
    d.insert(
        "Z1_nonterminal",
        k().closed()
            .prop(
                "Z1K1",
                all_of([r("Z4"), not(one_of([r("Z23"), r("Z1_reference")]))]),
            )
            .pattern_prop(Pattern::Key, r("Z1_literal"))
            .required(&["Z1K1"])
            .object()
            .node(),
    );
    d.insert("Z1_terminal", any_of([r("Z6"), r("Z9"), r("LIST_literal")]));
    d.insert("Z1_reference", type_ref(&["Z1"]));

    d.insert("Z2", literal_or("Z2_literal", "RESOLVER"));
    let forbidden = [
        "Z2_literal",
        "Z3_literal",
        "Z9_literal",
        "Z17_literal",
        "Z18_literal",
        "Z39_literal",
        "Z5_literal",
        "Z16_literal",
    ];
    d.insert(
        "Z2_literal",
        literal(
            "Z2",
            vec![
                ("Z2K1", r("Z6")),
                ("Z2K2", all_of([r("Z1"), not(any_of(forbidden.map(r)))])),
                ("Z2K3", r("Z12")),
                ("Z2K4", r("Z32")),
            ],
            &["Z1K1", "Z2K1", "Z2K2", "Z2K3"],
        ),
    );

    list_of!(&mut d, "Z3");
    d.insert("Z3", literal_or("Z3_literal", "RESOLVER_without_Z9"));
    d.insert(
        "Z3_literal",
        literal(
            "Z3",
            vec![
                ("Z3K1", r("Z4")),
                ("Z3K2", r("Z6_ZnKn")),
                ("Z3K3", r("Z12")),
            ],
            &["Z1K1", "Z3K1", "Z3K2", "Z3K3"],
        ),
    );

    d.insert("Z4", literal_or("Z4_literal", "RESOLVER"));
    d.insert(
        "Z4_literal",
        literal(
            "Z4",
            vec![
                ("Z4K1", r("Z4")),
                ("Z4K2", r("LIST_of_Z3")),
                ("Z4K3", r("Z8")),
            ],
            &["Z1K1", "Z4K1", "Z4K2", "Z4K3"],
        ),
    );

    d.insert("Z5", literal_or("Z5_literal", "RESOLVER_without_Z9"));
    d.insert(
        "Z5_literal",
        literal(
            "Z5",
            vec![("Z5K1", r("Z50")), ("Z5K2", r("Z1"))],
            &["Z1K1", "Z5K1", "Z5K2"],
        ),
    );

    list_of!(&mut d, "Z6");
    d.insert("Z6", literal_or("Z6_literal", "RESOLVER"));
    d.insert(
        "Z6_Key_Pattern",
        one_of([
            string_pattern(Pattern::ZidOrGlobalKey),
            string_pattern(Pattern::LocalKey),
        ]),
    );
    d.insert("Z6_ZnKn", all_of([r("Z6_string"), r("Z6_Key_Pattern")]));
    d.insert("Z6_literal", any_of([r("Z6_string"), r("Z6_explicit")]));
    d.insert(
        "Z6_string",
        all_of([
            of_type(JsonType::String),
            not(k().pattern(Pattern::Zid).node()),
        ]),
    );
    d.insert(
        "Z6_explicit",
        k().closed()
            .prop("Z1K1", type_ref(&["Z6"]))
            .prop(
                "Z6K1",
                all_of([of_type(JsonType::String), k().pattern(Pattern::Zid).node()]),
            )
            .required(&["Z1K1", "Z6K1"])
            .object()
            .node(),
    );

    d.insert("Z7", literal_or("Z7_literal", "RESOLVER_without_Z7"));
    d.insert(
        "Z7_without_Z9",
        literal_or("Z7_literal", "RESOLVER_without_Z7_Z9"),
    );
    d.insert(
        "Z7_literal",
        k().closed()
            .pattern_prop(Pattern::GlobalKey, r("Z1"))
            .prop("Z1K1", type_ref(&["Z7"]))
            .prop("Z7K1", r("Z8"))
            .required(&["Z1K1", "Z7K1"])
            .object()
            .node(),
    );

    d.insert("Z8", literal_or("Z8_literal", "RESOLVER"));
    d.insert(
        "Z8_literal",
        literal(
            "Z8",
            vec![
                ("Z8K1", r("LIST_of_Z17")),
                ("Z8K2", r("Z4")),
                ("Z8K3", r("LIST_of_Z20")),
                ("Z8K4", r("LIST_of_Z14")),
                ("Z8K5", r("Z8")),
            ],
            &["Z1K1", "Z8K1", "Z8K2", "Z8K3", "Z8K4", "Z8K5"],
        ),
    );

    d.insert("Z9", r("Z9_literal"));
    d.insert("Z9_literal", string_pattern(Pattern::Zid));

    list_of!(&mut d, "Z11");
    d.insert("Z11", literal_or("Z11_literal", "RESOLVER"));
    d.insert(
        "Z11_literal",
        literal(
            "Z11",
            vec![("Z11K1", r("Z60")), ("Z11K2", r("Z6"))],
            &["Z11K1", "Z11K2", "Z1K1"],
        ),
    );

    d.insert("Z12", literal_or("Z12_literal", "RESOLVER"));
    d.insert(
        "Z12_literal",
        literal("Z12", vec![("Z12K1", r("LIST_of_Z11"))], &["Z12K1", "Z1K1"]),
    );

    list_of!(&mut d, "Z14");
    d.insert("Z14", literal_or("Z14_literal", "RESOLVER"));
    d.insert(
        "Z14_literal",
        implementation_literal(type_ref(&["Z14"]), "Z8", "Z1", "Z16", "Z6"),
    );

    d.insert("Z16", literal_or("Z16_literal", "RESOLVER_without_Z9"));
    d.insert(
        "Z16_literal",
        literal(
            "Z16",
            vec![("Z16K1", r("Z61")), ("Z16K2", r("Z6"))],
            &["Z16K1", "Z16K2", "Z1K1"],
        ),
    );

    list_of!(&mut d, "Z17");
    d.insert("Z17", literal_or("Z17_literal", "RESOLVER_without_Z9"));
    d.insert(
        "Z17_literal",
        literal(
            "Z17",
            vec![
                ("Z17K1", r("Z4")),
                ("Z17K2", r("Z6_ZnKn")),
                ("Z17K3", r("Z12")),
            ],
            &["Z17K1", "Z17K2", "Z17K3", "Z1K1"],
        ),
    );

    d.insert("Z18", r("Z18_literal"));
    d.insert(
        "Z18_literal",
        literal("Z18", vec![("Z18K1", r("Z6_ZnKn"))], &["Z18K1", "Z1K1"]),
    );

    list_of!(&mut d, "Z20");
    d.insert("Z20", literal_or("Z20_literal", "RESOLVER"));
    d.insert(
        "Z20_literal",
        literal(
            "Z20",
            vec![
                ("Z20K1", all_of([r("Z8"), not(any_of([r("Z8_literal")]))])),
                ("Z20K2", r("Z7")),
                ("Z20K3", r("Z7")),
            ],
            &["Z1K1", "Z20K1", "Z20K2", "Z20K3"],
        ),
    );

    d.insert("Z21", literal_or("Z21_literal", "RESOLVER"));
    d.insert("Z21_literal", literal("Z21", vec![], &["Z1K1"]));

    d.insert("Z22", literal_or("Z22_literal", "RESOLVER"));
    d.insert(
        "Z22_literal",
        literal(
            "Z22",
            vec![("Z22K1", r("Z1")), ("Z22K2", r("Z1"))],
            &["Z1K1", "Z22K1", "Z22K2"],
        ),
    );

    // As in the original: a canonical Z9 is a string, so nothing is ever a canonical Z23.
    d.insert(
        "Z23",
        all_of([
            r("Z9"),
            k().closed()
                .prop("Z1K1", string_enum(&["Z23"]))
                .required(&["Z1K1"])
                .object()
                .node(),
        ]),
    );

    list_of!(&mut d, "Z31");
    d.insert("Z31", literal_or("Z31_literal", "RESOLVER"));
    d.insert(
        "Z31_literal",
        literal(
            "Z31",
            vec![("Z31K1", r("Z60")), ("Z31K2", r("LIST_of_Z6"))],
            &["Z1K1", "Z31K1", "Z31K2"],
        ),
    );

    d.insert("Z32", literal_or("Z32_literal", "RESOLVER"));
    d.insert(
        "Z32_literal",
        literal("Z32", vec![("Z32K1", r("LIST_of_Z31"))], &["Z1K1", "Z32K1"]),
    );

    d.insert("Z39", literal_or("Z39_literal", "RESOLVER_without_Z9"));
    d.insert(
        "Z39_literal",
        literal("Z39", vec![("Z39K1", r("Z6"))], &["Z1K1", "Z39K1"]),
    );

    d.insert("Z40", literal_or("Z40_literal", "RESOLVER"));
    d.insert("Z9_for_Z40", type_ref(&["Z41", "Z42"]));
    d.insert(
        "Z40_literal",
        literal("Z40", vec![("Z40K1", r("Z9_for_Z40"))], &["Z1K1"]),
    );

    d.insert("Z50", literal_or("Z50_literal", "RESOLVER"));
    d.insert(
        "Z50_literal",
        literal("Z50", vec![("Z50K1", r("LIST_of_Z3"))], &["Z1K1", "Z50K1"]),
    );

    d.insert("Z60", literal_or("Z60_literal", "RESOLVER"));
    d.insert(
        "Z60_literal",
        literal(
            "Z60",
            vec![("Z60K1", r("Z6")), ("Z60K2", r("LIST_of_Z6"))],
            &["Z1K1", "Z60K1"],
        ),
    );

    d.insert("Z61", literal_or("Z61_literal", "RESOLVER"));
    d.insert(
        "Z6_prog_lang",
        all_of([r("Z6"), string_pattern(Pattern::LanguageCode)]),
    );
    d.insert(
        "Z61_literal",
        literal(
            "Z61",
            vec![("Z61K1", r("Z6_prog_lang"))],
            &["Z1K1", "Z61K1"],
        ),
    );

    d.insert("Z80", literal_or("Z80_literal", "RESOLVER"));
    d.insert(
        "Z6_byte",
        all_of([r("Z6"), string_pattern(Pattern::HexByte)]),
    );
    d.insert(
        "Z80_literal",
        literal("Z80", vec![("Z80K1", r("Z6_byte"))], &["Z1K1", "Z80K1"]),
    );

    d.insert("Z86", literal_or("Z86_literal", "RESOLVER"));
    d.insert(
        "Z6_length_1",
        all_of([r("Z6"), string_pattern(Pattern::OneCharacter)]),
    );
    d.insert(
        "Z86_literal",
        literal("Z86", vec![("Z86K1", r("Z6_length_1"))], &["Z1K1", "Z86K1"]),
    );

    d.insert("Z99", one_of([r("Z99_literal"), r("RESOLVER_without_Z7")]));
    d.insert(
        "Z99_literal",
        literal("Z99", vec![("Z99K1", any_quoted())], &["Z1K1", "Z99K1"]),
    );
    d
}
