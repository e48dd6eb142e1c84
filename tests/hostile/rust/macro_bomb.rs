// Exponential macro expansion: a40!() expands to 2^40 statements.
macro_rules! a0 { ($e:ident) => { $e = $e.wrapping_add(1); }; }
macro_rules! a1 { ($e:ident) => { a0!($e); a0!($e); }; }
macro_rules! a2 { ($e:ident) => { a1!($e); a1!($e); }; }
macro_rules! a3 { ($e:ident) => { a2!($e); a2!($e); }; }
macro_rules! a4 { ($e:ident) => { a3!($e); a3!($e); }; }
macro_rules! a5 { ($e:ident) => { a4!($e); a4!($e); }; }
macro_rules! a6 { ($e:ident) => { a5!($e); a5!($e); }; }
macro_rules! a7 { ($e:ident) => { a6!($e); a6!($e); }; }
macro_rules! a8 { ($e:ident) => { a7!($e); a7!($e); }; }
macro_rules! a9 { ($e:ident) => { a8!($e); a8!($e); }; }
macro_rules! a10 { ($e:ident) => { a9!($e); a9!($e); }; }
macro_rules! a11 { ($e:ident) => { a10!($e); a10!($e); }; }
macro_rules! a12 { ($e:ident) => { a11!($e); a11!($e); }; }
macro_rules! a13 { ($e:ident) => { a12!($e); a12!($e); }; }
macro_rules! a14 { ($e:ident) => { a13!($e); a13!($e); }; }
macro_rules! a15 { ($e:ident) => { a14!($e); a14!($e); }; }
macro_rules! a16 { ($e:ident) => { a15!($e); a15!($e); }; }
macro_rules! a17 { ($e:ident) => { a16!($e); a16!($e); }; }
macro_rules! a18 { ($e:ident) => { a17!($e); a17!($e); }; }
macro_rules! a19 { ($e:ident) => { a18!($e); a18!($e); }; }
macro_rules! a20 { ($e:ident) => { a19!($e); a19!($e); }; }
macro_rules! a21 { ($e:ident) => { a20!($e); a20!($e); }; }
macro_rules! a22 { ($e:ident) => { a21!($e); a21!($e); }; }
macro_rules! a23 { ($e:ident) => { a22!($e); a22!($e); }; }
macro_rules! a24 { ($e:ident) => { a23!($e); a23!($e); }; }
macro_rules! a25 { ($e:ident) => { a24!($e); a24!($e); }; }
macro_rules! a26 { ($e:ident) => { a25!($e); a25!($e); }; }
macro_rules! a27 { ($e:ident) => { a26!($e); a26!($e); }; }
macro_rules! a28 { ($e:ident) => { a27!($e); a27!($e); }; }
macro_rules! a29 { ($e:ident) => { a28!($e); a28!($e); }; }
macro_rules! a30 { ($e:ident) => { a29!($e); a29!($e); }; }
macro_rules! a31 { ($e:ident) => { a30!($e); a30!($e); }; }
macro_rules! a32 { ($e:ident) => { a31!($e); a31!($e); }; }
macro_rules! a33 { ($e:ident) => { a32!($e); a32!($e); }; }
macro_rules! a34 { ($e:ident) => { a33!($e); a33!($e); }; }
macro_rules! a35 { ($e:ident) => { a34!($e); a34!($e); }; }
macro_rules! a36 { ($e:ident) => { a35!($e); a35!($e); }; }
macro_rules! a37 { ($e:ident) => { a36!($e); a36!($e); }; }
macro_rules! a38 { ($e:ident) => { a37!($e); a37!($e); }; }
macro_rules! a39 { ($e:ident) => { a38!($e); a38!($e); }; }
macro_rules! a40 { ($e:ident) => { a39!($e); a39!($e); }; }

fn Z10500(Z10500K1: &str) -> String {
    let mut n = Z10500K1.len() as u64;
    a40!(n);
    n.to_string()
}
