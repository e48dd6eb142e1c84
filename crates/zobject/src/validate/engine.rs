//! A small evaluator for the subset of JSON Schema (draft-07) that the ZObject schemas use.
//!
//! It reproduces Ajv 8's behaviour without `allErrors`, because the original's error codes
//! are derived from Ajv's error list:
//! - keywords run in Ajv's order: `$ref`, `enum`, `not`, `anyOf`, `oneOf`, `allOf`, then the
//!   string keywords (`pattern`), the array keywords (`minItems`, `additionalItems`,
//!   `items`), the object keywords (`required`, `additionalProperties`, `properties`,
//!   `patternProperties`);
//! - a `type` is checked first unless the schema has keywords for that type, in which case
//!   it is checked when that group runs;
//! - evaluation of a schema stops at its first failing keyword;
//! - `anyOf`/`oneOf` keep the errors of every failed branch, followed by their own error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::sync::OnceLock;

use rustc_hash::FxHasher;

use crate::Value;

use super::patterns::Pattern;

/// A schema: a reference to a named definition, or inline keywords.
pub(crate) enum Node {
    /// `$ref` to a definition of the same registry.
    Ref(Reference),
    /// Inline keywords.
    Inline(Box<Keywords>),
}

/// A `$ref` by name, resolved on first use: a registry lives for the whole process (it is
/// built once into a static), and a node belongs to one registry, so the definition it names
/// never changes. Looking the name up in the registry at every visit was the validator's
/// largest single cost.
pub(crate) struct Reference {
    name: &'static str,
    resolved: OnceLock<Option<&'static Node>>,
}

impl Reference {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            resolved: OnceLock::new(),
        }
    }

    /// The definition named, in `registry` (the one this reference belongs to).
    fn resolve(&self, registry: &'static Registry) -> Option<&'static Node> {
        *self.resolved.get_or_init(|| registry.get(self.name))
    }
}

/// The JSON types the schemas name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum JsonType {
    Object,
    String,
    Array,
}

impl JsonType {
    fn name(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::String => "string",
            JsonType::Array => "array",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            JsonType::Object => v.is_object(),
            JsonType::String => v.is_string(),
            JsonType::Array => v.is_array(),
        }
    }
}

/// The keywords of one schema object. Unset keywords are absent.
#[derive(Default)]
pub(crate) struct Keywords {
    pub(crate) reference: Option<Reference>,
    pub(crate) enumeration: Option<Vec<&'static str>>,
    pub(crate) not: Option<Node>,
    pub(crate) any_of: Vec<Node>,
    pub(crate) one_of: Vec<Node>,
    pub(crate) all_of: Vec<Node>,
    pub(crate) ty: Option<JsonType>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) min_items: Option<usize>,
    pub(crate) tuple_items: Vec<Node>,
    pub(crate) additional_items: Option<Node>,
    pub(crate) all_items: Option<Node>,
    pub(crate) required: Vec<&'static str>,
    pub(crate) closed: bool,
    pub(crate) properties: Vec<(&'static str, Node)>,
    pub(crate) pattern_properties: Vec<(Pattern, Node)>,
}

/// A fast hasher for keys no request chooses: schema names, and addresses.
type FastHash = BuildHasherDefault<FxHasher>;

/// The named definitions of one form (NORMAL, CANONICAL or MIXED).
pub(crate) type Registry = HashMap<&'static str, Node, FastHash>;

/// What failed, in Ajv's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keyword {
    Type(&'static str),
    Required(&'static str),
    AdditionalProperty(String),
    Pattern,
    Enum,
    Not,
    AnyOf,
    OneOf,
    MinItems,
}

/// One Ajv-style error: the keyword, where in the data (`/Z2K2/Z6K1`), and the data there.
#[derive(Debug, Clone)]
pub(crate) struct SchemaError<'a> {
    pub(crate) keyword: Keyword,
    pub(crate) path: Path,
    pub(crate) data: &'a Value,
}

/// Where in the data an error is: a shared, immutable list of segments from the innermost
/// outwards, so recording an error costs O(1) however deep it is (a deep value records
/// errors at every level of failed `anyOf` branches).
pub(crate) type Path = Option<Rc<PathNode>>;

/// One segment of a [`Path`].
#[derive(Debug)]
pub(crate) struct PathNode {
    segment: String,
    parent: Path,
}

impl Drop for PathNode {
    /// Unlinks the chain iteratively: a recursive drop of a path thousands of segments long
    /// would overflow the stack.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next {
            match Rc::try_unwrap(node) {
                Ok(mut node) => next = node.parent.take(),
                Err(_) => break,
            }
        }
    }
}

impl SchemaError<'_> {
    /// The JSON pointer of the error's location, e.g. `/Z2K2/Z6K1` (Ajv's `instancePath`).
    pub(crate) fn instance_path(&self) -> String {
        let mut segments = Vec::new();
        let mut node = self.path.as_deref();
        while let Some(n) = node {
            segments.push(n.segment.as_str());
            node = n.parent.as_deref();
        }
        segments.iter().rev().fold(String::new(), |mut out, s| {
            out.push('/');
            out.push_str(s);
            out
        })
    }
}

/// Evaluation state: the registry and the current instance path.
pub(crate) struct Evaluator {
    registry: &'static Registry,
    path: Path,
    /// Whether each `(schema, object)` pair checked so far, by address, was valid. Validity
    /// depends on neither the path nor the order, and the schemas check one object against
    /// one schema many times over: the rest of a typed list at every cell (`LIST_OF_Zn`
    /// checks `LIST`, then recurses into `K2`), quadratic in the list's length without this;
    /// and the same child through several `anyOf`/`oneOf` branches at each level (a `Z7`
    /// under a local key is a `Z6` resolver, a `Z1` literal, a `Z99`'s value…), some four
    /// times per level of nesting. Until 2026-12-06 only valid pairs were kept, so a value
    /// that failed at its bottom cost about 4^depth checks: calls nested ten deep took 57 s
    /// (debug build) to be found invalid, five more some hours, and a request of a few
    /// hundred bytes held a thread and its work slot that long. With failures kept too,
    /// each pair is checked once.
    known: Known,
    /// Whether to record errors (their keywords and paths). Off, a check only answers
    /// whether the data is valid, without building a path segment per property visited or an
    /// error per failed `anyOf` branch; [`super::run`] checks so first and again with errors
    /// only when the data is invalid.
    collect: bool,
    /// Checks left to the recording pass ([`MAX_RECORDING_CHECKS`]).
    recording_checks_left: usize,
    /// Checks made so far.
    checks: usize,
    /// Which thread-local spare `known` came from and goes back to.
    spare: Spare,
}

/// Where an evaluator's `known` map is kept between validations on a thread.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spare {
    /// [`SPARE_KNOWN`]: one validation of one value.
    Single,
    /// [`SPARE_SESSION_KNOWN`]: a [`super::Session`], which checks every typed part of a
    /// request and may record thousands of pairs.
    Session,
}

impl Spare {
    /// The thread-local spare, and the largest map it keeps.
    fn kept(
        self,
    ) -> (
        &'static std::thread::LocalKey<RefCell<Option<Known>>>,
        usize,
    ) {
        match self {
            Spare::Single => (&SPARE_KNOWN, MAX_SPARE_KNOWN),
            Spare::Session => (&SPARE_SESSION_KNOWN, MAX_SPARE_SESSION_KNOWN),
        }
    }
}

/// [`Evaluator::known`]: validity by `(schema, object)` address.
type Known = HashMap<(usize, usize), bool, FastHash>;

thread_local! {
    /// The `known` map of the last evaluator that ended on this thread, emptied, for the
    /// next one: grown from empty in every validation, its rehashing and inserts were an
    /// eighth of the time of an orchestrator case that validates many calls
    /// (`function call for Z808 with reference to Z908`, `zeval bench orchestrator`).
    pub(crate) static SPARE_KNOWN: RefCell<Option<Known>> = const { RefCell::new(None) };
    /// The same for the last [`super::Session`] (see [`MAX_SPARE_SESSION_KNOWN`]).
    pub(crate) static SPARE_SESSION_KNOWN: RefCell<Option<Known>> = const { RefCell::new(None) };
}

/// The largest `known` map kept for the next evaluator, in entries: a validation of a huge
/// value must not leave every later one clearing (and holding) its table.
pub(crate) const MAX_SPARE_KNOWN: usize = 4096;

/// The largest `known` map kept for the next session, in entries: at 16,384 a thread keeps
/// at most about 400 KB (25 bytes a slot). The static validation of `function call for Z808
/// with reference to Z908` (a 6.5 KB request) records 8,290 pairs; with 4,096 its table was
/// dropped and grown again from empty in every request, a sixth of that case's time
/// (1.18 → 0.98 ms, 2026-12-07). Clearing a table costs a write per slot, so one larger than
/// [`MAX_SPARE_KNOWN`] is kept only while the sessions that take it fill a quarter of it:
/// otherwise a large request would make every small one after it on the thread pay for it.
pub(crate) const MAX_SPARE_SESSION_KNOWN: usize = 16_384;

impl Drop for Evaluator {
    fn drop(&mut self) {
        let mut known = std::mem::take(&mut self.known);
        let (spare, largest) = self.spare.kept();
        if known.capacity() > largest {
            return;
        }
        if known.capacity() > MAX_SPARE_KNOWN && known.len() * 4 < known.capacity() {
            known = Known::with_capacity_and_hasher(known.len(), FastHash::default());
        } else {
            known.clear();
        }
        // A thread being torn down keeps nothing.
        let _ = spare.try_with(|spare| *spare.borrow_mut() = Some(known));
    }
}

/// The fewest checks the recording pass may make (see [`Evaluator::collect`]); it may also
/// make four times as many as the first pass did, which is linear in the value. It must
/// check again what it already knows to be invalid, to say why: the same object's errors are
/// recorded once per branch that reaches it, so that pass alone cannot keep a failure. Past
/// its checks it stops, and the error says the value does not match without saying where
/// ([`Evaluator::gave_up`]). The schemata suite's invalid objects take at most 434.
pub(crate) const MAX_RECORDING_CHECKS: usize = 100_000;

/// How many times the first pass's checks the recording pass may make, at least.
const RECORDING_CHECKS_PER_CHECK: usize = 4;

type Outcome<'a> = Result<(), Vec<SchemaError<'a>>>;

/// Stack kept free before recursing, and the size of each extra stack segment; deep
/// ZObjects (normal-form lists nest two levels per element) recurse once per level.
const STACK_RED_ZONE: usize = 128 * 1024;
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

impl Evaluator {
    /// An evaluator that records errors when `collect` is set.
    pub(crate) fn new(registry: &'static Registry, collect: bool) -> Self {
        Self::with_spare(registry, collect, Spare::Single)
    }

    /// [`Self::new`] drawing its `known` map from `spare`.
    pub(crate) fn with_spare(registry: &'static Registry, collect: bool, spare: Spare) -> Self {
        let (kept, _) = spare.kept();
        Evaluator {
            registry,
            path: None,
            known: kept
                .try_with(|kept| kept.borrow_mut().take())
                .ok()
                .flatten()
                .unwrap_or_default(),
            collect,
            recording_checks_left: MAX_RECORDING_CHECKS,
            checks: 0,
            spare,
        }
    }

    /// This evaluator, now recording errors; what it found valid still holds.
    pub(crate) fn recording(mut self) -> Self {
        self.known.retain(|_, valid| *valid);
        self.collect = true;
        self.recording_checks_left =
            MAX_RECORDING_CHECKS.max(self.checks.saturating_mul(RECORDING_CHECKS_PER_CHECK));
        self
    }

    /// Whether the recording pass ran out of checks ([`MAX_RECORDING_CHECKS`]): its errors
    /// are then not the whole story, and neither is its outcome (a check cut short fails,
    /// which a `not` turns into a pass).
    pub(crate) fn gave_up(&self) -> bool {
        self.collect && self.recording_checks_left == 0
    }

    /// Validates `data` against the definition `reference` names (valid when there is none).
    fn check_reference<'a>(&mut self, reference: &Reference, data: &'a Value) -> Outcome<'a> {
        match reference.resolve(self.registry) {
            Some(node) => self.check(node, data),
            None => Ok(()),
        }
    }

    pub(crate) fn check<'a>(&mut self, node: &Node, data: &'a Value) -> Outcome<'a> {
        self.checks += 1;
        if self.collect {
            if self.recording_checks_left == 0 {
                return Err(Vec::new());
            }
            self.recording_checks_left -= 1;
        }
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || match node {
            Node::Ref(reference) => self.check_reference(reference, data),
            Node::Inline(k) if data.is_object() => {
                let key = (
                    &**k as *const Keywords as usize,
                    data as *const Value as usize,
                );
                match self.known.get(&key) {
                    Some(true) => return Ok(()),
                    // Recording, the errors are wanted again (see `known`).
                    Some(false) if !self.collect => return Err(Vec::new()),
                    _ => {}
                }
                let outcome = self.check_keywords(k, data);
                if outcome.is_ok() || !self.collect {
                    self.known.insert(key, outcome.is_ok());
                }
                outcome
            }
            Node::Inline(k) => self.check_keywords(k, data),
        })
    }

    fn error<'a>(&self, keyword: Keyword, data: &'a Value) -> SchemaError<'a> {
        SchemaError {
            keyword,
            path: self.path.clone(),
            data,
        }
    }

    fn fail<'a>(&self, keyword: Keyword, data: &'a Value) -> Outcome<'a> {
        self.fail_with(|| keyword, data)
    }

    /// [`Self::fail`] with a keyword that costs an allocation, built only when recorded.
    fn fail_with<'a>(&self, keyword: impl FnOnce() -> Keyword, data: &'a Value) -> Outcome<'a> {
        if self.collect {
            Err(vec![self.error(keyword(), data)])
        } else {
            Err(Vec::new())
        }
    }

    fn check_keywords<'a>(&mut self, k: &Keywords, data: &'a Value) -> Outcome<'a> {
        let has_rules_for = |t: JsonType| match t {
            JsonType::String => k.pattern.is_some(),
            JsonType::Array => {
                k.min_items.is_some()
                    || !k.tuple_items.is_empty()
                    || k.additional_items.is_some()
                    || k.all_items.is_some()
            }
            JsonType::Object => {
                !k.required.is_empty()
                    || k.closed
                    || !k.properties.is_empty()
                    || !k.pattern_properties.is_empty()
            }
        };
        if let Some(t) = k.ty
            && !has_rules_for(t)
            && !t.matches(data)
        {
            return self.fail(Keyword::Type(t.name()), data);
        }
        if let Some(reference) = &k.reference {
            self.check_reference(reference, data)?;
        }
        if let Some(allowed) = &k.enumeration
            && !data.as_str().is_some_and(|s| allowed.contains(&s))
        {
            return self.fail(Keyword::Enum, data);
        }
        if let Some(inner) = &k.not
            && self.check(inner, data).is_ok()
        {
            return self.fail(Keyword::Not, data);
        }
        if !k.any_of.is_empty() {
            let mut errors = Vec::new();
            let mut passed = false;
            for branch in &k.any_of {
                match self.check(branch, data) {
                    Ok(()) => {
                        passed = true;
                        break;
                    }
                    Err(e) => errors.extend(e),
                }
            }
            if !passed {
                if self.collect {
                    errors.push(self.error(Keyword::AnyOf, data));
                }
                return Err(errors);
            }
        }
        if !k.one_of.is_empty() {
            let mut errors = Vec::new();
            let mut passing = 0;
            for branch in &k.one_of {
                match self.check(branch, data) {
                    Ok(()) => passing += 1,
                    Err(e) => errors.extend(e),
                }
            }
            if passing != 1 {
                if self.collect {
                    errors.push(self.error(Keyword::OneOf, data));
                }
                return Err(errors);
            }
        }
        for part in &k.all_of {
            self.check(part, data)?;
        }
        let typed_group = |t: JsonType| k.ty == Some(t) && has_rules_for(t);
        if let Some(pattern) = &k.pattern {
            match data.as_str() {
                Some(s) if !pattern.is_match(s) => return self.fail(Keyword::Pattern, data),
                Some(_) => {}
                None if typed_group(JsonType::String) => {
                    return self.fail(Keyword::Type("string"), data);
                }
                None => {}
            }
        }
        if has_rules_for(JsonType::Array) {
            match data.as_array() {
                Some(items) => self.check_array(k, items, data)?,
                None if typed_group(JsonType::Array) => {
                    return self.fail(Keyword::Type("array"), data);
                }
                None => {}
            }
        }
        if has_rules_for(JsonType::Object) {
            match data.as_object() {
                Some(map) => self.check_object(k, map, data)?,
                None if typed_group(JsonType::Object) => {
                    return self.fail(Keyword::Type("object"), data);
                }
                None => {}
            }
        }
        Ok(())
    }

    fn check_array<'a>(
        &mut self,
        k: &Keywords,
        items: &'a [Value],
        data: &'a Value,
    ) -> Outcome<'a> {
        if let Some(min) = k.min_items
            && items.len() < min
        {
            return self.fail(Keyword::MinItems, data);
        }
        if let Some(rest) = &k.additional_items
            && !k.tuple_items.is_empty()
        {
            for (i, item) in items.iter().enumerate().skip(k.tuple_items.len()) {
                self.at(|| i.to_string(), |ev| ev.check(rest, item))?;
            }
        }
        for (i, (schema, item)) in k.tuple_items.iter().zip(items).enumerate() {
            self.at(|| i.to_string(), |ev| ev.check(schema, item))?;
        }
        if let Some(each) = &k.all_items {
            for (i, item) in items.iter().enumerate() {
                self.at(|| i.to_string(), |ev| ev.check(each, item))?;
            }
        }
        Ok(())
    }

    fn check_object<'a>(
        &mut self,
        k: &Keywords,
        map: &'a crate::Map<String, Value>,
        data: &'a Value,
    ) -> Outcome<'a> {
        for key in &k.required {
            if !map.contains_key(*key) {
                return self.fail(Keyword::Required(key), data);
            }
        }
        if k.closed {
            for key in map.keys() {
                let known = k.properties.iter().any(|(p, _)| p == key)
                    || k.pattern_properties.iter().any(|(p, _)| p.is_match(key));
                if !known {
                    return self.fail_with(|| Keyword::AdditionalProperty(key.clone()), data);
                }
            }
        }
        for (name, schema) in &k.properties {
            if let Some(value) = map.get(*name) {
                self.at(|| (*name).to_string(), |ev| ev.check(schema, value))?;
            }
        }
        for (pattern, schema) in &k.pattern_properties {
            for (key, value) in map {
                if pattern.is_match(key) {
                    self.at(|| key.clone(), |ev| ev.check(schema, value))?;
                }
            }
        }
        Ok(())
    }

    /// Runs `f` one segment deeper in the data; the segment is only built when errors are
    /// recorded.
    fn at<'a>(
        &mut self,
        segment: impl FnOnce() -> String,
        f: impl FnOnce(&mut Self) -> Outcome<'a>,
    ) -> Outcome<'a> {
        if !self.collect {
            return f(self);
        }
        let parent = self.path.take();
        self.path = Some(Rc::new(PathNode {
            segment: segment(),
            parent: parent.clone(),
        }));
        let out = f(self);
        self.path = parent;
        out
    }
}
