//! Values in flight: normal-form ZObjects whose every object remembers the scope (frame) it
//! was created in (spec §2.3 "scoped nodes").
//!
//! Nodes are immutable and shared (`Rc`), so copying a fetched object or a memoized argument
//! is free; "replacing a key" builds a new parent. A value's subtrees may come from different
//! scopes (a builtin may put an argument from one frame inside a list from another), which is
//! why the scope lives on each object rather than on the whole value.

use std::collections::HashMap;
use std::rc::Rc;

use zeval_zobject::{Map, Value};

use crate::engine::R;
use crate::frame::{Frame, Scope};

/// Stack kept free before recursing over a value, and the size of each extra segment:
/// values nest two levels per list element, so walks grow the stack on the heap. What runs
/// without growing it (a JSON value's drop or copy, which recurse, among them) has the red
/// zone at least: 256 KiB, a few thousand levels of JSON in a release build.
pub(crate) const STACK_RED_ZONE: usize = 256 * 1024;
pub(crate) const STACK_SEGMENT: usize = 1024 * 1024;

/// One node of a normal-form ZObject.
#[derive(Clone)]
pub(crate) enum Node {
    /// A bare string: the `Z1K1` of a Z6/Z9, or the content of `Z6K1`/`Z9K1`.
    Str(Rc<str>),
    /// An object with its keys in order and the scope it lives in.
    Obj(Rc<Obj>),
    /// Anything else JSON allows (numbers, arrays): only inside quirky inputs that normalize
    /// keeps verbatim.
    Raw(Rc<Value>),
}

/// An object node.
pub(crate) struct Obj {
    pub(crate) entries: Vec<(Rc<str>, Node)>,
    pub(crate) scope: Scope,
}

/// An object's entries found by key, for looking up many keys of one object. Both a call
/// and a function's declarations can be built at run time (`Z808` makes a call of any width,
/// a `Z8K1` of any length), and a scan per declaration made binding them quadratic: 150,000
/// of each, built within the budget, took about a minute past the deadline with no step
/// counted. Small objects, nearly every one, are scanned.
pub(crate) struct EntriesByKey<'a> {
    entries: &'a [(Rc<str>, Node)],
    /// Each key's first entry; only for objects wider than [`Self::SCANNED`].
    index: Option<HashMap<&'a str, usize>>,
}

impl<'a> EntriesByKey<'a> {
    /// The widest object whose keys are found by a scan.
    const SCANNED: usize = 16;

    /// The entries of `node` (none unless it is an object).
    pub(crate) fn of(node: &'a Node) -> Self {
        let entries = node.as_obj().map_or(&[][..], |o| &o.entries[..]);
        let index = (entries.len() > Self::SCANNED).then(|| {
            let mut index = HashMap::with_capacity(entries.len());
            for (position, (key, _)) in entries.iter().enumerate() {
                index.entry(&**key).or_insert(position);
            }
            index
        });
        EntriesByKey { entries, index }
    }

    /// The position of `key`'s first entry.
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| &**k == key),
        }
    }

    /// The entry at `position`.
    pub(crate) fn entry(&self, position: usize) -> &'a (Rc<str>, Node) {
        &self.entries[position]
    }

    /// Every entry, in order.
    pub(crate) fn entries(&self) -> &'a [(Rc<str>, Node)] {
        self.entries
    }
}

impl Node {
    /// Wraps a normal-form JSON value; every object gets `scope`. The nodes are charged to
    /// the request's memory budget (see [`crate::budget`]).
    pub(crate) fn from_json(value: &Value, scope: &Scope) -> Node {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || match value {
            Value::String(s) => Node::Str(key(s)),
            Value::Object(m) => Node::object(
                m.iter()
                    .map(|(k, v)| (key(k), Node::from_json(v, scope)))
                    .collect(),
                scope.clone(),
            ),
            other => Node::Raw(Rc::new(other.clone())),
        })
    }

    /// The JSON of this node (scopes are dropped): the tree this (possibly shared) node
    /// stands for, bounded by the request's budget for one value's size and depth, so a
    /// small shared structure cannot expand into an unbounded tree. The bytes it produces
    /// are charged to the request's memory budget (strings count by their length, so one
    /// long string referred to many times counts every time).
    pub(crate) fn to_json(&self) -> R<Value> {
        let mut counter = crate::budget::Materialisation::new();
        self.to_json_counted(&mut counter, 0)
    }

    /// [`Self::to_json`] for a copy dropped before the request goes on: bounded by what is
    /// left of the budget, and charged nothing after ([`crate::budget::Materialisation::passing`]).
    pub(crate) fn to_passing_json(&self) -> R<Value> {
        let mut counter = crate::budget::Materialisation::passing();
        self.to_json_counted(&mut counter, 0)
    }

    /// [`Self::to_json`] for a request's answer: its strings and keys at most
    /// [`crate::budget::MAX_ANSWER_TEXT_BYTES`] (a Z590 "answer size" past them).
    pub(crate) fn to_answer_json(&self) -> R<Value> {
        let mut counter = crate::budget::Materialisation::answer();
        self.to_json_counted(&mut counter, 0)
    }

    /// [`Self::to_json`] within `counter`'s own bounds ([`crate::budget::Materialisation::over_cap`]):
    /// `None` past them (the work stops there).
    fn to_json_bounded(&self, mut counter: crate::budget::Materialisation) -> R<Option<Value>> {
        match self.to_json_counted(&mut counter, 0) {
            Ok(json) => Ok(Some(json)),
            Err(_) if counter.over_cap() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Self::to_json`] for a metadata value: `None` when it takes more than
    /// [`crate::budget::MAX_METADATA_VALUE_BYTES`] or is deeper than
    /// [`crate::budget::MAX_METADATA_VALUE_DEPTH`] (the work stops there).
    pub(crate) fn to_metadata_json(&self) -> R<Option<Value>> {
        self.to_json_bounded(crate::budget::Materialisation::metadata())
    }

    /// This value as an error quotes it: the whole JSON when it is small and shallow
    /// ([`crate::budget::MAX_QUOTED_VALUE_BYTES`]), else a string of its first
    /// [`crate::engine::QUOTE_CHARS`] characters.
    pub(crate) fn quoted_json(&self) -> R<Value> {
        match self.to_json_bounded(crate::budget::Materialisation::quoted())? {
            Some(json) => Ok(json),
            None => Ok(zeval_zobject::build::z6(
                self.quoted_text(crate::engine::QUOTE_CHARS),
            )),
        }
    }

    fn to_json_counted(
        &self,
        counter: &mut crate::budget::Materialisation,
        depth: usize,
    ) -> R<Value> {
        use crate::budget::{JSON_MEMBER_BYTES, JSON_VALUE_BYTES};
        counter.node(depth)?;
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || match self {
            Node::Str(s) => {
                counter.bytes(JSON_VALUE_BYTES + s.len())?;
                counter.text_of(s)?;
                Ok(Value::String(s.to_string()))
            }
            Node::Raw(v) => {
                counter.raw(v, depth)?;
                Ok((**v).clone())
            }
            Node::Obj(o) => {
                let keys: usize = o.entries.iter().map(|(k, _)| k.len()).sum();
                counter.bytes(JSON_VALUE_BYTES + o.entries.len() * JSON_MEMBER_BYTES + keys)?;
                for (k, _) in &o.entries {
                    counter.text_of(k)?;
                }
                let mut map = Map::with_capacity(o.entries.len());
                for (k, v) in &o.entries {
                    match v.to_json_counted(counter, depth + 1) {
                        Ok(json) => {
                            map.insert(k.to_string(), json);
                        }
                        Err(e) => {
                            // The members made before this one failed may be as deep as
                            // the limit allows (a list cell's head, made whole before its
                            // tail went past it), and this frame may have only the red zone
                            // left: JSON drops recursively.
                            zeval_zobject::depth::drop_iteratively(Value::Object(map));
                            return Err(e);
                        }
                    }
                }
                Ok(Value::Object(map))
            }
        })
    }

    /// A short JSON text of this node for an error message: at most `max_chars`
    /// characters. Written straight from the nodes and stopped once long enough, so a
    /// large (or shared) value costs no more than the text quoted.
    pub(crate) fn quoted_text(&self, max_chars: usize) -> String {
        // A character takes at most 4 bytes; one more character tells whether to cut.
        let mut out = Bounded {
            text: Vec::new(),
            max: max_chars.saturating_add(1).saturating_mul(4),
        };
        let _ = self.write_json(&mut out);
        let text = String::from_utf8_lossy(&out.text);
        if text.chars().count() <= max_chars {
            return text.into_owned();
        }
        let mut short: String = text.chars().take(max_chars).collect();
        short.push('…');
        short
    }

    /// Writes this node's JSON to `out` until `out` is full (an `Err`).
    fn write_json(&self, out: &mut Bounded) -> std::io::Result<()> {
        use std::io::Write;
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || match self {
            Node::Str(s) => serde_json::to_writer(&mut *out, &**s).map_err(std::io::Error::other),
            Node::Raw(v) => serde_json::to_writer(&mut *out, &**v).map_err(std::io::Error::other),
            Node::Obj(o) => {
                out.write_all(b"{")?;
                for (i, (k, v)) in o.entries.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *out, &**k).map_err(std::io::Error::other)?;
                    out.write_all(b":")?;
                    v.write_json(out)?;
                }
                out.write_all(b"}")
            }
        })
    }

    /// A new object node, charged to the request's memory budget.
    pub(crate) fn object(entries: Vec<(Rc<str>, Node)>, scope: Scope) -> Node {
        crate::budget::charge(estimated_bytes(&entries));
        Node::Obj(Rc::new(Obj { entries, scope }))
    }

    /// A normal Z9 reference in the empty scope.
    pub(crate) fn z9(zid: &str) -> Node {
        Node::object(
            vec![
                (key("Z1K1"), Node::Str(key("Z9"))),
                (key("Z9K1"), Node::Str(key(zid))),
            ],
            None,
        )
    }

    /// A normal Z6 string in the empty scope.
    pub(crate) fn z6(s: &str) -> Node {
        Node::object(
            vec![
                (key("Z1K1"), Node::Str(key("Z6"))),
                (key("Z6K1"), Node::Str(Rc::from(s))),
            ],
            None,
        )
    }

    /// Void (Z24).
    pub(crate) fn void() -> Node {
        Node::z9("Z24")
    }

    /// A Boolean value `{Z1K1: Z40, Z40K1: Z41|Z42}`.
    pub(crate) fn boolean(value: bool) -> Node {
        let zid = if value { "Z41" } else { "Z42" };
        Node::object(
            vec![
                (key("Z1K1"), Node::z9("Z40")),
                (key("Z40K1"), Node::z9(zid)),
            ],
            None,
        )
    }

    pub(crate) fn as_obj(&self) -> Option<&Obj> {
        match self {
            Node::Obj(o) => Some(o),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key`, if this is an object that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.as_obj()?
            .entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    /// The scope of this node (the empty scope for strings).
    pub(crate) fn scope(&self) -> Scope {
        self.as_obj().and_then(|o| o.scope.clone())
    }

    /// The same object with `key` set to `value` (appended when absent).
    pub(crate) fn with(&self, key_name: &str, value: Node) -> Node {
        let Some(o) = self.as_obj() else {
            return self.clone();
        };
        let mut entries = o.entries.clone();
        match entries.iter_mut().find(|(k, _)| &**k == key_name) {
            Some(slot) => slot.1 = value,
            None => entries.push((key(key_name), value)),
        }
        Node::object(entries, o.scope.clone())
    }

    /// The ZID of a normal reference `{Z1K1: Z9, Z9K1: zid}`.
    pub(crate) fn ref_zid(&self) -> Option<&str> {
        if self.get("Z1K1")?.as_str() == Some("Z9") {
            return self.get("Z9K1")?.as_str();
        }
        None
    }

    /// The text of a normal string `{Z1K1: Z6, Z6K1: s}`.
    pub(crate) fn string_value(&self) -> Option<&str> {
        if self.get("Z1K1")?.as_str() == Some("Z6") {
            return self.get("Z6K1")?.as_str();
        }
        None
    }

    /// The type key `Z1K1`.
    pub(crate) fn type_node(&self) -> Option<&Node> {
        self.get("Z1K1")
    }

    /// The ZID of this object's type when `Z1K1` is a reference (or the bare `Z6`/`Z9`).
    pub(crate) fn type_zid(&self) -> Option<&str> {
        match self.type_node()? {
            Node::Str(s) => Some(s),
            t => t.ref_zid(),
        }
    }

    /// Whether this object's type is the reference `zid`.
    pub(crate) fn is_type(&self, zid: &str) -> bool {
        self.type_zid() == Some(zid)
    }

    /// Whether this is a normal Z7 whose `Z7K1` names `function` by reference.
    pub(crate) fn is_call_to(&self, function: &str) -> bool {
        self.is_type("Z7") && self.get("Z7K1").and_then(Node::ref_zid) == Some(function)
    }

    /// The object's keys other than `Z1K1`.
    pub(crate) fn keys(&self) -> Vec<Rc<str>> {
        self.as_obj()
            .map(|o| {
                o.entries
                    .iter()
                    .map(|(k, _)| k.clone())
                    .filter(|k| &**k != "Z1K1")
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The elements of a typed list (walking `K1`/`K2` cells). Lists are as long as the
    /// steps that built them, so this walk is bounded by the request's budget already.
    pub(crate) fn list_items(&self) -> Option<Vec<Node>> {
        let mut items = Vec::new();
        let mut cell = self;
        loop {
            cell.as_obj()?;
            match cell.get("K1") {
                Some(head) => items.push(head.clone()),
                None => return Some(items),
            }
            cell = cell.get("K2")?;
        }
    }

    /// Gives every object in this tree the scope `scope` (the original re-wraps a
    /// composition's JSON in the new frame).
    ///
    /// The tree may share subtrees (a composition body can be a value built at run time,
    /// 2^40 nodes in a few kilobytes): a shared object is rescoped once and the copy shared
    /// the same way, so the walk costs what the value holds, and every object built is a
    /// step of the request's budget.
    pub(crate) fn rescoped(&self, scope: &Scope) -> R<Node> {
        let mut walk = Rescope {
            scope,
            done: HashMap::new(),
            pending_steps: 0,
        };
        let node = walk.node(self, true)?;
        crate::budget::steps(walk.pending_steps)?;
        Ok(node)
    }
}

/// The state of one [`Node::rescoped`].
struct Rescope<'a> {
    scope: &'a Scope,
    /// Shared objects already rescoped, by address (only objects held more than once are
    /// remembered: the others are reached once).
    done: HashMap<*const Obj, Node>,
    /// Steps taken and not yet charged (charged 64 at a time).
    pending_steps: u64,
}

impl Rescope<'_> {
    fn node(&mut self, node: &Node, root: bool) -> R<Node> {
        let Node::Obj(o) = node else {
            return Ok(node.clone());
        };
        let shared = !root && Rc::strong_count(o) > 1;
        let identity: *const Obj = &**o;
        if shared && let Some(done) = self.done.get(&identity) {
            return Ok(done.clone());
        }
        self.pending_steps += 1;
        if self.pending_steps >= 64 {
            crate::budget::steps(self.pending_steps)?;
            self.pending_steps = 0;
        }
        let mut entries = Vec::with_capacity(o.entries.len());
        for (k, v) in &o.entries {
            let v = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || self.node(v, false))?;
            entries.push((k.clone(), v));
        }
        let rescoped = Node::object(entries, self.scope.clone());
        if shared {
            self.done.insert(identity, rescoped.clone());
        }
        Ok(rescoped)
    }
}

/// A byte buffer that refuses to grow past `max` bytes.
struct Bounded {
    text: Vec<u8>,
    max: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.max.saturating_sub(self.text.len());
        if room == 0 {
            return Err(std::io::Error::other("full"));
        }
        let n = buf.len().min(room);
        self.text.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The keys and type names nearly every node holds; [`key`] shares one allocation of each
/// per thread instead of allocating it again for every node.
const COMMON_NAMES: [&str; 24] = [
    "Z1K1", "Z9K1", "Z6K1", "K1", "K2", "Z7K1", "Z9", "Z6", "Z7", "Z18", "Z18K1", "Z881", "Z881K1",
    "Z40", "Z40K1", "Z41", "Z42", "Z4", "Z3", "Z1", "Z86", "Z86K1", "Z24", "Z22",
];

thread_local! {
    static COMMON: [Rc<str>; COMMON_NAMES.len()] = COMMON_NAMES.map(Rc::from);
}

/// A key name (or a short name such as a type's ZID), shared when it is a common one.
pub(crate) fn key(name: &str) -> Rc<str> {
    if name.len() <= 6
        && let Some(i) = COMMON_NAMES.iter().position(|common| *common == name)
    {
        return COMMON.with(|common| common[i].clone());
    }
    Rc::from(name)
}

/// A normal typed list of `item_type` holding `items`, all in the empty scope.
pub(crate) fn typed_list(item_type: Node, items: Vec<Node>) -> Node {
    let ty = call_node("Z881", vec![("Z881K1", item_type)]);
    let mut list = Node::object(vec![(key("Z1K1"), ty.clone())], None);
    for item in items.into_iter().rev() {
        list = Node::object(
            vec![
                (key("Z1K1"), ty.clone()),
                (key("K1"), item),
                (key("K2"), list),
            ],
            None,
        );
    }
    list
}

/// A normal call `{Z1K1: Z7, Z7K1: function, …args}` in the empty scope.
pub(crate) fn call_node(function: &str, args: Vec<(&str, Node)>) -> Node {
    let mut entries = vec![
        (key("Z1K1"), Node::z9("Z7")),
        (key("Z7K1"), Node::z9(function)),
    ];
    entries.extend(args.into_iter().map(|(k, v)| (key(k), v)));
    Node::object(entries, None)
}

/// Dropping a node tree nested very deeply (a long list built at run time), or a chain of
/// frames each holding a value scoped in the one before (a long tail recursion), must not
/// recurse once per level: objects and frames hand what they own to [`dispose`].
impl Drop for Obj {
    fn drop(&mut self) {
        crate::budget::release(estimated_bytes(&self.entries));
        let entries = std::mem::take(&mut self.entries);
        dispose(entries.into_iter().map(|(_, v)| v), self.scope.take());
    }
}

/// Drops `nodes` and `frame` with a work list instead of recursion. Only objects and frames
/// owned alone are taken apart (their own `drop` then finds them empty); the work lists
/// are allocated only when there is such a thing to take apart, so dropping a leaf
/// allocates nothing.
pub(crate) fn dispose(nodes: impl IntoIterator<Item = Node>, frame: Option<Rc<Frame>>) {
    let mut objects: Vec<Obj> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let take_node = |node: Node, objects: &mut Vec<Obj>| {
        if let Node::Obj(rc) = node
            && let Ok(obj) = Rc::try_unwrap(rc)
        {
            objects.push(obj);
        }
    };
    let take_frame = |frame: Rc<Frame>, frames: &mut Vec<Frame>| {
        if let Ok(frame) = Rc::try_unwrap(frame) {
            frames.push(frame);
        }
    };
    for node in nodes {
        take_node(node, &mut objects);
    }
    if let Some(frame) = frame {
        take_frame(frame, &mut frames);
    }
    loop {
        if let Some(mut obj) = objects.pop() {
            let entries = std::mem::take(&mut obj.entries);
            // `obj` releases its (now empty) self when it drops; this is the rest.
            crate::budget::release(estimated_bytes(&entries).saturating_sub(estimated_bytes(&[])));
            for (_, child) in entries {
                take_node(child, &mut objects);
            }
            if let Some(scope) = obj.scope.take() {
                take_frame(scope, &mut frames);
            }
            continue;
        }
        if let Some(mut frame) = frames.pop() {
            let (values, parent) = frame.take_contents();
            for value in values {
                take_node(value, &mut objects);
            }
            if let Some(parent) = parent {
                take_frame(parent, &mut frames);
            }
            continue;
        }
        break;
    }
}

/// What an object node holds on the host, as the memory budget counts it: the node, its key
/// slots and the bytes of the strings it holds directly. A string shared by many objects is
/// counted once per object: that is what materialising them would cost.
fn estimated_bytes(entries: &[(Rc<str>, Node)]) -> usize {
    const NODE: usize = std::mem::size_of::<Obj>() + 2 * std::mem::size_of::<usize>();
    const SLOT: usize = std::mem::size_of::<(Rc<str>, Node)>();
    let strings: usize = entries
        .iter()
        .map(|(_, v)| match v {
            Node::Str(s) => s.len(),
            _ => 0,
        })
        .sum();
    NODE + entries.len() * SLOT + strings
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::budget::{BudgetLimits, install_or_share};
    use crate::engine::Fail;

    fn limit(r: R<impl Sized>) -> Option<String> {
        match r {
            Err(Fail::Error(e)) => Some(e["Z5K2"]["Z590K1"]["Z6K1"].as_str()?.to_string()),
            _ => None,
        }
    }

    /// A pair `{Z1K1: Z1, K1: x, K2: x}` nested `levels` times around `leaf`: 2^levels leaves
    /// in `levels` objects.
    fn shared(levels: usize, leaf: Node) -> Node {
        let mut node = leaf;
        for _ in 0..levels {
            node = Node::object(
                vec![
                    (key("Z1K1"), Node::Str(key("Z1"))),
                    (key("K1"), node.clone()),
                    (key("K2"), node),
                ],
                None,
            );
        }
        node
    }

    fn budget(limits: BudgetLimits) -> crate::budget::BudgetGuard {
        install_or_share(limits, Instant::now() + Duration::from_secs(60))
    }

    #[test]
    fn rescoping_keeps_sharing() {
        let _guard = budget(BudgetLimits {
            max_steps: 1_000,
            ..BudgetLimits::default()
        });
        let value = shared(40, Node::z6("x"));
        let scope = Some(Frame::new(None));
        let rescoped = value
            .rescoped(&scope)
            .expect("40 objects to rescope, not 2^40");
        let mut node = &rescoped;
        for _ in 0..40 {
            let (Some(Node::Obj(a)), Some(Node::Obj(b))) = (node.get("K1"), node.get("K2")) else {
                panic!("not a pair");
            };
            assert!(Rc::ptr_eq(a, b), "the copy shares what the value shared");
            assert!(Rc::ptr_eq(
                node.scope().as_ref().unwrap(),
                scope.as_ref().unwrap()
            ));
            node = node.get("K1").unwrap();
        }
        assert_eq!(node.string_value(), Some("x"));
    }

    #[test]
    fn rescoping_a_large_body_takes_steps() {
        let _guard = budget(BudgetLimits {
            max_steps: 1_000,
            ..BudgetLimits::default()
        });
        // 5,000 distinct objects, nothing shared.
        let items = (0..5_000).map(|i| Node::z6(&i.to_string())).collect();
        let list = typed_list(Node::z9("Z6"), items);
        assert_eq!(limit(list.rescoped(&None)).as_deref(), Some("steps"));
    }

    #[test]
    fn quoting_a_shared_value_writes_only_the_quote() {
        let value = shared(40, Node::z6("x"));
        let text = value.quoted_text(200);
        assert!(
            text.starts_with(r#"{"Z1K1":"Z1","K1":{"Z1K1":"Z1""#),
            "{text}"
        );
        assert_eq!(text.chars().count(), 201, "{text}");
        // A small value is quoted whole, as its JSON.
        let small = shared(1, Node::z6("é\"x"));
        let json = serde_json::to_string(&small.to_json().unwrap()).unwrap();
        assert_eq!(small.quoted_text(200), json);
    }

    #[test]
    fn materialised_bytes_are_charged_per_request() {
        let limits = BudgetLimits {
            max_request_memory_bytes: 1024 * 1024,
            ..BudgetLimits::default()
        };
        let guard = budget(limits);
        // 256 references to one 4 KiB string: 1 MiB of JSON from a few KiB of nodes.
        let value = shared(8, Node::z6(&"y".repeat(4096)));
        assert_eq!(limit(value.to_json()).as_deref(), Some("memory"));
        drop(guard);
        // Each conversion fits, not all of them together.
        let _guard = budget(limits);
        let quarter = shared(6, Node::z6(&"y".repeat(4096)));
        for _ in 0..3 {
            assert!(quarter.to_json().is_ok());
        }
        assert_eq!(limit(quarter.to_json()).as_deref(), Some("memory"));
    }

    #[test]
    fn an_error_quotes_a_large_value_briefly() {
        let _guard = budget(BudgetLimits::default());
        let small = shared(2, Node::z6("x"));
        assert_eq!(small.quoted_json().unwrap(), small.to_json().unwrap());
        let large = shared(40, Node::z6("x"));
        let quoted = large.quoted_json().unwrap();
        let text = quoted["Z6K1"].as_str().unwrap();
        assert!(
            text.starts_with(r#"{"Z1K1":"Z1""#) && text.ends_with('…'),
            "{quoted}"
        );
    }

    #[test]
    fn an_error_quotes_a_deep_value_briefly_objects_and_arrays_alike() {
        let _guard = budget(BudgetLimits::default());
        let scope: Scope = None;
        let nested = |levels: usize, wrap: &dyn Fn(Value) -> Value| {
            let mut value = Value::String("x".into());
            for _ in 0..levels {
                value = wrap(value);
            }
            value
        };
        let in_object = |v: Value| {
            let mut level = Map::new();
            level.insert("K1".into(), v);
            Value::Object(level)
        };
        let in_array = |v: Value| Value::Array(vec![v]);
        let shallow = crate::budget::MAX_METADATA_VALUE_DEPTH - 1;
        let deep = crate::budget::MAX_METADATA_VALUE_DEPTH + 1;
        for wrap in [&in_object as &dyn Fn(Value) -> Value, &in_array] {
            // Arrays are kept verbatim inside an object: one level of it.
            let json = in_object(nested(shallow - 1, wrap));
            let node = Node::from_json(&json, &scope);
            assert_eq!(node.quoted_json().unwrap(), json);
            let node = Node::from_json(&in_object(nested(deep, wrap)), &scope);
            let quoted = node.quoted_json().unwrap();
            let text = quoted["Z6K1"].as_str().unwrap();
            assert!(
                text.starts_with(r#"{"K1":"#) && text.ends_with('…'),
                "{quoted}"
            );
        }
    }
}
