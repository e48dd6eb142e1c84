//! The NORMAL-form schemas of the built-in types (spec §1.2, §4.3).
//!
//! Every type `Zn` has a definition `Zn` (its literal form or a resolver: a Z9 reference,
//! a Z18 argument reference or a Z7 function call) and `Zn_literal`. Typed lists of a type
//! are `LIST_OF_Zn`. The definitions mirror the original's schemas keyword for keyword, so
//! that the same objects are valid and the same error codes come out.

use super::dsl::{all_of, any_of, k, not, of_type, one_of, r, string_enum, string_pattern};
use super::engine::{JsonType, Node, Registry};
use super::patterns::Pattern;

/// A normal reference to exactly `zid`: the `Z1K1` of a literal of type `zid`.
fn type_ref(zid: &'static str) -> Node {
    all_of([
        r("Z9"),
        k().closed()
            .prop("Z1K1", string_enum(&["Z9"]))
            .prop("Z9K1", string_enum(&[zid]))
            .required(&["Z1K1", "Z9K1"])
            .object()
            .node(),
    ])
}

/// A closed literal of type `zid` with `Z1K1` and the given keys.
fn literal(zid: &'static str, keys: Vec<(&'static str, Node)>, required: &[&'static str]) -> Node {
    k().closed()
        .prop("Z1K1", type_ref(zid))
        .props(keys)
        .required(required)
        .object()
        .node()
}

/// `LIST_OF_Zn`: a typed list whose item type is `Zn` (or one of `item_types`), and whose
/// elements are `Zn`.
fn list_of(self_name: &'static str, item: &'static str, item_types: &[&'static str]) -> Node {
    let item_type_check = k()
        .reference("LIST_literal")
        .object()
        .prop(
            "Z1K1",
            k().object()
                .prop(
                    "Z881K1",
                    k().object()
                        .prop("Z9K1", k().enumeration(item_types).node())
                        .node(),
                )
                .node(),
        )
        .node();
    k().reference("LIST")
        .any_of([item_type_check])
        .pattern_prop(Pattern::ContainsK2, r(self_name))
        .pattern_prop(Pattern::K1NotZ1K1, r(item))
        .node()
}

/// `Zn = anyOf[Zn_literal, resolver]`.
fn literal_or(literal_name: &'static str, resolver: &'static str) -> Node {
    any_of([r(literal_name), r(resolver)])
}

/// `Z6` restricted by a pattern on `Z6K1`.
fn z6_with(pattern: Pattern, require_value: bool) -> Node {
    let mut inner = k().prop("Z6K1", string_pattern(pattern));
    if require_value {
        inner = inner.required(&["Z6K1"]);
    }
    all_of([r("Z6"), inner.object().node()])
}

/// Builds the NORMAL registry.
pub(crate) fn registry() -> Registry {
    let mut d = Registry::default();
    d.insert("RESOLVER", any_of([r("Z9"), r("Z18"), r("Z7")]));
    d.insert(
        "RESOLVER_without_Z9",
        any_of([r("Z18"), r("Z7_without_Z9")]),
    );
    d.insert("RESOLVER_without_Z7", any_of([r("Z18"), r("Z9")]));
    d.insert("RESOLVER_without_Z7_Z9", any_of([r("Z18")]));

    d.insert("Z1", literal_or("Z1_literal", "RESOLVER"));
    d.insert(
        "Z1_literal",
        any_of([r("Z1_terminal"), r("Z1_nonterminal"), r("Z99")]),
    );
    d.insert(
        "Z1_nonterminal",
        k().closed()
            .prop(
                "Z1K1",
                all_of([r("Z4"), not(one_of([r("Z23"), r("Z1_reference")]))]),
            )
            .pattern_prop(Pattern::ZidOrGlobalKey, r("Z1_literal"))
            .pattern_prop(Pattern::LocalKey, r("Z1_literal"))
            .required(&["Z1K1"])
            .object()
            .node(),
    );
    d.insert("Z1_terminal", any_of([r("Z6"), r("Z9")]));
    d.insert("Z1_reference", type_ref("Z1"));

    d.insert("Z2", literal_or("Z2_literal", "RESOLVER"));
    let z2_forbidden = [
        "Z2_literal",
        "Z3_literal",
        "Z9_literal",
        "Z17_literal",
        "Z18_literal",
        "Z39",
    ];
    d.insert(
        "Z2_literal",
        literal(
            "Z2",
            vec![
                ("Z2K1", r("Z6")),
                ("Z2K2", all_of([r("Z1"), not(any_of(z2_forbidden.map(r)))])),
                ("Z2K3", r("Z12")),
                ("Z2K4", r("Z32")),
            ],
            &["Z1K1", "Z2K1", "Z2K2", "Z2K3"],
        ),
    );

    d.insert("LIST_OF_Z3", list_of("LIST_OF_Z3", "Z3", &["Z3", "Z1"]));
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

    let z4_ref = all_of([
        r("Z9"),
        k().closed()
            .prop("Z1K1", string_enum(&["Z9"]))
            .prop("Z9K1", string_enum(&["Z4"]))
            .node(),
    ]);
    let z4_literal_of_z4 = all_of([
        r("Z4_literal"),
        k().prop("Z4K1", k().prop("Z9K1", string_enum(&["Z4"])).node())
            .node(),
    ]);
    let call_returning_type = all_of([
        r("Z7_literal"),
        k().prop("Z7K1", k().prop("Z8K2", string_enum(&["Z4", "Z1"])).node())
            .node(),
    ]);
    d.insert(
        "Z1_to_Z4",
        one_of([z4_ref, z4_literal_of_z4, call_returning_type]),
    );
    d.insert("Z4", literal_or("Z4_literal", "RESOLVER"));
    d.insert(
        "Z4_literal",
        literal(
            "Z4",
            vec![
                ("Z4K1", r("Z4")),
                ("Z4K2", r("LIST_OF_Z3")),
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

    d.insert("LIST_OF_Z6", list_of("LIST_OF_Z6", "Z6", &["Z6", "Z1"]));
    d.insert("Z6", literal_or("Z6_literal", "RESOLVER"));
    d.insert(
        "Z6_ZnKn",
        all_of([
            r("Z6"),
            one_of([
                k().prop("Z6K1", string_pattern(Pattern::ZidOrGlobalKey))
                    .object()
                    .node(),
                k().prop("Z6K1", string_pattern(Pattern::LocalKey))
                    .object()
                    .node(),
            ]),
        ]),
    );
    d.insert(
        "Z6_literal",
        k().closed()
            .prop("Z1K1", string_enum(&["Z6"]))
            .prop("Z6K1", of_type(JsonType::String))
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
            .pattern_prop(Pattern::ZidOrGlobalKey, r("Z1"))
            .pattern_prop(Pattern::LocalKey, r("Z1"))
            .prop("Z1K1", type_ref("Z7"))
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
                ("Z8K1", r("LIST_OF_Z17")),
                ("Z8K2", r("Z4")),
                ("Z8K3", r("LIST_OF_Z20")),
                ("Z8K4", r("LIST_OF_Z14")),
                ("Z8K5", r("Z8")),
            ],
            &["Z1K1", "Z8K1", "Z8K2", "Z8K3", "Z8K4", "Z8K5"],
        ),
    );

    d.insert("Z9", r("Z9_literal"));
    d.insert(
        "Z9_literal",
        k().closed()
            .prop("Z1K1", string_enum(&["Z9"]))
            .prop("Z9K1", string_pattern(Pattern::Zid))
            .required(&["Z1K1", "Z9K1"])
            .object()
            .node(),
    );

    d.insert("LIST_OF_Z11", list_of("LIST_OF_Z11", "Z11", &["Z11", "Z1"]));
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
        literal("Z12", vec![("Z12K1", r("LIST_OF_Z11"))], &["Z12K1", "Z1K1"]),
    );

    d.insert(
        "LIST_OF_Z14",
        list_of("LIST_OF_Z14", "Z14", &["Z14", "Z1", "Z9"]),
    );
    d.insert("Z14", literal_or("Z14_literal", "RESOLVER"));
    d.insert(
        "Z14_literal",
        implementation_literal(type_ref("Z14"), "Z8", "Z1", "Z16", "Z6"),
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

    d.insert("LIST_OF_Z17", list_of("LIST_OF_Z17", "Z17", &["Z17", "Z1"]));
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

    d.insert(
        "LIST_OF_Z20",
        list_of("LIST_OF_Z20", "Z20", &["Z20", "Z1", "Z9"]),
    );
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

    d.insert("Z23", type_ref("Z23"));

    d.insert("LIST_OF_Z31", list_of("LIST_OF_Z31", "Z31", &["Z31", "Z1"]));
    d.insert("Z31", literal_or("Z31_literal", "RESOLVER"));
    d.insert(
        "Z31_literal",
        literal(
            "Z31",
            vec![("Z31K1", r("Z60")), ("Z31K2", r("LIST_OF_Z6"))],
            &["Z1K1", "Z31K1", "Z31K2"],
        ),
    );

    d.insert("Z32", literal_or("Z32_literal", "RESOLVER"));
    d.insert(
        "Z32_literal",
        literal("Z32", vec![("Z32K1", r("LIST_OF_Z31"))], &["Z1K1", "Z32K1"]),
    );

    d.insert("Z39", literal_or("Z39_literal", "RESOLVER_without_Z9"));
    d.insert(
        "Z39_literal",
        literal("Z39", vec![("Z39K1", r("Z6"))], &["Z1K1", "Z39K1"]),
    );

    d.insert("Z40", literal_or("Z40_literal", "RESOLVER"));
    d.insert(
        "Z9_for_Z40",
        all_of([
            r("Z9"),
            k().prop("Z9K1", string_enum(&["Z41", "Z42"]))
                .object()
                .node(),
        ]),
    );
    d.insert(
        "Z40_literal",
        literal("Z40", vec![("Z40K1", r("Z9_for_Z40"))], &["Z1K1"]),
    );

    d.insert("Z50", literal_or("Z50_literal", "RESOLVER"));
    d.insert(
        "Z50_literal",
        literal("Z50", vec![("Z50K1", r("LIST_OF_Z3"))], &["Z1K1", "Z50K1"]),
    );

    d.insert("Z60", literal_or("Z60_literal", "RESOLVER"));
    d.insert(
        "Z60_literal",
        literal(
            "Z60",
            vec![("Z60K1", r("Z6")), ("Z60K2", r("LIST_OF_Z6"))],
            &["Z1K1", "Z60K1"],
        ),
    );

    d.insert("Z61", literal_or("Z61_literal", "RESOLVER"));
    d.insert("Z6_prog_lang", z6_with(Pattern::LanguageCode, true));
    d.insert(
        "Z61_literal",
        literal(
            "Z61",
            vec![("Z61K1", r("Z6_prog_lang"))],
            &["Z1K1", "Z61K1"],
        ),
    );

    d.insert("Z80", literal_or("Z80_literal", "RESOLVER"));
    d.insert("Z6_byte", z6_with(Pattern::HexByte, true));
    d.insert(
        "Z80_literal",
        literal("Z80", vec![("Z80K1", r("Z6_byte"))], &["Z1K1", "Z80K1"]),
    );

    d.insert("Z86", literal_or("Z86_literal", "RESOLVER"));
    d.insert("Z6_length_1", z6_with(Pattern::OneCharacter, false));
    d.insert(
        "Z86_literal",
        literal("Z86", vec![("Z86K1", r("Z6_length_1"))], &["Z1K1", "Z86K1"]),
    );

    d.insert("Z99", one_of([r("Z99_literal"), r("RESOLVER")]));
    d.insert(
        "Z99_literal",
        literal("Z99", vec![("Z99K1", any_quoted())], &["Z1K1", "Z99K1"]),
    );

    insert_list(&mut d);
    insert_generic(&mut d);
    d
}

/// `Z99K1`: anything at all (`anyOf[{type: object}, {not: {type: object}}]`).
pub(crate) fn any_quoted() -> Node {
    any_of([of_type(JsonType::Object), not(of_type(JsonType::Object))])
}

/// A Z14 literal: exactly one of `Z14K2`/`Z14K3`/`Z14K4` (shared by both forms).
pub(crate) fn implementation_literal(
    z1k1: Node,
    function: &'static str,
    composition: &'static str,
    code: &'static str,
    builtin: &'static str,
) -> Node {
    k().closed()
        .one_of([
            k().required(&["Z14K2"]).node(),
            k().required(&["Z14K3"]).node(),
            k().required(&["Z14K4"]).node(),
        ])
        .prop("Z1K1", z1k1)
        .prop("Z14K1", r(function))
        .prop("Z14K2", r(composition))
        .prop("Z14K3", r(code))
        .prop("Z14K4", r(builtin))
        .required(&["Z14K1", "Z1K1"])
        .object()
        .node()
}

/// The generic typed list (`LIST`): linked `K1`/`K2` cells typed `Z881(T)`.
fn insert_list(d: &mut Registry) {
    d.insert("LIST", literal_or("LIST_literal", "RESOLVER"));
    d.insert(
        "LIST_literal",
        one_of([r("LIST_generic_empty"), r("LIST_generic_full")]),
    );
    d.insert(
        "LIST_generic_empty",
        k().closed()
            .prop("Z1K1", r("LIST_type"))
            .required(&["Z1K1"])
            .object()
            .node(),
    );
    d.insert(
        "LIST_generic_full",
        k().closed()
            .prop("Z1K1", r("LIST_type"))
            .prop("K1", r("Z1"))
            .prop("K2", r("LIST_literal"))
            .required(&["Z1K1", "K1", "K2"])
            .object()
            .node(),
    );
    d.insert(
        "LIST_type",
        one_of([r("LIST_type_literal"), r("LIST_type_function_call")]),
    );
    d.insert(
        "LIST_type_literal",
        all_of([
            r("Z4_literal"),
            k().prop("Z4K1", r("LIST_type")).object().node(),
        ]),
    );
    d.insert(
        "LIST_type_function_call",
        all_of([
            r("Z7_literal"),
            k().prop("Z7K1", r("LIST_typed_list_function")).node(),
        ]),
    );
    d.insert(
        "LIST_typed_list_function",
        one_of([
            r("LIST_typed_list_function_reference"),
            r("LIST_typed_list_function_literal"),
        ]),
    );
    d.insert(
        "LIST_typed_list_function_reference",
        all_of([
            r("Z9_literal"),
            k().prop("Z9K1", string_enum(&["Z881"])).node(),
        ]),
    );
    d.insert(
        "LIST_typed_list_function_literal",
        all_of([
            r("Z8_literal"),
            k().prop("Z8K5", r("LIST_typed_list_function")).node(),
        ]),
    );
}

/// `GENERIC`: an instance of a generic type (its `Z1K1` a Z4, a reference or a call to a
/// function returning a type) with key-named members.
fn insert_generic(d: &mut Registry) {
    d.insert("GENERIC", literal_or("GENERIC_literal", "RESOLVER"));
    let call_of_type_function = all_of([
        r("Z7_literal"),
        k().prop(
            "Z7K1",
            any_of([
                r("Z8"),
                all_of([r("Z8_literal"), k().prop("Z8K2", r("Z1_to_Z4")).node()]),
            ]),
        )
        .node(),
    ]);
    d.insert(
        "GENERIC_literal",
        k().closed()
            .prop(
                "Z1K1",
                any_of([r("Z4_literal"), r("Z9_literal"), call_of_type_function]),
            )
            .pattern_prop(Pattern::EndsInKey, r("Z1_literal"))
            .node(),
    );
}
